package config

import (
	"fmt"
	"strings"
	"time"
)

// Files documents the configuration files for -h, one line per file (and
// per analyzer.toml key), like the original analyzer's usage.
func Files() string {
	var b strings.Builder
	line := func(name, meaning string) { fmt.Fprintf(&b, "  %-19s %s\n", name, meaning) }
	b.WriteString("Configuration directory (one value per file; surrounding blanks and newlines ignored):\n")
	line(FileRedisD4, "D4 server's Redis and the database of its analyzer queues, host:port/db (like localhost:6380/2)")
	line(FileRedisQueue, "UUID of the analyzer queue to consume, created in the D4 web UI")
	line(FileRedisParsers, fmt.Sprintf("counting Redis, host:port/N; N = parser workers and most connections, %d to %d (like localhost:6500/16)", minPool, maxPool))
	line(FileHTTPServer, "optional: host:port where the daemon serves the output directory, /healthz and /metrics (like 127.0.0.1:8080); missing or empty: no web server")
	line(FileAnalyzerTOML, "optional: further settings as TOML keys, each with its default:")
	key := func(name, meaning string) { fmt.Fprintf(&b, "    %-17s %s\n", name, meaning) }
	key(keyTimezone, `IANA time zone of syslog timestamps, like "Europe/Luxembourg"; default "": the machine's local zone`)
	key(keyCompileInterval, fmt.Sprintf(`how often charts and pages are compiled, a Go duration or whole seconds; default "%ds", at least %s`, defaultCompileInterval/time.Second, minCompileInterval))
	key(keyOutputDir, fmt.Sprintf("directory that receives sshd/ (relative to the working directory); default %q", defaultOutputDir))
	key(keyChartTop, fmt.Sprintf("bars per chart; default %d, %d to %d", defaultChartTop, minChartTop, maxChartTop))
	key(keyBatchSize, fmt.Sprintf("log lines per batch; default %d, %d to %d", defaultBatchSize, minBatchSize, maxBatchSize))
	key(keyMaxLineBytes, fmt.Sprintf("longest log line parsed, in bytes (longer lines are skipped); default %d, %d to %d", defaultMaxLineBytes, minMaxLineBytes, maxMaxLineBytes))
	key(keyMaxAgeDays, fmt.Sprintf("lines stamped more days than this before now (or the -f file's time) are skipped as too_old; default %d, %d to %d, 0: no limit", defaultMaxAgeDays, minMaxAgeDays, maxMaxAgeDays))
	key(keyMaxValueBytes, fmt.Sprintf("longest user name, source or host stored whole; longer ones keep their first bytes and a marker with a hash; default %d, %d to %d", defaultMaxValueBytes, minMaxValueBytes, maxMaxValueBytes))
	key(keyGeoIPCountryDB, `MaxMind-format country database (.mmdb: GeoLite2-Country, DB-IP or IPinfo lite); counts the country of every source; default "": none`)
	key(keyGeoIPASNDB, `MaxMind-format AS database (.mmdb: GeoLite2-ASN, DB-IP or IPinfo lite); counts the AS of every source; default "": none`)
	return b.String()
}
