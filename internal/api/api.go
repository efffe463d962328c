// Package api answers the investigation questions of SPEC §10 on the
// daemon's web server: /api/v1/top (a kind's ranking over any range of
// days), /api/v1/drill (the values of another kind that went with one
// value) and /api/v1/series (one value's attempts on every day of a range).
//
// Answers are exact: they are sums of the counting Redis's own sets, never
// samples. A range is covered by the fewest sets that add up to it: a whole
// year's set for each year it covers whole, a whole month's for each month,
// and day sets for the rest, so that a year not aligned to January costs
// about thirty day sets and eleven months rather than 365 days. Only
// closed periods are read whole (those that ended before yesterday in the
// configured zone); today and yesterday, which are still being counted
// into, are read from a copy (stats.ReadSets).
//
// The merging happens here, in the daemon, from chunked reads: no command
// that costs Redis time in proportion to the range runs there, so a
// question over ten years never holds up counting for more than one chunk.
// At most Computing() questions are computed at once; the others wait
// (within the web server's timeouts).
//
// Reading is still Redis time, and Redis has one core, which counting
// needs: a question over a year reads hundreds of thousands of members.
// So the sets of closed periods are kept in the daemon between questions
// (setCache, within Options.SetCacheBytes), each with its period's total
// when it was read, and only read again once something was counted into
// the period since; a question over a year then reads from Redis only
// today's and yesterday's sets and the totals.
//
// Answers of top and drill are cached with the attempts total of every
// period they were computed from (alog:totals, written by the same script
// as the rankings): a period's total grows whenever anything is counted
// into it, so an answer whose periods' totals are unchanged is still
// exact, and a backfill into a closed day invalidates exactly the answers
// that cover it.
package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
)

// Prefix is where the API is served.
const Prefix = "/api/v1/"

// Store is what the API reads from the counting Redis.
type Store interface {
	ReadSets(ctx context.Context, keys []string, live func(key string) bool, size func(total int64), fn func(key string, members [][]byte, counts []int64) error) error
	ReadStrings(ctx context.Context, keys []string, fn func(key string, b []byte) error) error
	Scores(ctx context.Context, keys []string, member string) ([]int64, error)
	PeriodTotals(ctx context.Context, periods []string) ([]int64, error)
	// PrunedDays tells which days were pruned by retention (SPEC §12).
	PrunedDays(ctx context.Context, days []string) ([]bool, error)
}

// Options configure the API.
type Options struct {
	Store Store
	// Location is the configured zone: days are its calendar days, and
	// "today" (which decides what is still being counted into) is its.
	Location *time.Location
	Now      func() time.Time
	// NoDrill says drill-down data is not recorded (drilldown = false):
	// /api/v1/drill answers 400 saying so.
	NoDrill bool
	// Kinds are the kinds the daemon counts: kind and of accept them and
	// only them, so country and asn (SPEC §13) are questions exactly when
	// their database is configured. The zero Set is the three kinds of
	// every daemon.
	Kinds kinds.Set
	// SetCacheBytes bounds the memory of the closed periods' sets kept in
	// the daemon between questions (setCache): 0 means
	// DefaultSetCacheBytes, a negative value keeps none.
	SetCacheBytes int64
	Log           *slog.Logger
}

// Computing bounds the questions computed at once: half the cores the
// daemon may use, at least one. A question over a year merges hundreds of
// thousands of values, most of a core for most of a second, and the
// counting (parsing in the daemon, the scripts in Redis) must keep the
// other half: on two cores, one question at a time; the others wait their
// turn within the web server's timeouts.
func Computing() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// readers is how many connections one question reads its sets over.
const readers = 2

// Connections is how many counting-Redis connections the API uses at most
// (its Store's pool size): the questions computed at once, and one more
// for the cheap reads (totals, series) that do not wait for a slot.
func Connections() int { return Computing()*readers + 1 }

// API is the http.Handler of everything under Prefix.
type API struct {
	o     Options
	slots chan struct{} // a token per question being computed
	cache *cache
	sets  *setCache
	// asked is closed at the first question, which starts the warm-up
	// (Warm); warming is true while it reads.
	asked       chan struct{}
	askOnce     sync.Once
	warming     atomic.Bool
	warmedNanos atomic.Int64 // how long the ended warm-up took
	warmRetry   time.Duration
}

