package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// The investigate section (SPEC §10): the investigation API of the
// daemon's web server on a year of high-cardinality data, loaded with -f:
// attempts in random order over the 365 days before today, 60 % of them
// from a source never seen before, 60,000 user names. It times top, drill
// and series over the ranges the issue names, compares every timed answer
// with the bench's own count of the same attempts, measures queue
// ingestion without and with four clients asking questions without pause,
// the counting Redis's memory with and without drill-down data (the same
// file loaded twice), and the queue's end-to-end speed with drill-down on
// against the naive ceiling.
const (
	invDays    = 365
	invUsers   = 60000
	invHosts   = 200
	invNewSrc  = 0.6 // share of attempts from a source never seen before
	invClients = 4
	// Questions timed per figure: each is a different range, so none is
	// answered from the cache.
	invTries = 5
	// The targets.
	invTop30Ms     = 150
	invTop365Ms    = 1500
	invCachedMs    = 20
	invDrillMs     = 200
	invSeriesMs    = 100
	invKeepRatio   = 0.7
	invIdleLineMs  = 1000
	invMemRatio    = 2.5
	invCeilingRate = 3
	// Lines of each timed ingestion run with and without the clients, at
	// most.
	invQueueLines = 200000
)

// invAttempt is one generated attempt, kept compact so the bench can count
// any question itself over millions of them: day is the index of the day
// in the year (0 = 365 days ago), user/src/host index the names.
type invAttempt struct {
	day  uint16
	host uint16
	user uint32
	src  uint32
}

// invData is the generated year: the attempts and how to name their values.
type invData struct {
	first time.Time // day 0, midnight UTC
	atts  []invAttempt
	srcs  int // distinct sources generated
}

func invUserName(i uint32) string {
	common := []string{"admin", "root", "test", "user", "oracle", "postgres", "ubuntu", "git", "guest", "ftp"}
	if int(i) < len(common) {
		return common[i]
	}
	return "u" + strconv.Itoa(int(i))
}

// invSrcName is source number i, spread over IPv4, IPv6 and host names as
// the workload's are.
func invSrcName(i uint32) string { return workload.SourceName(int(i)) }

func invHostName(i uint16) string { return "h" + strconv.Itoa(int(i)) + ".example.org" }

func (d *invData) dayName(i int) string { return d.first.AddDate(0, 0, i).Format("20060102") }

// invGenerate draws n attempts. A source is new with probability
// invNewSrc; otherwise an earlier one, skewed towards the first ones (a few
// sources attack all year). User names: half drawn evenly from all 60,000,
// half with a Zipf skew, so every name appears and a few lead.
func invGenerate(n int, today time.Time, seed uint64) *invData {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	zipf := rand.NewZipf(r, 1.2, 4, invUsers-1)
	d := &invData{first: today.AddDate(0, 0, -invDays), atts: make([]invAttempt, n)}
	var srcs uint32
	for i := range d.atts {
		a := invAttempt{day: uint16(r.IntN(invDays)), host: uint16(r.IntN(invHosts))}
		if r.IntN(2) == 0 {
			a.user = uint32(r.IntN(invUsers))
		} else {
			a.user = uint32(zipf.Uint64())
		}
		if srcs == 0 || r.Float64() < invNewSrc {
			a.src = srcs
			srcs++
		} else {
			u := r.Float64()
			a.src = uint32(float64(srcs) * u * u * u)
		}
		d.atts[i] = a
	}
	d.srcs = int(srcs)
	return d
}

// line writes attempt i as an sshd line: ISO time of its day, a pid and
// port derived from i so that no two lines are identical (dedupe_days
// stays at its default).
func (d *invData) line(w *bufio.Writer, i int, a invAttempt) {
	t := d.first.AddDate(0, 0, int(a.day)).Add(time.Duration(i%86400) * time.Second)
	fmt.Fprintf(w, "%s %s sshd[%d]: Invalid user %s from %s port %d\n", t.Format("2006-01-02T15:04:05Z"),
		invHostName(a.host), 1000+(i/60000)%60000, invUserName(a.user), invSrcName(a.src), 1024+i%60000)
}

func (d *invData) write(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create the year's file: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i, a := range d.atts {
		d.line(w, i, a)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write the year's file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write the year's file: %w", err)
	}
	return nil
}

// invQuestion is one API question and the bench's own answer to it.
type invQuestion struct {
	ep       string // top, drill, series
	kind, of string
	value    string
	from, to int // day indexes, inclusive
}

func (q invQuestion) url(base string, d *invData) string {
	v := url.Values{}
	v.Set("kind", q.kind)
	v.Set("from", d.dayName(q.from))
	v.Set("to", d.dayName(q.to))
	if q.ep == "drill" {
		v.Set("of", q.of)
		v.Set("value", q.value)
	}
	if q.ep == "series" {
		v.Set("value", q.value)
	}
	if q.ep != "series" {
		v.Set("limit", "100")
	}
	return base + "/api/v1/" + q.ep + "?" + v.Encode()
}

func invValue(kind string, a invAttempt) string {
	switch kind {
	case stats.KindUser:
		return invUserName(a.user)
	case stats.KindSrc:
		return invSrcName(a.src)
	}
	return invHostName(a.host)
}

