// Package metrics owns the daemon's self-monitoring: the names, types, labels
// and buckets of every Prometheus metric the daemon exports.
//
// Contract: metrics live on a registry the caller passes in, never on the
// process-wide default one, so tests and embedders get a clean, isolated set.
// Every name starts with analyzer_d4_log_ and uses base units (seconds, lines)
// with _total on counters. Label values that an operator alerts on (each skip
// reason, each Redis server) are created up front so they read 0 rather than
// being absent until the first event: an absent series cannot fire "rate > 0"
// alerts and makes dashboards look broken on a healthy daemon.
package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

const namespace = "analyzer_d4_log"

// Label values of the server label on RedisErrors and RedisUp.
const (
	ServerD4       = "d4"
	ServerCounting = "counting"
)

// Metrics are the daemon's self-monitoring. All fields are safe for
// concurrent use, as Prometheus collectors are.
type Metrics struct {
	Popped           prometheus.Counter     // lines taken from the D4 queue (or read with -f)
	Counted          prometheus.Counter     // lines counted as attempts
	Skipped          *prometheus.CounterVec // lines not counted, by reason
	QueueLength      prometheus.Gauge       // lines waiting in the D4 analyzer queue
	ProcessingLength prometheus.Gauge       // lines in this consumer's processing lists
	BatchSeconds     prometheus.Histogram   // claim to ack of one batch
	CompileSeconds   prometheus.Histogram   // one compile of the output
	RedisErrors      *prometheus.CounterVec // failed Redis operations, by server
	RedisUp          *prometheus.GaugeVec   // 1 reachable, 0 in an outage, by server
	WorkerPanics     prometheus.Counter     // parser or counter panics recovered
	LastCounted      prometheus.Gauge       // unix time of the last counted line
	LastCompile      prometheus.Gauge       // unix time of the last finished compile
	ChartsRendered   prometheus.Counter     // SVG charts written
	// ForeignKeyRefusals counts batch attempts refused because a key they
	// would write holds another type (a foreign writer); CountingBlocked
	// is 1 while such a key holds counting up.
	ForeignKeyRefusals prometheus.Counter
	CountingBlocked    prometheus.Gauge
	// HTTPAuthFailures counts web requests refused for missing or wrong
	// credentials (http_users); a steady rise is someone guessing.
	HTTPAuthFailures prometheus.Counter
	// CountingFailovers counts changes of the counting master found
	// through Redis Sentinel; ReplicaWaitTimeouts counts WAITs that came
	// back with fewer than min_replicas replicas (the batch is retried,
	// not acknowledged). SPEC §14.
	CountingFailovers   prometheus.Counter
	ReplicaWaitTimeouts prometheus.Counter
	// CompileLeaseHeld is 1 while this daemon holds the compile lease of
	// its queue (it compiles, writes the feeds and prunes), 0 while
	// another daemon on the queue does; Takeovers counts the batches in
	// flight of dead daemons on the queue that this one finished. SPEC §14.
	CompileLeaseHeld prometheus.Gauge
	Takeovers        prometheus.Counter
}

// New registers every metric on reg, plus analyzer_d4_log_build_info
// {version, goversion} = 1, and creates the skip reasons and both Redis
// servers' label values so that they show as 0 from the start.
//
// A nil reg yields working but unregistered metrics. Registering twice on the
// same registry is a programming error and panics, as prometheus.MustRegister
// does: it can only happen at start-up, never because of input.
func New(reg prometheus.Registerer, version string, skipReasons []string) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		Popped: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "lines_popped_total",
			Help:      "Lines taken from the D4 analyzer queue (or read from a file with -f).",
		}),
		Counted: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "lines_counted_total",
			Help:      "Lines counted as invalid-user attempts.",
		}),
		Skipped: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "lines_skipped_total",
			Help:      "Lines not counted, by reason.",
		}, []string{"reason"}),
		QueueLength: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "queue_length",
			Help:      "Lines waiting in the D4 analyzer queue.",
		}),
		ProcessingLength: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "processing_lines",
			Help:      "Lines claimed by this consumer and not yet acknowledged.",
		}),
		// A batch is normally milliseconds; the top buckets catch Redis stalls.
		BatchSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "batch_duration_seconds",
			Help:      "Time from claiming a batch of lines to acknowledging it.",
			Buckets:   prometheus.ExponentialBuckets(0.001, 2, 15), // 1 ms .. ~16 s
		}),
		// A compile redraws many charts: from tens of milliseconds to minutes
		// after a flush of a large history.
		CompileSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "compile_duration_seconds",
			Help:      "Time to compile charts, rankings and pages.",
			Buckets:   prometheus.ExponentialBuckets(0.01, 2, 15), // 10 ms .. ~164 s
		}),
		RedisErrors: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "redis_errors_total",
			Help:      "Failed Redis operations, by server (d4 or counting).",
		}, []string{"server"}),
		RedisUp: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "redis_up",
			Help:      "Whether the Redis server is reachable (1) or in an outage (0).",
		}, []string{"server"}),
		WorkerPanics: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "worker_panics_total",
			Help:      "Panics recovered in workers; any is a bug worth reporting.",
		}),
		LastCounted: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "last_counted_timestamp_seconds",
			Help:      "Unix time at which a line was last counted.",
		}),
		LastCompile: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "last_compile_timestamp_seconds",
			Help:      "Unix time at which the last compile finished.",
		}),
		ChartsRendered: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "charts_rendered_total",
			Help:      "SVG charts written.",
		}),
		ForeignKeyRefusals: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "foreign_key_refusals_total",
			Help:      "Batch attempts refused, nothing applied, because a key they write holds another type; the batch waits in the queue.",
		}),
		CountingBlocked: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "counting_blocked",
			Help:      "1 while counting is held up by a key of the wrong type in the counting redis (see the log and /healthz).",
		}),
		HTTPAuthFailures: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "http_auth_failures_total",
			Help:      "Web requests refused with 401 for missing or wrong credentials (http_users).",
		}),
		CountingFailovers: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "counting_failovers_total",
			Help:      "Changes of the counting Redis master named by the Sentinels (redis_parsers sentinel://).",
		}),
		ReplicaWaitTimeouts: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "replica_wait_timeouts_total",
			Help:      "Redis WAITs that fewer than min_replicas replicas acknowledged in time; the batch stays on the queue and is confirmed later.",
		}),
		CompileLeaseHeld: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "compile_lease_held",
			Help:      "1 while this daemon holds its queue's compile lease (it compiles the output, writes the feeds and prunes); 0 while another daemon on the queue does.",
		}),
		Takeovers: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "takeover_batches_total",
			Help:      "Batches in flight of dead daemons on the same queue that this daemon finished (counted and acknowledged).",
		}),
	}
	// The process and Go runtime collectors, as every Prometheus exporter
	// has them: memory, goroutines, open file descriptors.
	if reg != nil {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}

	f.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "build_info",
		Help:      "Always 1; the labels say which build is running.",
	}, []string{"version", "goversion"}).WithLabelValues(version, runtime.Version()).Set(1)

	for _, r := range skipReasons {
		m.Skipped.WithLabelValues(r)
	}
	for _, s := range []string{ServerD4, ServerCounting} {
		m.RedisErrors.WithLabelValues(s)
		m.RedisUp.WithLabelValues(s)
	}
	return m
}
