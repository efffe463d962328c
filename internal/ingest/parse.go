package ingest

import (
	"fmt"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/parsers"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// batchParser turns lines into a stats.Batch and keeps the batch's tallies
// until it is committed, so metrics never count a batch that was not.
// One goroutine uses it.
type batchParser struct {
	in      *Ingester
	parse   parsers.Parser
	batch   *stats.Batch
	skipped []int // by reason index; see Ingester.reasons
	lines   int64 // lines read into this batch
	now     time.Time
}

func (in *Ingester) newBatchParser() *batchParser {
	var p parsers.Parser = parsers.NewSet(in.o.Parsers, in.o.Parse)
	if in.o.WrapParse != nil {
		p = in.o.WrapParse(p)
	}
	bp := &batchParser{in: in, parse: p, batch: stats.NewBatch(), skipped: make([]int, len(in.reasons))}
	// Each worker has its own Enricher: its cache of answers is per
	// batch, and a batch is one worker's.
	if e := NewEnricher(in.o.GeoIP); e != nil {
		bp.batch.SetEnricher(e)
	}
	return bp
}

func (p *batchParser) reset() {
	p.batch.Reset()
	clear(p.skipped)
	p.lines = 0
	// The memory's window is on the wall clock, once per batch: it is
	// how long the counting Redis keeps a day's memory, whatever the
	// reference time of year inference.
	p.now = p.in.clock.Now()
}

func (p *batchParser) skipTooLong() { p.skipped[p.in.tooLong]++ }

// line parses one line into the batch. A panic in the parser is a bug, but
// must not take the daemon down: the line is logged, counted as skipped
// with reason "panic", and work goes on.
func (p *batchParser) line(line []byte, ref time.Time) {
	defer func() {
		if r := recover(); r != nil {
			p.skipped[p.in.panicR]++
			head := line
			if len(head) > 64 {
				head = head[:64]
			}
			p.in.o.Log.Error("parser panic recovered; line skipped", "len", len(line), "head", fmt.Sprintf("%q", head), "panic", fmt.Sprint(r))
		}
	}()
	if len(line) > p.in.o.MaxLine {
		p.skipped[p.in.tooLong]++
		return
	}
	ev, reason := p.parse.Parse(line, ref)
	if reason != 0 {
		// The set's reasons are the first of in.reasons, in order.
		p.skipped[reason]++
		return
	}
	if until, ok := p.in.o.Memory.Until(ev.Time, p.now); ok {
		// A duplicate within the batch is tallied by the batch.
		p.batch.AddOnce(ev.Time, ev.Host, ev.User, ev.Src, stats.HashLine(line), until)
		return
	}
	p.batch.Add(ev.Time, ev.Host, ev.User, ev.Src)
}

// publish adds a committed batch's tallies to the metrics and progress.
func (p *batchParser) publish(lines int, start, end time.Time) {
	in := p.in
	m := in.o.Metrics
	// Known only once Apply ran: the lines counted by earlier batches.
	p.skipped[in.dupR] = p.batch.Duplicates()
	m.Popped.Add(float64(lines))
	counted := p.batch.Len()
	m.Counted.Add(float64(counted))
	for r, n := range p.skipped {
		if n > 0 {
			m.Skipped.WithLabelValues(in.reasons[r]).Add(float64(n))
		}
	}
	if n := p.skipped[in.panicR]; n > 0 {
		m.WorkerPanics.Add(float64(n))
	}
	if counted > 0 {
		now := in.clock.Now()
		in.lastCounted.Store(now.UnixNano())
		m.LastCounted.Set(float64(now.UnixNano()) / 1e9)
	}
	in.progress.add(int64(lines), int64(counted), p.skipped, start, end)
}