// invKey is the index of a's value of kind, for counting without names.
func invKey(kind string, a invAttempt) uint32 {
	switch kind {
	case stats.KindUser:
		return a.user
	case stats.KindSrc:
		return a.src
	}
	return uint32(a.host)
}

type invEntry struct {
	Value    string `json:"value"`
	ValueB64 string `json:"value_b64"`
	Count    int64  `json:"count"`
}

type invRanking struct {
	Attempts int64      `json:"attempts"`
	Distinct int64      `json:"distinct"`
	Top      []invEntry `json:"top"`
}

type invSeries struct {
	Days []struct {
		Day   string `json:"day"`
		Count int64  `json:"count"`
	} `json:"days"`
}

// expect answers q from the generated attempts, as the API's JSON would:
// the ranking with attempts, distinct and the first 100 in order, or the
// series.
func (q invQuestion) expect(d *invData) (invRanking, []int64) {
	if q.ep == "series" {
		days := make([]int64, q.to-q.from+1)
		for _, a := range d.atts {
			if int(a.day) >= q.from && int(a.day) <= q.to && invValue(q.kind, a) == q.value {
				days[int(a.day)-q.from]++
			}
		}
		return invRanking{}, days
	}
	of := q.kind
	if q.ep == "drill" {
		of = q.of
	}
	sum := map[uint32]int64{}
	var ans invRanking
	for _, a := range d.atts {
		if int(a.day) < q.from || int(a.day) > q.to {
			continue
		}
		if q.ep == "drill" && invValue(q.kind, a) != q.value {
			continue
		}
		sum[invKey(of, a)]++
		ans.Attempts++
	}
	ans.Distinct = int64(len(sum))
	all := make([]invEntry, 0, len(sum))
	for k, c := range sum {
		var a invAttempt
		switch of {
		case stats.KindUser:
			a.user = k
		case stats.KindSrc:
			a.src = k
		default:
			a.host = uint16(k)
		}
		all = append(all, invEntry{Value: invValue(of, a), Count: c})
	}
	slices.SortFunc(all, func(x, y invEntry) int {
		if x.Count != y.Count {
			if x.Count > y.Count {
				return -1
			}
			return 1
		}
		if x.Value < y.Value {
			return -1
		}
		if x.Value > y.Value {
			return 1
		}
		return 0
	})
	ans.Top = all[:min(len(all), 100)]
	return ans, nil
}

// ask sends q and returns the body and how long the answer took.
func invAsk(ctx context.Context, client *http.Client, u string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("build the question: %w", err)
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("ask %s: %w", u, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(t0)
	if err != nil {
		return nil, 0, fmt.Errorf("read the answer of %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("%s answered %d: %s", u, resp.StatusCode, body)
	}
	return body, took, nil
}

// invMetrics reads the named metrics (without labels) from the daemon's
// /metrics.
func invMetrics(ctx context.Context, base string, names ...string) ([]float64, error) {
	body, _, err := invAsk(ctx, &http.Client{Timeout: 10 * time.Second}, base+"/metrics")
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(names))
	for i, name := range names {
		found := false
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				if out[i], err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
					return nil, fmt.Errorf("metric %s: %w", name, err)
				}
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("metric %s is not in the daemon's /metrics", name)
		}
	}
	return out, nil
}

