package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// applyLog is the counting store of a -f run that records every batch it
// is asked to apply, and can lose the reply of chosen applies: the batch
// is applied, then the caller is told the connection failed, as when the
// counting Redis dies between running the script and answering.
type applyLog struct {
	*stats.Store
	mu      sync.Mutex
	batches []appliedBatch
	lose    map[int]bool // by index in batches: lose the reply
	fail    map[int]bool // by index: fail before applying
}

type appliedBatch struct {
	attempts, days, work int
	id                   string
}

func (s *applyLog) Apply(ctx context.Context, b *stats.Batch, rec *stats.Applied) error {
	s.mu.Lock()
	i := len(s.batches)
	s.batches = append(s.batches, appliedBatch{attempts: b.Len(), days: b.Days(), work: b.Work(), id: rec.ID})
	lose, fail := s.lose[i], s.fail[i]
	s.mu.Unlock()
	if fail {
		return fmt.Errorf("apply batch: %w", io.ErrUnexpectedEOF)
	}
	err := s.Store.Apply(ctx, b, rec)
	if err == nil && lose {
		return fmt.Errorf("apply batch: %w", io.ErrUnexpectedEOF)
	}
	return err
}

// counted is the applies that counted attempts: a retry of a batch
// whose reply was lost is asked about first and not applied again, and a
// failed apply is retried under the same record.
func (s *applyLog) counted() []appliedBatch {
	var out []appliedBatch
	for i, b := range s.batches {
		if !s.fail[i] {
			out = append(out, b)
		}
	}
	return out
}

// checkStats compares every ranking of DB 1 with the workload's own count.
func checkStats(t *testing.T, c redis.Conn, want workload.Expected) {
	t.Helper()
	got, err := redistest.ReadRankings(c)
	if err != nil {
		t.Fatal(err)
	}
	if d := want.Diff(got); len(d) > 0 {
		if len(d) > 20 {
			d = d[:20]
		}
		t.Fatalf("statistics differ:\n%s", strings.Join(d, "\n"))
	}
	if n, _ := redis.Int(c.Do("HGET", stats.TotalsKey, want.Oldest[:4])); n == 0 {
		t.Fatalf("no total for the year of the oldest day %s", want.Oldest)
	}
}

func fileOf(lines []workload.Line) *bytes.Buffer {
	var buf bytes.Buffer
	for _, l := range lines {
		buf.Write(l.Raw)
		buf.WriteByte('\n')
	}
	return &buf
}

// A backfill of merged logs has its lines in random order over many days:
// a chunk of fileBatch lines then touches every day, and counting it in one
// script would hold the counting Redis for seconds. Such a file is cut into
// transactions of bounded work, and still counted exactly.
func TestRandomOrderFileIsCutIntoBoundedTransactions(t *testing.T) {
	cnt := redistest.Start(t, redistest.Options{})
	in, store, _ := newTestIngester(t, cnt.Addr(), cnt.Addr())
	// One applier, so that the applies come in a known order: the third
	// loses its reply, the sixth fails before it runs.
	log := &applyLog{Store: store, lose: map[int]bool{2: true}, fail: map[int]bool{5: true}}
	in.o.Store = log
	now := time.Now()
	lines := workload.Generate(workload.Options{Lines: 20000, Ref: now, Loc: time.UTC, Days: 300,
		Users: 500, Sources: 50000, Hosts: 50, Noise: 0.1, Seed: 7})
	r := rand.New(rand.NewPCG(7, 8))
	r.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	want := workload.Expect(lines, time.UTC)

	sum, err := in.File(context.Background(), fileOf(lines), now)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Lines != int64(len(lines)) || sum.Counted != int64(want.Attempts) {
		t.Fatalf("summary %+v, want %d lines and %d counted", sum, len(lines), want.Attempts)
	}
	batches := log.counted()
	chunks := (len(lines) + fileBatch(in.o.BatchSize) - 1) / fileBatch(in.o.BatchSize)
	if len(batches) <= chunks+2 {
		t.Fatalf("%d lines in random order over 300 days were counted in %d transactions; want more than the %d chunks", len(lines), len(batches), chunks)
	}
	ids := map[string]bool{}
	attempts := 0
	for i, b := range batches {
		// One line adds at most 3 members (3 each), a tuple (one per
		// kind) and a day: the bound is passed by at most one line's cost.
		if cost := b.work + dayWork*b.days; cost >= fileWork+3*3+3+dayWork {
			t.Errorf("transaction %d: cost %d over the bound %d", i, cost, fileWork)
		}
		if ids[b.id] && !log.lose[i] {
			t.Errorf("transaction %d reuses the record id %s of an earlier batch", i, b.id)
		}
		ids[b.id] = true
		attempts += b.attempts
	}
	if attempts != want.Attempts {
		t.Errorf("the transactions applied hold %d attempts; want %d", attempts, want.Attempts)
	}
	t.Logf("%d lines, %d transactions, the first of %d attempts over %d days", len(lines), len(batches), batches[0].attempts, batches[0].days)
	checkStats(t, cnt.Conn(stats.StatsDB), want)
}

// An ordinary log file, in time order with the repetition of real
// traffic, keeps transactions of fileBatch lines: that is what makes -f
// fast.
func TestSequentialFileKeepsFullBatches(t *testing.T) {
	cnt := redistest.Start(t, redistest.Options{})
	in, store, _ := newTestIngester(t, cnt.Addr(), cnt.Addr())
	log := &applyLog{Store: store}
	in.o.Store = log
	in.o.Workers = 2
	now := time.Now()
	lines := workload.Generate(workload.Options{Lines: 30000, Ref: now, Loc: time.UTC, Days: 3,
		Users: 30, Sources: 200, Hosts: 5, Noise: 0.1, Seed: 9})
	want := workload.Expect(lines, time.UTC)

	sum, err := in.File(context.Background(), fileOf(lines), now)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counted != int64(want.Attempts) {
		t.Fatalf("summary %+v, want %d counted", sum, want.Attempts)
	}
	counting := 0
	for _, b := range log.counted() {
		if b.attempts > 0 {
			counting++
		}
	}
	if got, full := counting, len(lines)/fileBatch(in.o.BatchSize); got != full {
		t.Fatalf("%d lines in time order were counted in %d transactions; want %d of %d lines", len(lines), got, full, fileBatch(in.o.BatchSize))
	}
	checkStats(t, cnt.Conn(stats.StatsDB), want)
}
