package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// report is everything one run measured; it is written as bench.json so
// that runs can be compared. Sections that were skipped stay nil.
type report struct {
	Date         string   `json:"date"`
	Revision     string   `json:"revision,omitempty"`
	NProc        int      `json:"nproc"`
	GoVersion    string   `json:"go_version"`
	RedisVersion string   `json:"redis_version,omitempty"`
	Settings     settings `json:"settings"`

	Ceiling     *ceilingResult     `json:"ceiling,omitempty"`
	Queue       *queueResult       `json:"queue,omitempty"`
	Latency     *latencyResult     `json:"latency,omitempty"`
	Flush       *flushResult       `json:"flush,omitempty"`
	Storage     *storageResult     `json:"storage,omitempty"`
	File        *fileResult        `json:"file,omitempty"`
	Parser      *parserResult      `json:"parser,omitempty"`
	Compile     *compileResult     `json:"compile,omitempty"`
	Incremental *incrementalResult `json:"incremental,omitempty"`
	Backlog     *backlogResult     `json:"backlog,omitempty"`
	Trickle     *trickleResult     `json:"trickle,omitempty"`
	GeoIP       *geoipResult       `json:"geoip,omitempty"`
	Dedupe      *dedupeResult      `json:"dedupe,omitempty"`
	Retention   *retentionResult   `json:"retention,omitempty"`
	Multi       *multiResult       `json:"multi,omitempty"`
	Investigate *invResult         `json:"investigate,omitempty"`

	Checks   []check  `json:"checks"`
	Failures []string `json:"failures,omitempty"`
	Error    string   `json:"error,omitempty"`
	Headline string   `json:"headline"`
}

type settings struct {
	Lines       int      `json:"lines"`
	Investigate int      `json:"investigate"`
	Backlog     int      `json:"backlog"`
	Pool        int      `json:"pool"`
	Batch       int      `json:"batch"`
	Skip        []string `json:"skip,omitempty"`
}

type ceilingResult struct {
	ZincrbyPerS       float64 `json:"zincrby_per_s"`
	NaiveLinesPerS    float64 `json:"naive_lines_per_s"`
	IncrementsPerLine int     `json:"increments_per_line"`
}

type queueResult struct {
	Lines              int        `json:"lines"`
	Attempts           int        `json:"attempts"`
	PushSeconds        float64    `json:"push_seconds"`
	Seconds            float64    `json:"seconds"`
	LinesPerS          float64    `json:"lines_per_s"`
	AttemptsPerS       float64    `json:"attempts_per_s"`
	RatioToCeiling     float64    `json:"ratio_to_ceiling,omitempty"`
	DaemonCPUToDrain   float64    `json:"daemon_cpu_seconds_to_drain"`
	DaemonCPUTotal     float64    `json:"daemon_cpu_seconds_total"`
	CountingRedisCPU   float64    `json:"counting_redis_cpu_seconds"`
	D4RedisCPU         float64    `json:"d4_redis_cpu_seconds"`
	RSS                rssSummary `json:"rss_while_draining"`
	PeakRSSMiB         float64    `json:"peak_rss_mib"`
	FinalCompileCharts int        `json:"final_compile_charts"`
	FinalCompileSec    float64    `json:"final_compile_seconds"`
	Exact              bool       `json:"exact"`
}

type latencyResult struct {
	Tries  int       `json:"tries"`
	P50Ms  float64   `json:"p50_ms"`
	MaxMs  float64   `json:"max_ms"`
	AllMs  []float64 `json:"all_ms"`
	Daemon string    `json:"daemon"` // which daemon answered: the queue run's or a fresh one
}

type flushResult struct {
	Attempts        int     `json:"attempts"`
	Seconds         float64 `json:"recount_seconds"`
	AttemptsPerS    float64 `json:"attempts_per_s"`
	RatioToQueue    float64 `json:"ratio_to_queue_attempts_per_s,omitempty"`
	CompileCharts   int     `json:"compile_charts"`
	CompileSeconds  float64 `json:"compile_seconds"`
	WallSeconds     float64 `json:"wall_seconds"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"`
	DaemonCPUTotal  float64 `json:"daemon_cpu_seconds"`
	Exact           bool    `json:"exact"`
	AttemptsCounted int     `json:"attempts_counted"`
}

type storageResult struct {
	StoredAttempts     int     `json:"stored_attempts"`
	DB0Bytes           int64   `json:"db0_bytes"`
	DB0BytesPerAttempt float64 `json:"db0_bytes_per_attempt"`
	DB1Members         int64   `json:"db1_members"`
	DB1Bytes           int64   `json:"db1_bytes"`
	DB1BytesPerMember  float64 `json:"db1_bytes_per_member"`
}

type fileResult struct {
	Lines            int     `json:"lines"`
	Counted          int     `json:"counted"`
	Seconds          float64 `json:"count_seconds"`
	LinesPerS        float64 `json:"lines_per_s"`
	RatioToQueue     float64 `json:"ratio_to_queue_lines_per_s,omitempty"`
	CompileSeconds   float64 `json:"compile_seconds"`
	WallSeconds      float64 `json:"wall_seconds"`
	PeakRSSMiB       float64 `json:"peak_rss_mib"`
	DaemonCPU        float64 `json:"daemon_cpu_seconds"`
	CountingRedisCPU float64 `json:"counting_redis_cpu_seconds"`
	// LongestScriptMs is the longest counting script of the run: the
	// longest the counting Redis was held by -f.
	LongestScriptMs float64 `json:"longest_counting_script_ms"`
	Exact           bool    `json:"exact"`
}

