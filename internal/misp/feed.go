// Package misp writes the MISP feed of SPEC §11 under <output>/misp: one
// event per complete day (never the partial current day) holding an
// authentication-failure-report object per top user name and per top
// source that is an IP address, with manifest.json and hashes.csv beside
// the events, in the format MISP's "MISP Feed" fetcher pulls (the one
// PyMISP's feed generator writes).
//
// Contract:
//
//   - Identifiers are UUID v5: an event's from the organisation's UUID and
//     its day, an object's from its event's and its value, an attribute's
//     from its object's and its relation. A rebuild, a restart or another
//     machine with the same configuration names everything the same, so
//     MISP updates what it pulled instead of forking it.
//   - The event timestamp is the last time the event's content changed.
//     Each write renders the day with the timestamp of the file already
//     there; if that gives the same bytes, nothing is written (same bytes,
//     same mtime, same manifest). Only a change of content takes the
//     clock's time (and always a later one than before), which is what makes
//     MISP pull the event again. So the timestamps derive from the files
//     themselves: a flush (-F) that rebuilds the same statistics gives
//     byte-identical files, while deriving them from the data (the last
//     attempt of the day, say) would not move when a backfill changes an
//     old day, and MISP would never pull the change.
//   - Files are replaced atomically (temporary file, then rename), events
//     first, then hashes.csv, then manifest.json, and an event leaves the
//     directory only after the manifest stops naming it: a MISP pulling at
//     any instant never finds a manifest naming a missing event.
//
// A Feed is used by one goroutine (the compile loop).
package misp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/render"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/uuidv5"
)

// Store is what the feed reads from the counting Redis.
type Store interface {
	DayTotals(ctx context.Context, days []string) (map[string]int64, error)
	Top(ctx context.Context, key string, n int) ([]stats.Entry, error)
	Summarize(ctx context.Context, period, kind string) (stats.Summary, error)
}

// Settings are the analyzer.toml keys of the feed (see config).
type Settings struct {
	OrgName      string
	OrgUUID      string
	InfoPrefix   string
	Tags         []string
	Distribution int // 0..3
	Published    bool
	Top          int // values per kind
	Days         int // past complete days kept in the feed
}

// Feed writes the feed into Dir.
type Feed struct {
	Store    Store
	Dir      string
	Settings Settings
	Location *time.Location   // the zone days are counted in
	Now      func() time.Time // the clock: what today is, and event timestamps
	Log      *slog.Logger

	// seen holds, per day, the total attempts when its event was last
	// found up to date, and the event's manifest entry and hashes; a day
	// whose total has not moved is not read again.
	seen map[string]dayState
}

type dayState struct {
	total    int64
	uuid     string
	manifest manifestEntry
	hashes   []string
}

// Result says what one Write did.
type Result struct {
	Events   int  // events in the feed
	Written  int  // event files written (new or changed)
	Removed  int  // event files removed (their day left the feed)
	Manifest bool // manifest.json rewritten
}

// ManifestFile and HashesFile are the feed's index files.
const (
	ManifestFile = "manifest.json"
	HashesFile   = "hashes.csv"
)

// maxEventBytes bounds the read of an event file already there: the
// largest event (1000 values of each kind at the longest stored value) is
// a few megabytes.
const maxEventBytes = 64 << 20

// EventUUID is the event of one day ("YYYYMMDD") for an organisation.
func EventUUID(orgUUID uuidv5.UUID, day string) uuidv5.UUID {
	return uuidv5.New(orgUUID, "analyzer-d4-log sshd "+isoDay(day))
}

// DefaultOrgUUID is the organisation UUID used when misp_org_uuid is not
// set: UUID v5 of the name "analyzer-d4-log misp org" in the namespace of
// the queue UUID, so it is stable for a sensor queue without
// configuration.
func DefaultOrgUUID(queue string) (string, error) {
	ns, err := uuidv5.Parse(queue)
	if err != nil {
		return "", fmt.Errorf("derive the misp organisation uuid: %w", err)
	}
	return uuidv5.New(ns, "analyzer-d4-log misp org").String(), nil
}

