package misp_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/misp"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/uuidv5"
)

const orgUUID = "55f6ea5e-2c60-40e5-964f-47a8950d210f"

// template holds the facts of objects/authentication-failure-report/
// definition.json in the MISP object repository that an object must meet:
// each attribute's MISP type, the required ones, and one of which must be
// there.
var template = struct {
	name, uuid, meta string
	version          string
	types            map[string]string
	required         []string
	oneOf            []string
}{
	name: "authentication-failure-report", uuid: "9b39afe0-9809-4fe0-8a0b-4cec2b140dd2", meta: "network", version: "4",
	types:    map[string]string{"ip-dst": "ip-dst", "ip-src": "ip-src", "total": "counter", "type": "text", "username": "text"},
	required: []string{"total", "type"},
	oneOf:    []string{"ip-src", "ip-dst", "username"},
}

type attr struct {
	UUID               string `json:"uuid"`
	ObjectRelation     string `json:"object_relation"`
	Category           string `json:"category"`
	Type               string `json:"type"`
	Value              string `json:"value"`
	ToIDS              bool   `json:"to_ids"`
	DisableCorrelation bool   `json:"disable_correlation"`
	Timestamp          string `json:"timestamp"`
}

type obj struct {
	Name            string `json:"name"`
	MetaCategory    string `json:"meta-category"`
	TemplateUUID    string `json:"template_uuid"`
	TemplateVersion string `json:"template_version"`
	UUID            string `json:"uuid"`
	Timestamp       string `json:"timestamp"`
	Attribute       []attr `json:"Attribute"`
}

type event struct {
	Event struct {
		UUID          string `json:"uuid"`
		Info          string `json:"info"`
		Date          string `json:"date"`
		Analysis      string `json:"analysis"`
		ThreatLevelID string `json:"threat_level_id"`
		Distribution  string `json:"distribution"`
		Published     bool   `json:"published"`
		Timestamp     string `json:"timestamp"`
		Orgc          struct {
			Name string `json:"name"`
			UUID string `json:"uuid"`
		} `json:"Orgc"`
		Tag []struct {
			Name string `json:"name"`
		} `json:"Tag"`
		Attribute []attr `json:"Attribute"`
		Object    []obj  `json:"Object"`
	} `json:"Event"`
}

type manifestEntry struct {
	Orgc struct {
		Name string `json:"name"`
		UUID string `json:"uuid"`
	} `json:"Orgc"`
	Tag []struct {
		Name string `json:"name"`
	} `json:"Tag"`
	Info          string `json:"info"`
	Date          string `json:"date"`
	Analysis      int    `json:"analysis"`
	ThreatLevelID int    `json:"threat_level_id"`
	Timestamp     int64  `json:"timestamp"`
}

func pool(addr string, db int) *redis.Pool {
	return &redis.Pool{
		Dial: func() (redis.Conn, error) {
			return redis.Dial("tcp", addr, redis.DialDatabase(db), redis.DialReadTimeout(10*time.Second))
		},
		MaxActive: 8, MaxIdle: 8, Wait: true,
	}
}

// world is a counting Redis, the lines the test counted into it (so the
// test knows every answer independently) and a clock it moves.
type world struct {
	t     *testing.T
	store *stats.Store
	loc   *time.Location
	now   time.Time
	// counts: day → kind → value → attempts, as the test counted them.
	counts map[string]map[string]map[string]int64
}

func newWorld(t *testing.T) *world {
	srv := redistest.Start(t, redistest.Options{})
	s := &stats.Store{Stats: pool(srv.Addr(), stats.StatsDB), Attempts: pool(srv.Addr(), stats.AttemptsDB)}
	t.Cleanup(func() { s.Stats.Close(); s.Attempts.Close() })
	loc, err := time.LoadLocation("Europe/Luxembourg")
	if err != nil {
		t.Fatal(err)
	}
	// Mid-afternoon of the real today, so that the days are real days of
	// any year and "today" is never at a day's edge.
	y, m, d := time.Now().In(loc).Date()
	return &world{t: t, store: s, loc: loc, now: time.Date(y, m, d, 15, 0, 0, 0, loc), counts: map[string]map[string]map[string]int64{}}
}

