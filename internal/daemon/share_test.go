package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// The compile writes the MISP feed and the blocklist; a compile with
// nothing new and a flush (-F: recount, then compile everything) leave
// every byte and mtime of them as they were.
func TestSharesSurviveFlushByteForByte(t *testing.T) {
	h := newHarness(t)
	ls := lines(2000, 7)
	h.push(ls)
	h.run()
	h.waitCounted(workload.Expect(ls, time.UTC).Attempts, 30*time.Second)
	h.stop()
	cfg := *h.d.cfg
	cfg.MISP, cfg.MISPOrgName, cfg.MISPOrgUUID = true, "CIRCL", config.DefaultMISPOrgUUID(queue)
	cfg.MISPEventInfo, cfg.MISPTags, cfg.MISPTop, cfg.MISPDays = "sshd", []string{"tlp:clear"}, 20, 30
	cfg.BlocklistDays, cfg.BlocklistMin = 7, 2
	d := New(Options{Config: &cfg})
	t.Cleanup(d.Close)
	ctx := context.Background()
	if err := d.Compile(ctx, false); err != nil {
		t.Fatal(err)
	}
	read := func() map[string][]byte {
		out := map[string][]byte{}
		for _, sub := range []string{"misp", "feeds"} {
			entries, err := os.ReadDir(filepath.Join(cfg.OutputDir, sub))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				p := filepath.Join(cfg.OutputDir, sub, e.Name())
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				info, _ := os.Stat(p)
				out[p] = append(b, []byte(info.ModTime().String())...)
			}
		}
		return out
	}
	before := read()
	// The workload spreads lines over 20 days ending today: more than 15
	// complete days give an event each, and the blocklist lists someone.
	if len(before) < 15+2+2 {
		t.Fatalf("only %d files under misp/ and feeds/", len(before))
	}
	if b := before[filepath.Join(cfg.OutputDir, "feeds", "sources.txt")]; bytes.IndexByte(b, '\n') < 0 {
		t.Fatalf("empty blocklist")
	}
	if err := d.Compile(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	after := read()
	if len(after) != len(before) {
		t.Fatalf("%d files, then %d after -F", len(before), len(after))
	}
	for p, b := range before {
		if !bytes.Equal(b, after[p]) {
			t.Errorf("%s changed (bytes or mtime) by a compile with nothing new and -F", p)
		}
	}
}
