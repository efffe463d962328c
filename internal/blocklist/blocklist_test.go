package blocklist_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/blocklist"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

func pool(addr string, db int) *redis.Pool {
	return &redis.Pool{
		Dial: func() (redis.Conn, error) {
			return redis.Dial("tcp", addr, redis.DialDatabase(db), redis.DialReadTimeout(10*time.Second))
		},
		MaxActive: 8, MaxIdle: 8, Wait: true,
	}
}

type agg struct {
	n           int64
	first, last string
}

func TestBlocklist(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	store := &stats.Store{Stats: pool(srv.Addr(), stats.StatsDB), Attempts: pool(srv.Addr(), stats.AttemptsDB)}
	t.Cleanup(func() { store.Stats.Close(); store.Attempts.Close() })
	loc := time.UTC
	y, m, d := time.Now().In(loc).Date()
	now := time.Date(y, m, d, 15, 0, 0, 0, loc)
	ctx := context.Background()
	// want is the test's own sum per address over the window (days 1..3).
	want := map[netip.Addr]*agg{}
	id := 0
	count := func(ago int, src string, n int) {
		t.Helper()
		at := time.Date(y, m, d-ago, 9, 0, 0, 0, loc)
		b := stats.NewBatch()
		for range n {
			b.Add(at, []byte("h"), []byte("root"), []byte(src))
		}
		id++
		if err := store.Apply(ctx, b, &stats.Applied{Queue: "q", Slot: 0, ID: fmt.Sprint(id)}); err != nil {
			t.Fatal(err)
		}
		a, ok := stats.SourceAddr(src)
		if !ok || ago < 1 || ago > 3 {
			return
		}
		day := stats.PeriodOf(at).Day
		g := want[a]
		if g == nil {
			g = &agg{first: day, last: day}
			want[a] = g
		}
		g.n += int64(n)
		g.first, g.last = min(g.first, day), max(g.last, day)
	}
	count(0, "192.0.2.50", 100)         // today: not complete, not listed
	count(1, "2001:db8::2", 5)          // IPv6, listed after every IPv4
	count(1, "198.51.100.1", 3)         // 3 + 2 (mapped) = 5 over the window
	count(3, "::ffff:198.51.100.1", 2)  // the same address, mapped
	count(2, "192.0.2.10", 4)           // below the threshold
	count(1, "scanner.example.net", 50) // a host name: never listed
	count(2, "10.0.0.9", 6)             // listed
	count(4, "10.0.0.9", 100)           // outside the window
	count(2, "fe80::1%eth0", 9)         // a zoned address: not for another host
	count(1, "2001:db8::10", 7)         // IPv6
	dir := t.TempDir()
	l := &blocklist.List{Store: store, Dir: dir, Days: 3, Min: 5, Location: loc,
		Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)}
	wrote, err := l.Write(ctx)
	if err != nil || !wrote {
		t.Fatalf("Write = %v, %v", wrote, err)
	}
	var addrs []netip.Addr
	for a, g := range want {
		if g.n >= 5 {
			addrs = append(addrs, a)
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	var txt, csv strings.Builder
	csv.WriteString("source,attempts,first_day,last_day\n")
	for _, a := range addrs {
		txt.WriteString(a.String() + "\n")
		fmt.Fprintf(&csv, "%s,%d,%s,%s\n", a, want[a].n, want[a].first, want[a].last)
	}
	gotTxt, _ := os.ReadFile(filepath.Join(dir, blocklist.TextFile))
	gotCSV, _ := os.ReadFile(filepath.Join(dir, blocklist.CSVFile))
	if string(gotTxt) != txt.String() || string(gotCSV) != csv.String() {
		t.Fatalf("sources.txt:\n%s\nwant:\n%s\nsources.csv:\n%s\nwant:\n%s", gotTxt, txt.String(), gotCSV, csv.String())
	}
	// The order the issue asks: IPv4 first, as the test spells it.
	if lines := strings.Fields(string(gotTxt)); len(lines) != 4 || lines[0] != "10.0.0.9" || lines[1] != "198.51.100.1" || !strings.Contains(lines[2], ":") {
		t.Fatalf("sources.txt lines %q", lines)
	}

	// Nothing new: nothing written, same bytes, same mtime.
	info, _ := os.Stat(filepath.Join(dir, blocklist.TextFile))
	if wrote, err := l.Write(ctx); err != nil || wrote {
		t.Fatalf("second Write = %v, %v", wrote, err)
	}
	fresh := *l
	if wrote, err := (&blocklist.List{Store: store, Dir: dir, Days: 3, Min: 5, Location: loc, Now: fresh.Now, Log: fresh.Log}).Write(ctx); err != nil || wrote {
		t.Fatalf("a new process's Write = %v, %v", wrote, err)
	}
	info2, _ := os.Stat(filepath.Join(dir, blocklist.TextFile))
	if !info.ModTime().Equal(info2.ModTime()) {
		t.Errorf("sources.txt rewritten with nothing new")
	}

	// A late line that lifts an address over the threshold lists it.
	count(2, "192.0.2.10", 1)
	if wrote, err := l.Write(ctx); err != nil || !wrote {
		t.Fatalf("Write after a late line = %v, %v", wrote, err)
	}
	gotTxt, _ = os.ReadFile(filepath.Join(dir, blocklist.TextFile))
	if !bytes.HasPrefix(gotTxt, []byte("10.0.0.9\n192.0.2.10\n198.51.100.1\n")) {
		t.Errorf("after a late line:\n%s", gotTxt)
	}

	// -F: recounted statistics give the same files.
	before, _ := os.ReadFile(filepath.Join(dir, blocklist.CSVFile))
	if _, err := store.RebuildWith(ctx, stats.RebuildOptions{Location: loc}); err != nil {
		t.Fatal(err)
	}
	if wrote, err := (&blocklist.List{Store: store, Dir: dir, Days: 3, Min: 5, Location: loc, Now: fresh.Now, Log: fresh.Log}).Write(ctx); err != nil || wrote {
		t.Fatalf("Write after -F = %v, %v", wrote, err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, blocklist.CSVFile))
	if !bytes.Equal(before, after) {
		t.Errorf("sources.csv changed by -F:\n%s\n%s", before, after)
	}
}
