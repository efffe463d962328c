package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Retention is the self-monitoring of pruning and the archive (SPEC §12)
// and of the counting Redis's memory, which retention exists to bound.
type Retention struct {
	DaysRetained prometheus.Gauge   // days with day rankings or stored attempts in the counting Redis
	DaysPruned   prometheus.Counter // days pruned by this process
	ArchiveBytes prometheus.Gauge   // bytes of archive files on disk
	UsedMemory   prometheus.Gauge   // the counting Redis's used_memory
	MaxMemory    prometheus.Gauge   // the counting Redis's maxmemory, 0 when unset
}

// NewRetention registers the retention metrics on reg (unregistered when
// reg is nil).
func NewRetention(reg prometheus.Registerer) *Retention {
	f := promauto.With(reg)
	return &Retention{
		DaysRetained: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "retention_days_retained",
			Help:      "Days whose day rankings or stored attempts are in the counting redis, as of the last pruning pass.",
		}),
		DaysPruned: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "retention_days_pruned_total",
			Help:      "Days archived and pruned from the counting redis by this process.",
		}),
		ArchiveBytes: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "retention_archive_bytes",
			Help:      "Bytes of the archive files of pruned days (archive/ under the working directory).",
		}),
		UsedMemory: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "counting_redis_used_memory_bytes",
			Help:      "used_memory of the counting redis (INFO memory), as of the last pruning pass.",
		}),
		MaxMemory: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "counting_redis_maxmemory_bytes",
			Help:      "maxmemory of the counting redis, 0 when unset.",
		}),
	}
}
