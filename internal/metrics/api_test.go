package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type fakeAPI struct{}

func (fakeAPI) SetCacheStats() (int64, int64, int64) { return 4096, 7, 3 }
func (fakeAPI) Warming() bool                        { return true }
func (fakeAPI) WarmedSeconds() float64               { return 12.5 }

// The API's metrics read the figures the API reports, each where its name
// says.
func TestRegisterAPIReadsTheFigures(t *testing.T) {
	reg := prometheus.NewRegistry()
	RegisterAPI(reg, fakeAPI{})
	got := gather(t, reg)
	for name, want := range map[string]struct {
		typ dto.MetricType
		v   float64
	}{
		"analyzer_d4_log_api_set_cache_bytes":          {dto.MetricType_GAUGE, 4096},
		"analyzer_d4_log_api_sets_cached_total":        {dto.MetricType_COUNTER, 7},
		"analyzer_d4_log_api_sets_read_total":          {dto.MetricType_COUNTER, 3},
		"analyzer_d4_log_api_set_cache_warming":        {dto.MetricType_GAUGE, 1},
		"analyzer_d4_log_api_set_cache_warmed_seconds": {dto.MetricType_GAUGE, 12.5},
	} {
		mf, ok := got[name]
		if !ok {
			t.Errorf("metric %s not registered", name)
			continue
		}
		if mf.GetType() != want.typ || mf.GetHelp() == "" {
			t.Errorf("metric %s: type %v help %q, want type %v and a help text", name, mf.GetType(), mf.GetHelp(), want.typ)
		}
		m := mf.GetMetric()[0]
		v := m.GetGauge().GetValue()
		if want.typ == dto.MetricType_COUNTER {
			v = m.GetCounter().GetValue()
		}
		if v != want.v {
			t.Errorf("metric %s = %v, want %v", name, v, want.v)
		}
	}
	if len(got) != 5 {
		t.Errorf("%d metrics registered, want 5", len(got))
	}
	RegisterAPI(nil, nil) // no registry: nothing registered, no panic
}
