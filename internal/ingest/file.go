package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// FileSummary is what File did.
type FileSummary struct {
	Lines, Counted int64
	// Duplicates are the lines skipped as identical to one counted within
	// the memory's window (Options.Memory): a file counted twice adds
	// nothing the second time.
	Duplicates int64
	Skipped    string
	Duration   time.Duration
}

// ErrInterrupted is returned by File when ctx ends before the input does.
var ErrInterrupted = errors.New("interrupted before the end of the input")

// ErrCountingRedisDown is returned by File when the counting Redis does
// not answer within Options.StartWait at start.
var ErrCountingRedisDown = errors.New("counting redis does not answer")

// File counts every line of r with ref as the reference time for year
// inference (the file's modification time, or now for standard input).
// One goroutine splits the input into chunks of lines; up to four
// appliers parse a chunk each and count it in one transaction, in
// parallel, as the queue's workers do. Each chunk carries an applied
// record, as a queue batch does, so that a retry after a lost reply never
// counts a chunk twice.
//
// At start the counting Redis is waited for at most Options.StartWait; an
// outage in the middle of the input is waited out. Cancelling ctx stops
// reading, finishes the chunks read so far and returns ErrInterrupted.
func (in *Ingester) File(ctx context.Context, r io.Reader, ref time.Time) (FileSummary, error) {
	start := in.clock.Now()
	run := "file-" + in.o.NewID()
	lock, err := in.fileLock(ctx, run)
	if err != nil {
		return FileSummary{}, err
	}
	if lock == nil {
		return FileSummary{}, ErrInterrupted
	}
	defer func() {
		if err := lock.Release(context.WithoutCancel(ctx)); err != nil {
			in.o.Log.Warn("could not release this run's lock; it is freed when the connection closes", "err", err)
		}
	}()

	appliers := max(1, min(in.o.Workers, 4))
	full := make(chan *chunk, appliers)   // owned by the reader: it closes
	free := make(chan *chunk, appliers+1) // chunks ready for reuse
	for i := 0; i < appliers+1; i++ {
		free <- &chunk{}
	}
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		applyErr error
	)
	work := context.WithoutCancel(ctx)
	for i := 0; i < appliers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := in.newBatchParser()
			for c := range full {
				if !c.count(p, ref, func(p *batchParser, t0 time.Time) bool {
					rec := stats.Applied{Queue: run, Slot: i, ID: in.o.NewID(), LockKey: lock.Key(), Token: lock.Token()}
					if _, ok := in.countOnce(ctx, work, p.batch, rec, false, "counting lines read from the file"); !ok {
						errOnce.Do(func() { applyErr = fmt.Errorf("count a batch of %d lines: %w", p.lines, ctx.Err()) })
						return false
					}
					p.publish(int(p.lines), t0, in.clock.Now())
					return true
				}) {
					in.o.Log.Debug("the rest of a chunk is not counted: the run stops", "slot", i)
				}
				free <- c
			}
		}()
	}
	defer func() {
		for i := 0; i < appliers; i++ {
			if err := in.o.Store.Forget(work, stats.Applied{Queue: run, Slot: i}); err != nil {
				in.o.Log.Warn("could not drop this run's batch records; they are harmless", "err", err)
				return
			}
		}
	}()

	reportCtx, stopReport := context.WithCancel(work)
	reported := make(chan struct{})
	go func() { defer close(reported); _ = in.Reporter(false).Run(reportCtx) }()

	lr := newLineReader(r, in.o.MaxLine)
	per := fileBatch(in.o.BatchSize)
	c := <-free
	c.reset()
	var readErr error
	for {
		if ctx.Err() != nil {
			readErr = ErrInterrupted
			break
		}
		line, tooLong, err := lr.next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = fmt.Errorf("read input: %w", err)
			}
			break
		}
		c.add(line, tooLong)
		if c.lines() >= per || len(c.data) >= d4queue.DefaultMaxBytes {
			full <- c
			c = <-free
			c.reset()
		}
	}
	full <- c
	close(full)
	wg.Wait()
	stopReport()
	<-reported

	t := in.progress.totals()
	sum := FileSummary{Lines: t.lines, Counted: t.counted, Duplicates: t.skipped[in.dupR], Skipped: in.summary(t.skipped), Duration: in.clock.Since(start)}
	if readErr == nil {
		readErr = applyErr
	}
	return sum, readErr
}

