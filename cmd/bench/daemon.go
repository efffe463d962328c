package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// daemonLog is the file the daemon logs to in its working directory.
const daemonLog = "analyzer-d4-log.log"

// writeConf writes a configuration directory for the bench's two Redis
// servers: the one-value files and analyzer.toml. Compiles are pushed an
// hour away so that they do not run in the middle of a measurement; the
// daemon still compiles when it stops, and that is measured on its own.
func writeConf(dir, d4Addr, queue, cntAddr string, pool, batch int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create configuration directory: %w", err)
	}
	files := map[string]string{
		"redis_d4":      d4Addr + "/2\n",
		"redis_queue":   queue + "\n",
		"redis_parsers": fmt.Sprintf("%s/%d\n", cntAddr, pool),
		"analyzer.toml": fmt.Sprintf("timezone = \"UTC\"\ncompile_interval = \"1h\"\noutput_dir = \"data\"\nbatch_size = %d\n", batch),
	}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			return fmt.Errorf("write configuration file %s: %w", name, err)
		}
	}
	return nil
}

// daemonProc is one run of the daemon binary.
type daemonProc struct {
	cmd    *exec.Cmd
	dir    string   // working directory: its log and its data/ are here
	stderr *os.File // what it printed, for diagnosing a failed run
	// done is closed by the goroutine that owns cmd.Wait; err is set
	// before.
	done chan struct{}
	err  error
	// peak is the highest VmHWM seen, in bytes, written by watchMemory.
	peak atomic.Int64
}

// startDaemon runs bin -c conf args... in dir, in UTC as the bench's
// expected statistics are. Cancelling ctx kills it.
func startDaemon(ctx context.Context, bin, conf, dir string, args ...string) (*daemonProc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create daemon working directory: %w", err)
	}
	stderr, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return nil, fmt.Errorf("create daemon stderr file: %w", err)
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"-c", conf}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TZ=UTC")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		stderr.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &daemonProc{cmd: cmd, dir: dir, stderr: stderr, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		stderr.Close()
		close(p.done)
	}()
	go p.watchMemory()
	return p, nil
}

// watchMemory follows the daemon's peak resident set until it exits.
//
// The rusage of the exited child cannot be used: Linux carries the
// forking process' peak over into the child's ru_maxrss across exec, so it
// would report the bench's own memory (the generated lines), not the
// daemon's. VmHWM is the peak of the daemon's own address space; reading
// it often enough loses at most the last few milliseconds before exit.
func (p *daemonProc) watchMemory() {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid()) + "/status"); err == nil {
			if hwm, err := parseStatusBytes(b, "VmHWM"); err == nil && hwm > p.peak.Load() {
				p.peak.Store(hwm)
			}
		}
		select {
		case <-p.done:
			return
		case <-t.C:
		}
	}
}

func (p *daemonProc) pid() int { return p.cmd.Process.Pid }

// wait waits for the daemon to exit on its own and requires exit status 0.
func (p *daemonProc) wait(ctx context.Context, limit time.Duration) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.done
		return ctx.Err()
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("daemon %v did not finish within %v; its log ends:\n%s", p.cmd.Args[1:], limit, p.tail())
	}
	if p.err != nil {
		return fmt.Errorf("daemon %v: %w; its log ends:\n%s", p.cmd.Args[1:], p.err, p.tail())
	}
	return nil
}

// stop sends SIGTERM, the operator's way to stop it, and waits for exit 0.
func (p *daemonProc) stop(ctx context.Context, limit time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("send SIGTERM to the daemon: %w", err)
	}
	return p.wait(ctx, limit)
}

