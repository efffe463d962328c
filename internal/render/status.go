package render

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// StatusFile is the compile's freshness record beside the pages, read by
// fresh.js.
const StatusFile = "status.json"

// Status is what status.json says. It is written by the compile loop, not
// by Compile, so that the rest of the output stays a function of the
// counting Redis alone (two compiles of the same data give the same bytes).
type Status struct {
	CompiledAt  time.Time // when the compile finished
	LastCounted time.Time // when this daemon last counted a line; zero: none since the start
	// NewestLine is the stamp of the newest line the counting Redis holds
	// (stats.Store.NewestLine), whoever counted it: what "counted up to"
	// on the pages says. Zero: none, or counted by a version that did not
	// keep it.
	NewestLine time.Time
	Location   *time.Location // the configured zone the pages' days are in
	Zone       string         // its name for people; "" for the machine's zone
	Refresh    time.Duration  // how often the pages look for a newer compile
	Index      Index
}

type statusJSON struct {
	CompiledAt       string    `json:"compiled_at"`
	LastCounted      *string   `json:"last_counted"`
	NewestLine       *string   `json:"newest_line"`
	Timezone         string    `json:"timezone"`
	UTCOffsetSeconds int       `json:"utc_offset_seconds"`
	RefreshSeconds   int       `json:"refresh_seconds"`
	Index            pageIndex `json:"index"`
}

// WriteStatus writes status.json into dir atomically. Times are RFC 3339
// in the configured zone; utc_offset_seconds is the zone's offset at
// CompiledAt, which the page uses to tell today from yesterday.
func WriteStatus(dir string, s Status) error {
	loc := s.Location
	if loc == nil {
		loc = time.UTC
	}
	at := s.CompiledAt.In(loc)
	_, off := at.Zone()
	out := statusJSON{
		CompiledAt:       at.Format(time.RFC3339),
		Timezone:         s.Zone,
		UTCOffsetSeconds: off,
		RefreshSeconds:   max(1, int(s.Refresh/time.Second)),
		Index: pageIndex{
			Oldest: s.Index.Oldest, Newest: s.Index.Newest,
			Days: nonNil(s.Index.Days), Months: nonNil(s.Index.Months), Years: nonNil(s.Index.Years),
			Archived: s.Index.Archived,
		},
	}
	if out.Timezone == "" {
		out.Timezone = loc.String()
	}
	if !s.LastCounted.IsZero() {
		v := s.LastCounted.In(loc).Format(time.RFC3339)
		out.LastCounted = &v
	}
	if !s.NewestLine.IsZero() {
		v := s.NewestLine.In(loc).Format(time.RFC3339)
		out.NewestLine = &v
	}
	err := WriteFileAtomic(filepath.Join(dir, StatusFile), func(w io.Writer) error {
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", StatusFile, err)
	}
	return nil
}
