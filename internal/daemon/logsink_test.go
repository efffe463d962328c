package daemon

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Rotation under load: writers log without pause while the file is renamed
// and reopened again and again, as logrotate and SIGHUP do; every line must
// be found whole, exactly once, in one of the files.
func TestLogSinkReopenLosesNoLine(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, LogFile)
	s := NewLogSink(io.Discard)
	if err := s.Attach(name); err != nil {
		t.Fatal(err)
	}
	const writers, lines, rotations = 8, 2000, 20
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < lines; i++ {
				fmt.Fprintf(s, "level=DEBUG msg=progress writer=%d line=%d pad=%s.\n", w, i, strings.Repeat("x", i%97))
			}
		}()
	}
	for r := 1; r <= rotations; r++ {
		if err := os.Rename(name, fmt.Sprintf("%s.%d", name, r)); err != nil {
			t.Fatal(err)
		}
		if err := s.Reopen(); err != nil {
			t.Fatalf("reopen %d: %v", r, err)
		}
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	seen := map[string]int{}
	files, err := filepath.Glob(name + "*")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != rotations+1 {
		t.Fatalf("%d log files, want %d: %v", len(files), rotations+1, files)
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var w, i int
			var pad string
			if _, err := fmt.Sscanf(sc.Text(), "level=DEBUG msg=progress writer=%d line=%d pad=%s", &w, &i, &pad); err != nil || pad != strings.Repeat("x", i%97)+"." {
				t.Fatalf("%s: torn line %q", f, sc.Text())
			}
			seen[fmt.Sprintf("%d/%d", w, i)]++
		}
		fh.Close()
	}
	if len(seen) != writers*lines {
		t.Errorf("%d distinct lines across the rotated files, want %d", len(seen), writers*lines)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("line %s found %d times", k, n)
		}
	}
}

// A name that cannot be opened again keeps the old file: lines still land.
func TestLogSinkReopenFailureKeepsWriting(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "sub", LogFile)
	if err := os.Mkdir(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	s := NewLogSink(io.Discard)
	if err := s.Attach(name); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The directory is renamed away: the name no longer resolves.
	moved := filepath.Join(dir, "moved")
	if err := os.Rename(filepath.Dir(name), moved); err != nil {
		t.Fatal(err)
	}
	err := s.Reopen()
	if err == nil || !strings.Contains(err.Error(), "still writing to the file it replaced") {
		t.Fatalf("reopen of a name that cannot be opened: %v, want an error saying the old file is kept", err)
	}
	fmt.Fprintln(s, "after the failed reopen")
	b, err := os.ReadFile(filepath.Join(moved, LogFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "after the failed reopen") {
		t.Errorf("the kept file lacks the line written after the failed reopen: %q", b)
	}
	if NewLogSink(io.Discard).Reopen() != nil {
		t.Errorf("reopen without an attached file failed")
	}
}