// Write brings the feed up to date with the complete days of the
// counting Redis.
func (f *Feed) Write(ctx context.Context) (Result, error) {
	var res Result
	org, err := uuidv5.Parse(f.Settings.OrgUUID)
	if err != nil {
		return res, fmt.Errorf("misp feed: organisation uuid: %w", err)
	}
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return res, fmt.Errorf("misp feed: create %s: %w", f.Dir, err)
	}
	days := stats.CompleteDays(f.Now(), f.Location, f.Settings.Days)
	totals, err := f.Store.DayTotals(ctx, days)
	if err != nil {
		return res, fmt.Errorf("misp feed: %w", err)
	}
	if f.seen == nil {
		f.seen = map[string]dayState{}
	}
	var kept []string // days in the feed, oldest first
	for i := len(days) - 1; i >= 0; i-- {
		day := days[i]
		total, ok := totals[day]
		if !ok {
			delete(f.seen, day)
			continue
		}
		kept = append(kept, day)
		st, cached := f.seen[day]
		if cached && total != stats.Unknown && st.total == total && f.exists(st.uuid) {
			continue
		}
		st, wrote, err := f.writeDay(ctx, org, day)
		if err != nil {
			return res, err
		}
		st.total = total
		f.seen[day] = st
		if wrote {
			res.Written++
		}
	}
	for day := range f.seen {
		if !contains(kept, day) {
			delete(f.seen, day)
		}
	}
	res.Events = len(kept)

	manifest := make(map[string]manifestEntry, len(kept))
	var hashes bytes.Buffer
	for _, day := range kept {
		st := f.seen[day]
		manifest[st.uuid] = st.manifest
		for _, h := range st.hashes {
			hashes.WriteString(h)
			hashes.WriteByte('\n')
		}
	}
	if _, err := writeIfChanged(filepath.Join(f.Dir, HashesFile), hashes.Bytes()); err != nil {
		return res, fmt.Errorf("misp feed: %w", err)
	}
	mb, err := marshal(manifest)
	if err != nil {
		return res, fmt.Errorf("misp feed: encode manifest: %w", err)
	}
	if res.Manifest, err = writeIfChanged(filepath.Join(f.Dir, ManifestFile), mb); err != nil {
		return res, fmt.Errorf("misp feed: %w", err)
	}
	res.Removed, err = f.removeStale(manifest)
	if err != nil {
		return res, fmt.Errorf("misp feed: %w", err)
	}
	if res.Written > 0 || res.Removed > 0 {
		f.Log.Info("misp feed written", "dir", f.Dir, "events", res.Events, "written", res.Written, "removed", res.Removed)
	}
	return res, nil
}

func (f *Feed) exists(uuid string) bool {
	_, err := os.Stat(filepath.Join(f.Dir, uuid+".json"))
	return err == nil
}

// writeDay renders the event of day and writes it if its content changed.
func (f *Feed) writeDay(ctx context.Context, org uuidv5.UUID, day string) (dayState, bool, error) {
	ev, err := f.build(ctx, org, day)
	if err != nil {
		return dayState{}, false, fmt.Errorf("misp feed: event of %s: %w", day, err)
	}
	path := filepath.Join(f.Dir, ev.UUID+".json")
	old, err := readBounded(path)
	if err != nil {
		return dayState{}, false, fmt.Errorf("misp feed: %w", err)
	}
	st := dayState{uuid: ev.UUID}
	if prev, ok := storedTimestamp(old); ok {
		b, err := ev.encode(prev)
		if err != nil {
			return st, false, fmt.Errorf("misp feed: encode event of %s: %w", day, err)
		}
		if bytes.Equal(b, old) {
			st.manifest, st.hashes = ev.manifest(prev), ev.hashes()
			return st, false, nil
		}
	}
	ts := f.Now().Unix()
	if prev, ok := storedTimestamp(old); ok && ts <= prev {
		// MISP pulls an event again only when its timestamp grew; a
		// clock set back must not hide a change.
		ts = prev + 1
	}
	b, err := ev.encode(ts)
	if err != nil {
		return st, false, fmt.Errorf("misp feed: encode event of %s: %w", day, err)
	}
	if err := render.WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return st, false, fmt.Errorf("misp feed: %w", err)
	}
	st.manifest, st.hashes = ev.manifest(ts), ev.hashes()
	return st, true, nil
}

