// Package retention owns the pruning of old days from the counting Redis
// and their archive on disk (SPEC §12): a daemon that runs for years keeps
// the per-day rankings and stored attempts of its last retain_days days,
// and every older day's attempts in archive/YYYY/YYYYMMDD.alog.gz, from
// which -F rebuilds months and years exactly.
//
// Contract: an attempt is at every instant either in DB 0 or in a complete,
// synced archive file, never in neither; a day half pruned when the daemon
// died is finished by the next start; pruning a day twice changes nothing.
// The steps and why each is safe are in package stats (prune.go), which
// owns the keys; this package owns the files and the schedule.
package retention

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// An archive file is a gzip stream (RFC 1952) of one or more members, as
// gzip -d and zcat read them whole. Its decompressed bytes are frames, back
// to back:
//
//	uvarint(n) element[n]
//
// one frame per element of the day's DB 0 list alog:attempts:YYYYMMDD,
// byte for byte, in list order. An element is one batch's attempts of the
// day, each record
//
//	varint(unix seconds) uvarint(len) host uvarint(len) user uvarint(len) src
//
// (Go's encoding/binary varints; see stats.DecodeRecords). Pruning a day
// again (attempts counted into it after it was pruned) appends a member.

// Ext is the archive files' extension.
const Ext = ".alog.gz"

// DirName is the archive's directory under the working directory.
const DirName = "archive"

// maxElement bounds one frame: Redis holds no string longer than 512 MiB.
const maxElement = 512 << 20

// Archive is the directory of archive files.
type Archive struct {
	Dir string
}

// Path is the file of day (yyyymmdd): Dir/YYYY/YYYYMMDD.alog.gz.
func (a *Archive) Path(day string) string {
	return filepath.Join(a.Dir, day[:4], day+Ext)
}

// Days lists the archived days, in order.
func (a *Archive) Days() ([]string, error) {
	var days []string
	years, err := os.ReadDir(a.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list archive %s: %w", a.Dir, err)
	}
	for _, y := range years {
		if !y.IsDir() || !isDigits(y.Name(), 4) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(a.Dir, y.Name()))
		if err != nil {
			return nil, fmt.Errorf("list archive %s: %w", a.Dir, err)
		}
		for _, f := range files {
			day, ok := strings.CutSuffix(f.Name(), Ext)
			if ok && f.Type().IsRegular() && isDigits(day, 8) && day[:4] == y.Name() {
				days = append(days, day)
			}
		}
	}
	sort.Strings(days)
	return days, nil
}

// Bytes is the size of every archive file.
func (a *Archive) Bytes() (int64, error) {
	days, err := a.Days()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, d := range days {
		st, err := os.Stat(a.Path(d))
		if err != nil {
			return 0, fmt.Errorf("size of archive file: %w", err)
		}
		n += st.Size()
	}
	return n, nil
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < n; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Size is the size of day's file, 0 when there is none.
func (a *Archive) Size(day string) (int64, error) {
	st, err := os.Stat(a.Path(day))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("size of archive file: %w", err)
	}
	return st.Size(), nil
}

// Write makes day's file its first base bytes followed by one gzip member
// of the elements read calls back with; it returns the new size. The file
// is written whole to a temporary file, synced, renamed over the old one,
// and the directory synced: whatever instant the process dies at, the file
// is the old one or the new one, and once Write returns the new one is on
// disk. Starting from base rather than the end makes a repeated step (after
// a crash before Redis learnt that the step was done) give the same file.
func (a *Archive) Write(day string, base int64, read func(emit func(elem []byte) error) error) (int64, error) {
	path := a.Path(day)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("create archive directory %s: %w; fix the permissions of the working directory", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+day+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("create archive file in %s: %w; fix its permissions or free disk space", dir, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing left to remove
	defer tmp.Close()
	if base > 0 {
		old, err := os.Open(path)
		if err != nil {
			return 0, fmt.Errorf("archive of %s: %d bytes were recorded, but %w; restore the file from a backup or delete its alog:pruning:%s key to archive anew", day, base, err, day)
		}
		n, err := io.Copy(tmp, io.LimitReader(old, base))
		old.Close()
		if err != nil {
			return 0, fmt.Errorf("copy archive file %s: %w", path, err)
		}
		if n != base {
			return 0, fmt.Errorf("archive file %s has %d bytes, fewer than the %d recorded; restore it from a backup", path, n, base)
		}
	}
	bw := bufio.NewWriterSize(tmp, 64<<10)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestCompression)
	if err != nil {
		return 0, err
	}
	var frame [binary.MaxVarintLen64]byte
	err = read(func(elem []byte) error {
		n := binary.PutUvarint(frame[:], uint64(len(elem)))
		if _, err := zw.Write(frame[:n]); err != nil {
			return err
		}
		_, err := zw.Write(elem)
		return err
	})
	if err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, fmt.Errorf("write archive file %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("write archive file %s: %w; free disk space", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("sync archive file %s: %w", path, err)
	}
	st, err := tmp.Stat()
	if err != nil {
		return 0, fmt.Errorf("size of archive file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("write archive file %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return 0, fmt.Errorf("archive file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("rename archive file to %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync archive directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync archive directory %s: %w", dir, err)
	}
	return nil
}

// Read calls fn with each element archived for day, in order, from the
// first limit bytes of its file (all of it when limit < 0). A day without
// a file has no elements.
func (a *Archive) Read(ctx context.Context, day string, limit int64, fn func(elem []byte) error) error {
	f, err := os.Open(a.Path(day))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open archive file: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if limit >= 0 {
		r = io.LimitReader(f, limit)
	}
	if err := ReadFrames(ctx, r, fn); err != nil {
		return fmt.Errorf("archive file %s: %w", a.Path(day), err)
	}
	return nil
}

// ReadFrames decodes an archive stream (see the format above), calling fn
// with each element. The element is only valid during the call. An empty
// stream has no elements.
func ReadFrames(ctx context.Context, r io.Reader, fn func(elem []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if _, err := br.Peek(1); err == io.EOF {
		return nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return fmt.Errorf("not a gzip stream: %w", err)
	}
	defer zr.Close()
	in := bufio.NewReaderSize(zr, 64<<10)
	var buf []byte
	for i := 0; ; i++ {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		n, err := binary.ReadUvarint(in)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("frame %d: bad length: %w", i, noEOF(err))
		}
		if n > maxElement {
			return fmt.Errorf("frame %d: length %d is over %d bytes, more than Redis can have stored", i, n, maxElement)
		}
		// Grown as the bytes arrive, so a corrupt length costs no more
		// memory than the stream really holds.
		buf = buf[:0]
		w := byteWriter{&buf}
		if m, err := io.CopyN(w, in, int64(n)); err != nil {
			return fmt.Errorf("frame %d: %d of %d bytes: %w", i, m, n, noEOF(err))
		}
		if err := fn(buf); err != nil {
			return err
		}
	}
}

type byteWriter struct{ b *[]byte }

func (w byteWriter) Write(p []byte) (int, error) {
	*w.b = append(*w.b, p...)
	return len(p), nil
}

// noEOF turns a clean end of stream inside a frame into what it is.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
