package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// RegisterAPI registers the investigation API's metrics on reg (nothing
// when reg is nil): the bytes of closed periods' rankings it keeps between
// questions, and how many of the sets its questions needed came from there
// or were read from the counting Redis. stats reports the three figures.
func RegisterAPI(reg prometheus.Registerer, stats func() (bytes, hits, misses int64)) {
	if reg == nil {
		return
	}
	f := promauto.With(reg)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "api_set_cache_bytes",
		Help:      "Bytes of closed days', months' and years' rankings the investigation API keeps between questions (api_cache_mb bounds it).",
	}, func() float64 { b, _, _ := stats(); return float64(b) })
	f.NewCounterFunc(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "api_sets_cached_total",
		Help:      "Closed periods' rankings a question of the investigation API summed from the ones kept in the daemon.",
	}, func() float64 { _, h, _ := stats(); return float64(h) })
	f.NewCounterFunc(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "api_sets_read_total",
		Help:      "Closed periods' rankings a question of the investigation API read from the counting redis (not kept, or counted into since).",
	}, func() float64 { _, _, m := stats(); return float64(m) })
}
