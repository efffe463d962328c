package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// API is what the investigation API reports of the rankings it keeps.
type API interface {
	// SetCacheStats reports the bytes kept, and the sets questions took
	// from them (hits) or read from the counting Redis (misses).
	SetCacheStats() (bytes, hits, misses int64)
	// Warming tells whether the warm-up reads rankings into memory.
	Warming() bool
	// WarmedSeconds is how long the finished warm-up took, 0 before.
	WarmedSeconds() float64
}

// RegisterAPI registers the investigation API's metrics on reg (nothing
// when reg is nil): the bytes of closed periods' rankings it keeps between
// questions, how many of the sets its questions needed came from there or
// were read from the counting Redis, and whether its warm-up is reading.
func RegisterAPI(reg prometheus.Registerer, a API) {
	if reg == nil {
		return
	}
	stats := a.SetCacheStats
	f := promauto.With(reg)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "api_set_cache_warming",
		Help:      "1 while the investigation API reads the closed periods' rankings into memory after its first question (newest first, within api_cache_mb), 0 otherwise.",
	}, func() float64 {
		if a.Warming() {
			return 1
		}
		return 0
	})
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "api_set_cache_bytes",
		Help:      "Bytes of closed days', months' and years' rankings the investigation API keeps between questions (api_cache_mb bounds it).",
	}, func() float64 { b, _, _ := stats(); return float64(b) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "api_set_cache_warmed_seconds",
		Help:      "How long the investigation API's warm-up took to read the closed periods' rankings into memory; 0 until it has ended.",
	}, a.WarmedSeconds)
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
