package api

import (
	"runtime/debug"
	"sync"
)

// ComputingGCPercent is the garbage collector's percent while a question
// computes. A question over a year holds a map of hundreds of thousands of
// values and reads as many small replies: hundreds of megabytes live for
// most of a second. At Go's default of 100 the collector would mark that
// heap over and over while it grows, and drafts the goroutines that
// allocate, the counting workers among them, into the marking: measured on
// a 2-core machine with a year of 600,000 sources, four clients asking
// without pause took counting from 11,900 lines/s to 6,000 and were
// answered 12 times in ten seconds; with 400, 6,800 lines/s of 8,500 and 67
// answers. It is put back when no question computes, so counting alone
// keeps its small heap.
const ComputingGCPercent = 400

// gcBoost raises the collector's percent while at least one question
// computes. The percent is the process's: an operator who set GOGC keeps
// theirs (Options.KeepGC).
type gcBoost struct {
	mu      sync.Mutex
	running int
	prev    int
	off     bool
}

func (g *gcBoost) begin() {
	if g.off {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running == 0 {
		g.prev = debug.SetGCPercent(ComputingGCPercent)
	}
	g.running++
}

func (g *gcBoost) end() {
	if g.off {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running--
	if g.running == 0 {
		debug.SetGCPercent(g.prev)
	}
}