// fileLock takes a lock of this run's own, so that a flush cannot start
// under it, waiting at most StartWait for the counting Redis to answer and
// checking that it is fit to count into. A nil Lock with a nil error means
// ctx ended first.
func (in *Ingester) fileLock(ctx context.Context, run string) (*stats.Lock, error) {
	wctx, cancel := context.WithTimeout(ctx, in.o.StartWait)
	defer cancel()
	var lock *stats.Lock
	err := in.untilDone(wctx, in.o.CountingOutage, "checking the counting redis at start", func() error {
		if err := in.o.Store.Check(wctx); err != nil {
			return err
		}
		var err error
		lock, err = in.o.Store.Lock(wctx, run, in.o.NewID(), 0)
		return err
	}, func(err error) bool { return errors.Is(err, stats.ErrUnfit) })
	switch {
	case err != nil:
		return nil, err
	case lock != nil:
		return lock, nil
	case ctx.Err() != nil:
		return nil, nil
	}
	return nil, fmt.Errorf("%w at %s after %s; start it (./launch_server.sh starts the one of redis.conf) and run again: nothing was counted",
		ErrCountingRedisDown, in.o.CountingOutage.Addr(), in.o.StartWait)
}

// chunk is a run of lines read from the input, copied into one buffer so
// that the reader can go on while an applier parses them.
type chunk struct {
	data    []byte
	ends    []int // end offset of each line in data
	tooLong int   // lines over the limit, not kept
}

func (c *chunk) reset() {
	c.data, c.ends, c.tooLong = c.data[:0], c.ends[:0], 0
}

func (c *chunk) lines() int { return len(c.ends) + c.tooLong }

func (c *chunk) add(line []byte, tooLong bool) {
	if tooLong {
		c.tooLong++
		return
	}
	c.data = append(c.data, line...)
	c.ends = append(c.ends, len(c.data))
}

// count parses the chunk's lines into p's batch and hands the batch to
// apply each time it reaches fileWork (see there), then once more with the
// rest. Each call of apply is one transaction with a record of its own, as
// a queue batch has: apply counts one batch at a time and returns only once
// it is counted, so a record always names the one batch in flight, and a
// retry after a lost reply asks about that batch before counting it. count
// returns false, leaving the rest of the chunk, when apply does.
func (c *chunk) count(p *batchParser, ref time.Time, apply func(p *batchParser, t0 time.Time) bool) bool {
	p.reset()
	t0 := p.in.clock.Now()
	cut := false
	begin := 0
	for _, end := range c.ends {
		p.line(c.data[begin:end], ref)
		p.lines++
		begin = end
		if fileCost(p.batch) >= fileWork {
			if !apply(p, t0) {
				return false
			}
			cut = true
			p.reset()
			t0 = p.in.clock.Now()
		}
	}
	for i := 0; i < c.tooLong; i++ {
		p.skipTooLong()
		p.lines++
	}
	if cut && p.lines == 0 {
		return true
	}
	return apply(p, t0)
}

// fileWork bounds the cost of one counting script of -f (fileCost),
// besides fileBatch's lines: a script runs alone, so while it runs nothing
// else (the queue's workers, the API, the compile) gets the counting
// Redis. Lines in time order touch a day or two per chunk and repeat their
// values, so a chunk stays whole; lines in random order over a year (a
// backfill of merged logs) bring new members, new drill-down chunks and
// another day on nearly every line, and a whole chunk of them held the
// counting Redis for seconds. See the README's Performance section for the
// figures this was chosen from (1,000,000 attempts in random order over
// 365 days on a 2-core machine).
const fileWork = 16000

// dayWork is what one more day of a batch adds to fileCost: the day's own
// keys (three rankings, its attempts list, its memory of lines) are written
// by the script, and its sets are cold in the counting Redis's memory, so
// an increment spread over many days costs more than one into a day
// already written; measured, a batch in random order over a year took
// about twice the time of a sequential one of the same Work.
const dayWork = 24

// fileCost is what fileWork bounds. Work counts the drill-down chunks
// even with drilldown = false, so batches are then cut a little early:
// still correct, and a sequential chunk stays whole either way.
func fileCost(b *stats.Batch) int { return b.Work() + dayWork*b.Days() }

// fileBatch is the lines per chunk with -f, and so the most lines per
// transaction (fileWork may cut a chunk into several). A file has no
// processing list to keep small, so batches are larger than the queue's:
// more increments of the same member are summed before they reach Redis,
// which is what bounds the speed.
func fileBatch(batchSize int) int { return max(batchSize, 10000) }

// lineReader splits input at '\n' without a length limit of its own: a
// line up to max bytes is returned whole, a longer one is read through and
// reported as too long without being kept.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64*1024), max: max}
}

// next returns the next line without its '\n'; the slice is valid until
// the following call.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	lr.buf = lr.buf[:0]
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if !tooLong {
			if len(lr.buf)+len(chunk) > lr.max+1 {
				tooLong = true
				lr.buf = lr.buf[:0]
			} else {
				lr.buf = append(lr.buf, chunk...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return nil, true, nil
			}
			return lr.buf[:len(lr.buf)-1], false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if tooLong {
				return nil, true, nil
			}
			if len(lr.buf) == 0 {
				return nil, false, io.EOF
			}
			return lr.buf, false, nil
		default:
			return nil, false, err
		}
	}
}
