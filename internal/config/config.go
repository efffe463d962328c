// Package config owns the daemon's configuration directory: the D4-style
// one-value files redis_d4, redis_queue, redis_parsers and http_server, and
// the optional analyzer.toml beside them.
//
// Contract: Load either returns a Config whose every field is usable as is
// (addresses well-formed, ranges respected, time zone resolved, defaults
// applied) or one error that names the file, the key, the offending value and
// what is allowed. Nothing is dialled, listened on or created here, so a bad
// configuration is refused before the daemon touches anything.
//
// A one-value file holds just its value, as D4 tools write it; surrounding
// spaces, tabs, CR and newlines (and a leading UTF-8 byte order mark, which
// some editors add) are trimmed, since an operator cannot see them.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	// Embedded so that a time zone named in analyzer.toml resolves the same
	// on a minimal host without a zoneinfo database.
	_ "time/tzdata"
)

// Names of the files in the configuration directory.
const (
	FileRedisD4      = "redis_d4"
	FileRedisQueue   = "redis_queue"
	FileRedisParsers = "redis_parsers"
	FileHTTPServer   = "http_server"
	FileAnalyzerTOML = "analyzer.toml"
)

// Allowed ranges and defaults. They are constants rather than settings so
// that Files, the sample analyzer.toml and validation cannot disagree.
const (
	maxDB   = 15
	minPool = 1
	maxPool = 1024

	defaultCompileInterval = 60 * time.Second
	minCompileInterval     = time.Second
	defaultOutputDir       = "data"
	defaultChartTop        = 25
	minChartTop            = 1
	maxChartTop            = 200
	defaultBatchSize       = DefaultBatchSize
	minBatchSize           = 1
	maxBatchSize           = 100000
	defaultMaxLineBytes    = 1 << 20
	minMaxLineBytes        = 1024
	maxMaxLineBytes        = 64 << 20
	// Ten years keeps every real backfill while a forged 1970 stamp cannot
	// make a page per day since; a century is as far as the limit goes,
	// and 0 lifts it for a deliberate historical backfill.
	defaultMaxAgeDays = 3650
	minMaxAgeDays     = 0
	maxMaxAgeDays     = 36500
	// 1 KiB holds any real user name, address or host name; the floor
	// leaves room for the marker of a capped value (the sshd package's
	// MinValueBytes), the ceiling is the longest line worth storing whole.
	defaultMaxValueBytes = DefaultMaxValueBytes
	minMaxValueBytes     = 64
	maxMaxValueBytes     = 1 << 20
	// A week covers a sensor restarted or a client reconnecting after
	// any outage an operator lets run; a year is as long as a resend is
	// plausible (and the memory costs up to 24 bytes a line for as long).
	defaultDedupeDays = 7
	minDedupeDays     = 0
	maxDedupeDays     = 366

	// min_replicas: a batch is acknowledged once this many replicas have
	// its counting (Redis WAIT); more than a handful of replicas is a typo.
	defaultMinReplicas = 0
	minMinReplicas     = 0
	maxMinReplicas     = 16

	// A one-value file is a few dozen bytes; the cap keeps a wrong -c (a
	// directory of logs, say) from being read whole into memory.
	maxValueFileBytes = 4096
	maxTOMLFileBytes  = 64 << 10
	// Bytes of analyzer.toml outside comment lines. Six flat settings fit
	// in a few hundred; the cap keeps the TOML decoder, whose cost grows
	// quadratically with dotted-key depth, from being handed a pathological
	// file (tens of kilobytes of "a.a.a..." cost it gigabytes).
	maxTOMLSettingsBytes = 4096

	// Longest value shown in an error message, so that one stray binary
	// file does not flood the log.
	maxShownBytes = 80

	exampleQueue = "3a7b1a4e-9f51-4c1e-a3c2-2f0e8c9b6d11"
)

// RedisAddr is a Redis server and one of its databases.
type RedisAddr struct {
	Addr string // host:port, as given
	DB   int    // 0..15
}

