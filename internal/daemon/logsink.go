package daemon

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// LogSink is where the daemon's log goes: always to stderr and, once
// attached, to the log file too. A log file that cannot be written (a
// full disk) never silences stderr, as io.MultiWriter would: the failure
// is said on stderr once, and again when the file works again.
type LogSink struct {
	mu     sync.Mutex
	stderr io.Writer
	file   *os.File // nil until attached
	name   string
	failed bool
}

// NewLogSink writes to stderr until a file is attached.
func NewLogSink(stderr io.Writer) *LogSink { return &LogSink{stderr: stderr} }

// Attach opens (appending, creating) the log file name.
func (s *LogSink) Attach(name string) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.file, s.name = f, name
	return nil
}

// Reopen closes the log file and opens its name again, for log rotation:
// after the rotator renamed the file, lines go to a new file of the same
// name. The swap happens under the lock every Write takes, so each line
// lands whole in exactly one of the two files. When the name cannot be
// opened (a directory made read-only), the old file is kept, so nothing is
// lost, and the error says so. Without an attached file it does nothing.
func (s *LogSink) Reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	f, err := os.OpenFile(s.name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("reopen the log file %s: %w; still writing to the file it replaced", s.name, err)
	}
	old := s.file
	s.file, s.failed = f, false
	if err := old.Close(); err != nil {
		fmt.Fprintf(s.stderr, "analyzer-d4-log: closing the rotated log file: %v\n", err)
	}
	return nil
}

// Attached reports whether the log file is attached.
func (s *LogSink) Attached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file != nil
}

// Close closes the log file.
func (s *LogSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}

// Write writes p to stderr and to the file; it never fails, so that a
// logger keeps logging whatever happens to either.
func (s *LogSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.stderr.Write(p)
	if s.file == nil {
		return len(p), nil
	}
	_, err := s.file.Write(p)
	switch {
	case err != nil && !s.failed:
		s.failed = true
		fmt.Fprintf(s.stderr, "analyzer-d4-log: cannot write the log file %s (%v); messages go to stderr only until it can be written again\n", s.name, err)
	case err == nil && s.failed:
		s.failed = false
		fmt.Fprintf(s.stderr, "analyzer-d4-log: the log file %s can be written again\n", s.name)
	}
	return len(p), nil
}