// build makes the event of day, without its timestamps.
func (f *Feed) build(ctx context.Context, org uuidv5.UUID, day string) (*eventBody, error) {
	s := f.Settings
	evUUID := EventUUID(org, day)
	ev := &eventBody{
		UUID:          evUUID.String(),
		Info:          s.InfoPrefix + " " + isoDay(day),
		Date:          isoDay(day),
		Analysis:      strconv.Itoa(analysisComplete),
		ThreatLevelID: strconv.Itoa(threatLevelLow),
		Distribution:  strconv.Itoa(s.Distribution),
		Published:     s.Published,
		Orgc:          org0(s),
		Tag:           []tag{},
		Attribute:     []attribute{},
		Object:        []object{},
	}
	for _, t := range s.Tags {
		ev.Tag = append(ev.Tag, tag{Name: t, Colour: tagColour(t)})
	}
	users, err := f.Store.Top(ctx, stats.StatsKey(day, stats.KindUser), s.Top)
	if err != nil {
		return nil, err
	}
	srcs, err := f.Store.Top(ctx, stats.StatsKey(day, stats.KindSrc), s.Top)
	if err != nil {
		return nil, err
	}
	userSum, err := f.Store.Summarize(ctx, day, stats.KindUser)
	if err != nil {
		return nil, err
	}
	srcSum, err := f.Store.Summarize(ctx, day, stats.KindSrc)
	if err != nil {
		return nil, err
	}

	emptyUsers := 0
	for _, e := range users {
		if e.Member == "" {
			// MISP refuses an attribute without a value; an object without
			// its username would not meet the template.
			emptyUsers++
			continue
		}
		ev.Object = append(ev.Object, report(evUUID, "username", "text", e.Member, e.Count))
	}
	hostNames := 0
	index := map[string]int{} // address → its object, to merge ::ffff:a.b.c.d into a.b.c.d
	for _, e := range srcs {
		a, ok := stats.SourceAddr(e.Member)
		if !ok {
			hostNames++
			continue
		}
		addr := a.String()
		if i, ok := index[addr]; ok {
			total := &ev.Object[i].Attribute[1]
			n, _ := strconv.ParseInt(total.Value, 10, 64)
			total.Value = strconv.FormatInt(n+e.Count, 10)
			continue
		}
		index[addr] = len(ev.Object)
		ev.Object = append(ev.Object, report(evUUID, "ip-src", "ip-src", addr, e.Count))
	}

	comment := fmt.Sprintf("SSH attempts for invalid user names on %s: %d attempts, %d distinct user names, %d distinct sources; "+
		"objects for the top %d user names and the top %d sources that are IP addresses",
		isoDay(day), userSum.Total, userSum.Distinct, srcSum.Distinct, len(users)-emptyUsers, len(srcs)-hostNames)
	if hostNames > 0 {
		comment += fmt.Sprintf("; %d of the top %d sources are host names, not IP addresses, and are left out", hostNames, len(srcs))
	}
	if emptyUsers > 0 {
		comment += "; the empty user name is among the top user names and is left out"
	}
	comment += "."
	ev.Attribute = append(ev.Attribute, attribute{
		UUID: uuidv5.New(evUUID, "comment").String(), Category: "Other", Type: "comment",
		Value: comment, DisableCorrelation: true,
	})
	return ev, nil
}

func org0(s Settings) org { return org{Name: s.OrgName, UUID: strings.ToLower(s.OrgUUID)} }

// report is one authentication-failure-report object: the value (a user
// name or an IP address, under relation rel with MISP type typ), its
// total and the failure type ssh.
func report(event uuidv5.UUID, rel, typ, value string, count int64) object {
	// The object's UUID comes from the raw value: two user names that
	// differ only in invalid UTF-8 are shown alike but are not the same.
	id := uuidv5.New(event, rel+"\x00"+value)
	shown := strings.ToValidUTF8(value, "\uFFFD")
	first := attribute{UUID: uuidv5.New(id, rel).String(), ObjectRelation: rel, Type: typ, Value: shown}
	if typ == "ip-src" {
		// As MISP's attribute types define them: an attacker address is
		// an indicator for detection and correlates across events.
		first.Category, first.ToIDS = "Network activity", true
	} else {
		first.Category, first.DisableCorrelation = "Other", true
	}
	return object{
		Name: TemplateName, MetaCategory: TemplateMeta, Description: TemplateDescription,
		TemplateUUID: TemplateUUID, TemplateVersion: strconv.Itoa(TemplateVersion),
		UUID: id.String(),
		Attribute: []attribute{
			first,
			{UUID: uuidv5.New(id, "total").String(), ObjectRelation: "total", Category: "Other", Type: "counter",
				Value: strconv.FormatInt(count, 10), DisableCorrelation: true},
			{UUID: uuidv5.New(id, "type").String(), ObjectRelation: "type", Category: "Other", Type: "text",
				Value: "ssh", DisableCorrelation: true},
		},
	}
}

// removeStale deletes the event files the manifest no longer names (their
// day left the feed), after the manifest was written. Only names of the
// form <uuid>.json are touched: the directory is the operator's too.
func (f *Feed) removeStale(manifest map[string]manifestEntry) (int, error) {
	entries, err := os.ReadDir(f.Dir)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", f.Dir, err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		id, ok := strings.CutSuffix(name, ".json")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if _, err := uuidv5.Parse(id); err != nil {
			continue
		}
		if _, ok := manifest[strings.ToLower(id)]; ok {
			continue
		}
		if err := os.Remove(filepath.Join(f.Dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("remove %s: %w", name, err)
		}
		n++
	}
	return n, nil
}

// writeIfChanged replaces path with b unless it already holds exactly b,
// so that nothing changes (not even the mtime) when nothing changed.
func writeIfChanged(path string, b []byte) (bool, error) {
	old, err := readBounded(path)
	if err != nil {
		return false, err
	}
	if old != nil && bytes.Equal(old, b) {
		return false, nil
	}
	if err := render.WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return false, err
	}
	return true, nil
}

// readBounded reads a file this package wrote, nil when there is none.
func readBounded(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxEventBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxEventBytes {
		// Not ours as written: treat it as absent, so it is replaced.
		return []byte{}, nil
	}
	return b, nil
}

func contains(list []string, s string) bool {
	i := sort.SearchStrings(list, s)
	return i < len(list) && list[i] == s
}
