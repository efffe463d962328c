package retention

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/D4-project/analyzer-d4-log/internal/metrics"
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

func newStore(t *testing.T, srv *redistest.Server) *stats.Store {
	s := &stats.Store{Stats: pool(srv.Addr(), stats.StatsDB), Attempts: pool(srv.Addr(), stats.AttemptsDB)}
	t.Cleanup(func() { s.Stats.Close(); s.Attempts.Close() })
	return s
}

// attempt is one generated attempt, comparable.
type attempt struct {
	unix            int64
	host, user, src string
}

// model is the independent computation of what DB 1 must hold.
type model struct {
	loc       *time.Location
	byDay     map[string][]attempt
	zsets     map[string]map[string]int64 // stats key → member → count
	totals    map[string]int64
	firstSeen map[string]map[string]int64 // kind → member → day
}

func newModel(loc *time.Location) *model {
	return &model{loc: loc, byDay: map[string][]attempt{}, zsets: map[string]map[string]int64{},
		totals: map[string]int64{}, firstSeen: map[string]map[string]int64{}}
}

func (m *model) add(a attempt) {
	t := time.Unix(a.unix, 0).In(m.loc)
	y, mo, d := t.Date()
	day := fmt.Sprintf("%04d%02d%02d", y, int(mo), d)
	m.byDay[day] = append(m.byDay[day], a)
	dayN, _ := strconv.ParseInt(day, 10, 64)
	for _, period := range []string{day, day[:6], day[:4]} {
		m.totals[period]++
		for kind, v := range map[string]string{"username": a.user, "src": a.src, "host": a.host} {
			k := period + ":stats" + kind
			if m.zsets[k] == nil {
				m.zsets[k] = map[string]int64{}
			}
			m.zsets[k][v]++
			fs := m.firstSeen[kind]
			if fs == nil {
				fs = map[string]int64{}
				m.firstSeen[kind] = fs
			}
			if old, ok := fs[v]; !ok || dayN < old {
				fs[v] = dayN
			}
		}
	}
}

