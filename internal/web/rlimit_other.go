//go:build !unix

package web

// openFileLimit reports no limit where the platform has no RLIMIT_NOFILE; the
// cap then falls back to a conservative default.
func openFileLimit() (limit uint64, ok bool) { return 0, false }
