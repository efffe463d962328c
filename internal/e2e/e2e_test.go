package e2e

import (
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// mixed returns a workload of real-world shapes, noise and hostile bytes,
// plus a 300 KB counting line and a 2 MB line over the default limit.
func mixed(n int, seed uint64) []workload.Line {
	lines := workload.Generate(workload.Options{
		Lines: n, Ref: time.Now(), Loc: time.UTC, Days: 40,
		Users: 60, Sources: 400, Hosts: 7, Noise: 0.3, Hostile: true, Seed: seed,
	})
	big := strings.Repeat("u", 300*1024)
	t := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	lines = append(lines,
		workload.Line{
			Raw:    []byte(t.Format(time.RFC3339) + " bighost sshd[7]: Invalid user " + big + " from 192.0.2.7 port 22"),
			Counts: true, Time: t, Host: "bighost", User: big, Src: "192.0.2.7",
		},
		workload.Line{Raw: []byte(t.Format(time.RFC3339) + " bighost sshd[7]: Invalid user " + strings.Repeat("v", 2<<20) + " from 192.0.2.8")},
	)
	return lines
}

func TestQueueEndToEndThenFlush(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the race-enabled binary; runs without -short")
	}
	e := newEnv(t, "")
	lines := mixed(6000, 1)
	// The daemon runs with the default max_value_bytes: long values are
	// stored capped.
	lines = workload.CapValues(lines, config.DefaultMaxValueBytes)
	want := workload.Expect(lines, time.UTC)
	// Some lines wait in the queue before the daemon starts, the rest
	// arrive while it runs.
	e.push(lines[:3000])
	p := e.start()
	time.Sleep(300 * time.Millisecond)
	e.push(lines[3000:])
	e.waitDrained(want.Attempts, 2*time.Minute)
	p.stop(t, 15*time.Second)

	cnt := e.cnt.Conn(1)
	checkStats(t, cnt, want)
	wantDrill := expectDrill(lines)
	checkDrillKeys(t, cnt, wantDrill)
	if _, err := os.Stat(filepath.Join(e.dir, "analyzer-d4-log.log")); err != nil {
		t.Fatalf("no log file in the working directory: %v", err)
	}
	// The shutdown compile drew the newest day.
	newest := filepath.Join(e.dir, "data", "sshd", want.Newest, want.Newest+":statsusername.svg")
	if _, err := os.Stat(newest); err != nil {
		t.Fatalf("newest chart missing after shutdown: %v", err)
	}
	for _, page := range []string{"dailystatistics.html", "monthlystatistics.html", "yearlystatistics.html", "load.js"} {
		if _, err := os.Stat(filepath.Join(e.dir, "data", "sshd", page)); err != nil {
			t.Errorf("page missing: %v", err)
		}
	}

	before := statsDump(t, cnt)
	code, out := e.run("-F")
	if code != 0 {
		t.Fatalf("-F exited %d:\n%s", code, tail(out))
	}
	after := statsDump(t, cnt)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("DB 1 after -F differs from before")
	}
	checkStats(t, cnt, want)
	checkBookkeeping(t, cnt, want)
	checkDrillKeys(t, cnt, wantDrill)
}

func TestFileModeGivesTheSameStatistics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the race-enabled binary; runs without -short")
	}
	e := newEnv(t, "")
	lines := mixed(5000, 2)
	// The daemon runs with the default max_value_bytes: long values are
	// stored capped.
	lines = workload.CapValues(lines, config.DefaultMaxValueBytes)
	want := workload.Expect(lines, time.UTC)
	path := filepath.Join(e.dir, "auth.log")
	writeLines(t, path, lines)
	code, out := e.run("-f", path)
	if code != 0 {
		t.Fatalf("-f exited %d:\n%s", code, tail(out))
	}
	checkStats(t, e.cnt.Conn(1), want)
	checkDrillKeys(t, e.cnt.Conn(1), expectDrill(lines))
	svgs, csvs := checkOutputSafe(t, filepath.Join(e.dir, "data", "sshd"))
	if svgs == 0 || svgs != csvs {
		t.Fatalf("%d charts and %d rankings compiled", svgs, csvs)
	}
	if !strings.Contains(out, "file done") {
		t.Fatalf("no summary in the log:\n%s", tail(out))
	}

	// Standard input, into a fresh counting Redis, gives the same.
	e2 := newEnv(t, "")
	cmdIn, err := os.Open(path)
	must(t, err)
	defer cmdIn.Close()
	code, out = e2.runWithStdin(cmdIn, "-f", "-")
	if code != 0 {
		t.Fatalf("-f - exited %d:\n%s", code, tail(out))
	}
	checkStats(t, e2.cnt.Conn(1), want)
}

// statsDump is DB 1 without the compile bookkeeping.
func statsDump(t *testing.T, c redis.Conn) map[string]string {
	out := map[string]string{}
	for k, v := range redistest.Dump(t, c) {
		if strings.HasPrefix(k, "toupdate:") || strings.HasPrefix(k, "alog:compiling:") {
			continue
		}
		out[k] = v
	}
	return out
}

// checkOutputSafe parses every SVG as XML (nothing active in it) and reads
// every CSV (no cell a spreadsheet would run as a formula).
func checkOutputSafe(t *testing.T, dir string) (svgs, csvs int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch filepath.Ext(p) {
		case ".svg":
			// Every SVG is checked; the charts of a period and kind are
			// counted against their rankings.
			if strings.Contains(filepath.Base(p), ":stats") {
				svgs++
			}
			dec := xml.NewDecoder(bytes.NewReader(b))
			for {
				tok, err := dec.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s is not well-formed XML: %v", p, err)
				}
				if se, ok := tok.(xml.StartElement); ok {
					name := strings.ToLower(se.Name.Local)
					if name == "script" || name == "foreignobject" || name == "a" {
						t.Fatalf("%s has a <%s> element", p, name)
					}
					for _, a := range se.Attr {
						an := strings.ToLower(a.Name.Local)
						if strings.HasPrefix(an, "on") || an == "href" {
							t.Fatalf("%s has an active attribute %s", p, an)
						}
					}
				}
			}
		case ".csv":
			if strings.Contains(filepath.Base(p), ":stats") {
				csvs++
			}
			rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			for _, row := range rows {
				for _, cell := range row {
					if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
						t.Fatalf("%s: cell %q would run as a formula", p, cell)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return svgs, csvs
}