// gen makes attempts on random days of the last three years and on each
// of the last ten days, relative to now, with repeated values and several
// attempts on one host in one second.
func gen(rng *rand.Rand, now time.Time, loc *time.Location) []attempt {
	var out []attempt
	y, m, d := now.In(loc).Date()
	var offsets []int
	for i := 0; i < 10; i++ {
		offsets = append(offsets, i)
	}
	for i := 0; i < 40; i++ {
		offsets = append(offsets, 10+rng.Intn(3*365))
	}
	for _, off := range offsets {
		noon := time.Date(y, m, d-off, 0, 0, 0, 0, loc)
		n := 1 + rng.Intn(30)
		for j := 0; j < n; j++ {
			sec := noon.Unix() + int64(rng.Intn(86400))
			if off == 0 && sec > now.Unix() {
				sec = now.Unix()
			}
			a := attempt{sec, "host" + strconv.Itoa(rng.Intn(3)), "user" + strconv.Itoa(rng.Intn(20)),
				"10.0." + strconv.Itoa(rng.Intn(5)) + "." + strconv.Itoa(rng.Intn(40))}
			out = append(out, a)
			if rng.Intn(10) == 0 { // the same host in the same second: two attempts
				out = append(out, a)
			}
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func apply(t *testing.T, ctx context.Context, s *stats.Store, loc *time.Location, as []attempt) {
	t.Helper()
	b := stats.NewBatch()
	for i, a := range as {
		b.Add(time.Unix(a.unix, 0).In(loc), []byte(a.host), []byte(a.user), []byte(a.src))
		if b.Len() == 50 || i == len(as)-1 {
			if err := s.Apply(ctx, b, nil); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
}

// compiled empties the toupdate sets, as a finished compile does.
func compiled(t *testing.T, ctx context.Context, s *stats.Store) {
	t.Helper()
	for _, g := range stats.Granularities() {
		keys, err := s.TakeToUpdate(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DoneRendering(ctx, g, keys...); err != nil {
			t.Fatal(err)
		}
	}
}

// zset renders a model zset as redistest.Dump does.
func zset(m map[string]int64) string {
	pairs := make([]string, 0, len(m))
	for k, v := range m {
		pairs = append(pairs, strconv.Quote(k)+"="+strconv.FormatInt(v, 10))
	}
	sort.Strings(pairs)
	return "zset:" + strings.Join(pairs, " ")
}

// checkStats compares DB 1 with the model: every month and year, every
// retained day, totals, first-seen; no day rankings before cutoff.
func checkStats(t *testing.T, db1 map[string]string, m *model, cutoff string) {
	t.Helper()
	checkStatsPruned(t, db1, m, func(day string) bool { return day < cutoff })
}

// checkStatsPruned is checkStats with the pruned days named by pruned.
func checkStatsPruned(t *testing.T, db1 map[string]string, m *model, pruned func(day string) bool) {
	t.Helper()
	// Drill-down data goes with its day.
	for k := range db1 {
		if rest, ok := strings.CutPrefix(k, "alog:links:"); ok && len(rest) >= 8 && pruned(rest[:8]) {
			t.Errorf("drill-down key %s of a pruned day is still there", k)
		}
	}
	for k, want := range m.zsets {
		period, _, _ := strings.Cut(k, ":")
		got, ok := db1[k]
		if len(period) == 8 && pruned(period) {
			if ok {
				t.Errorf("pruned day key %s is still there", k)
			}
			continue
		}
		if got != zset(want) {
			t.Errorf("%s = %.200s, want %.200s", k, got, zset(want))
		}
	}
	for k := range db1 {
		if _, _, ok := stats.SplitStatsKey(k); ok && m.zsets[k] == nil {
			t.Errorf("unexpected key %s", k)
		}
	}
	var pairs []string
	for p, n := range m.totals {
		pairs = append(pairs, strconv.Quote(p)+"="+strconv.FormatInt(n, 10))
	}
	sort.Strings(pairs)
	if got, want := db1[stats.TotalsKey], "hash:"+strings.Join(pairs, " "); got != want {
		t.Errorf("totals = %.300s, want %.300s", got, want)
	}
	for kind, fs := range m.firstSeen {
		if got, want := db1[stats.FirstSeenKey(kind)], zset(fs); got != want {
			t.Errorf("first seen %s = %.200s, want %.200s", kind, got, want)
		}
	}
}

// checkArchive compares every archive file with the model's attempts of
// its day, and says which days are archived.
func checkArchive(t *testing.T, ctx context.Context, ar *Archive, m *model, cutoff string) {
	t.Helper()
	checkArchivePruned(t, ctx, ar, m, func(day string) bool { return day < cutoff })
}

// checkArchivePruned is checkArchive with the archived days named by
// pruned.
func checkArchivePruned(t *testing.T, ctx context.Context, ar *Archive, m *model, pruned func(day string) bool) {
	t.Helper()
	days, err := ar.Days()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for d := range m.byDay {
		if pruned(d) {
			want = append(want, d)
		}
	}
	sort.Strings(want)
	if fmt.Sprint(days) != fmt.Sprint(want) {
		t.Fatalf("archived days %v, want %v", days, want)
	}
	for _, d := range days {
		var got []attempt
		err := ar.Read(ctx, d, -1, func(elem []byte) error {
			return stats.DecodeRecords(elem, func(a stats.Attempt) error {
				got = append(got, attempt{a.Unix, string(a.Host), string(a.User), string(a.Src)})
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if sortedKey(got) != sortedKey(m.byDay[d]) {
			t.Errorf("archive of %s holds %d attempts, not exactly the %d of the day", d, len(got), len(m.byDay[d]))
		}
	}
}

func sortedKey(as []attempt) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = fmt.Sprintf("%d|%q|%q|%q", a.unix, a.host, a.user, a.src)
	}
	sort.Strings(s)
	return strings.Join(s, "\n")
}

var errKilled = errors.New("killed")

// TestPruneKilledAtEveryStepThenRebuild backfills three years, prunes with
// retain_days = 30 while a kill stops the pass every few steps (and a batch
// is counted into a day while it is being archived), then checks DB 1, DB 0
// and the archive against an independent computation; then -F (rebuild
// from the archive plus DB 0) must give DB 1 back byte for byte.
func TestPruneKilledAtEveryStepThenRebuild(t *testing.T) {
	for _, zone := range []string{"UTC", "Europe/Luxembourg"} {
		t.Run(zone, func(t *testing.T) {
			loc, err := time.LoadLocation(zone)
			if err != nil {
				t.Fatal(err)
			}
			srv := redistest.Start(t, redistest.Options{})
			s := newStore(t, srv)
			ctx := context.Background()
			now := time.Now()
			rng := rand.New(rand.NewSource(now.UnixNano()))
			m := newModel(loc)
			as := gen(rng, now, loc)
			for _, a := range as {
				m.add(a)
			}
			apply(t, ctx, s, loc, as)
			compiled(t, ctx, s)

			ar := &Archive{Dir: t.TempDir()}
			p := &Pruner{Store: s, Archive: ar, Days: 30, Location: loc, Clock: clockwork.NewFakeClockAt(now)}
			cutoff := p.Cutoff(now)

			// A late batch into an old day, counted while that day's
			// list is taken aside: it must be archived too.
			var late []attempt
			calls, lateDone := 0, false
			defer func() { t.Logf("%d steps", calls) }()
			p.afterStep = func(day, step string) error {
				if step == "taken" && !lateDone {
					lateDone = true
					dt, _ := time.ParseInLocation("20060102", day, loc)
					late = []attempt{{dt.Add(3 * time.Hour).Unix(), "late", "lateuser", "192.0.2.1"},
						{dt.Add(3 * time.Hour).Unix(), "late", "lateuser", "192.0.2.1"}}
					for _, a := range late {
						m.add(a)
					}
					apply(t, ctx, s, loc, late)
				}
				// A kill at a random step: a fixed period could keep
				// killing the same step of the same day forever.
				calls++
				if rng.Intn(3) == 0 {
					return errKilled
				}
				return nil
			}
			kills := 0
			for pass := 0; ; pass++ {
				if pass > 500 {
					t.Fatal("pruning does not finish")
				}
				_, err := p.Pass(ctx)
				if err == nil {
					break
				}
				if !errors.Is(err, errKilled) && !errors.Is(err, stats.ErrPending) {
					t.Fatal(err)
				}
				kills++
				// The late batch marked its day for compiling again.
				compiled(t, ctx, s)
			}
			if kills < 10 || !lateDone {
				t.Fatalf("only %d kills (late batch counted: %t); the test did not exercise what it is for", kills, lateDone)
			}
			p.afterStep = nil

			db1 := redistest.Dump(t, srv.Conn(stats.StatsDB))
			checkStats(t, db1, m, cutoff)
			checkArchive(t, ctx, ar, m, cutoff)
			db0 := redistest.Dump(t, srv.Conn(stats.AttemptsDB))
			for k := range db0 {
				if strings.HasPrefix(k, "alog:pruning:") || strings.HasPrefix(k, "alog:archiving:") {
					t.Errorf("%s left after pruning finished", k)
				}
				if d, ok := strings.CutPrefix(k, "alog:attempts:"); ok && d < cutoff {
					t.Errorf("%s left in DB 0", k)
				}
			}
			for d := range m.byDay {
				if _, ok := db0[stats.AttemptsKey(d)]; d >= cutoff && !ok {
					t.Errorf("retained day %s lost its stored attempts", d)
				}
			}

			// A second pass changes nothing.
			bytesBefore, _ := ar.Bytes()
			res, err := p.Pass(ctx)
			if err != nil || len(res.Pruned) != 0 {
				t.Fatalf("second pass: %v, pruned %v", err, res.Pruned)
			}
			if bytesAfter, _ := ar.Bytes(); bytesAfter != bytesBefore {
				t.Errorf("second pass changed the archive: %d → %d bytes", bytesBefore, bytesAfter)
			}

			// -F: DB 1 rebuilt from the archive plus DB 0 equals DB 1
			// before it, but for what a compile has to draw again.
			r, err := s.RebuildWith(ctx, stats.RebuildOptions{Location: loc, Archive: ar})
			if err != nil {
				t.Fatal(err)
			}
			if r.Attempts != int64(len(as)+len(late)) || r.ArchiveBad != 0 {
				t.Errorf("rebuild counted %d attempts (%d bad archived elements), want %d", r.Attempts, r.ArchiveBad, len(as)+len(late))
			}
			rebuilt := redistest.Dump(t, srv.Conn(stats.StatsDB))
			daily := rebuilt[stats.ToUpdateKey(stats.Daily)]
			for _, g := range stats.Granularities() {
				delete(rebuilt, stats.ToUpdateKey(g))
			}
			if d := diff(db1, rebuilt); d != "" {
				t.Errorf("DB 1 after -F differs from before:\n%s", d)
			}
			for _, key := range strings.Fields(strings.TrimPrefix(daily, "set:")) {
				key, _ = strconv.Unquote(key)
				if period, _, _ := stats.SplitStatsKey(key); period < cutoff {
					t.Errorf("-F marked pruned day key %s for compiling", key)
				}
			}
			checkStats(t, redistest.Dump(t, srv.Conn(stats.StatsDB)), m, cutoff)
		})
	}
}

func diff(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, fmt.Sprintf("%s: %.120s ≠ %.120s", k, v, b[k]))
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("%s: only after: %.120s", k, v))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestPendingDayWaitsForCompile: a day whose rankings a compile is still
// to draw keeps them (its attempts archived) until the compile is done.
func TestPendingDayWaitsForCompile(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	now := time.Now()
	old := now.AddDate(0, 0, -100)
	apply(t, ctx, s, time.UTC, []attempt{{old.Unix(), "h", "u", "s"}})
	ar := &Archive{Dir: t.TempDir()}
	p := &Pruner{Store: s, Archive: ar, Days: 30, Location: time.UTC, Clock: clockwork.NewFakeClockAt(now)}
	res, err := p.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	day := stats.PeriodOf(old.In(time.UTC)).Day
	if fmt.Sprint(res.Pending) != "["+day+"]" || len(res.Pruned) != 0 {
		t.Fatalf("pass: pending %v pruned %v, want %s pending", res.Pending, res.Pruned, day)
	}
	c := srv.Conn(stats.StatsDB)
	if n, _ := redis.Int(c.Do("EXISTS", stats.StatsKey(day, stats.KindUser))); n != 1 {
		t.Fatal("the rankings of a day still to be drawn were deleted")
	}
	if n, _ := ar.Size(day); n == 0 {
		t.Fatal("the attempts of the day were not archived first")
	}
	compiled(t, ctx, s)
	if res, err = p.Pass(ctx); err != nil || fmt.Sprint(res.Pruned) != "["+day+"]" {
		t.Fatalf("after the compile: %v, pruned %v", err, res.Pruned)
	}
	if n, _ := redis.Int(c.Do("EXISTS", stats.StatsKey(day, stats.KindUser))); n != 0 {
		t.Fatal("the rankings stayed after the compile")
	}
}

// TestNoPruningUnderAFlush: with the flush mark set, nothing is touched.
func TestNoPruningUnderAFlush(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	now := time.Now()
	apply(t, ctx, s, time.UTC, []attempt{{now.AddDate(0, 0, -100).Unix(), "h", "u", "s"}})
	compiled(t, ctx, s)
	if _, err := s.BeginRebuild(ctx); err != nil {
		t.Fatal(err)
	}
	before := redistest.Dump(t, srv.Conn(stats.AttemptsDB))
	ar := &Archive{Dir: t.TempDir()}
	p := &Pruner{Store: s, Archive: ar, Days: 30, Location: time.UTC, Clock: clockwork.NewFakeClockAt(now)}
	if _, err := p.Pass(ctx); !errors.Is(err, stats.ErrRebuilding) {
		t.Fatalf("pass under a flush: %v, want ErrRebuilding", err)
	}
	if d := diff(before, redistest.Dump(t, srv.Conn(stats.AttemptsDB))); d != "" {
		t.Fatalf("DB 0 changed under a flush:\n%s", d)
	}
	if days, _ := ar.Days(); len(days) != 0 {
		t.Fatalf("archived %v under a flush", days)
	}
}

// TestArchiveIsPlainGzip: the file is what the README says, readable with
// any gzip tool: frames of uvarint length and the element.
func TestArchiveIsPlainGzip(t *testing.T) {
	ar := &Archive{Dir: t.TempDir()}
	elems := [][]byte{[]byte("first"), {}, bytes.Repeat([]byte{0xff}, 70000)}
	write := func(base int64, es [][]byte) int64 {
		n, err := ar.Write("20200102", base, func(emit func([]byte) error) error {
			for _, e := range es {
				if err := emit(e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n1 := write(0, elems[:2])
	n2 := write(n1, elems[2:])
	// Repeating the second step from the recorded base gives the same file.
	if n3 := write(n1, elems[2:]); n3 != n2 {
		t.Fatalf("repeated step: %d bytes, want %d", n3, n2)
	}
	var got [][]byte
	err := ar.Read(context.Background(), "20200102", -1, func(e []byte) error {
		got = append(got, append([]byte{}, e...))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !bytes.Equal(got[0], elems[0]) || len(got[1]) != 0 || !bytes.Equal(got[2], elems[2]) {
		t.Fatalf("read back %d elements, not the three written", len(got))
	}
	got = nil
	if err := ar.Read(context.Background(), "20200102", n1, func(e []byte) error { got = append(got, e); return nil }); err != nil || len(got) != 2 {
		t.Fatalf("read up to the first member: %v, %d elements", err, len(got))
	}
	if days, _ := ar.Days(); fmt.Sprint(days) != "[20200102]" {
		t.Fatalf("days %v", days)
	}
}

// TestMemoryWarning: above 80 % of maxmemory the log warns once, and the
// gauges show both figures.
func TestMemoryWarning(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	used, _, err := s.UsedMemory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	limit := used * 11 / 10
	if _, err := srv.Conn(0).Do("CONFIG", "SET", "maxmemory", limit); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	m := metrics.NewRetention(nil)
	p := &Pruner{Store: s, Archive: &Archive{Dir: t.TempDir()}, Location: time.UTC,
		Clock: clockwork.NewFakeClock(), Log: slog.New(slog.NewTextHandler(&log, nil)), Metrics: m}
	used, max, err := s.UsedMemory(context.Background())
	if err != nil || max != limit || float64(used) <= 0.8*float64(max) {
		t.Fatalf("used %d max %d (%v): the server does not start above 80 %% of its maxmemory", used, max, err)
	}
	for i := 0; i < 2; i++ {
		if _, err := p.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(log.String(), "above 80% of its maxmemory"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, log.String())
	}
	if testutil.ToFloat64(m.MaxMemory) != float64(limit) || testutil.ToFloat64(m.UsedMemory) == 0 {
		t.Fatal("memory gauges not set")
	}
}
