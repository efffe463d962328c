package compile

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/D4-project/analyzer-d4-log/internal/render"
)

// defaultSpillBytes is the memory a new-value list may take before it is
// sorted in runs on disk: a quiet day's list stays in memory, while 900
// user names of 1 MB each (an attack that once took the compile to 2.9 GB)
// cost this much memory and a temporary file.
const defaultSpillBytes = 8 << 20

// entryOverhead approximates what one entry costs beyond its value's bytes
// (string header, count, slice slot).
const entryOverhead = 40

// maxRuns is how many runs may wait before they are merged into one, so
// that merging holds at most this many pending entries (each as large as
// one value) whatever the list's size.
const maxRuns = 8

// spill ranks entries (count descending, then value by bytes) with bounded
// memory: entries gather in memory until they would take more than budget,
// then are sorted and written to a run file beside the output; ranked
// merges the runs. Memory is the budget plus one pending entry per run, at
// most maxRuns of them.
type spill struct {
	dir    string
	budget int
	buf    []render.Entry
	bytes  int
	runs   []*os.File
	n      int64 // entries added
}

func newSpill(dir string, budget int) *spill {
	if budget <= 0 {
		budget = defaultSpillBytes
	}
	return &spill{dir: dir, budget: budget}
}

func rankedBefore(a, b render.Entry) bool {
	if a.Count != b.Count {
		return a.Count > b.Count
	}
	return a.Value < b.Value
}

func rankedCmp(a, b render.Entry) int {
	switch {
	case rankedBefore(a, b):
		return -1
	case rankedBefore(b, a):
		return 1
	}
	return 0
}

func (s *spill) add(e render.Entry) error {
	s.n++
	s.buf = append(s.buf, e)
	s.bytes += len(e.Value) + entryOverhead
	if s.bytes > s.budget {
		return s.writeRun()
	}
	return nil
}

// writeRun sorts what is in memory into a new run file.
func (s *spill) writeRun() error {
	slices.SortFunc(s.buf, rankedCmp)
	// A leading dot keeps the run out of directory listings, like the
	// temporary files of WriteFileAtomic; it is removed by close.
	f, err := os.CreateTemp(s.dir, ".newvalues-run-*")
	if err != nil {
		return fmt.Errorf("create run of new values: %w", err)
	}
	s.runs = append(s.runs, f)
	w := bufio.NewWriterSize(f, 64<<10)
	var hdr []byte
	for _, e := range s.buf {
		if hdr, err = writeEntry(w, hdr, e); err != nil {
			return err
		}
	}
	if err := finishRun(w, f); err != nil {
		return err
	}
	clear(s.buf) // let the values go before the next run fills
	s.buf, s.bytes = s.buf[:0], 0
	if len(s.runs) >= maxRuns {
		return s.compact()
	}
	return nil
}

// writeEntry appends one entry to a run: its count, its length, its
// bytes. hdr is scratch space, returned for reuse.
func writeEntry(w *bufio.Writer, hdr []byte, e render.Entry) ([]byte, error) {
	hdr = binary.AppendVarint(hdr[:0], e.Count)
	hdr = binary.AppendUvarint(hdr, uint64(len(e.Value)))
	if _, err := w.Write(hdr); err != nil {
		return hdr, fmt.Errorf("write run of new values: %w", err)
	}
	if _, err := w.WriteString(e.Value); err != nil {
		return hdr, fmt.Errorf("write run of new values: %w", err)
	}
	return hdr, nil
}

// finishRun flushes a run and rewinds it for reading.
func finishRun(w *bufio.Writer, f *os.File) error {
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write run of new values: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind run of new values: %w", err)
	}
	return nil
}