// day is the name of the day ago days before today.
func (w *world) day(ago int) string {
	y, m, d := w.now.Date()
	return stats.PeriodOf(time.Date(y, m, d-ago, 12, 0, 0, 0, w.loc)).Day
}

// count counts n attempts of user from src on the day ago days back.
func (w *world) count(ago int, user, src string, n int) {
	w.t.Helper()
	y, m, d := w.now.Date()
	at := time.Date(y, m, d-ago, 10, 30, 0, 0, w.loc)
	b := stats.NewBatch()
	for range n {
		b.Add(at, []byte("sensor1"), []byte(user), []byte(src))
	}
	if err := w.store.Apply(context.Background(), b, &stats.Applied{Queue: "q", Slot: 0, ID: fmt.Sprint(time.Now().UnixNano())}); err != nil {
		w.t.Fatal(err)
	}
	day := stats.PeriodOf(at).Day
	if w.counts[day] == nil {
		w.counts[day] = map[string]map[string]int64{stats.KindUser: {}, stats.KindSrc: {}}
	}
	w.counts[day][stats.KindUser][user] += int64(n)
	w.counts[day][stats.KindSrc][src] += int64(n)
}

// top is the test's own ranking: count descending, then value bytewise.
func (w *world) top(day, kind string, n int) []stats.Entry {
	var out []stats.Entry
	for v, c := range w.counts[day][kind] {
		out = append(out, stats.Entry{Member: v, Count: c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Member < out[j].Member
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func (w *world) feed(dir string, top, days int) *misp.Feed {
	return &misp.Feed{
		Store: w.store, Dir: dir, Location: w.loc, Now: func() time.Time { return w.now },
		Log: slog.New(slog.DiscardHandler),
		Settings: misp.Settings{
			OrgName: "CIRCL", OrgUUID: orgUUID, InfoPrefix: "sshd invalid users", Tags: []string{"tlp:clear", "d4"},
			Distribution: 1, Top: top, Days: days,
		},
	}
}

// snapshot is every file of dir with its bytes and mtime.
type file struct {
	data  []byte
	mtime time.Time
}

func snapshot(t *testing.T, dir string) map[string]file {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]file{}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = file{b, info.ModTime()}
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// checkFeed checks the feed in dir against the test's own counts: the
// manifest names exactly the event files, each event is right for its day
// and its objects meet the template, and hashes.csv holds the MD5 of every
// attribute value. It returns the events by day.
func (w *world) checkFeed(dir string, top int, wantDays []string) map[string]event {
	t := w.t
	t.Helper()
	var manifest map[string]manifestEntry
	readJSON(t, filepath.Join(dir, misp.ManifestFile), &manifest)
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	var eventFiles []string
	for _, f := range files {
		if filepath.Base(f) != misp.ManifestFile {
			eventFiles = append(eventFiles, strings.TrimSuffix(filepath.Base(f), ".json"))
		}
	}
	var named []string
	for id := range manifest {
		named = append(named, id)
	}
	sort.Strings(named)
	sort.Strings(eventFiles)
	if !slices.Equal(named, eventFiles) {
		t.Fatalf("manifest names %v; event files %v", named, eventFiles)
	}
	org, _ := uuidv5.Parse(orgUUID)
	events := map[string]event{}
	var wantHashes []string
	for _, day := range wantDays {
		id := misp.EventUUID(org, day).String()
		m, ok := manifest[id]
		if !ok {
			t.Fatalf("manifest has no event for %s (%s)", day, id)
		}
		var ev event
		readJSON(t, filepath.Join(dir, id+".json"), &ev)
		e := ev.Event
		iso := day[:4] + "-" + day[4:6] + "-" + day[6:]
		if e.UUID != id || e.Date != iso || e.Info != "sshd invalid users "+iso || e.Analysis != "2" || e.ThreatLevelID != "3" ||
			e.Distribution != "1" || e.Published || e.Orgc.Name != "CIRCL" || e.Orgc.UUID != orgUUID ||
			len(e.Tag) != 2 || e.Tag[0].Name != "tlp:clear" || e.Tag[1].Name != "d4" {
			t.Errorf("event of %s: %+v", day, e)
		}
		if m.Info != e.Info || m.Date != e.Date || m.Analysis != 2 || m.ThreatLevelID != 3 || strconv.FormatInt(m.Timestamp, 10) != e.Timestamp ||
			m.Orgc.UUID != orgUUID || len(m.Tag) != 2 {
			t.Errorf("manifest of %s = %+v; event %+v", day, m, e)
		}
		users := map[string]int64{}
		ips := map[string]int64{}
		for _, o := range e.Object {
			w.checkObject(o, e.Timestamp)
			rel := map[string]attr{}
			for _, a := range o.Attribute {
				rel[a.ObjectRelation] = a
			}
			n, _ := strconv.ParseInt(rel["total"].Value, 10, 64)
			if a, ok := rel["username"]; ok {
				users[a.Value] = n
			}
			if a, ok := rel["ip-src"]; ok {
				ips[a.Value] = n
			}
		}
		wantUsers := map[string]int64{}
		for _, en := range w.top(day, stats.KindUser, top) {
			if en.Member != "" { // MISP takes no empty value: left out, said in the comment
				wantUsers[strings.ToValidUTF8(en.Member, "\uFFFD")] = en.Count
			}
		}
		wantIPs := map[string]int64{}
		for _, en := range w.top(day, stats.KindSrc, top) {
			if a, ok := stats.SourceAddr(en.Member); ok {
				wantIPs[a.String()] += en.Count
			}
		}
		if fmt.Sprint(users) != fmt.Sprint(wantUsers) {
			t.Errorf("%s: user objects %v; want %v", day, users, wantUsers)
		}
		if fmt.Sprint(ips) != fmt.Sprint(wantIPs) {
			t.Errorf("%s: ip-src objects %v; want %v", day, ips, wantIPs)
		}
		for _, a := range e.Attribute {
			wantHashes = append(wantHashes, md5hex(a.Value)+","+id)
		}
		for _, o := range e.Object {
			for _, a := range o.Attribute {
				wantHashes = append(wantHashes, md5hex(a.Value)+","+id)
			}
		}
		events[day] = ev
	}
	if len(manifest) != len(wantDays) {
		t.Errorf("manifest has %d events; want %d (%v)", len(manifest), len(wantDays), wantDays)
	}
	b, err := os.ReadFile(filepath.Join(dir, misp.HashesFile))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(wantHashes) == 0 {
		got = nil
	}
	sort.Strings(got)
	sort.Strings(wantHashes)
	if !slices.Equal(got, wantHashes) {
		t.Errorf("hashes.csv has %d lines; want %d:\n%s", len(got), len(wantHashes), b)
	}
	return events
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// checkObject holds an object to the template's facts.
func (w *world) checkObject(o obj, ts string) {
	t := w.t
	t.Helper()
	if o.Name != template.name || o.TemplateUUID != template.uuid || o.TemplateVersion != template.version || o.MetaCategory != template.meta {
		t.Errorf("object %+v does not name the template", o)
	}
	if o.Timestamp != ts {
		t.Errorf("object timestamp %s; event %s", o.Timestamp, ts)
	}
	rel := map[string]attr{}
	for _, a := range o.Attribute {
		want, ok := template.types[a.ObjectRelation]
		if !ok || a.Type != want {
			t.Errorf("attribute %q of type %q; the template has %q", a.ObjectRelation, a.Type, want)
		}
		if _, dup := rel[a.ObjectRelation]; dup {
			t.Errorf("attribute %q twice in one object", a.ObjectRelation)
		}
		if a.Value == "" || a.UUID == "" || a.Timestamp != ts || a.Category == "" {
			t.Errorf("attribute %+v incomplete", a)
		}
		rel[a.ObjectRelation] = a
	}
	for _, r := range template.required {
		if _, ok := rel[r]; !ok {
			t.Errorf("object %s lacks required %q", o.UUID, r)
		}
	}
	n := 0
	for _, r := range template.oneOf {
		if _, ok := rel[r]; ok {
			n++
		}
	}
	if n != 1 {
		t.Errorf("object %s has %d of %v; want one", o.UUID, n, template.oneOf)
	}
	if rel["type"].Value != "ssh" {
		t.Errorf("type %q; want ssh", rel["type"].Value)
	}
	if _, err := strconv.ParseUint(rel["total"].Value, 10, 63); err != nil {
		t.Errorf("total %q is not a counter", rel["total"].Value)
	}
}

func TestFeed(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.count(0, "today", "192.0.2.99", 50) // the partial current day: never in the feed
	w.count(1, "root", "192.0.2.1", 7)
	w.count(1, "admin", "::ffff:198.51.100.7", 3)
	w.count(1, "admin", "2001:db8::1", 2)
	w.count(1, "oracle", "scanner.example.net", 9)
	w.count(1, "a<b>&\"c", "192.0.2.1", 1)
	w.count(1, "", "192.0.2.3", 1)
	w.count(1, "bad\xff\xfeutf8", "192.0.2.4", 1)
	w.count(2, "git", "203.0.113.9", 4)
	w.count(3, "ubuntu", "203.0.113.9", 2)
	w.count(3, "pi", "192.0.2.200", 1)
	w.count(45, "old", "192.0.2.45", 1) // past misp_days
	dir := t.TempDir()
	f := w.feed(dir, 4, 30)
	res, err := f.Write(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 3 || res.Written != 3 {
		t.Fatalf("first write %+v; want 3 events written", res)
	}
	days := []string{w.day(1), w.day(2), w.day(3)}
	events := w.checkFeed(dir, 4, days)
	e := events[w.day(1)].Event
	first, _ := strconv.ParseInt(e.Timestamp, 10, 64)
	if first != w.now.Unix() {
		t.Errorf("timestamp %d; want the clock's %d", first, w.now.Unix())
	}
	var values []string
	for _, o := range e.Object {
		values = append(values, o.Attribute[0].Value)
	}
	// The mapped address is written as IPv4, the host name is left out
	// of the objects and counted in the comment.
	if !slices.Contains(values, "198.51.100.7") || slices.Contains(values, "::ffff:198.51.100.7") || slices.Contains(values, "scanner.example.net") {
		t.Errorf("object values %q", values)
	}
	if len(e.Attribute) != 1 || e.Attribute[0].Type != "comment" ||
		!strings.Contains(e.Attribute[0].Value, "1 of the top 4 sources are host names") ||
		!strings.Contains(e.Attribute[0].Value, "the empty user name is among the top user names and is left out") {
		t.Errorf("event attributes %+v; want the comment counting the host name", e.Attribute)
	}
	org, _ := uuidv5.Parse(orgUUID)
	ev1, _ := uuidv5.Parse(e.UUID)
	for _, o := range e.Object {
		if o.Attribute[0].ObjectRelation == "username" && o.Attribute[0].Value == "root" {
			if want := uuidv5.New(ev1, "username\x00root").String(); o.UUID != want {
				t.Errorf("object uuid %s; want UUID v5 of the event and value %s", o.UUID, want)
			}
		}
	}
	if e.UUID != uuidv5.New(org, "analyzer-d4-log sshd "+e.Date).String() {
		t.Errorf("event uuid %s is not UUID v5 of the organisation and day", e.UUID)
	}

	// Deeper tops take the awkward values too: markup characters and
	// invalid UTF-8 (shown with U+FFFD, hashed as shown).
	wide := t.TempDir()
	if _, err := w.feed(wide, 10, 30).Write(ctx); err != nil {
		t.Fatal(err)
	}
	w.checkFeed(wide, 10, days)

	// A second write with no new line changes no file.
	before := snapshot(t, dir)
	w.now = w.now.Add(time.Hour)
	res, err = f.Write(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 0 || res.Manifest || res.Removed != 0 {
		t.Errorf("write with nothing new did %+v", res)
	}
	sameFiles(t, before, snapshot(t, dir))
	// Nor does a new process (nothing remembered), which reads every day
	// again.
	if _, err := w.feed(dir, 4, 30).Write(ctx); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, before, snapshot(t, dir))

	// A late line of a published day updates its event and its timestamp
	// (to the clock's, later than before); the others are untouched.
	w.count(2, "late", "203.0.113.10", 1)
	if res, err = f.Write(ctx); err != nil {
		t.Fatal(err)
	}
	if res.Written != 1 || !res.Manifest {
		t.Errorf("write after a late line did %+v; want one event and the manifest", res)
	}
	after := snapshot(t, dir)
	events = w.checkFeed(dir, 4, days)
	if ts := events[w.day(2)].Event.Timestamp; ts != strconv.FormatInt(w.now.Unix(), 10) {
		t.Errorf("late day's timestamp %s; want %d", ts, w.now.Unix())
	}
	if ts := events[w.day(1)].Event.Timestamp; ts != strconv.FormatInt(first, 10) {
		t.Errorf("untouched day's timestamp %s; want %d", ts, first)
	}
	id1 := events[w.day(1)].Event.UUID + ".json"
	if !bytes.Equal(before[id1].data, after[id1].data) || !before[id1].mtime.Equal(after[id1].mtime) {
		t.Errorf("event of an unchanged day was rewritten")
	}

	// -F: the statistics dropped and recounted from the stored attempts,
	// then a new process writes the feed: every byte stays.
	if _, err := w.store.RebuildWith(ctx, stats.RebuildOptions{Location: w.loc}); err != nil {
		t.Fatal(err)
	}
	w.now = w.now.Add(time.Minute)
	if _, err := w.feed(dir, 4, 30).Write(ctx); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, after, snapshot(t, dir))

	// A day that completes joins the feed; a day that leaves the window
	// leaves it, its file removed after the manifest no longer names it.
	w.now = w.now.AddDate(0, 0, 1)
	if res, err = f.Write(ctx); err != nil {
		t.Fatal(err)
	}
	w.checkFeed(dir, 4, []string{w.day(1), w.day(2), w.day(3), w.day(4)})
	short := w.feed(dir, 4, 2)
	if res, err = short.Write(ctx); err != nil {
		t.Fatal(err)
	}
	if res.Removed != 2 {
		t.Errorf("shrinking the window removed %d events; want 2", res.Removed)
	}
	w.checkFeed(dir, 4, []string{w.day(1), w.day(2)})
}

func sameFiles(t *testing.T, a, b map[string]file) {
	t.Helper()
	if len(a) != len(b) {
		t.Errorf("%d files, then %d", len(a), len(b))
	}
	for name, fa := range a {
		fb, ok := b[name]
		switch {
		case !ok:
			t.Errorf("%s is gone", name)
		case !bytes.Equal(fa.data, fb.data):
			t.Errorf("%s changed:\n%s\n%s", name, fa.data, fb.data)
		case !fa.mtime.Equal(fb.mtime):
			t.Errorf("%s was rewritten (mtime %v, then %v)", name, fa.mtime, fb.mtime)
		}
	}
}

// A clock set back must not give a changed event an older timestamp:
// MISP would not pull it.
func TestTimestampOnlyGrows(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.count(1, "root", "192.0.2.1", 1)
	dir := t.TempDir()
	f := w.feed(dir, 10, 30)
	if _, err := f.Write(ctx); err != nil {
		t.Fatal(err)
	}
	first := w.now.Unix()
	w.now = w.now.Add(-time.Hour)
	w.count(1, "root", "192.0.2.1", 1)
	if _, err := f.Write(ctx); err != nil {
		t.Fatal(err)
	}
	ev := w.checkFeed(dir, 10, []string{w.day(1)})
	if got := ev[w.day(1)].Event.Timestamp; got != strconv.FormatInt(first+1, 10) {
		t.Errorf("timestamp after a clock set back: %s; want %d", got, first+1)
	}
}

// An empty feed is still a feed: an empty manifest, an empty hashes.csv.
func TestEmptyFeed(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	if _, err := w.feed(dir, 10, 30).Write(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.checkFeed(dir, 10, nil)
}
