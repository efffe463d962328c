package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/sshd"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// FileSummary is what RunFile did.
type FileSummary struct {
	Lines, Counted int64
	Skipped        string
	Duration       time.Duration
}

// RunFile counts every line of r with ref as the reference time for year
// inference (the file's modification time, or now for standard input),
// then compiles. One goroutine splits the input into chunks of lines; up to
// Pool appliers parse a chunk each and count it in one transaction, in
// parallel, as the queue's workers do. A Redis outage is waited out;
// cancelling ctx stops reading, finishes the chunks read so far and returns
// ErrInterrupted.
func (d *Daemon) RunFile(ctx context.Context, r io.Reader, ref time.Time) (FileSummary, error) {
	start := time.Now()
	if err := d.preflight(ctx); err != nil {
		return FileSummary{}, err
	}
	appliers := min(d.cfg.Pool, 4)
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
	// Each chunk carries an applied record, as a queue batch does, so that
	// a retry after a lost reply never counts a chunk twice. The records
	// live under a name of this run and are dropped at its end. The run
	// holds a lock of its own, so that a flush cannot start under it.
	run := "file-" + d.newID()
	lock, err := d.store.Lock(ctx, run, d.newID(), 0)
	if err != nil {
		return FileSummary{}, fmt.Errorf("take a lock for this run: %w", err)
	}
	defer func() {
		if err := lock.Release(context.WithoutCancel(ctx)); err != nil {
			d.log.Warn("could not release this run's lock; it is freed when the connection closes", "err", err)
		}
	}()
	for i := 0; i < appliers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newParser(d, stats.NewBatch())
			for c := range full {
				p.reset()
				c.parse(p, ref)
				rec := stats.Applied{Queue: run, Slot: i, ID: d.newID(), LockKey: lock.Key(), Token: lock.Token()}
				if _, ok := d.countOnce(ctx, work, p.batch, rec, false, "counting a batch read from the file"); ok {
					p.publish(int(p.lines))
				} else {
					errOnce.Do(func() { applyErr = fmt.Errorf("count a chunk of %d lines: %w", p.lines, ctx.Err()) })
				}
				free <- c
			}
		}()
	}
	defer func() {
		for i := 0; i < appliers; i++ {
			if err := d.store.Forget(work, stats.Applied{Queue: run, Slot: i}); err != nil {
				d.log.Warn("could not drop this run's batch records; they are harmless", "err", err)
				return
			}
		}
	}()

	// Progress in the log while a long file is read: lines so far and the
	// current rate.
	var read atomic.Int64
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(reportEvery)
		defer t.Stop()
		last, lastAt := int64(0), time.Now()
		for {
			select {
			case <-stopProgress:
				return
			case now := <-t.C:
				n := read.Load()
				d.log.Info("progress", "lines_read", n,
					"lines_per_s", fmt.Sprintf("%.0f", float64(n-last)/now.Sub(lastAt).Seconds()))
				last, lastAt = n, now
			}
		}
	}()

	lr := newLineReader(r, d.cfg.MaxLineBytes)
	per := fileBatch(d.cfg.BatchSize)
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
		read.Add(1)
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
	close(stopProgress)
	<-progressDone

	lines, counted, skipped, panics := d.progress.take()
	sum := FileSummary{Lines: lines, Counted: counted, Skipped: skippedSummary(skipped, panics), Duration: time.Since(start)}
	if readErr == nil {
		readErr = applyErr
	}
	return sum, readErr
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

func (c *chunk) parse(p *parser, ref time.Time) {
	begin := 0
	for _, end := range c.ends {
		p.line(c.data[begin:end], ref)
		begin = end
	}
	for i := 0; i < c.tooLong; i++ {
		p.skip(sshd.TooLong)
	}
	p.lines = int64(c.lines())
}

// fileBatch is the lines per transaction with -f. A file has no
// processing list to keep small, so batches are larger than the queue's:
// more increments of the same member are summed before they reach Redis,
// which is what bounds the speed.
func fileBatch(batchSize int) int { return max(batchSize, 10000) }

// Compile compiles once, everything when all is set; for -f and -F.
func (d *Daemon) Compile(ctx context.Context, all bool) error {
	if !d.compileOnce(ctx, all) {
		return errors.New("compile failed (see the log)")
	}
	return nil
}

// Flush drops the statistics, recounts them from the stored attempts and
// recompiles everything.
func (d *Daemon) Flush(ctx context.Context) error {
	start := time.Now()
	// Mark first, then look for daemons: a daemon takes its lock first,
	// then looks for the mark; so one of the two always sees the other.
	existed, err := d.store.BeginRebuild(ctx)
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	live, err := d.store.LiveConsumers(ctx)
	if err == nil && len(live) > 0 {
		err = fmt.Errorf("analyzer-d4-log is counting (%s); stop it first (./launch_server.sh -k): a flush under it would count its batches twice", strings.Join(live, ", "))
	}
	if err != nil {
		if !existed {
			if aerr := d.store.AbortRebuild(context.WithoutCancel(ctx)); aerr != nil {
				d.log.Error("flush: could not remove the flush mark; run -F again once the daemon is stopped", "err", aerr)
			}
		}
		return fmt.Errorf("flush: %w", err)
	}
	d.log.Info("flush: dropping the statistics and recounting them from the stored attempts")
	lastLog := time.Now()
	n, err := d.store.Rebuild(ctx, d.cfg.Location, 100000, func(p stats.RebuildProgress) {
		if time.Since(lastLog) >= 5*time.Second || p.DaysDone == p.Days {
			lastLog = time.Now()
			d.log.Info("flush: progress", "days", fmt.Sprintf("%d/%d", p.DaysDone, p.Days), "attempts", p.Attempts, "day", p.Day)
		}
	})
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	d.log.Info("flush: recounted", "attempts", n, "seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
	return d.Compile(ctx, true)
}

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
