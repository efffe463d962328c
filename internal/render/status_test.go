package render

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeTestStatus writes a status.json into every sshd directory under
// root, compiled now, as the daemon's compile loop does.
func writeTestStatus(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "sshd" {
			return WriteStatus(p, Status{CompiledAt: time.Now(), Location: time.UTC, Refresh: time.Minute, Index: goldenIndex()})
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWriteStatus(t *testing.T) {
	dir := t.TempDir()
	loc := time.FixedZone("X", 3600)
	at := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC) // a fixed instant, not compared with the clock
	if err := WriteStatus(dir, Status{CompiledAt: at, LastCounted: at.Add(-19 * time.Second), NewestLine: at.Add(-25 * time.Second), Location: loc, Zone: "Europe/Luxembourg",
		Refresh: 90 * time.Second, Index: Index{Newest: "20010203", Days: []string{"20010203"}}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, StatusFile))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"compiled_at": "2001-02-03T05:05:06+01:00", "last_counted": "2001-02-03T05:04:47+01:00", "newest_line": "2001-02-03T05:04:41+01:00",
		"timezone": "Europe/Luxembourg", "utc_offset_seconds": 3600.0, "refresh_seconds": 90.0,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if err := WriteStatus(dir, Status{CompiledAt: at, Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, StatusFile))
	got = nil
	_ = json.Unmarshal(b, &got)
	if got["last_counted"] != nil || got["newest_line"] != nil || got["timezone"] != "UTC" || got["refresh_seconds"] != 1.0 {
		t.Errorf("defaults: %s", b)
	}
}