type parserResult struct {
	CorpusLines         int     `json:"corpus_lines"`
	CorpusNsPerLine     float64 `json:"corpus_ns_per_line"`
	CorpusAllocsPerLine float64 `json:"corpus_allocs_per_line"`
	GenNsPerLine        float64 `json:"generated_ns_per_line"`
	GenAllocsPerLine    float64 `json:"generated_allocs_per_line"`
	CountNsPerLine      float64 `json:"counting_ns_per_line"`
	CountAllocsPerLine  float64 `json:"counting_allocs_per_line"`
}

type compileResult struct {
	Members           int     `json:"members"`
	Charts            int     `json:"charts"`
	Seconds           float64 `json:"seconds"`
	PeakRSSMiB        float64 `json:"peak_rss_mib"`
	BaselineRSSMiB    float64 `json:"baseline_peak_rss_mib"`
	CSVLines          int     `json:"csv_lines"`
	SVGBytes          int64   `json:"svg_bytes"`
	FillSeconds       float64 `json:"fill_seconds"`
	DaemonWallSeconds float64 `json:"daemon_wall_seconds"`
	OutputOK          bool    `json:"output_ok"`
}

type backlogResult struct {
	Lines       int        `json:"lines"`
	Attempts    int        `json:"attempts"`
	PushSeconds float64    `json:"push_seconds"`
	Seconds     float64    `json:"seconds"`
	LinesPerS   float64    `json:"lines_per_s"`
	RSS         rssSummary `json:"rss_while_draining"`
	PeakRSSMiB  float64    `json:"peak_rss_mib"`
	Exact       bool       `json:"totals_exact"`
}

// check is one row of the table: a figure and, when it has one, its target.
type check struct {
	Section string `json:"section"`
	Figure  string `json:"figure"`
	Value   string `json:"value"`
	Target  string `json:"target,omitempty"`
	Status  string `json:"status,omitempty"`
}

// Statuses. A missed speed target is reported, not fatal; a wrong count is.
const (
	statusPass   = "PASS"
	statusMissed = "MISSED"
	statusFail   = "FAIL"
)

func (r *report) info(section, figure, value string) {
	r.Checks = append(r.Checks, check{Section: section, Figure: figure, Value: value})
}

func (r *report) target(section, figure, value, target string, ok bool) {
	st := statusMissed
	if ok {
		st = statusPass
	}
	r.Checks = append(r.Checks, check{Section: section, Figure: figure, Value: value, Target: target, Status: st})
}

// correct records a correctness check: a failure makes the run fail.
func (r *report) correct(section, figure, value string, ok bool, failure string) {
	st := statusPass
	if !ok {
		st = statusFail
		r.Failures = append(r.Failures, section+": "+failure)
	}
	r.Checks = append(r.Checks, check{Section: section, Figure: figure, Value: value, Target: "exact", Status: st})
}

// writeTable prints the checks aligned.
func (r *report) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SECTION\tFIGURE\tVALUE\tTARGET\tSTATUS")
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Section, c.Figure, c.Value, c.Target, c.Status)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// writeJSON writes the report to path through a temporary file, so an
// interrupted run never leaves half a file to compare against.
func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// headline is the last line of the output, the one figure to compare.
func headline(q *queueResult, c *ceilingResult) string {
	switch {
	case q == nil:
		return "queue lines/s = n/a (no queue run)"
	case q.LinesPerS <= 0:
		return "queue lines/s = n/a (queue section did not finish)"
	case c == nil || c.NaiveLinesPerS <= 0:
		return fmt.Sprintf("queue lines/s = %.0f (ceiling section skipped)", q.LinesPerS)
	}
	return fmt.Sprintf("queue lines/s = %.0f (= %.2f × naive ceiling)", q.LinesPerS, q.LinesPerS/c.NaiveLinesPerS)
}

// rssSample is one reading of the daemon's resident set while it drains.
type rssSample struct {
	Seconds  float64 // since the daemon started
	Bytes    int64
	Progress float64 // share of the expected attempts counted, 0..1
}

// rssSummary condenses the samples: how high, and whether it grew as the
// backlog was worked through.
type rssSummary struct {
	Samples   int     `json:"samples"`
	MinMiB    float64 `json:"min_mib"`
	MedianMiB float64 `json:"median_mib"`
	MaxMiB    float64 `json:"max_mib"`
	At10MiB   float64 `json:"at_10pct_mib"`
	At50MiB   float64 `json:"at_50pct_mib"`
	At90MiB   float64 `json:"at_90pct_mib"`
	EndMiB    float64 `json:"end_mib"`
}

func summarizeRSS(samples []rssSample) rssSummary {
	if len(samples) == 0 {
		return rssSummary{}
	}
	sizes := make([]float64, len(samples))
	for i, s := range samples {
		sizes[i] = mib(s.Bytes)
	}
	sorted := slices.Clone(sizes)
	slices.Sort(sorted)
	// at is the first reading taken once the share p was counted: the
	// resident set at that point of the drain.
	at := func(p float64) float64 {
		for _, s := range samples {
			if s.Progress >= p {
				return mib(s.Bytes)
			}
		}
		return sizes[len(sizes)-1]
	}
	return rssSummary{
		Samples:   len(samples),
		MinMiB:    sorted[0],
		MedianMiB: percentile(sorted, 0.5),
		MaxMiB:    sorted[len(sorted)-1],
		At10MiB:   at(0.1),
		At50MiB:   at(0.5),
		At90MiB:   at(0.9),
		EndMiB:    sizes[len(sizes)-1],
	}
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// thousands writes n with thin separators for the table: 1,000,000.
func thousands(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
