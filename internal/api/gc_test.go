package api

import (
	"runtime/debug"
	"testing"
)

func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// The collector's percent is raised while any question computes, put back
// when the last one ends, and left alone when the operator set GOGC.
func TestGCBoostWhileComputing(t *testing.T) {
	prev := debug.SetGCPercent(150)
	defer debug.SetGCPercent(prev)
	g := &gcBoost{}
	g.begin()
	g.begin()
	if p := gcPercent(); p != ComputingGCPercent {
		t.Fatalf("percent %d while two questions compute, want %d", p, ComputingGCPercent)
	}
	g.end()
	if p := gcPercent(); p != ComputingGCPercent {
		t.Fatalf("percent %d while one question computes, want %d", p, ComputingGCPercent)
	}
	g.end()
	if p := gcPercent(); p != 150 {
		t.Fatalf("percent %d once no question computes, want the 150 set before", p)
	}
	kept := &gcBoost{off: true}
	kept.begin()
	if p := gcPercent(); p != 150 {
		t.Fatalf("percent %d with GOGC set by the operator, want 150 left alone", p)
	}
	kept.end()
}