// kill ends a daemon the bench gave up on.
func (p *daemonProc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// cpuSeconds is the user+system time of the exited daemon.
func (p *daemonProc) cpuSeconds() float64 {
	st := p.cmd.ProcessState
	if st == nil {
		return 0
	}
	return (st.UserTime() + st.SystemTime()).Seconds()
}

// liveCPUSeconds is the user+system time of the running daemon so far,
// from /proc (ticks of 1/100 s); 0 where there is no /proc to read.
func (p *daemonProc) liveCPUSeconds() float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 12th and 13th.
	_, rest, _ := strings.Cut(string(raw), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return float64(u+st) / 100
}

// peakRSS is the daemon's peak resident set, in bytes, as far as
// watchMemory saw it.
func (p *daemonProc) peakRSS() int64 { return p.peak.Load() }

// records reads the daemon's log file.
func (p *daemonProc) records() ([]logRecord, error) {
	b, err := os.ReadFile(filepath.Join(p.dir, daemonLog))
	if err != nil {
		return nil, fmt.Errorf("read the daemon's log: %w", err)
	}
	var recs []logRecord
	for _, line := range strings.Split(string(b), "\n") {
		if line != "" {
			recs = append(recs, parseLogfmt(line))
		}
	}
	return recs, nil
}

// record returns the last log record with message msg.
func (p *daemonProc) record(msg string) (logRecord, error) {
	recs, err := p.records()
	if err != nil {
		return nil, err
	}
	if r, ok := lastRecord(recs, msg); ok {
		return r, nil
	}
	return nil, fmt.Errorf("the daemon's log has no %q line; it ends:\n%s", msg, p.tail())
}

// tail is the end of what the daemon printed.
func (p *daemonProc) tail() string {
	b, _ := os.ReadFile(p.stderr.Name())
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return strings.TrimSpace(string(b))
}

// logRecord is one line of the daemon's log (log/slog text format): key →
// value with quotes removed.
type logRecord map[string]string

// parseLogfmt splits a slog text line, `key=value key="quoted value"`.
// Words without '=' are ignored.
func parseLogfmt(line string) logRecord {
	rec := logRecord{}
	i := 0
	for i < len(line) {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		start := i
		for i < len(line) && line[i] != '=' && line[i] != ' ' {
			i++
		}
		if i >= len(line) || line[i] != '=' {
			continue
		}
		key := line[start:i]
		i++
		var val string
		if i < len(line) && line[i] == '"' {
			j := i + 1
			for j < len(line) && line[j] != '"' {
				if line[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(line) {
				val, i = line[i:], len(line)
			} else {
				val = line[i : j+1]
				if u, err := strconv.Unquote(val); err == nil {
					val = u
				}
				i = j + 1
			}
		} else {
			j := i
			for j < len(line) && line[j] != ' ' {
				j++
			}
			val, i = line[i:j], j
		}
		rec[key] = val
	}
	return rec
}

// lastRecord finds the last record whose msg is msg.
func lastRecord(recs []logRecord, msg string) (logRecord, bool) {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i]["msg"] == msg {
			return recs[i], true
		}
	}
	return nil, false
}

// float reads a numeric field.
func (r logRecord) float(key string) (float64, error) {
	v, ok := r[key]
	if !ok {
		return 0, fmt.Errorf("log line %q has no %s", r["msg"], key)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("log line %q: %s=%q: %w", r["msg"], key, v, err)
	}
	return f, nil
}

// time reads the record's timestamp.
func (r logRecord) time() (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, r["time"])
	if err != nil {
		return time.Time{}, fmt.Errorf("log line %q: time: %w", r["msg"], err)
	}
	return t, nil
}

// readVmRSS samples a live process' resident set, in bytes.
func readVmRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read process status: %w", err)
	}
	return parseStatusBytes(b, "VmRSS")
}

// parseStatusBytes reads a "Field:  1234 kB" line of /proc/<pid>/status,
// in bytes.
func parseStatusBytes(status []byte, field string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s line %q: want a number of kB", field, sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s line %q: %w", field, sc.Text(), err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("process status has no %s line", field)
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times; it is 100 on
// every Linux the project runs on.
const clockTicks = 100

// readCPUSeconds is a live process' user+system time so far.
func readCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read process stat: %w", err)
	}
	u, s, err := parseProcStat(string(b))
	if err != nil {
		return 0, err
	}
	return float64(u+s) / clockTicks, nil
}

// parseProcStat returns utime and stime (fields 14 and 15) of
// /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// hold spaces and parentheses, so fields are counted after the last ')'.
func parseProcStat(stat string) (utime, stime uint64, err error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, errors.New("process stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("process stat: %d fields after the name, want at least 13", len(f))
	}
	if utime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("process stat utime %q: %w", f[11], err)
	}
	if stime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("process stat stime %q: %w", f[12], err)
	}
	return utime, stime, nil
}