// invAwait waits until the daemon's first named metric is above zero, and
// returns the named metrics then; what names the wait in the error.
func invAwait(ctx context.Context, p *daemonProc, base, what string, limit time.Duration, names ...string) ([]float64, error) {
	t0 := time.Now()
	for {
		got, err := invMetrics(ctx, base, names...)
		if err != nil {
			return nil, err
		}
		if got[0] > 0 {
			return got, nil
		}
		if time.Since(t0) > limit {
			return nil, fmt.Errorf("%s did not end within %v; its log ends:\n%s", what, limit, p.tail())
		}
		if err := waitCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// check compares an answer's body with the bench's own answer.
func (q invQuestion) check(d *invData, body []byte) string {
	want, days := q.expect(d)
	if q.ep == "series" {
		var got invSeries
		if err := json.Unmarshal(body, &got); err != nil {
			return fmt.Sprintf("%s: %v", q.ep, err)
		}
		if len(got.Days) != len(days) {
			return fmt.Sprintf("series of %q: %d days, want %d", q.value, len(got.Days), len(days))
		}
		for i, c := range days {
			if got.Days[i].Day != d.dayName(q.from+i) || got.Days[i].Count != c {
				return fmt.Sprintf("series of %q: day %s count %d, want %s %d", q.value, got.Days[i].Day, got.Days[i].Count, d.dayName(q.from+i), c)
			}
		}
		return ""
	}
	var got invRanking
	if err := json.Unmarshal(body, &got); err != nil {
		return fmt.Sprintf("%s: %v", q.ep, err)
	}
	name := fmt.Sprintf("%s %s %s..%s", q.ep, q.kind, d.dayName(q.from), d.dayName(q.to))
	if got.Attempts != want.Attempts || got.Distinct != want.Distinct {
		return fmt.Sprintf("%s: attempts %d distinct %d, want %d and %d", name, got.Attempts, got.Distinct, want.Attempts, want.Distinct)
	}
	if len(got.Top) != len(want.Top) {
		return fmt.Sprintf("%s: %d ranked, want %d", name, len(got.Top), len(want.Top))
	}
	for i := range want.Top {
		if got.Top[i].Value != want.Top[i].Value || got.Top[i].Count != want.Top[i].Count {
			return fmt.Sprintf("%s: rank %d is %q %d, want %q %d", name, i+1, got.Top[i].Value, got.Top[i].Count, want.Top[i].Value, want.Top[i].Count)
		}
	}
	return ""
}

type invResult struct {
	Attempts    int     `json:"attempts"`
	Sources     int     `json:"sources"`
	LoadSeconds float64 `json:"load_seconds"`
	// LoadLongestScriptMs is the longest counting script of the -f load.
	LoadLongestScriptMs float64 `json:"load_longest_counting_script_ms"`
	// ForkStallMs is how long the counting Redis's latest fork (for an
	// AOF rewrite) stopped it: what a question landing on one waits.
	ForkStallMs float64 `json:"counting_redis_latest_fork_ms"`
	// IngestLongestScriptMs is the longest counting script of the queue
	// runs with and without the clients (batch_size live lines into a
	// year of data), which a question waits for.
	IngestLongestScriptMs float64 `json:"ingest_longest_counting_script_ms"`
	// ColdMs are the first top over 30 and over 365 days, before the
	// warm-up; WarmSeconds and WarmBytes what the warm-up took and kept.
	ColdMs           [2]float64 `json:"cold_top_30_365_ms"`
	WarmSeconds      float64    `json:"warm_up_seconds"`
	WarmBytes        float64    `json:"warm_up_bytes"`
	Top30Ms          float64    `json:"top_30_days_ms"`
	Top365Ms         float64    `json:"top_365_days_ms"`
	CachedMs         float64    `json:"cached_ms"`
	DrillMs          float64    `json:"drill_year_ms"`
	SeriesMs         float64    `json:"series_year_ms"`
	Checked          int        `json:"answers_checked"`
	Wrong            int        `json:"answers_wrong"`
	AloneLinesPerS   float64    `json:"ingest_alone_lines_per_s"`
	QueriedLinesPerS float64    `json:"ingest_queried_lines_per_s"`
	KeepRatio        float64    `json:"ingest_keep_ratio"`
	ClientQuestions  int64      `json:"client_questions"`
	// SetCacheBytes, SetsCached and SetsRead are the daemon's metrics of
	// the closed periods' sets it keeps, once the clients stopped.
	SetCacheBytes     float64 `json:"api_set_cache_bytes"`
	SetsCached        float64 `json:"api_sets_cached"`
	SetsRead          float64 `json:"api_sets_read"`
	DaemonRSS         float64 `json:"daemon_rss_bytes"`
	BusyReplies       int     `json:"busy_replies"`
	IdleLineMs        float64 `json:"idle_line_ms"`
	MemOffBytes       int64   `json:"memory_drilldown_off"`
	MemOnBytes        int64   `json:"memory_drilldown_on"`
	MemRatio          float64 `json:"memory_ratio"`
	QueueLinesPerS    float64 `json:"queue_lines_per_s"`
	QueueOffLinesPerS float64 `json:"queue_drilldown_off_lines_per_s"`
	QueueOverCeiling  float64 `json:"queue_over_ceiling,omitempty"`
	QueueExact        bool    `json:"queue_exact"`
}

// invConf writes a configuration with the web server on a free port and
// drill-down on or off.
func (b *bench) invConf(name string, drill bool) (dir, base string, err error) {
	dir = filepath.Join(b.tmp, name)
	if err := writeConf(dir, b.d4.addr(), queueUUID, b.cnt.addr(), b.o.pool, b.o.batch); err != nil {
		return "", "", err
	}
	port, err := freePort()
	if err != nil {
		return "", "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := os.WriteFile(filepath.Join(dir, "http_server"), []byte(addr+"\n"), 0o644); err != nil {
		return "", "", fmt.Errorf("write http_server: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "analyzer.toml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return "", "", fmt.Errorf("open %s analyzer.toml: %w", name, err)
	}
	_, err = fmt.Fprintf(f, "drilldown = %t\n", drill)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", "", fmt.Errorf("write %s analyzer.toml: %w", name, err)
	}
	return dir, "http://" + addr, nil
}

// invLoad empties the counting Redis and loads the year's file with -f.
func (b *bench) invLoad(ctx context.Context, conf, path, label string, n int) (float64, error) {
	if err := b.flushAll(b.cnt); err != nil {
		return 0, err
	}
	b.say("investigate: -f the year's %s attempts, %s", thousands(float64(n)), label)
	if err := b.cnt.scriptLog(); err != nil {
		return 0, err
	}
	t0 := time.Now()
	p, err := startDaemon(ctx, b.bin, conf, filepath.Join(b.tmp, "run-investigate-load-"+label), "-f", path)
	if err != nil {
		return 0, err
	}
	if err := p.wait(ctx, 60*time.Minute); err != nil {
		return 0, err
	}
	secs := time.Since(t0).Seconds()
	rec, err := p.record("file done")
	if err != nil {
		return 0, err
	}
	if counted, err := rec.float("counted"); err != nil || int(counted) != n {
		return 0, fmt.Errorf("-f counted %v of %d attempts (%v); its log ends:\n%s", counted, n, err, p.tail())
	}
	return secs, nil
}

func (b *bench) investigate(ctx context.Context) error {
	n := b.o.investigate
	today := time.Now().UTC().Truncate(24 * time.Hour)
	r := &invResult{Attempts: n}
	b.rep.Investigate = r
	// The queue runs first, so that the year is what the counting Redis
	// holds at the end (-keep leaves it there to look at), and before the
	// year is generated: a garbage collection of the bench's gigabyte of
	// year, landing in one of the two timed runs, would take CPU from the
	// daemon and the Redis servers it times.
	if err := b.invQueue(ctx, r); err != nil {
		return err
	}
	b.say("investigate: generating %s attempts over the %d days before today (%d user names, %.0f%% new sources), random order",
		thousands(float64(n)), invDays, invUsers, invNewSrc*100)
	d := invGenerate(n, today, 14)
	r.Sources = d.srcs
	path := filepath.Join(b.tmp, "year.log")
	if err := d.write(path); err != nil {
		return err
	}
	onConf, base, err := b.invConf("conf-investigate-on", true)
	if err != nil {
		return err
	}
	if r.LoadSeconds, err = b.invLoad(ctx, onConf, path, "drilldown = true", n); err != nil {
		return err
	}
	var size int
	if r.LoadLongestScriptMs, size, err = b.cnt.longestScript(fileScripts); err != nil {
		return err
	}
	b.say("investigate: longest counting script of the load %.1f ms, %s arguments", r.LoadLongestScriptMs, thousands(float64(size)))
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove the year's file: %w", err)
	}

	b.say("investigate: the daemon with its web server; timing questions")
	if err := b.flushAll(b.d4); err != nil {
		return err
	}
	p, err := startDaemon(ctx, b.bin, onConf, filepath.Join(b.tmp, "run-investigate"))
	if err != nil {
		return err
	}
	defer p.kill()
	if err := waitConsuming(ctx, p); err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Minute}
	if err := invWaitServing(ctx, client, base); err != nil {
		return err
	}
	// The questions are timed once the daemon's first compile is done:
	// drawing what the load left undrawn is a one-off that shares the
	// cores with them.
	t0 := time.Now()
	if _, err := invAwait(ctx, p, base, "the daemon's first compile", 10*time.Minute, "analyzer_d4_log_last_compile_timestamp_seconds"); err != nil {
		return err
	}
	b.say("investigate: the daemon's first compile ended %.1f s after it served", time.Since(t0).Seconds())
	var wrong []string
	check := func(q invQuestion, body []byte) {
		r.Checked++
		if msg := q.check(d, body); msg != "" {
			wrong = append(wrong, msg)
		}
	}
	// The first questions find nothing kept in the daemon: they read
	// every set from Redis, and set off the warm-up, which reads the
	// closed periods into memory in the background. The timed questions
	// come once it has ended, as they would on a daemon that has run for
	// a while.
	for i, q := range []invQuestion{
		{ep: "top", kind: stats.KindSrc, from: invDays - 35, to: invDays - 6},
		{ep: "top", kind: stats.KindSrc, from: -5, to: invDays - 6},
	} {
		body, took, err := invAsk(ctx, client, q.url(base, d))
		if err != nil {
			return err
		}
		check(q, body)
		r.ColdMs[i] = float64(took.Microseconds()) / 1000
	}
	b.say("investigate: the first questions, before the warm-up: top over 30 days %.1f ms, over 365 days %.1f ms", r.ColdMs[0], r.ColdMs[1])
	got, err := invAwait(ctx, p, base, "the daemon's warm-up", 30*time.Minute, "analyzer_d4_log_api_set_cache_warmed_seconds", "analyzer_d4_log_api_set_cache_bytes")
	if err != nil {
		return err
	}
	r.WarmSeconds, r.WarmBytes = got[0], got[1]
	b.say("investigate: the warm-up read %s MiB in %.1f s", thousands(r.WarmBytes/(1<<20)), r.WarmSeconds)
	// Automatic AOF rewrites are held off while questions are timed, as
	// for the ingestion runs below: a rewrite starts with a fork, which
	// stops the counting Redis for as long as it copies its page tables
	// (tens of milliseconds at a gigabyte, reported below), and a
	// question that lands on it waits as long, whatever the daemon does.
	waited, err := b.cnt.quietPersistence(ctx, 5*time.Minute)
	if err != nil {
		return err
	}
	restore, err := b.cnt.holdRewrites()
	if err != nil {
		return err
	}
	defer func() {
		if restore != nil {
			_ = restore()
		}
	}()
	b.say("investigate: timing questions (after %.1f s waiting for an AOF rewrite to end; automatic rewrites held off)", waited.Seconds())
	timed := func(qs []invQuestion) (float64, error) {
		var worst time.Duration
		for _, q := range qs {
			body, took, err := invAsk(ctx, client, q.url(base, d))
			if err != nil {
				return 0, err
			}
			worst = max(worst, took)
			check(q, body)
		}
		return float64(worst.Microseconds()) / 1000, nil
	}
	kinds3 := []string{stats.KindUser, stats.KindSrc, stats.KindHost}
	// 30 days ending on different days, each kind: none in the cache.
	var qs []invQuestion
	for i := 0; i < invTries; i++ {
		to := invDays - 2 - 17*i
		qs = append(qs, invQuestion{ep: "top", kind: kinds3[i%3], from: to - 29, to: to})
	}
	qs = append(qs, invQuestion{ep: "top", kind: stats.KindSrc, from: invDays - 30, to: invDays - 1})
	if r.Top30Ms, err = timed(qs); err != nil {
		return err
	}
	b.say("investigate: top over 30 days, slowest %.1f ms", r.Top30Ms)
	// 365 days not aligned to a year: the year of data shifted by a few
	// days, so each covers eleven or twelve whole months and days at both
	// ends.
	qs = qs[:0]
	for i := 0; i < invTries; i++ {
		qs = append(qs, invQuestion{ep: "top", kind: kinds3[i%3], from: -i * 3, to: invDays - 1 - i*3})
	}
	qs = append(qs, invQuestion{ep: "top", kind: stats.KindSrc, from: -1, to: invDays - 2})
	if r.Top365Ms, err = timed(qs); err != nil {
		return err
	}
	b.say("investigate: top over 365 days, slowest %.1f ms", r.Top365Ms)
	// The same closed days again: from the cache.
	closed := invQuestion{ep: "top", kind: stats.KindSrc, from: invDays - 40, to: invDays - 11}
	if _, err := timed([]invQuestion{closed}); err != nil {
		return err
	}
	var cachedWorst float64
	for i := 0; i < 20; i++ {
		ms, err := timed([]invQuestion{closed})
		if err != nil {
			return err
		}
		cachedWorst = max(cachedWorst, ms)
	}
	r.CachedMs = cachedWorst
	b.say("investigate: cached, slowest %.1f ms", r.CachedMs)
	// Drill and series over the year for the busiest source and user name
	// and for an ordinary one.
	drills := []invQuestion{
		{ep: "drill", kind: stats.KindUser, value: invUserName(0), of: stats.KindSrc, from: 0, to: invDays - 1},
		{ep: "drill", kind: stats.KindSrc, value: invSrcName(0), of: stats.KindUser, from: 0, to: invDays - 1},
		{ep: "drill", kind: stats.KindUser, value: invUserName(500), of: stats.KindHost, from: 0, to: invDays - 1},
		{ep: "drill", kind: stats.KindSrc, value: invSrcName(uint32(d.srcs / 3)), of: stats.KindUser, from: 0, to: invDays - 1},
	}
	if r.DrillMs, err = timed(drills); err != nil {
		return err
	}
	b.say("investigate: drill over a year, slowest %.1f ms", r.DrillMs)
	series := []invQuestion{
		{ep: "series", kind: stats.KindUser, value: invUserName(0), from: 0, to: invDays - 1},
		{ep: "series", kind: stats.KindSrc, value: invSrcName(0), from: 0, to: invDays - 1},
		{ep: "series", kind: stats.KindHost, value: invHostName(7), from: 0, to: invDays - 1},
	}
	if r.SeriesMs, err = timed(series); err != nil {
		return err
	}
	r.Wrong = len(wrong)
	b.say("investigate: series over a year, slowest %.1f ms; %d of %d answers wrong", r.SeriesMs, r.Wrong, r.Checked)
	err, restore = restore(), nil
	if err != nil {
		return err
	}
	if m, err := b.cnt.info("stats"); err == nil {
		r.ForkStallMs, _ = strconv.ParseFloat(m["latest_fork_usec"], 64)
		r.ForkStallMs /= 1000
	}

	if err := b.invIngest(ctx, p, base, d, r); err != nil {
		return err
	}
	if err := p.stop(ctx, 10*time.Minute); err != nil {
		return err
	}
	// The memory with drill-down is weighed now, on everything counted
	// (the year and the queue runs), then again without its keys.
	if r.MemOnBytes, err = b.cnt.usedMemory(); err != nil {
		return err
	}
	if r.MemOffBytes, err = b.invWithoutDrill(ctx); err != nil {
		return err
	}
	r.MemRatio = float64(r.MemOnBytes) / float64(r.MemOffBytes)

	rep := b.rep
	ms := func(v float64) string { return fmt.Sprintf("%.1f ms", v) }
	rep.info("investigate", "year loaded with -f (drill-down on)", fmt.Sprintf("%s attempts, %s sources, %d user names, in %.0f s",
		thousands(float64(n)), thousands(float64(d.srcs)), invUsers, r.LoadSeconds))
	rep.info("investigate", "longest counting script of the -f load (SLOWLOG)", ms(r.LoadLongestScriptMs))
	rep.info("investigate", "first questions, nothing kept yet: top over 30 / 365 days", fmt.Sprintf("%s / %s", ms(r.ColdMs[0]), ms(r.ColdMs[1])))
	rep.info("investigate", "warm-up they set off (closed periods read into the daemon)", fmt.Sprintf("%s MiB in %.1f s", thousands(r.WarmBytes/(1<<20)), r.WarmSeconds))
	rep.info("investigate", "the counting Redis's latest fork (AOF rewrite; held off while questions are timed)", ms(r.ForkStallMs))
	rep.target("investigate", "top over 30 days, slowest of 6 uncached", ms(r.Top30Ms), fmt.Sprintf("≤ %d ms", invTop30Ms), r.Top30Ms <= invTop30Ms)
	rep.target("investigate", "top over 365 days not aligned to a year, slowest of 6 uncached", ms(r.Top365Ms), fmt.Sprintf("≤ %d ms", invTop365Ms), r.Top365Ms <= invTop365Ms)
	rep.target("investigate", "the same closed days asked again (cache), slowest of 20", ms(r.CachedMs), fmt.Sprintf("≤ %d ms", invCachedMs), r.CachedMs <= invCachedMs)
	rep.target("investigate", "drill over a year (busiest and ordinary source and user), slowest", ms(r.DrillMs), fmt.Sprintf("≤ %d ms", invDrillMs), r.DrillMs <= invDrillMs)
	rep.target("investigate", "series over a year, slowest of 3", ms(r.SeriesMs), fmt.Sprintf("≤ %d ms", invSeriesMs), r.SeriesMs <= invSeriesMs)
	rep.target("investigate", "queue ingestion while 4 clients ask without pause", fmt.Sprintf("%s lines/s of %s alone (%.2f ×, %s questions answered)",
		thousands(r.QueriedLinesPerS), thousands(r.AloneLinesPerS), r.KeepRatio, thousands(float64(r.ClientQuestions))),
		fmt.Sprintf("≥ %.2f ×", invKeepRatio), r.KeepRatio >= invKeepRatio)
	rep.info("investigate", "closed periods' sets kept by the daemon after the clients (default api_cache_mb)", fmt.Sprintf("%s MiB; %s sets taken from them, %s read from redis; daemon RSS %s MiB",
		thousands(r.SetCacheBytes/(1<<20)), thousands(r.SetsCached), thousands(r.SetsRead), thousands(r.DaemonRSS/(1<<20))))
	rep.info("investigate", fmt.Sprintf("longest counting script of those queue runs (SLOWLOG; batches of %d live lines)", b.o.batch), ms(r.IngestLongestScriptMs))
	rep.target("investigate", "BUSY replies of the counting Redis (a script over 5 s) while ingesting", fmt.Sprint(r.BusyReplies), "0", r.BusyReplies == 0)
	rep.target("investigate", "a line pushed to the idle queue, counted (while queried), slowest of 5", ms(r.IdleLineMs), fmt.Sprintf("≤ %d ms", invIdleLineMs), r.IdleLineMs <= invIdleLineMs)
	rep.target("investigate", "counting redis memory, drill-down on / off", fmt.Sprintf("%.2f × (%s / %s MiB)", r.MemRatio,
		thousands(mib(r.MemOnBytes)), thousands(mib(r.MemOffBytes))), fmt.Sprintf("≤ %.1f ×", invMemRatio), r.MemRatio <= invMemRatio)
	rep.info("investigate", "queue lines/s end to end, drill-down off / on", fmt.Sprintf("%s / %s (%.2f ×)",
		thousands(r.QueueOffLinesPerS), thousands(r.QueueLinesPerS), r.QueueLinesPerS/r.QueueOffLinesPerS))
	if c := rep.Ceiling; c != nil {
		r.QueueOverCeiling = r.QueueLinesPerS / c.NaiveLinesPerS
		rep.target("investigate", "queue lines/s end to end, drill-down on", fmt.Sprintf("%s (%.2f × ceiling)", thousands(r.QueueLinesPerS), r.QueueOverCeiling),
			fmt.Sprintf("≥ %d × ceiling = %s", invCeilingRate, thousands(invCeilingRate*c.NaiveLinesPerS)), r.QueueOverCeiling >= invCeilingRate)
	} else {
		rep.info("investigate", "queue lines/s end to end, drill-down on", thousands(r.QueueLinesPerS)+" (no ceiling: the ceiling section was skipped)")
	}
	for _, w := range wrong[:min(len(wrong), 10)] {
		b.say("investigate: WRONG %s", w)
	}
	rep.correct("investigate", "timed answers equal the bench's own count", fmt.Sprintf("%d of %d wrong", r.Wrong, r.Checked), r.Wrong == 0,
		fmt.Sprintf("%d API answers differ from the bench's own count, first: %v", r.Wrong, wrong[:min(len(wrong), 3)]))
	rep.correct("investigate", "queue runs, drill-down off and on: DB 1 equals the expected statistics", fmt.Sprint(r.QueueExact), r.QueueExact,
		"DB 1 after the queue run with drill-down on differs from the expected statistics")
	return nil
}

