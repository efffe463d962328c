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
	key(keyMISP, "write the MISP feed of every complete day under misp/ in the output directory; default true")
	key(keyMISPOrgName, fmt.Sprintf("organisation of the feed's events; default %q", defaultMISPOrgName))
	key(keyMISPOrgUUID, "its UUID; default: UUID v5 of \""+orgUUIDName+"\" in the namespace of the redis_queue UUID")
	key(keyMISPEventInfo, fmt.Sprintf("event title, followed by the day (YYYY-MM-DD); default %q", defaultMISPEventInfo))
	key(keyMISPTags, fmt.Sprintf("tags of every event; default [%q]", defaultMISPTag))
	key(keyMISPDistribution, fmt.Sprintf("MISP distribution of the events, 0 to %d; default 0 (your organisation only)", maxMISPDistribution))
	key(keyMISPPublished, "events marked published; default false")
	key(keyMISPTop, fmt.Sprintf("top user names and top sources per event; default %d, %d to %d", defaultMISPTop, minMISPTop, maxMISPTop))
	key(keyMISPDays, fmt.Sprintf("past complete days kept in the feed; default %d, %d to %d", defaultMISPDays, minMISPDays, maxMISPDays))
	key(keyBlocklistDays, fmt.Sprintf("complete days behind feeds/sources.txt; default %d, %d to %d", defaultBlocklistDays, minBlocklistDays, maxBlocklistDays))
	key(keyBlocklistMin, fmt.Sprintf("least attempts over them to be listed; default %d, %d to %d", defaultBlocklistMin, minBlocklistMin, maxBlocklistMin))
	key(keyDedupeDays, fmt.Sprintf("a line identical to one counted within this many days (by the day of its timestamp) is skipped as duplicate; default %d, %d to %d, 0: off", defaultDedupeDays, minDedupeDays, maxDedupeDays))
	key(keyMinReplicas, fmt.Sprintf("replicas of the counting Redis that must have a batch (Redis WAIT, 1 s) before it is acknowledged on the D4 queue; default %d (do not wait), %d to %d", defaultMinReplicas, minMinReplicas, maxMinReplicas))
	key(keyTLSCert, "PEM certificate (with chain) for HTTPS; relative to the configuration directory; with http_tls_key the web server speaks HTTPS only, re-read when it changes; default none")
	key(keyTLSKey, "PEM private key of http_tls_cert; both or neither; default none")
	key(keyHTTPUsers, "htpasswd file of bcrypt hashes (htpasswd -B); relative to the configuration directory; every path but /healthz then needs a password; default none")
	key(keyRetainDays, fmt.Sprintf("days whose per-day statistics and stored attempts are kept, today included; older days are archived under archive/ and pruned; default %d (keep every day), %d to %d", defaultRetainDays, minRetainDays, maxRetainDays))
	key(keyDrilldown, "record which user names, sources and hosts went together, for /api/v1/drill (memory: see README); default true")
	key(keyAPICacheMB, fmt.Sprintf("MiB of closed days', months' and years' rankings the daemon keeps between /api/v1/top questions, so that they are not read from the counting Redis again (read in the background after the first question); default %d, %d to %d, 0: keep none", defaultAPICacheMB, minAPICacheMB, maxAPICacheMB))
	return b.String()
}
