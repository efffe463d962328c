//go:build unix

package web

import "syscall"

// openFileLimit raises the soft limit on open files to the hard limit, since
// every descriptor counts towards the connection cap and the daemon's reserve,
// and returns the limit in force afterwards. ok is false when the limit cannot
// be read.
func openFileLimit() (limit uint64, ok bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	if rl.Cur < rl.Max {
		raised := rl
		raised.Cur = rl.Max
		// Refused on some systems (macOS caps it below the hard limit);
		// the current soft limit then stands.
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			rl = raised
		}
	}
	return uint64(rl.Cur), true
}
