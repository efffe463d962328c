package render

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ArchivedDays lists, ascending, the days that have compiled files in dir
// (the sshd output directory) but are not among days (those with
// statistics in the counting Redis): days pruned by retain_days, whose
// files stay where they are (SPEC §12). A day has files when its
// directory holds the chart of the first kind, so a stray directory is not
// offered. One directory listing and a stat per such day, at each compile:
// the pages are written then anyway.
func ArchivedDays(dir string, days []string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the compiled days in %s: %w", dir, err)
	}
	have := make(map[string]bool, len(days))
	for _, d := range days {
		have[d] = true
	}
	first := kindNames()[0]
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || have[name] || !isDay(name) {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, ChartPath(name, first))); err != nil {
			continue
		}
		out = append(out, name) // ReadDir sorts by name
	}
	return out, nil
}

// isDay tells whether s is a calendar day as YYYYMMDD.
func isDay(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < 8; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	t, err := time.Parse("20060102", s)
	return err == nil && t.Format("20060102") == s
}
