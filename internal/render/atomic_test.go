package render

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "20261125", "20261125:statssrc.svg")

	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error {
			_, err := io.WriteString(w, s)
			return err
		}
	}
	if err := WriteFileAtomic(path, write("first")); err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, "first")
	if err := WriteFileAtomic(path, write("second, longer than the first")); err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, "second, longer than the first")
	if err := WriteFileAtomic(path, write("3")); err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, "3") // replaced, not overwritten in place
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}

	boom := errors.New("boom")
	err = WriteFileAtomic(path, func(w io.Writer) error {
		io.WriteString(w, strings.Repeat("partial", 100000))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want it to wrap %v", err, boom)
	}
	assertFile(t, path, "3")
	assertOnlyFiles(t, filepath.Dir(path), "20261125:statssrc.svg")

	if err := WriteFileAtomic(filepath.Join(dir, "missing", "a", "b.csv"), write("x")); err != nil {
		t.Errorf("writing into a missing directory: %v", err)
	}
	// A path whose directory is a file cannot be written; the error says which.
	err = WriteFileAtomic(filepath.Join(path, "x"), write("x"))
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v, want an error naming %s", err, path)
	}
}

// TestWriteFileAtomicReaders replaces a file while readers read it: every
// read must see one whole version.
func TestWriteFileAtomicReaders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "page.html")
	versions := []string{strings.Repeat("a", 64<<10), strings.Repeat("b", 100), strings.Repeat("c", 128<<10)}
	if err := os.WriteFile(path, []byte(versions[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				b, err := os.ReadFile(path)
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
				whole := false
				for _, v := range versions {
					whole = whole || string(b) == v
				}
				if !whole {
					t.Errorf("reader saw a partial file of %d bytes", len(b))
					return
				}
			}
		}()
	}
	for i := range 30 {
		v := versions[i%len(versions)]
		if err := WriteFileAtomic(path, func(w io.Writer) error {
			_, err := io.WriteString(w, v)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	assertOnlyFiles(t, filepath.Dir(path), "page.html")
}

func assertFile(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte(want)) {
		t.Errorf("%s holds %q, want %q", path, truncate(got, 50), want)
	}
}

// assertOnlyFiles fails when temporary files were left behind.
func assertOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, "|") != strings.Join(names, "|") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}