// invWithoutDrill returns what the counting Redis's used_memory, on with
// drill-down data, would be without it: the same Redis once every
// drill-down key (all that drilldown = false does not write) is deleted.
// Deleting them is the same data without a second load of the year, which
// would double the section's time.
func (b *bench) invWithoutDrill(ctx context.Context) (int64, error) {
	c, err := b.cnt.dial(stats.StatsDB)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	b.say("investigate: deleting the drill-down keys, to weigh the counting Redis without them")
	keys, err := scanKeys(c, stats.LinksPattern)
	if err != nil {
		return 0, err
	}
	for i := 0; i < len(keys); i += 1000 {
		args := make([]any, 0, 1000)
		for _, k := range keys[i:min(i+1000, len(keys))] {
			args = append(args, k)
		}
		if _, err := c.Do("DEL", args...); err != nil {
			return 0, fmt.Errorf("delete drill-down keys: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
	b.say("investigate: %s drill-down keys deleted", thousands(float64(len(keys))))
	return b.cnt.usedMemory()
}

// invWaitServing waits until the daemon's web server answers.
func invWaitServing(ctx context.Context, client *http.Client, base string) error {
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := client.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon's web server at %s did not answer within 30 s", base)
		}
		if err := waitCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// invLines makes m queue lines of today, from sources and user names the
// year has and new ones, numbered from seq so that no line repeats.
func (d *invData) invLines(m, seq int, seed uint64) []workload.Line {
	r := rand.New(rand.NewPCG(seed, seed+1))
	now := time.Now().UTC()
	midnight := now.Truncate(24 * time.Hour)
	out := make([]workload.Line, m)
	for i := range out {
		// Earlier today, or late yesterday just after midnight.
		t := now.Add(-time.Duration(r.Int64N(int64(max(now.Sub(midnight), time.Hour)))))
		src := invSrcName(uint32(d.srcs + seq + i))
		if r.IntN(2) == 0 {
			src = invSrcName(uint32(r.IntN(d.srcs)))
		}
		user := invUserName(uint32(r.IntN(invUsers)))
		out[i] = workload.Line{Raw: []byte(fmt.Sprintf("%s q%d sshd[%d]: Invalid user %s from %s port %d",
			t.Format("2006-01-02T15:04:05Z"), r.IntN(10), 1000+(seq+i)/60000%60000, user, src, 1024+(seq+i)%60000)), Counts: true}
	}
	return out
}

// invIngest measures queue ingestion alone, then with four clients asking
// without pause, then the time an idle queue's line takes while they ask.
func (b *bench) invIngest(ctx context.Context, p *daemonProc, base string, d *invData, r *invResult) error {
	m := min(invQueueLines, max(d.srcs/10, 20000))
	years := []string{strconv.Itoa(d.first.Year()), strconv.Itoa(time.Now().UTC().Year())}
	years = slices.Compact(years)
	cnt, err := b.cnt.dial(stats.StatsDB)
	if err != nil {
		return err
	}
	defer cnt.Close()
	total, err := countedTotals(cnt, years)
	if err != nil {
		return err
	}
	run := func(label string, seq int) (float64, error) {
		lines := d.invLines(m, seq, uint64(seq)+7)
		waited, err := b.cnt.quietPersistence(ctx, 5*time.Minute)
		if err != nil {
			return 0, err
		}
		b.say("investigate: %s queue lines %s (after %.1f s waiting for an AOF rewrite to end)", thousands(float64(m)), label, waited.Seconds())
		// Where the time goes, for a run with questions against one
		// without: the daemon's CPU (counting and answering) and the
		// counting Redis's, per thousand lines.
		dcpu0 := p.liveCPUSeconds()
		rcpu0, err := b.cnt.cpuSeconds()
		if err != nil {
			return 0, err
		}
		t0 := time.Now()
		if err := b.push(ctx, lines); err != nil {
			return 0, err
		}
		total += int64(m)
		dr, err := b.drain(ctx, p, "investigate", years, total)
		if err != nil {
			return 0, err
		}
		rcpu1, err := b.cnt.cpuSeconds()
		if err != nil {
			return 0, err
		}
		secs := dr.at.Sub(t0).Seconds()
		dcpu := p.liveCPUSeconds() - dcpu0
		k := float64(m) / 1000
		b.say("investigate: %s: %.0f lines/s; CPU per 1,000 lines: daemon %.0f ms, counting redis %.0f ms; CPU use: daemon %.2f, counting redis %.2f cores",
			label, float64(m)/secs, dcpu/k*1000, (rcpu1-rcpu0)/k*1000, dcpu/secs, (rcpu1-rcpu0)/secs)
		return float64(m) / secs, nil
	}
	busy0 := b.busyReplies
	defer func() { r.BusyReplies = b.busyReplies - busy0 }()
	// The three timed runs add about 180,000 lines to the AOF: enough to
	// cross its rewrite threshold in one of them, which then runs at a
	// third of the speed for the rewrite's copy-on-write (README). Such a
	// rewrite, not the questions, made most earlier runs of this
	// comparison miss; it has nothing to do with what is compared.
	if _, err := b.cnt.quietPersistence(ctx, 5*time.Minute); err != nil {
		return err
	}
	restore, err := b.cnt.holdRewrites()
	if err != nil {
		return err
	}
	if err := b.cnt.scriptLog(); err != nil {
		return err
	}
	defer func() {
		if ms, _, err := b.cnt.longestScript(queueScripts); err == nil {
			r.IngestLongestScriptMs = ms
		}
	}()
	defer func() {
		if err := restore(); err != nil {
			b.say("investigate: %v", err)
		}
	}()
	if r.AloneLinesPerS, err = run("alone", 0); err != nil {
		return err
	}
	qctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var asked atomic.Int64
	var failed atomic.Value
	for c := 0; c < invClients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			client := &http.Client{Timeout: time.Minute}
			rr := rand.New(rand.NewPCG(uint64(c), 99))
			kinds3 := []string{stats.KindUser, stats.KindSrc, stats.KindHost}
			for qctx.Err() == nil {
				// Ranges of every length, so that most are not cached.
				from := rr.IntN(invDays)
				to := from + rr.IntN(invDays-from)
				q := invQuestion{ep: "top", kind: kinds3[rr.IntN(3)], from: from, to: to}
				switch rr.IntN(4) {
				case 0:
					q = invQuestion{ep: "drill", kind: stats.KindUser, value: invUserName(uint32(rr.IntN(20))), of: stats.KindSrc, from: from, to: to}
				case 1:
					q = invQuestion{ep: "series", kind: stats.KindSrc, value: invSrcName(uint32(rr.IntN(100))), from: from, to: to}
				}
				if _, _, err := invAsk(qctx, client, q.url(base, d)); err != nil {
					if qctx.Err() == nil {
						failed.CompareAndSwap(nil, err)
					}
					return
				}
				asked.Add(1)
			}
		}(c)
	}
	defer func() { stop(); wg.Wait() }()
	if r.QueriedLinesPerS, err = run("while 4 clients ask", m); err != nil {
		return err
	}
	// One line at a time into the idle queue, while the clients go on.
	for i := 0; i < 5; i++ {
		line := d.invLines(1, 2*m+i, uint64(i)+1000)
		t0 := time.Now()
		if err := b.push(ctx, line); err != nil {
			return err
		}
		total++
		for {
			n, err := countedTotals(cnt, years)
			if isBusy(err) {
				b.busyReplies++
				if err := waitCtx(ctx, time.Millisecond); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			if n == total {
				break
			}
			if time.Since(t0) > time.Minute {
				return fmt.Errorf("a line pushed to the idle queue was not counted within a minute; the daemon's log ends:\n%s", p.tail())
			}
			if err := waitCtx(ctx, time.Millisecond); err != nil {
				return err
			}
		}
		r.IdleLineMs = max(r.IdleLineMs, float64(time.Since(t0).Microseconds())/1000)
		if err := waitCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	stop()
	wg.Wait()
	r.ClientQuestions = asked.Load()
	got, err := invMetrics(ctx, base, "analyzer_d4_log_api_set_cache_bytes", "analyzer_d4_log_api_sets_cached_total",
		"analyzer_d4_log_api_sets_read_total", "process_resident_memory_bytes")
	if err != nil {
		return err
	}
	r.SetCacheBytes, r.SetsCached, r.SetsRead, r.DaemonRSS = got[0], got[1], got[2], got[3]
	if err, ok := failed.Load().(error); ok {
		return fmt.Errorf("a client's question failed while ingesting: %w", err)
	}
	// Alone again: the figure alone is the mean of the runs before and
	// after, so that a machine getting busier or quieter meanwhile moves
	// both sides of the ratio.
	again, err := run("alone again", 2*m+5)
	if err != nil {
		return err
	}
	r.AloneLinesPerS = (r.AloneLinesPerS + again) / 2
	r.KeepRatio = r.QueriedLinesPerS / r.AloneLinesPerS
	b.say("investigate: ingestion %.0f lines/s with the clients, %.0f alone (%.2f ×); idle line %.1f ms; %d BUSY replies",
		r.QueriedLinesPerS, r.AloneLinesPerS, r.KeepRatio, r.IdleLineMs, b.busyReplies-busy0)
	return nil
}

// invQueue is the queue section's run with drill-down off, then on (the
// default): the same -lines realistic lines through an empty counting
// Redis, timed from daemon start to the last attempt counted, and checked
// key by key.
func (b *bench) invQueue(ctx context.Context, r *invResult) error {
	lines := workload.CapValues(workload.Generate(workload.Options{
		Lines: b.o.lines, Ref: time.Now(), Loc: time.UTC, Days: 300,
		Users: 500, Sources: 50000, Hosts: 50, Noise: 0.3, Seed: 1,
	}), config.DefaultMaxValueBytes)
	want := workload.Expect(lines, time.UTC)
	r.QueueExact = true
	for _, drill := range []bool{false, true} {
		if err := b.flushAll(b.cnt); err != nil {
			return err
		}
		if err := b.flushAll(b.d4); err != nil {
			return err
		}
		conf, _, err := b.invConf(fmt.Sprintf("conf-investigate-queue-%t", drill), drill)
		if err != nil {
			return err
		}
		if err := b.push(ctx, lines); err != nil {
			return err
		}
		b.say("investigate: %s lines through the queue, drilldown = %t", thousands(float64(len(lines))), drill)
		// The previous run's garbage is collected now, not while timing.
		runtime.GC()
		t0 := time.Now()
		p, err := startDaemon(ctx, b.bin, conf, filepath.Join(b.tmp, fmt.Sprintf("run-investigate-queue-%t", drill)))
		if err != nil {
			return err
		}
		dr, err := b.drain(ctx, p, "investigate", yearsOf(want), int64(want.Attempts))
		if err != nil {
			p.kill()
			return err
		}
		rate := float64(len(lines)) / dr.at.Sub(t0).Seconds()
		if drill {
			r.QueueLinesPerS = rate
		} else {
			r.QueueOffLinesPerS = rate
		}
		if err := p.stop(ctx, 5*time.Minute); err != nil {
			return err
		}
		diffs, err := b.checkDB1(want)
		if err != nil {
			return err
		}
		b.showDiffs("investigate", diffs)
		r.QueueExact = r.QueueExact && len(diffs) == 0
	}
	return nil
}
