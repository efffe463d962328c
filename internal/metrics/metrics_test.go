package metrics

import (
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

func TestNewRegistersEveryMetricWithItsType(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg, "1.2.3", []string{"not_sshd", "bad_timestamp"})

	want := map[string]dto.MetricType{
		"analyzer_d4_log_lines_popped_total":             dto.MetricType_COUNTER,
		"analyzer_d4_log_lines_counted_total":            dto.MetricType_COUNTER,
		"analyzer_d4_log_lines_skipped_total":            dto.MetricType_COUNTER,
		"analyzer_d4_log_queue_length":                   dto.MetricType_GAUGE,
		"analyzer_d4_log_processing_lines":               dto.MetricType_GAUGE,
		"analyzer_d4_log_batch_duration_seconds":         dto.MetricType_HISTOGRAM,
		"analyzer_d4_log_compile_duration_seconds":       dto.MetricType_HISTOGRAM,
		"analyzer_d4_log_redis_errors_total":             dto.MetricType_COUNTER,
		"analyzer_d4_log_redis_up":                       dto.MetricType_GAUGE,
		"analyzer_d4_log_worker_panics_total":            dto.MetricType_COUNTER,
		"analyzer_d4_log_last_counted_timestamp_seconds": dto.MetricType_GAUGE,
		"analyzer_d4_log_last_compile_timestamp_seconds": dto.MetricType_GAUGE,
		"analyzer_d4_log_charts_rendered_total":          dto.MetricType_COUNTER,
		"analyzer_d4_log_build_info":                     dto.MetricType_GAUGE,
		"analyzer_d4_log_foreign_key_refusals_total":     dto.MetricType_COUNTER,
		"analyzer_d4_log_counting_blocked":               dto.MetricType_GAUGE,
		"analyzer_d4_log_http_auth_failures_total":       dto.MetricType_COUNTER,
		"analyzer_d4_log_counting_failovers_total":       dto.MetricType_COUNTER,
		"analyzer_d4_log_replica_wait_timeouts_total":    dto.MetricType_COUNTER,
		"analyzer_d4_log_compile_lease_held":             dto.MetricType_GAUGE,
		"analyzer_d4_log_takeover_batches_total":         dto.MetricType_COUNTER,
	}
	got := gather(t, reg)
	for name, typ := range want {
		mf, ok := got[name]
		if !ok {
			t.Errorf("metric %s not registered", name)
			continue
		}
		if mf.GetType() != typ {
			t.Errorf("metric %s has type %v, want %v", name, mf.GetType(), typ)
		}
		if mf.GetHelp() == "" {
			t.Errorf("metric %s has no help text", name)
		}
	}
	// The runtime and process collectors every exporter has.
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "process_open_fds"} {
		if _, ok := got[name]; !ok {
			t.Errorf("metric %s not registered", name)
		}
	}
	for name, mf := range got {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected metric %s", name)
		}
		if !strings.HasPrefix(name, "analyzer_d4_log_") {
			t.Errorf("metric %s lacks the analyzer_d4_log_ prefix", name)
		}
		if (mf.GetType() == dto.MetricType_COUNTER) != strings.HasSuffix(name, "_total") {
			t.Errorf("metric %s: type %v and _total suffix disagree", name, mf.GetType())
		}
	}
}