// New returns the API.
func New(o Options) (*API, error) {
	if o.Store == nil {
		return nil, errors.New("investigation api: no store")
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	budget := o.SetCacheBytes
	switch {
	case budget == 0:
		budget = DefaultSetCacheBytes
	case budget < 0:
		budget = 0
	}
	return &API{o: o, slots: make(chan struct{}, Computing()), cache: newCache(cacheEntries), sets: newSetCache(budget), asked: make(chan struct{}), warmRetry: warmRetry}, nil
}

// SetCacheStats reports the bytes of the closed periods' sets kept between
// questions, and how many sets questions took from there (hits) or read
// from the counting Redis (misses: not kept, or counted into since).
func (a *API) SetCacheStats() (bytes, hits, misses int64) { return a.sets.stats() }

// ServeHTTP answers GET requests under Prefix.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ep endpoint
	switch r.URL.Path {
	case Prefix + "top":
		ep = epTop
	case Prefix + "drill":
		ep = epDrill
	case Prefix + "series":
		ep = epSeries
	default:
		writeError(w, http.StatusNotFound, "path: "+printable(r.URL.Path)+" is not a question; want "+Prefix+"top, "+Prefix+"drill or "+Prefix+"series")
		return
	}
	q, err := parseQuery(ep, r.URL.RawQuery, a.o.Kinds.Has, a.o.Kinds.Names())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if ep == epDrill && a.o.NoDrill {
		writeError(w, http.StatusBadRequest, "of: drill-down is turned off (drilldown = false in analyzer.toml), so which values went together is not recorded; set drilldown = true and run analyzer-d4-log -F to record it")
		return
	}
	a.askOnce.Do(func() { close(a.asked) })
	ctx := r.Context()
	switch ep {
	case epSeries:
		err = a.serveSeries(ctx, w, q)
	default:
		err = a.serveRanking(ctx, w, q)
	}
	var refused *badRequest
	if errors.As(err, &refused) {
		writeError(w, http.StatusBadRequest, refused.msg)
		return
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		a.o.Log.Warn("investigation api question failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, "the counting redis could not answer: "+err.Error()+"; try again once it is reachable (see /healthz)")
	}
}

// writeError sends {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}

// item is one ranked value as JSON: value_b64 only for invalid UTF-8.
type item struct {
	Value    string `json:"value"`
	ValueB64 string `json:"value_b64,omitempty"`
	Count    int64  `json:"count"`
}

func b64IfInvalid(v string) string {
	if utf8.ValidString(v) {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(v))
}

type rankingJSON struct {
	Kind     string `json:"kind"`
	Of       string `json:"of,omitempty"`
	Value    string `json:"value,omitempty"`
	ValueB64 string `json:"value_b64,omitempty"`
	From     string `json:"from"`
	To       string `json:"to"`
	Attempts int64  `json:"attempts"`
	Distinct int64  `json:"distinct"`
	Top      []item `json:"top"`
}

// drillJSON keeps "value" even when empty: drill names a value.
type drillJSON struct {
	Kind     string `json:"kind"`
	Of       string `json:"of"`
	Value    string `json:"value"`
	ValueB64 string `json:"value_b64,omitempty"`
	From     string `json:"from"`
	To       string `json:"to"`
	Attempts int64  `json:"attempts"`
	Distinct int64  `json:"distinct"`
	Top      []item `json:"top"`
}

type dayJSON struct {
	Day   string `json:"day"`
	Count int64  `json:"count"`
}

type seriesJSON struct {
	Kind     string    `json:"kind"`
	Value    string    `json:"value"`
	ValueB64 string    `json:"value_b64,omitempty"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Days     []dayJSON `json:"days"`
}

func writeJSON(w http.ResponseWriter, v interface{}) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// days lists the calendar days of the range.
func days(from, to time.Time) []string {
	out := make([]string, 0, dayCount(from, to))
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		out = append(out, dayName(d))
	}
	return out
}

// liveFrom is the first day still counted into: yesterday in the
// configured zone (a line of just before midnight arrives after it).
func (a *API) liveFrom() string {
	y, m, d := a.o.Now().In(a.o.Location).Date()
	return dayName(time.Date(y, m, d-1, 0, 0, 0, 0, time.UTC))
}

// cover returns the fewest periods that add up to the range: whole years
// and months where the range covers them whole and they ended before
// liveFrom, days for the rest.
func cover(from, to time.Time, liveFrom string) []string {
	var out []string
	for d := from; !d.After(to); {
		y, m, day := d.Date()
		if m == time.January && day == 1 {
			end := time.Date(y, time.December, 31, 0, 0, 0, 0, time.UTC)
			if !end.After(to) && dayName(end) < liveFrom {
				out = append(out, d.Format("2006"))
				d = end.AddDate(0, 0, 1)
				continue
			}
		}
		if day == 1 {
			end := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC)
			if !end.After(to) && dayName(end) < liveFrom {
				out = append(out, d.Format("200601"))
				d = end.AddDate(0, 0, 1)
				continue
			}
		}
		out = append(out, dayName(d))
		d = d.AddDate(0, 0, 1)
	}
	return out
}

// acquire takes a computing slot, or fails when the request goes away.
func (a *API) acquire(ctx context.Context) (func(), error) {
	select {
	case a.slots <- struct{}{}:
		return func() { <-a.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// isLive tells ReadSets which keys are still counted into: those of a day
// at or after liveFrom (months and years are only read when closed).
func isLive(liveFrom string) func(key string) bool {
	return func(key string) bool {
		day := key
		if len(day) < 8 || day[:8] < liveFrom {
			return false
		}
		for i := 0; i < 8; i++ {
			if day[i] < '0' || day[i] > '9' {
				return false
			}
		}
		return true
	}
}