// compact merges every run into one.
func (s *spill) compact() error {
	h, err := s.merger()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, ".newvalues-run-*")
	if err != nil {
		return fmt.Errorf("create run of new values: %w", err)
	}
	old := s.runs
	s.runs = []*os.File{f}
	for _, o := range old {
		defer func() { _ = o.Close(); _ = os.Remove(o.Name()) }()
	}
	w := bufio.NewWriterSize(f, 64<<10)
	var hdr []byte
	for {
		e, ok, err := h.pop()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if hdr, err = writeEntry(w, hdr, e); err != nil {
			return err
		}
	}
	if err := finishRun(w, f); err != nil {
		return err
	}
	return nil
}

// merger reads every run from its start, merged in ranking order.
func (s *spill) merger() (*runHeap, error) {
	h := &runHeap{}
	for _, f := range s.runs {
		r := &runReader{r: bufio.NewReaderSize(f, 32<<10)}
		ok, err := r.next()
		if err != nil {
			return nil, err
		}
		if ok {
			h.rs = append(h.rs, r)
		}
	}
	heap.Init(h)
	return h, nil
}

// ranked returns the entries in ranking order, a chunk per call, and nil
// at the end. Chunks are fresh slices the caller may keep.
func (s *spill) ranked() (func() ([]render.Entry, error), error) {
	slices.SortFunc(s.buf, rankedCmp)
	if len(s.runs) == 0 {
		rest := s.buf
		return func() ([]render.Entry, error) {
			n := min(len(rest), 1000)
			chunk := slices.Clone(rest[:n])
			rest = rest[n:]
			return chunk, nil
		}, nil
	}
	if len(s.buf) > 0 {
		if err := s.writeRun(); err != nil {
			return nil, err
		}
	}
	h, err := s.merger()
	if err != nil {
		return nil, err
	}
	return func() ([]render.Entry, error) {
		var chunk []render.Entry
		size := 0
		for len(chunk) < 1000 && size < defaultSpillBytes/8 {
			e, ok, err := h.pop()
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			chunk = append(chunk, e)
			size += len(e.Value)
		}
		return chunk, nil
	}, nil
}

// close removes the run files.
func (s *spill) close() {
	for _, f := range s.runs {
		// The runs are scratch space: a failure to remove one leaves a
		// hidden file that the next compile's runs do not depend on.
		_ = f.Close()
		_ = os.Remove(f.Name())
	}
	s.runs = nil
}

// runReader reads one sorted run back.
type runReader struct {
	r   *bufio.Reader
	cur render.Entry
}

func (r *runReader) next() (bool, error) {
	count, err := binary.ReadVarint(r.r)
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read run of new values: %w", err)
	}
	n, err := binary.ReadUvarint(r.r)
	if err != nil {
		return false, fmt.Errorf("read run of new values: %w", err)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.r, b); err != nil {
		return false, fmt.Errorf("read run of new values: %w", err)
	}
	r.cur = render.Entry{Value: string(b), Count: count}
	return true, nil
}

type runHeap struct{ rs []*runReader }

// pop returns the first entry of the merge, and false at its end.
func (h *runHeap) pop() (render.Entry, bool, error) {
	if len(h.rs) == 0 {
		return render.Entry{}, false, nil
	}
	r := h.rs[0]
	e := r.cur
	ok, err := r.next()
	if err != nil {
		return e, false, err
	}
	if ok {
		heap.Fix(h, 0)
	} else {
		heap.Pop(h)
	}
	return e, true, nil
}

func (h *runHeap) Len() int           { return len(h.rs) }
func (h *runHeap) Less(i, j int) bool { return rankedBefore(h.rs[i].cur, h.rs[j].cur) }
func (h *runHeap) Swap(i, j int)      { h.rs[i], h.rs[j] = h.rs[j], h.rs[i] }
func (h *runHeap) Push(x any)         { h.rs = append(h.rs, x.(*runReader)) }
func (h *runHeap) Pop() any {
	x := h.rs[len(h.rs)-1]
	h.rs = h.rs[:len(h.rs)-1]
	return x
}
