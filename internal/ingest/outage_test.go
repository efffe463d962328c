package ingest

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/D4-project/analyzer-d4-log/internal/metrics"
)

// A reply that was on its way when the server died does not end the
// outage its death began: only an operation begun during the outage does,
// so that workers finishing at different instants log it once each way.
func TestOutageEndsOnlyOnASuccessBegunDuringIt(t *testing.T) {
	var log strings.Builder
	o := NewOutage(metrics.ServerCounting, "127.0.0.1:1", "", slog.New(slog.NewTextHandler(&log, nil)),
		metrics.New(prometheus.NewRegistry(), "test", nil), nil)
	before := o.Begin() // a worker's apply, sent before the server died
	o.Fail("counting a batch", errors.New("broken pipe"))
	o.OK(before) // its reply arrives after another worker's failure
	if !o.Down() {
		t.Fatal("a success begun before the outage ended it")
	}
	o.Fail("counting a batch", errors.New("broken pipe"))
	during := o.Begin()
	o.OK(during)
	if o.Down() {
		t.Fatal("a success begun during the outage did not end it")
	}
	if n := strings.Count(log.String(), "redis outage: "); n != 1 {
		t.Errorf("outage start logged %d times, want 1:\n%s", n, log.String())
	}
	if n := strings.Count(log.String(), "redis outage over"); n != 1 {
		t.Errorf("outage end logged %d times, want 1:\n%s", n, log.String())
	}
	// The next outage is a new one: a success begun during the last one
	// does not end it.
	o.Fail("counting a batch", errors.New("connection refused"))
	o.OK(during)
	if !o.Down() {
		t.Fatal("a success begun during an earlier outage ended the next one")
	}
}