// DefaultBatchSize is batch_size when analyzer.toml does not set it. Each
// batch is one counting transaction, one fsync and one append of its
// drill-down chunks; 4000 lines cost the counting Redis about a quarter
// less per line than 1000 (fewer scripts, fsyncs and append-only-file
// bytes). The price is longer scripts while a backlog drains, which a
// question to the API waits for: tens of milliseconds on a small year, up
// to about half a second into a year of millions of sources.
const DefaultBatchSize = 4000

// DefaultMaxValueBytes is max_value_bytes when analyzer.toml does not set
// it.
const DefaultMaxValueBytes = 1024

// Config is a loaded and validated configuration directory.
type Config struct {
	Dir string // the configuration directory it was loaded from

	D4      RedisAddr // redis_d4: host:port/db; the DB holds the analyzer queues
	Queue   string    // redis_queue: the analyzer queue UUID, lower-cased canonical 8-4-4-4-12 form
	Parsers string    // redis_parsers host:port (the counting Redis); with Sentinels, the value without its "/N", for logs
	// Sentinels and SentinelMaster are set when redis_parsers is
	// sentinel://HOST:PORT[,HOST:PORT…]/MASTERNAME/N (SPEC §14): the
	// counting Redis is whatever master they name.
	Sentinels      []string
	SentinelMaster string
	Pool           int    // redis_parsers /N: parser workers and most concurrent counting-Redis connections, 1..1024
	HTTPServer     string // http_server host:port; "" when the file is missing or empty (no web server)

	// analyzer.toml
	TimezoneName    string         // "timezone": IANA name; default "" meaning the machine's local zone
	Location        *time.Location // resolved from TimezoneName (time.Local when empty)
	CompileInterval time.Duration  // "compile_interval": Go duration string ("60s", "5m") or integer seconds; default 60s; must be >= 1s; 0 or negative refused
	OutputDir       string         // "output_dir": default "data"; relative paths are relative to the working directory
	ChartTop        int            // "chart_top": bars per chart, default 25, allowed 1..200
	BatchSize       int            // "batch_size": lines per batch, default 4000, allowed 1..100000
	MaxLineBytes    int            // "max_line_bytes": longest line parsed, default 1048576 (1 MiB), allowed 1024..67108864; longer lines are skipped as too_long
	MaxAgeDays      int            // "max_age_days": lines stamped more days than this before the reference time are skipped as too_old; default 3650, allowed 0..36500, 0 = no limit
	MaxValueBytes   int            // "max_value_bytes": longest user name, source or host stored whole; longer ones are capped with a marker and a hash; default 1024, allowed 64..1048576
	GeoIPCountryDB  string         // "geoip_country_db": a MaxMind-format country database (.mmdb); "" = no country kind (SPEC §13)
	GeoIPASNDB      string         // "geoip_asn_db": a MaxMind-format AS database (.mmdb); "" = no asn kind

	// analyzer.toml, sharing (SPEC §11; share.go)
	MISP             bool     // "misp": write the MISP feed under <output>/misp; default true
	MISPOrgName      string   // "misp_org_name": the feed's organisation; default "analyzer-d4-log"
	MISPOrgUUID      string   // "misp_org_uuid": lower-case; default DefaultMISPOrgUUID(Queue)
	MISPEventInfo    string   // "misp_event_info": event title prefix, the ISO day follows
	MISPTags         []string // "misp_tags": tags of every event; default ["tlp:clear"]
	MISPDistribution int      // "misp_distribution": 0..3, default 0
	MISPPublished    bool     // "misp_published": events marked published; default false
	MISPTop          int      // "misp_top": user names and sources per event, 1..1000, default 100
	MISPDays         int      // "misp_days": past complete days in the feed, 1..3660, default 30
	BlocklistDays    int      // "blocklist_days": complete days summed for the blocklist, 1..3660, default 7
	BlocklistMin     int      // "blocklist_min": least attempts over them, 1..1e9, default 5
	Drilldown        bool     // "drilldown": record which values went together, for /api/v1/drill; default true
	APICacheMB       int      // "api_cache_mb": MiB of closed periods' rankings kept between /api/v1/top questions; default 256, allowed 0..65536, 0 = keep none
	DedupeDays       int      // "dedupe_days": a line identical to one counted within this many days (by its own timestamp's day) is skipped as duplicate; default 7, allowed 0..366, 0 = off
	TLSCert          string   // "http_tls_cert": PEM certificate (chain) path, relative ones resolved against Dir; with TLSKey the web server speaks HTTPS only; "" with TLSKey "": plain HTTP
	TLSKey           string   // "http_tls_key": PEM private key of TLSCert, resolved like it
	HTTPUsers        string   // "http_users": htpasswd file of bcrypt hashes, resolved like TLSCert; when set every path but /healthz needs basic auth; "": no passwords
	MinReplicas      int      // "min_replicas": replicas that must have a batch's counting (Redis WAIT) before it is acknowledged on the D4 queue; default 0 = do not wait, allowed 0..16 (SPEC §14)
	RetainDays       int      // "retain_days": days whose per-day statistics and stored attempts are kept (today and the days before it); older ones are archived and pruned; default 0 = keep every day
}

