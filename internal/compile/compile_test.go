package compile

import (
	"context"
	"encoding/csv"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

func setup(t *testing.T) (*Compiler, *stats.Store) {
	srv := redistest.Start(t, redistest.Options{})
	pool := func(db int) *redis.Pool {
		return &redis.Pool{Dial: func() (redis.Conn, error) {
			return redis.Dial("tcp", srv.Addr(), redis.DialDatabase(db))
		}, MaxActive: 4, Wait: true}
	}
	s := &stats.Store{Stats: pool(1), Attempts: pool(0)}
	t.Cleanup(func() { s.Stats.Close(); s.Attempts.Close() })
	c := &Compiler{Store: s, Dir: filepath.Join(t.TempDir(), "sshd"), ChartTop: 5, Log: slog.New(slog.DiscardHandler)}
	return c, s
}

func add(t *testing.T, s *stats.Store, when string, host, user, src string) {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, when)
	if err != nil {
		t.Fatal(err)
	}
	b := stats.NewBatch()
	b.Add(ts.UTC(), []byte(host), []byte(user), []byte(src))
	if err := s.Apply(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
}

// written lists the chart and CSV files of stats keys under dir changed
// after since (the overview's own files are rewritten at every compile
// that draws anything).
func written(t *testing.T, dir string, since time.Time) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(p); ext != ".svg" && ext != ".csv" || !strings.Contains(filepath.Base(p), ":stats") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.ModTime().After(since) {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestCompileRedrawsOnlyWhatChanged(t *testing.T) {
	c, s := setup(t)
	ctx := context.Background()
	for day := 1; day <= 5; day++ {
		add(t, s, time.Date(2026, 10, day, 10, 0, 0, 0, time.UTC).Format(time.RFC3339), "h", "root", "192.0.2.1")
	}
	add(t, s, "2025-12-31T10:00:00Z", "h", "root", "192.0.2.1")
	res, err := c.Compile(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	// 6 days, 2 months, 2 years, 3 kinds each.
	if res.Charts != 30 {
		t.Fatalf("first compile drew %d charts, want 30", res.Charts)
	}
	time.Sleep(20 * time.Millisecond)
	since := time.Now()
	time.Sleep(20 * time.Millisecond)
	add(t, s, "2026-10-03T11:00:00Z", "h2", "admin", "192.0.2.2")
	res, err = c.Compile(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	got := written(t, c.Dir, since)
	want := []string{}
	for _, p := range []string{"20261003", "202610", "2026"} {
		for _, k := range stats.Kinds() {
			want = append(want, p+"/"+p+":stats"+k+".csv", p+"/"+p+":stats"+k+".svg")
		}
	}
	sort.Strings(want)
	if res.Charts != 9 || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("compile after one attempt drew %d charts, wrote\n%v\nwant\n%v", res.Charts, got, want)
	}
	// Nothing changed: nothing drawn.
	res, err = c.Compile(ctx, false)
	if err != nil || res.Charts != 0 {
		t.Fatalf("idle compile drew %d charts, %v", res.Charts, err)
	}
	for _, page := range []string{"dailystatistics.html", "monthlystatistics.html", "yearlystatistics.html", "load.js"} {
		if _, err := os.Stat(filepath.Join(c.Dir, page)); err != nil {
			t.Errorf("page missing: %v", err)
		}
	}
}

func TestCompileAllAndCSVOrder(t *testing.T) {
	c, s := setup(t)
	ctx := context.Background()
	for i, u := range []string{"b", "a", "c", "a", "=1+1", "c"} {
		add(t, s, "2026-11-25T10:00:0"+string(rune('0'+i))+"Z", "h", u, "192.0.2.1")
	}
	// Empty the toupdate sets, as a flush does, then compile everything.
	for _, g := range stats.Granularities() {
		if _, err := s.TakeToUpdate(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	res, err := c.Compile(ctx, true)
	if err != nil || res.Charts != 9 {
		t.Fatalf("full compile drew %d charts, %v; want 9", res.Charts, err)
	}
	f, err := os.Open(filepath.Join(c.Dir, "20261125", "20261125:statsusername.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"value", "count"}, {"a", "2"}, {"c", "2"}, {"'=1+1", "1"}, {"b", "1"}}
	if len(rows) != len(want) {
		t.Fatalf("csv rows %v, want %v", rows, want)
	}
	for i := range want {
		if strings.Join(rows[i], ",") != strings.Join(want[i], ",") {
			t.Fatalf("csv rows %v, want %v", rows, want)
		}
	}
	// Nothing is left to draw after a full compile.
	for _, g := range stats.Granularities() {
		if keys, _ := s.TakeToUpdate(ctx, g); len(keys) != 0 {
			t.Fatalf("%v left after a full compile: %v", g, keys)
		}
	}
}

// movingStore counts one more attempt into the ranking it opens in place,
// as a live period is counted into while its CSV is read.
type movingStore struct {
	*stats.Store
	t     *testing.T
	moved int
}

func (m *movingStore) OpenStable(ctx context.Context, key, period string, chunk, maxBytes int) (*stats.Ranking, error) {
	r, err := m.Store.OpenStable(ctx, key, period, chunk, maxBytes)
	if err == nil && key == "20261125:statsusername" {
		m.moved++
		add(m.t, m.Store, "2026-11-25T11:00:00Z", "h", "late", "192.0.2.9")
	}
	return r, err
}

// A full CSV read in place while its period is counted into is read again
// from a snapshot: the file holds one moment, the later one.
func TestFullCSVReadAgainWhenCountedInto(t *testing.T) {
	c, s := setup(t)
	ctx := context.Background()
	for i, u := range []string{"b", "a", "a"} {
		add(t, s, "2026-11-25T10:00:0"+string(rune('0'+i))+"Z", "h", u, "192.0.2.1")
	}
	m := &movingStore{Store: s, t: t}
	c.Store = m
	if _, err := c.Compile(ctx, true); err != nil {
		t.Fatal(err)
	}
	if m.moved == 0 {
		t.Fatal("the day's user name ranking was not read in place; the test proves nothing")
	}
	b, err := os.ReadFile(filepath.Join(c.Dir, "20261125", "20261125:statsusername.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "value,count\n\"a\",2\n\"b\",1\n\"late\",1\n"; got != want {
		t.Fatalf("csv %q, want %q", got, want)
	}
}