func TestNewPrecreatesLabelValues(t *testing.T) {
	reg := prometheus.NewRegistry()
	reasons := []string{"not_sshd", "not_invalid_user", "bad_timestamp"}
	New(reg, "dev", reasons)
	got := gather(t, reg)

	skipped := map[string]float64{}
	for _, m := range got["analyzer_d4_log_lines_skipped_total"].GetMetric() {
		skipped[labels(m)["reason"]] = m.GetCounter().GetValue()
	}
	if len(skipped) != len(reasons) {
		t.Errorf("skip reasons present: %v, want exactly %v", skipped, reasons)
	}
	for _, r := range reasons {
		if v, ok := skipped[r]; !ok || v != 0 {
			t.Errorf("skipped{reason=%q} = %v (present %v), want 0 present", r, v, ok)
		}
	}

	for _, name := range []string{"analyzer_d4_log_redis_errors_total", "analyzer_d4_log_redis_up"} {
		servers := map[string]bool{}
		for _, m := range got[name].GetMetric() {
			servers[labels(m)["server"]] = true
		}
		if len(servers) != 2 || !servers["d4"] || !servers["counting"] {
			t.Errorf("%s servers = %v, want d4 and counting", name, servers)
		}
	}
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg, "v9.8.7", nil)
	ms := gather(t, reg)["analyzer_d4_log_build_info"].GetMetric()
	if len(ms) != 1 {
		t.Fatalf("build_info has %d series, want 1", len(ms))
	}
	l := labels(ms[0])
	if l["version"] != "v9.8.7" || l["goversion"] != runtime.Version() {
		t.Errorf("build_info labels = %v", l)
	}
	if v := ms[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("build_info = %v, want 1", v)
	}
}

func TestMetricsRecordValues(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "dev", []string{"not_sshd"})
	m.Popped.Add(5)
	m.Counted.Add(3)
	m.Skipped.WithLabelValues("not_sshd").Add(2)
	m.RedisErrors.WithLabelValues(ServerCounting).Inc()
	m.RedisUp.WithLabelValues(ServerD4).Set(1)
	m.BatchSeconds.Observe(0.25)
	m.BatchSeconds.Observe(0.5)
	m.LastCounted.Set(1700000000)

	got := gather(t, reg)
	if v := got["analyzer_d4_log_lines_popped_total"].GetMetric()[0].GetCounter().GetValue(); v != 5 {
		t.Errorf("popped = %v, want 5", v)
	}
	if v := got["analyzer_d4_log_lines_counted_total"].GetMetric()[0].GetCounter().GetValue(); v != 3 {
		t.Errorf("counted = %v, want 3", v)
	}
	if v := got["analyzer_d4_log_lines_skipped_total"].GetMetric()[0].GetCounter().GetValue(); v != 2 {
		t.Errorf("skipped = %v, want 2", v)
	}
	for _, s := range got["analyzer_d4_log_redis_errors_total"].GetMetric() {
		want := 0.0
		if labels(s)["server"] == "counting" {
			want = 1
		}
		if v := s.GetCounter().GetValue(); v != want {
			t.Errorf("redis_errors%v = %v, want %v", labels(s), v, want)
		}
	}
	for _, s := range got["analyzer_d4_log_redis_up"].GetMetric() {
		want := 0.0
		if labels(s)["server"] == "d4" {
			want = 1
		}
		if v := s.GetGauge().GetValue(); v != want {
			t.Errorf("redis_up%v = %v, want %v", labels(s), v, want)
		}
	}
	h := got["analyzer_d4_log_batch_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 0.75 {
		t.Errorf("batch histogram count %d sum %v, want 2 and 0.75", h.GetSampleCount(), h.GetSampleSum())
	}
	if v := got["analyzer_d4_log_last_counted_timestamp_seconds"].GetMetric()[0].GetGauge().GetValue(); v != 1700000000 {
		t.Errorf("last counted = %v", v)
	}
}

func TestRegistriesAreIndependent(t *testing.T) {
	// Two daemons (or tests) in one process must not collide: nothing may
	// land on a shared registry.
	a, b := prometheus.NewRegistry(), prometheus.NewRegistry()
	ma := New(a, "dev", nil)
	New(b, "dev", nil)
	ma.Popped.Inc()
	if v := gather(t, b)["analyzer_d4_log_lines_popped_total"].GetMetric()[0].GetCounter().GetValue(); v != 0 {
		t.Errorf("registry b sees popped = %v, want 0", v)
	}
}

func TestNilRegistererStillWorks(t *testing.T) {
	m := New(nil, "dev", []string{"x"})
	m.Popped.Inc()
	m.Skipped.WithLabelValues("x").Inc()
}