// MaxAge is MaxAgeDays as a duration, as the parser takes it; 0 means no
// limit. Days are 24 hours: the limit is on instants, not on calendar days.
func (c *Config) MaxAge() time.Duration {
	return time.Duration(c.MaxAgeDays) * 24 * time.Hour
}

// What each one-value file must hold, said when it is missing or empty.
const (
	wantRedisD4      = "the D4 server's Redis as host:port/db, like localhost:6380/2"
	wantRedisQueue   = "the analyzer queue's UUID from the D4 web UI, like " + exampleQueue
	wantRedisParsers = "the counting Redis as host:port/N with N the pool size, like localhost:6500/16, or its Sentinels as " + sentinelForm + ", like " + sentinelExample
	wantValueFile    = "a file holding just the value"
	wantDir          = "a directory holding " + FileRedisD4 + ", " + FileRedisQueue + " and " + FileRedisParsers
)

// Load reads dir and returns a validated Config, or one error whose message
// names the file, the key (for analyzer.toml), the value and what is allowed.
// Paths in messages are filepath.Join(dir, file), dir as the caller gave it.
// The required files are checked first, in a fixed order, so the same bad
// directory always yields the same message.
func Load(dir string) (*Config, error) {
	if dir == "" {
		return nil, errors.New("configuration directory not given; want " + wantDir)
	}
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: configuration directory does not exist; want %s", dir, wantDir)
	case err != nil:
		return nil, fmt.Errorf("%s: open configuration directory: %w", dir, unwrapPath(err))
	case !info.IsDir():
		return nil, fmt.Errorf("%s: not a directory; want %s", dir, wantDir)
	}

	cfg := &Config{Dir: dir}

	path := filepath.Join(dir, FileRedisD4)
	s, err := readRequired(path, wantRedisD4)
	if err != nil {
		return nil, err
	}
	if cfg.D4, err = parseD4(path, s); err != nil {
		return nil, err
	}

	path = filepath.Join(dir, FileRedisQueue)
	if s, err = readRequired(path, wantRedisQueue); err != nil {
		return nil, err
	}
	var ok bool
	if cfg.Queue, ok = canonicalUUID(s); !ok {
		return nil, fmt.Errorf("%s: %s is not a UUID; want %s", path, quote(s), wantRedisQueue)
	}

	path = filepath.Join(dir, FileRedisParsers)
	if s, err = readRequired(path, wantRedisParsers); err != nil {
		return nil, err
	}
	if strings.HasPrefix(s, SentinelScheme) {
		if err := parseSentinelParsers(path, s, cfg); err != nil {
			return nil, err
		}
	} else if cfg.Parsers, cfg.Pool, err = parseParsers(path, s); err != nil {
		return nil, err
	}

	path = filepath.Join(dir, FileHTTPServer)
	s, found, err := readFile(path, maxValueFileBytes, wantValueFile)
	if err != nil {
		return nil, err
	}
	if found {
		if s = trimValue(s); s != "" {
			if err := checkListenAddr(path, s); err != nil {
				return nil, err
			}
			cfg.HTTPServer = s
		}
	}

	if err := loadTOML(filepath.Join(dir, FileAnalyzerTOML), cfg); err != nil {
		return nil, err
	}

	// Every value was checked as it was read, with a message naming its file;
	// this only guards the invariants the rest of the daemon relies on.
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return cfg, nil
}

