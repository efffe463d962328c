package render

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes the file at path through write, so that a web
// server reading it at any moment serves either the old content or the new,
// never half of one (the original rewrote its pages in place). It creates
// the file's directory when missing, writes a temporary file beside path,
// syncs it, gives it mode 0644 and renames it over path. On any error the
// temporary file is removed and path is left as it was.
//
// The directory itself is not synced after the rename: every file written
// here is derived from Redis and rewritten by the next compile, so a rename
// lost in a power cut costs nothing, while a directory fsync per file would
// slow every compile down.
func WriteFileAtomic(path string, write func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory for %s: %w", path, err)
	}
	// A leading dot keeps the half-written file out of directory listings.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			// The write already failed; a failed cleanup adds nothing the
			// operator could act on, and the next compile retries.
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()

	bw := bufio.NewWriterSize(tmp, 64<<10)
	if err := write(bw); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// CreateTemp makes files 0600; pages must be readable by the web server.
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("set mode of %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}