// Validate reports whether c holds values the daemon can run with. Load
// already guarantees it; Validate exists for configurations built in code.
func (c *Config) Validate() error {
	if _, _, bad := splitHostPort(c.D4.Addr, false); bad != nil {
		return fmt.Errorf("redis_d4 address %s is not host:port", quote(c.D4.Addr))
	}
	if c.D4.DB < 0 || c.D4.DB > maxDB {
		return fmt.Errorf("redis_d4 database %d is out of range; want 0 to %d", c.D4.DB, maxDB)
	}
	if q, ok := canonicalUUID(c.Queue); !ok || q != c.Queue {
		return fmt.Errorf("redis_queue %s is not a lower-case UUID", quote(c.Queue))
	}
	if len(c.Sentinels) > 0 {
		if err := c.validateSentinel(); err != nil {
			return err
		}
	} else if _, _, bad := splitHostPort(c.Parsers, false); bad != nil {
		return fmt.Errorf("redis_parsers address %s is not host:port", quote(c.Parsers))
	}
	if c.Pool < minPool || c.Pool > maxPool {
		return fmt.Errorf("redis_parsers pool size %d is out of range; want %d to %d", c.Pool, minPool, maxPool)
	}
	if c.HTTPServer != "" {
		if _, _, bad := splitHostPort(c.HTTPServer, true); bad != nil {
			return fmt.Errorf("http_server %s is not host:port", quote(c.HTTPServer))
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("http_tls_cert and http_tls_key: want both or neither")
	}
	if c.Location == nil {
		return errors.New("time zone not resolved")
	}
	if c.CompileInterval < minCompileInterval {
		return fmt.Errorf("compile_interval %s is shorter than %s", c.CompileInterval, minCompileInterval)
	}
	if c.OutputDir == "" || strings.IndexByte(c.OutputDir, 0) >= 0 {
		return fmt.Errorf("output_dir %s is not a directory path", quote(c.OutputDir))
	}
	for _, r := range []struct {
		key            string
		v, least, most int
	}{
		{"chart_top", c.ChartTop, minChartTop, maxChartTop},
		{"batch_size", c.BatchSize, minBatchSize, maxBatchSize},
		{"max_line_bytes", c.MaxLineBytes, minMaxLineBytes, maxMaxLineBytes},
		{"max_age_days", c.MaxAgeDays, minMaxAgeDays, maxMaxAgeDays},
		{"max_value_bytes", c.MaxValueBytes, minMaxValueBytes, maxMaxValueBytes},
		{"dedupe_days", c.DedupeDays, minDedupeDays, maxDedupeDays},
		{"min_replicas", c.MinReplicas, minMinReplicas, maxMinReplicas},
	} {
		if r.v < r.least || r.v > r.most {
			return fmt.Errorf("%s %d is out of range; want %d to %d", r.key, r.v, r.least, r.most)
		}
	}
	if err := c.validateShare(); err != nil {
		return err
	}
	return c.validateRetention()
}

// parseD4 turns the contents of redis_d4 into a RedisAddr.
func parseD4(path, s string) (RedisAddr, error) {
	addr, nText, n, bad := splitRedisAddr(s)
	if bad != nil && bad.kind != faultBigNumber {
		return RedisAddr{}, addrError(path, s, bad, "database", "host:port/db", "localhost:6380/2")
	}
	if bad != nil || n < 0 || n > maxDB {
		return RedisAddr{}, fmt.Errorf("%s: %s has database %s; want a database from 0 to %d (the D4 server keeps analyzer queues in 2)",
			path, quote(s), quote(nText), maxDB)
	}
	return RedisAddr{Addr: addr, DB: n}, nil
}

// parseParsers turns the contents of redis_parsers into an address and a
// pool size.
func parseParsers(path, s string) (string, int, error) {
	addr, nText, n, bad := splitRedisAddr(s)
	if bad != nil && bad.kind != faultBigNumber {
		return "", 0, addrError(path, s, bad, "pool size", "host:port/N with N the pool size", "localhost:6500/16")
	}
	if bad != nil || n < minPool || n > maxPool {
		return "", 0, fmt.Errorf("%s: %s has pool size %s; want a pool size from %d to %d, like localhost:6500/16",
			path, quote(s), quote(nText), minPool, maxPool)
	}
	return addr, n, nil
}

// checkListenAddr checks the contents of http_server. An empty host is
// allowed there: ":8080" is how Go (and operators) say "every interface".
func checkListenAddr(path, s string) error {
	_, _, bad := splitHostPort(s, true)
	if bad == nil {
		return nil
	}
	return addrError(path, s, bad, "", "the host:port the web server listens on", "127.0.0.1:8080")
}

// addrError words an address fault for the file at path: noun names what
// the "/n" part means there, form and example show what is wanted.
func addrError(path, s string, f *fault, noun, form, example string) error {
	return fmt.Errorf("%s: %s %s; want %s", path, quote(s), f.describe(noun), f.want(form, example))
}

// readRequired reads a one-value file that must exist and hold a value.
func readRequired(path, want string) (string, error) {
	s, found, err := readFile(path, maxValueFileBytes, wantValueFile)
	if err != nil {
		return "", err
	}
	if !found {
		return "", fmt.Errorf("%s: missing; want %s", path, want)
	}
	if s = trimValue(s); s == "" {
		return "", fmt.Errorf("%s: empty; want %s", path, want)
	}
	return s, nil
}

// readFile reads at most limit bytes of path; found is false when path does
// not exist. want says what the file should be, when it is too large or
// not a regular file.
//
// Only a regular file is read. A named pipe would block the open until a
// writer came and the read until it left, with the daemon deaf to SIGTERM
// meanwhile; a device may never end. O_NONBLOCK makes the open of a pipe
// return at once, and the type is checked on the opened file, so a file
// swapped for a pipe between a stat and the open is caught too.
func readFile(path string, limit int64, want string) (s string, found bool, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%s: open: %w", path, unwrapPath(err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", false, fmt.Errorf("%s: stat: %w", path, unwrapPath(err))
	}
	if !info.Mode().IsRegular() {
		return "", false, fmt.Errorf("%s: is %s, not a regular file; want %s", path, fileKind(info.Mode()), want)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return "", false, fmt.Errorf("%s: read: %w", path, unwrapPath(err))
	}
	if int64(len(b)) > limit {
		return "", false, fmt.Errorf("%s: larger than %d bytes; want %s", path, limit, want)
	}
	return string(b), true, nil
}

// fileKind names the type of a file that is not a regular file.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// unwrapPath drops the *fs.PathError layer, whose path the caller's message
// already shows.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// trimValue removes what an operator cannot see around a one-value file's
// value.
func trimValue(s string) string {
	return strings.Trim(strings.TrimPrefix(s, "\ufeff"), " \t\r\n")
}

// canonicalUUID returns s lower-cased if it is a UUID in 8-4-4-4-12 form.
// The version nibble is not checked: the queue is whatever the D4 server
// registered, and the D4 server is not ours to second-guess.
func canonicalUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			if !isHex(c) {
				return "", false
			}
		}
	}
	return strings.ToLower(s), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// quote shows an operator-supplied value in a message: quoted, so that
// invisible and control bytes are visible, and cut, so that a binary file
// does not flood the log. The cut backs off to a rune boundary in valid
// UTF-8 so that it does not itself invent an invalid byte.
func quote(s string) string {
	cut, more := len(s), ""
	if cut > maxShownBytes {
		cut, more = maxShownBytes, "..."
	}
	valid := utf8.ValidString(s)
	// An escaped byte takes four characters: a message naming several
	// values of hostile bytes must stay short all the same.
	for {
		c := cut
		if c < len(s) && valid {
			for c > 0 && !utf8.RuneStart(s[c]) {
				c--
			}
		}
		q := strconv.Quote(s[:c])
		if len(q) <= 2*maxShownBytes+2 || c == 0 {
			return q + more
		}
		cut, more = c/2, "..."
	}
}
