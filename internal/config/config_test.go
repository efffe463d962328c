package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/sshd"
)

// badDirs maps each directory under testdata/bad to the exact message Load
// must give for it. The messages are what an operator reads, so they are
// compared whole.
var badDirs = []struct {
	dir  string
	want string
}{
	{"d4-bad-host", `testdata/bad/d4-bad-host/redis_d4: "local host:6380/2" has host "local host", not a host name or IP address; want host:port/db, like localhost:6380/2`},
	{"d4-brackets-not-ipv6", `testdata/bad/d4-brackets-not-ipv6/redis_d4: "[localhost]:6380/2" has host "localhost" in brackets, which are for IPv6 addresses only; want host:port/db, like localhost:6380/2`},
	{"d4-db-16", `testdata/bad/d4-db-16/redis_d4: "localhost:6380/16" has database "16"; want a database from 0 to 15 (the D4 server keeps analyzer queues in 2)`},
	{"d4-db-huge", `testdata/bad/d4-db-huge/redis_d4: "localhost:6380/99999999999999999999" has database "99999999999999999999"; want a database from 0 to 15 (the D4 server keeps analyzer queues in 2)`},
	{"d4-db-negative", `testdata/bad/d4-db-negative/redis_d4: "localhost:6380/-1" has database "-1", not a decimal number; want host:port/db, like localhost:6380/2`},
	{"d4-db-not-number", `testdata/bad/d4-db-not-number/redis_d4: "localhost:6380/two" has database "two", not a decimal number; want host:port/db, like localhost:6380/2`},
	{"d4-empty-host", `testdata/bad/d4-empty-host/redis_d4: ":6380/2" has no host; want host:port/db, like localhost:6380/2`},
	{"d4-ipv6-without-brackets", `testdata/bad/d4-ipv6-without-brackets/redis_d4: "::1:6380/2" is not host:port (an IPv6 address goes in brackets, like [::1]:6380); want host:port/db, like localhost:6380/2`},
	{"d4-no-db", `testdata/bad/d4-no-db/redis_d4: "localhost:6380" has no database; want host:port/db, like localhost:6380/2`},
	{"d4-no-port", `testdata/bad/d4-no-port/redis_d4: "localhost/2" has no port; want host:port/db, like localhost:6380/2`},
	{"d4-port-not-number", `testdata/bad/d4-port-not-number/redis_d4: "localhost:redis/2" has port "redis"; want a port from 1 to 65535, like localhost:6380/2`},
	{"d4-port-out-of-range", `testdata/bad/d4-port-out-of-range/redis_d4: "localhost:65536/2" has port "65536"; want a port from 1 to 65535, like localhost:6380/2`},
	{"d4-port-zero", `testdata/bad/d4-port-zero/redis_d4: "localhost:0/2" has port "0"; want a port from 1 to 65535, like localhost:6380/2`},
	{"empty-redis_queue", `testdata/bad/empty-redis_queue/redis_queue: empty; want the analyzer queue's UUID from the D4 web UI, like 3a7b1a4e-9f51-4c1e-a3c2-2f0e8c9b6d11`},
	{"http-no-port", `testdata/bad/http-no-port/http_server: "8080" has no port; want the host:port the web server listens on, like 127.0.0.1:8080`},
	{"http-not-host-port", `testdata/bad/http-not-host-port/http_server: "http://127.0.0.1:8080/" is not host:port; want the host:port the web server listens on, like 127.0.0.1:8080`},
	{"http-port-zero", `testdata/bad/http-port-zero/http_server: "127.0.0.1:0" has port "0"; want a port from 1 to 65535, like 127.0.0.1:8080`},
	{"missing-redis_d4", `testdata/bad/missing-redis_d4/redis_d4: missing; want the D4 server's Redis as host:port/db, like localhost:6380/2`},
	{"missing-redis_parsers", `testdata/bad/missing-redis_parsers/redis_parsers: missing; want the counting Redis as host:port/N with N the pool size, like localhost:6500/16, or its Sentinels as sentinel://HOST:PORT[,HOST:PORT...]/MASTERNAME/N with N the pool size, like sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/counting/16`},
	{"missing-redis_queue", `testdata/bad/missing-redis_queue/redis_queue: missing; want the analyzer queue's UUID from the D4 web UI, like 3a7b1a4e-9f51-4c1e-a3c2-2f0e8c9b6d11`},
	{"parsers-sentinel-bad-host", `testdata/bad/parsers-sentinel-bad-host/redis_parsers: "sentinel://10.0.0.1:26379,10.0.0.2/counting/16" has sentinel "10.0.0.2" that has no port; want sentinel://HOST:PORT[,HOST:PORT...]/MASTERNAME/N with N the pool size, like sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/counting/16`},
	{"parsers-sentinel-bad-master", `testdata/bad/parsers-sentinel-bad-master/redis_parsers: "sentinel://10.0.0.1:26379/my master/16" has master name "my master", not letters, digits, '-', '.' or '_' (at most 128); want sentinel://HOST:PORT[,HOST:PORT...]/MASTERNAME/N with N the pool size, like sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/counting/16`},
	{"parsers-sentinel-no-hosts", `testdata/bad/parsers-sentinel-no-hosts/redis_parsers: "sentinel:///counting/16" has no sentinel host:port; want sentinel://HOST:PORT[,HOST:PORT...]/MASTERNAME/N with N the pool size, like sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/counting/16`},
	{"parsers-sentinel-no-master", `testdata/bad/parsers-sentinel-no-master/redis_parsers: "sentinel://10.0.0.1:26379//16" has no master name; want sentinel://HOST:PORT[,HOST:PORT...]/MASTERNAME/N with N the pool size, like sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/counting/16`},
	{"parsers-sentinel-no-pool", `testdata/bad/parsers-sentinel-no-pool/redis_parsers: "sentinel://10.0.0.1:26379/counting" has no pool size after the master name; want sentinel://HOST:PORT[,HOST:PORT...]/MASTERNAME/N with N the pool size, like sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/counting/16`},
	{"parsers-sentinel-pool-zero", `testdata/bad/parsers-sentinel-pool-zero/redis_parsers: "sentinel://10.0.0.1:26379/counting/0" has pool size "0"; want a pool size from 1 to 1024, like sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/counting/16`},
	{"parsers-sentinel-twice", `testdata/bad/parsers-sentinel-twice/redis_parsers: "sentinel://10.0.0.1:26379,10.0.0.1:26379/counting/16" names sentinel "10.0.0.1:26379" twice; want sentinel://HOST:PORT[,HOST:PORT...]/MASTERNAME/N with N the pool size, like sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/counting/16`},
	{"toml-min-replicas-string", `testdata/bad/toml-min-replicas-string/analyzer.toml: min_replicas "one" is a string, not an integer; want an integer from 0 to 16 (0: do not wait for replicas)`},
	{"toml-min-replicas-too-big", `testdata/bad/toml-min-replicas-too-big/analyzer.toml: min_replicas 17 is out of range; want an integer from 0 to 16 (0: do not wait for replicas)`},
	{"parsers-empty-host", `testdata/bad/parsers-empty-host/redis_parsers: ":6500/16" has no host; want host:port/N with N the pool size, like localhost:6500/16`},
	{"parsers-no-pool", `testdata/bad/parsers-no-pool/redis_parsers: "localhost:6500" has no pool size; want host:port/N with N the pool size, like localhost:6500/16`},
	{"parsers-pool-not-number", `testdata/bad/parsers-pool-not-number/redis_parsers: "localhost:6500/sixteen" has pool size "sixteen", not a decimal number; want host:port/N with N the pool size, like localhost:6500/16`},
	{"parsers-pool-too-big", `testdata/bad/parsers-pool-too-big/redis_parsers: "localhost:6500/1025" has pool size "1025"; want a pool size from 1 to 1024, like localhost:6500/16`},
	{"parsers-pool-zero", `testdata/bad/parsers-pool-zero/redis_parsers: "localhost:6500/0" has pool size "0"; want a pool size from 1 to 1024, like localhost:6500/16`},
	{"parsers-port-out-of-range", `testdata/bad/parsers-port-out-of-range/redis_parsers: "localhost:70000/16" has port "70000"; want a port from 1 to 65535, like localhost:6500/16`},
	{"queue-bad-hex", `testdata/bad/queue-bad-hex/redis_queue: "3a7b1a4e-9f51-4c1e-a3c2-2f0e8c9b6d1g" is not a UUID; want the analyzer queue's UUID from the D4 web UI, like 3a7b1a4e-9f51-4c1e-a3c2-2f0e8c9b6d11`},
	{"queue-long-binary", `testdata/bad/queue-long-binary/redis_queue: "\x00\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"... is not a UUID; want the analyzer queue's UUID from the D4 web UI, like 3a7b1a4e-9f51-4c1e-a3c2-2f0e8c9b6d11`},
	{"queue-not-uuid", `testdata/bad/queue-not-uuid/redis_queue: "abc" is not a UUID; want the analyzer queue's UUID from the D4 web UI, like 3a7b1a4e-9f51-4c1e-a3c2-2f0e8c9b6d11`},
	{"queue-two-lines", `testdata/bad/queue-two-lines/redis_queue: "3a7b1a4e-9f51-4c1e-a3c2-2f0e8c9b6d11\n3a7b1a4e-9f51-4c1e-a3c2-2f0e8c9b6d11" is not a UUID; want the analyzer queue's UUID from the D4 web UI, like 3a7b1a4e-9f51-4c1e-a3c2-2f0e8c9b6d11`},
	{"toml-batch-size-float", `testdata/bad/toml-batch-size-float/analyzer.toml: batch_size 1000.0 is a float, not an integer; want an integer from 1 to 100000`},
	{"toml-batch-size-too-big", `testdata/bad/toml-batch-size-too-big/analyzer.toml: batch_size 100001 is out of range; want an integer from 1 to 100000`},
	{"toml-chart-top-string", `testdata/bad/toml-chart-top-string/analyzer.toml: chart_top "25" is a string, not an integer; want an integer from 1 to 200`},
	{"toml-chart-top-table", `testdata/bad/toml-chart-top-table/analyzer.toml: chart_top is a table, not an integer; want an integer from 1 to 200`},
	{"toml-chart-top-too-big", `testdata/bad/toml-chart-top-too-big/analyzer.toml: chart_top 201 is out of range; want an integer from 1 to 200`},
	{"toml-geoip-missing", `testdata/bad/toml-geoip-missing/analyzer.toml: geoip_country_db "testdata/bad/toml-geoip-missing/GeoLite2-Country.mmdb": stat testdata/bad/toml-geoip-missing/GeoLite2-Country.mmdb: no such file or directory; want the path of a MaxMind-format country database with country.iso_code, like "GeoLite2-Country.mmdb" (GeoLite2-Country, DB-IP country lite, IPinfo lite)`},
	{"toml-geoip-not-mmdb", `testdata/bad/toml-geoip-not-mmdb/analyzer.toml: geoip_asn_db "testdata/bad/toml-geoip-not-mmdb/analyzer.toml": not a MaxMind-format (.mmdb) database: error opening database: invalid MaxMind DB file; want the path of a MaxMind-format AS database with autonomous_system_number, like "GeoLite2-ASN.mmdb" (GeoLite2-ASN, DB-IP ASN lite, IPinfo lite)`},
	{"toml-geoip-number", `testdata/bad/toml-geoip-number/analyzer.toml: geoip_asn_db 5 is an integer, not a string; want the path of a MaxMind-format AS database with autonomous_system_number, like "GeoLite2-ASN.mmdb" (GeoLite2-ASN, DB-IP ASN lite, IPinfo lite)`},
	{"toml-chart-top-zero", `testdata/bad/toml-chart-top-zero/analyzer.toml: chart_top 0 is out of range; want an integer from 1 to 200`},
	{"toml-interval-float", `testdata/bad/toml-interval-float/analyzer.toml: compile_interval 1.5 is a float, not a duration; want a Go duration like "60s" or "5m", or whole seconds like 60; at least 1s`},
	{"toml-interval-malformed", `testdata/bad/toml-interval-malformed/analyzer.toml: compile_interval "5 minutes" is not a duration; want a Go duration like "60s" or "5m", or whole seconds like 60; at least 1s`},
	{"toml-interval-negative", `testdata/bad/toml-interval-negative/analyzer.toml: compile_interval "-5s" is not positive; want a Go duration like "60s" or "5m", or whole seconds like 60; at least 1s`},
	{"toml-interval-negative-seconds", `testdata/bad/toml-interval-negative-seconds/analyzer.toml: compile_interval -5 is not positive; want a Go duration like "60s" or "5m", or whole seconds like 60; at least 1s`},
	{"toml-interval-subsecond", `testdata/bad/toml-interval-subsecond/analyzer.toml: compile_interval "500ms" is shorter than 1s; want a Go duration like "60s" or "5m", or whole seconds like 60; at least 1s`},
	{"toml-interval-too-long", `testdata/bad/toml-interval-too-long/analyzer.toml: compile_interval 9223372036854775807 is too long; want a Go duration like "60s" or "5m", or whole seconds like 60; at least 1s`},
	{"toml-interval-zero", `testdata/bad/toml-interval-zero/analyzer.toml: compile_interval 0 is not positive; want a Go duration like "60s" or "5m", or whole seconds like 60; at least 1s`},
	{"toml-key-case", `testdata/bad/toml-key-case/analyzer.toml: unknown key "Chart_Top"; allowed keys: api_cache_mb, batch_size, blocklist_days, blocklist_min, chart_top, compile_interval, dedupe_days, drilldown, geoip_asn_db, geoip_country_db, http_tls_cert, http_tls_key, http_users, max_age_days, max_line_bytes, max_value_bytes, min_replicas, misp, misp_days, misp_distribution, misp_event_info, misp_org_name, misp_org_uuid, misp_published, misp_tags, misp_top, output_dir, retain_days, timezone`},
	{"toml-malformed", `testdata/bad/toml-malformed/analyzer.toml: line 3: expected value but found '=' instead; want TOML lines like chart_top = 25`},
	{"toml-many-unknown-keys", `testdata/bad/toml-many-unknown-keys/analyzer.toml: unknown keys "k0", "k1", "k2", "k3", "k4" and 3 more; allowed keys: api_cache_mb, batch_size, blocklist_days, blocklist_min, chart_top, compile_interval, dedupe_days, drilldown, geoip_asn_db, geoip_country_db, http_tls_cert, http_tls_key, http_users, max_age_days, max_line_bytes, max_value_bytes, min_replicas, misp, misp_days, misp_distribution, misp_event_info, misp_org_name, misp_org_uuid, misp_published, misp_tags, misp_top, output_dir, retain_days, timezone`},
	{"toml-max-line-bytes-bool", `testdata/bad/toml-max-line-bytes-bool/analyzer.toml: max_line_bytes true is a boolean, not an integer; want an integer from 1024 to 67108864`},
	{"toml-max-line-bytes-too-big", `testdata/bad/toml-max-line-bytes-too-big/analyzer.toml: max_line_bytes 67108865 is out of range; want an integer from 1024 to 67108864`},
	{"toml-max-line-bytes-too-small", `testdata/bad/toml-max-line-bytes-too-small/analyzer.toml: max_line_bytes 1023 is out of range; want an integer from 1024 to 67108864`},
	{"toml-max-age-days-float", `testdata/bad/toml-max-age-days-float/analyzer.toml: max_age_days 3650.5 is a float, not an integer; want an integer from 0 to 36500 (0: no age limit)`},
	{"toml-max-age-days-negative", `testdata/bad/toml-max-age-days-negative/analyzer.toml: max_age_days -1 is out of range; want an integer from 0 to 36500 (0: no age limit)`},
	{"toml-max-age-days-string", `testdata/bad/toml-max-age-days-string/analyzer.toml: max_age_days "10y" is a string, not an integer; want an integer from 0 to 36500 (0: no age limit)`},
	{"toml-max-age-days-too-big", `testdata/bad/toml-max-age-days-too-big/analyzer.toml: max_age_days 36501 is out of range; want an integer from 0 to 36500 (0: no age limit)`},
	{"toml-dedupe-days-negative", `testdata/bad/toml-dedupe-days-negative/analyzer.toml: dedupe_days -1 is out of range; want an integer from 0 to 366 (0: count resent lines again)`},
	{"toml-dedupe-days-too-big", `testdata/bad/toml-dedupe-days-too-big/analyzer.toml: dedupe_days 367 is out of range; want an integer from 0 to 366 (0: count resent lines again)`},
	{"toml-dedupe-days-string", `testdata/bad/toml-dedupe-days-string/analyzer.toml: dedupe_days "7d" is a string, not an integer; want an integer from 0 to 366 (0: count resent lines again)`},
	{"toml-dedupe-days-bool", `testdata/bad/toml-dedupe-days-bool/analyzer.toml: dedupe_days false is a boolean, not an integer; want an integer from 0 to 366 (0: count resent lines again)`},
	{"toml-retain-days-negative", `testdata/bad/toml-retain-days-negative/analyzer.toml: retain_days -1 is out of range; want an integer from 0 to 36500 (0: keep every day)`},
	{"toml-retain-days-too-big", `testdata/bad/toml-retain-days-too-big/analyzer.toml: retain_days 36501 is out of range; want an integer from 0 to 36500 (0: keep every day)`},
	{"toml-retain-days-string", `testdata/bad/toml-retain-days-string/analyzer.toml: retain_days "30d" is a string, not an integer; want an integer from 0 to 36500 (0: keep every day)`},
	{"toml-retain-days-short-for-misp", `testdata/bad/toml-retain-days-short-for-misp/analyzer.toml: retain_days 20 is shorter than misp_days 30, which is written from the statistics of each of its days and today's; want 0 (keep every day) or from 31 to 36500`},
	{"toml-retain-days-short-for-blocklist", `testdata/bad/toml-retain-days-short-for-blocklist/analyzer.toml: retain_days 7 is shorter than blocklist_days 14, which is written from the statistics of each of its days and today's; want 0 (keep every day) or from 15 to 36500`},
	{"toml-max-value-bytes-string", `testdata/bad/toml-max-value-bytes-string/analyzer.toml: max_value_bytes "1KiB" is a string, not an integer; want an integer from 64 to 1048576`},
	{"toml-max-value-bytes-too-big", `testdata/bad/toml-max-value-bytes-too-big/analyzer.toml: max_value_bytes 1048577 is out of range; want an integer from 64 to 1048576`},
	{"toml-max-value-bytes-too-small", `testdata/bad/toml-max-value-bytes-too-small/analyzer.toml: max_value_bytes 63 is out of range; want an integer from 64 to 1048576`},
	{"toml-max-value-bytes-zero", `testdata/bad/toml-max-value-bytes-zero/analyzer.toml: max_value_bytes 0 is out of range; want an integer from 64 to 1048576`},
	{"toml-output-dir-empty", `testdata/bad/toml-output-dir-empty/analyzer.toml: output_dir "" is empty; want a directory path like "data"`},
	{"toml-output-dir-not-string", `testdata/bad/toml-output-dir-not-string/analyzer.toml: output_dir is an array, not a string; want a directory path like "data"`},
	{"toml-timezone-not-string", `testdata/bad/toml-timezone-not-string/analyzer.toml: timezone 1 is an integer, not a string; want a name like Europe/Luxembourg or UTC`},
	{"toml-timezone-date", `testdata/bad/toml-timezone-date/analyzer.toml: timezone is a date or time, not a string; want a name like Europe/Luxembourg or UTC`},
	{"toml-timezone-unknown", `testdata/bad/toml-timezone-unknown/analyzer.toml: timezone "Mars/Olympus" is not a known IANA time zone; want a name like Europe/Luxembourg or UTC`},
	{"toml-duplicate-key", `testdata/bad/toml-duplicate-key/analyzer.toml: line 3: Key 'chart_top' has already been defined; want TOML lines like chart_top = 25`},
	{"toml-control-character", `testdata/bad/toml-control-character/analyzer.toml: line 1: TOML files cannot contain control characters: '0x01'; want TOML lines like chart_top = 25`},
	{"toml-too-many-settings", `testdata/bad/toml-too-many-settings/analyzer.toml: 5004 bytes outside comments; want a few lines like chart_top = 25, at most 4096 bytes besides comments`},
	{"toml-file-too-large", `testdata/bad/toml-file-too-large/analyzer.toml: larger than 65536 bytes; want a few lines of TOML settings`},
	{"toml-unknown-key", `testdata/bad/toml-unknown-key/analyzer.toml: unknown key "compile_intervall"; allowed keys: api_cache_mb, batch_size, blocklist_days, blocklist_min, chart_top, compile_interval, dedupe_days, drilldown, geoip_asn_db, geoip_country_db, http_tls_cert, http_tls_key, http_users, max_age_days, max_line_bytes, max_value_bytes, min_replicas, misp, misp_days, misp_distribution, misp_event_info, misp_org_name, misp_org_uuid, misp_published, misp_tags, misp_top, output_dir, retain_days, timezone`},
	{"toml-unknown-keys", `testdata/bad/toml-unknown-keys/analyzer.toml: unknown keys "alpha", "section", "zeta"; allowed keys: api_cache_mb, batch_size, blocklist_days, blocklist_min, chart_top, compile_interval, dedupe_days, drilldown, geoip_asn_db, geoip_country_db, http_tls_cert, http_tls_key, http_users, max_age_days, max_line_bytes, max_value_bytes, min_replicas, misp, misp_days, misp_distribution, misp_event_info, misp_org_name, misp_org_uuid, misp_published, misp_tags, misp_top, output_dir, retain_days, timezone`},
	{"toml-misp-not-bool", `testdata/bad/toml-misp-not-bool/analyzer.toml: misp "yes" is a string, not a boolean; want true or false`},
	{"toml-drilldown-string", `testdata/bad/toml-drilldown-string/analyzer.toml: drilldown "no" is a string, not a boolean; want true or false`},
	{"toml-api-cache-negative", `testdata/bad/toml-api-cache-negative/analyzer.toml: api_cache_mb -1 is out of range; want an integer from 0 to 65536 (MiB; 0: keep none)`},
	{"toml-api-cache-too-big", `testdata/bad/toml-api-cache-too-big/analyzer.toml: api_cache_mb 65537 is out of range; want an integer from 0 to 65536 (MiB; 0: keep none)`},
	{"toml-api-cache-string", `testdata/bad/toml-api-cache-string/analyzer.toml: api_cache_mb "256MB" is a string, not an integer; want an integer from 0 to 65536 (MiB; 0: keep none)`},
	{"toml-misp-published-int", `testdata/bad/toml-misp-published-int/analyzer.toml: misp_published 1 is an integer, not a boolean; want true or false`},
	{"toml-misp-org-name-empty", `testdata/bad/toml-misp-org-name-empty/analyzer.toml: misp_org_name " " is empty; want the organisation's name as MISP shows it, 1 to 255 bytes of printable UTF-8`},
	{"toml-misp-org-name-control", `testdata/bad/toml-misp-org-name-control/analyzer.toml: misp_org_name "CIRCL\a" contains a control or invisible character; want the organisation's name as MISP shows it, 1 to 255 bytes of printable UTF-8`},
	{"toml-misp-org-uuid-bad", `testdata/bad/toml-misp-org-uuid-bad/analyzer.toml: misp_org_uuid "55f6ea5e-2c60-40e5-964f" is not a UUID; want the organisation's UUID in MISP, like 3a7b1a4e-9f51-4c1e-a3c2-2f0e8c9b6d11`},
	{"toml-misp-event-info-table", `testdata/bad/toml-misp-event-info-table/analyzer.toml: misp_event_info is a table, not a string; want a prefix of the event titles (the day follows), 1 to 1000 bytes of printable UTF-8`},
	{"toml-misp-tags-string", `testdata/bad/toml-misp-tags-string/analyzer.toml: misp_tags "tlp:clear" is a string, not an array; want an array of tag names like ["tlp:clear"], at most 32, each 1 to 255 bytes of printable UTF-8`},
	{"toml-misp-tags-number", `testdata/bad/toml-misp-tags-number/analyzer.toml: misp_tags[1] 3 is an integer, not a string; want an array of tag names like ["tlp:clear"], at most 32, each 1 to 255 bytes of printable UTF-8`},
	{"toml-misp-tags-empty-name", `testdata/bad/toml-misp-tags-empty-name/analyzer.toml: misp_tags[0] "" is empty; want an array of tag names like ["tlp:clear"], at most 32, each 1 to 255 bytes of printable UTF-8`},
	{"toml-misp-distribution-4", `testdata/bad/toml-misp-distribution-4/analyzer.toml: misp_distribution 4 is out of range; want an integer from 0 to 3 (0: your organisation only, 1: this community, 2: connected communities, 3: all communities)`},
	{"toml-misp-top-too-big", `testdata/bad/toml-misp-top-too-big/analyzer.toml: misp_top 1001 is out of range; want an integer from 1 to 1000`},
	{"toml-misp-top-zero", `testdata/bad/toml-misp-top-zero/analyzer.toml: misp_top 0 is out of range; want an integer from 1 to 1000`},
	{"toml-misp-days-float", `testdata/bad/toml-misp-days-float/analyzer.toml: misp_days 30.0 is a float, not an integer; want an integer from 1 to 3660`},
	{"toml-blocklist-days-zero", `testdata/bad/toml-blocklist-days-zero/analyzer.toml: blocklist_days 0 is out of range; want an integer from 1 to 3660`},
	{"toml-blocklist-min-string", `testdata/bad/toml-blocklist-min-string/analyzer.toml: blocklist_min "5" is a string, not an integer; want an integer from 1 to 1000000000`},
	{"tls-cert-only", `testdata/bad/tls-cert-only/analyzer.toml: http_tls_cert is set but http_tls_key is not; want both (HTTPS) or neither (plain HTTP)`},
	{"tls-cert-missing", `testdata/bad/tls-cert-missing/analyzer.toml: http_tls_cert/http_tls_key: testdata/bad/tls-cert-missing/tls/cert.pem: missing; want a PEM file`},
	{"tls-cert-not-pem", `testdata/bad/tls-cert-not-pem/analyzer.toml: http_tls_cert/http_tls_key: "testdata/bad/tls-cert-not-pem/cert.pem" and "testdata/bad/tls-cert-not-pem/key.pem": failed to find any PEM data in certificate input; want a PEM certificate and the private key it was issued for`},
	{"users-md5", `testdata/bad/users-md5/analyzer.toml: http_users: testdata/bad/users-md5/users: line 2 (user "alice"): MD5 hash ($apr1$), not bcrypt; want "user:hash" lines with bcrypt hashes as written by htpasswd -B`},
	{"users-malformed", `testdata/bad/users-malformed/analyzer.toml: http_users: testdata/bad/users-malformed/users: line 2 has no ":"; want "user:hash" lines with bcrypt hashes as written by htpasswd -B`},
	{"users-missing", `testdata/bad/users-missing/analyzer.toml: http_users: testdata/bad/users-missing/nowhere.htpasswd: missing; want an htpasswd file with bcrypt hashes (htpasswd -B -c FILE USER), like "users.htpasswd"`},
	{"tls-cert-not-string", `testdata/bad/tls-cert-not-string/analyzer.toml: http_tls_cert 443 is an integer, not a string; want a PEM certificate file (with its chain) whose key is http_tls_key, like "tls/cert.pem"`},
	{"value-file-too-large", `testdata/bad/value-file-too-large/redis_queue: larger than 4096 bytes; want a file holding just the value`},
}

func TestLoadBad(t *testing.T) {
	for _, tc := range badDirs {
		t.Run(tc.dir, func(t *testing.T) {
			cfg, err := Load(filepath.Join("testdata", "bad", tc.dir))
			if err == nil {
				t.Fatalf("Load succeeded with %+v; want error %q", cfg, tc.want)
			}
			if cfg != nil {
				t.Errorf("Load returned a config along with its error")
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

// TestBadDirsListed keeps the table and testdata/bad in step: a case
// directory without a row would never be checked.
func TestBadDirsListed(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "bad"))
	if err != nil {
		t.Fatal(err)
	}
	listed := make(map[string]bool)
	for _, tc := range badDirs {
		listed[tc.dir] = true
	}
	onDisk := make(map[string]bool)
	for _, e := range entries {
		onDisk[e.Name()] = true
		if !listed[e.Name()] {
			t.Errorf("testdata/bad/%s has no expected message in badDirs", e.Name())
		}
	}
	for _, tc := range badDirs {
		if !onDisk[tc.dir] {
			t.Errorf("badDirs lists %q, which is not in testdata/bad", tc.dir)
		}
	}
}

func TestLoadBadDirectory(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want string
	}{
		{
			"testdata/bad/does-not-exist",
			"testdata/bad/does-not-exist: configuration directory does not exist; want a directory holding redis_d4, redis_queue and redis_parsers",
		},
		{
			// A file given where the directory belongs.
			"testdata/good/minimal/redis_d4",
			"testdata/good/minimal/redis_d4: not a directory; want a directory holding redis_d4, redis_queue and redis_parsers",
		},
		{
			"",
			"configuration directory not given; want a directory holding redis_d4, redis_queue and redis_parsers",
		},
		{
			// The path in messages is the one the operator gave, uncleaned
			// only as far as filepath.Join cleans it.
			"./testdata/bad//d4-no-db/",
			`testdata/bad/d4-no-db/redis_d4: "localhost:6380" has no database; want host:port/db, like localhost:6380/2`,
		},
	} {
		cfg, err := Load(tc.dir)
		if err == nil {
			t.Errorf("Load(%q) succeeded with %+v; want error %q", tc.dir, cfg, tc.want)
			continue
		}
		if got := err.Error(); got != tc.want {
			t.Errorf("Load(%q) error\n got: %s\nwant: %s", tc.dir, got, tc.want)
		}
	}
}

func TestLoadUnreadable(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, validFiles())
	// A directory where a value file belongs fails on read whoever runs
	// the test, unlike file permissions, which root ignores.
	if err := os.Mkdir(filepath.Join(dir, FileRedisParsers+".d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, FileRedisParsers)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, FileRedisParsers+".d"), filepath.Join(dir, FileRedisParsers)); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	want := filepath.Join(dir, FileRedisParsers) + ": is a directory, not a regular file; want a file holding just the value"
	if err == nil || err.Error() != want {
		t.Fatalf("Load: got %v; want %s", err, want)
	}
}

const sampleQueue = "3a7b1a4e-9f51-4c1e-a3c2-2f0e8c9b6d11"

// defaults is the configuration of testdata/good/minimal: the three
// required files and nothing else.
func defaults(dir string) Config {
	return Config{
		Dir:             dir,
		D4:              RedisAddr{Addr: "localhost:6380", DB: 2},
		Queue:           sampleQueue,
		Parsers:         "localhost:6500",
		Pool:            16,
		HTTPServer:      "",
		TimezoneName:    "",
		Location:        time.Local,
		CompileInterval: 60 * time.Second,
		OutputDir:       "data",
		ChartTop:        25,
		BatchSize:       4000,
		MaxLineBytes:    1 << 20,
		MaxAgeDays:      3650,
		MaxValueBytes:   1024,
		Drilldown:       true,
		APICacheMB:      256,

		MISP:          true,
		MISPOrgName:   "analyzer-d4-log",
		MISPOrgUUID:   DefaultMISPOrgUUID(sampleQueue),
		MISPEventInfo: "analyzer-d4-log: SSH attempts for invalid user names on",
		MISPTags:      []string{"tlp:clear"},
		MISPTop:       100,
		MISPDays:      30,
		BlocklistDays: 7,
		BlocklistMin:  5,
		DedupeDays:    7,
	}
}

func TestLoadGood(t *testing.T) {
	lux, err := time.LoadLocation("Europe/Luxembourg")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir  string
		edit func(*Config)
	}{
		{"minimal", func(*Config) {}},
		{"comments-only-toml", func(*Config) {}},
		{"empty-http-server", func(*Config) {}},
		{"trimmed", func(c *Config) {
			// Upper-case queue UUIDs are lower-cased: the D4 server keys
			// the queue by the lower-case form.
			c.HTTPServer = "127.0.0.1:8080"
		}},
		{"long-comments", func(c *Config) { c.ChartTop = 30 }},
		{"full", func(c *Config) {
			c.HTTPServer = "127.0.0.1:8080"
			c.TimezoneName = "Europe/Luxembourg"
			c.Location = lux
			c.CompileInterval = 5 * time.Minute
			c.OutputDir = "public/stats"
			c.ChartTop = 200
			c.BatchSize = 1
			c.MaxLineBytes = 1024
			c.MaxAgeDays = 0
			c.MaxValueBytes = 64
			c.DedupeDays = 0
		}},
		{"misp", func(c *Config) {
			c.MISP = false
			c.MISPOrgName = "CIRCL"
			c.MISPOrgUUID = "55f6ea5e-2c60-40e5-964f-47a8950d210f"
			c.MISPEventInfo = "D4 sshd"
			c.MISPTags = []string{"tlp:green", "d4:sensor"}
			c.MISPDistribution = 3
			c.MISPPublished = true
			c.MISPTop = 1000
			c.MISPDays = 3660
			c.BlocklistDays = 1
			c.BlocklistMin = 1
		}},
		{"retention", func(c *Config) { c.RetainDays = 31 }},
		{"retention-without-misp", func(c *Config) { c.MISP = false; c.RetainDays = 8 }},
		{"interval-seconds", func(c *Config) {
			c.TimezoneName = "UTC"
			c.Location = time.UTC
			c.CompileInterval = 90 * time.Second
			c.ChartTop = 1
			c.BatchSize = 100000
			c.MaxLineBytes = 64 << 20
			c.MaxAgeDays = 36500
			c.MaxValueBytes = 1 << 20
			c.DedupeDays = 366
		}},
		{"ipv6-and-names", func(c *Config) {
			c.D4 = RedisAddr{Addr: "[::1]:6380", DB: 0}
			c.Parsers = "redis-counting.internal_1:6500"
			c.Pool = 1024
			c.HTTPServer = "[::]:8080"
		}},
		{"sentinel", func(c *Config) {
			c.Parsers = "sentinel://10.0.0.1:26379,sentinel-b.internal:26379,[::1]:26380/counting_1"
			c.Sentinels = []string{"10.0.0.1:26379", "sentinel-b.internal:26379", "[::1]:26380"}
			c.SentinelMaster = "counting_1"
			c.Pool = 8
			c.MinReplicas = 1
		}},
		{"listen-all-interfaces", func(c *Config) {
			c.D4 = RedisAddr{Addr: "192.0.2.10:6380", DB: 15}
			c.Parsers = "127.0.0.1:1"
			c.Pool = 1
			c.HTTPServer = ":8080"
		}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", "good", tc.dir)
			got, err := Load(dir)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := defaults(dir)
			tc.edit(&want)
			compareConfig(t, got, &want)
		})
	}
}

func TestLoadGoodDirsListed(t *testing.T) {
	// Every good directory must load; TestLoadGood checks their values.
	entries, err := os.ReadDir(filepath.Join("testdata", "good"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := Load(filepath.Join("testdata", "good", e.Name())); err != nil {
			t.Errorf("testdata/good/%s: %v", e.Name(), err)
		}
	}
}

// TestLoadSample checks that the shipped conf.sample runs as is: against a
// local D4 server and the counting Redis that launch_server.sh starts.
func TestLoadSample(t *testing.T) {
	dir := filepath.Join("..", "..", "conf.sample")
	got, err := Load(dir)
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	want := defaults(dir)
	want.Queue = got.Queue // a random UUID; its form is checked below
	want.HTTPServer = "127.0.0.1:8080"
	want.MISPOrgUUID = DefaultMISPOrgUUID(got.Queue)
	compareConfig(t, got, &want)
	if q, ok := canonicalUUID(got.Queue); !ok || q != got.Queue || got.Queue[14] != '4' {
		t.Errorf("sample queue %q is not a lower-case UUID v4", got.Queue)
	}

	// Every key of analyzer.toml is in the sample, commented out at its
	// default: uncommenting them all must change nothing.
	data, err := os.ReadFile(filepath.Join(dir, FileAnalyzerTOML))
	if err != nil {
		t.Fatal(err)
	}
	var uncommented []string
	for _, line := range strings.Split(string(data), "\n") {
		for _, k := range tomlKeys() {
			if strings.HasPrefix(line, "#"+k+" = ") {
				uncommented = append(uncommented, strings.TrimPrefix(line, "#"))
			}
		}
	}
	if len(uncommented) != len(tomlKeys()) {
		t.Fatalf("sample analyzer.toml has %d commented-out keys %q; want one per key %q", len(uncommented), uncommented, tomlKeys())
	}
	tmp := t.TempDir()
	files := validFiles()
	files[FileAnalyzerTOML] = strings.Join(uncommented, "\n") + "\n"
	writeFiles(t, tmp, files)
	cfg, err := Load(tmp)
	if err != nil {
		t.Fatalf("sample defaults uncommented: %v", err)
	}
	want = defaults(tmp)
	// The sample names the organisation UUID derived from its own queue.
	want.MISPOrgUUID = got.MISPOrgUUID
	compareConfig(t, cfg, &want)
}

func TestValidate(t *testing.T) {
	good := defaults("x")
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"d4 addr", func(c *Config) { c.D4.Addr = "localhost" }},
		{"d4 db", func(c *Config) { c.D4.DB = 16 }},
		{"queue upper case", func(c *Config) { c.Queue = strings.ToUpper(sampleQueue) }},
		{"parsers", func(c *Config) { c.Parsers = "" }},
		{"pool", func(c *Config) { c.Pool = 0 }},
		{"http", func(c *Config) { c.HTTPServer = "8080" }},
		{"location", func(c *Config) { c.Location = nil }},
		{"interval", func(c *Config) { c.CompileInterval = time.Millisecond }},
		{"output", func(c *Config) { c.OutputDir = "" }},
		{"chart top", func(c *Config) { c.ChartTop = 201 }},
		{"batch", func(c *Config) { c.BatchSize = 0 }},
		{"max line", func(c *Config) { c.MaxLineBytes = 1023 }},
		{"max age negative", func(c *Config) { c.MaxAgeDays = -1 }},
		{"max age", func(c *Config) { c.MaxAgeDays = 36501 }},
		{"max value", func(c *Config) { c.MaxValueBytes = 63 }},
		{"max value zero", func(c *Config) { c.MaxValueBytes = 0 }},
	} {
		c := defaults("x")
		tc.edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", tc.name, c)
		}
	}
}

func TestFiles(t *testing.T) {
	text := Files()
	for _, name := range append([]string{FileRedisD4, FileRedisQueue, FileRedisParsers, FileHTTPServer, FileAnalyzerTOML}, tomlKeys()...) {
		found := false
		for _, line := range strings.Split(text, "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == name {
				found = true
			}
		}
		if !found {
			t.Errorf("Files() has no line for %s:\n%s", name, text)
		}
	}
	for _, def := range []string{`"60s"`, `"data"`, "default 25", "default 4000,", "default 1048576", "local zone", "default 3650,", "default 1024,"} {
		if !strings.Contains(text, def) {
			t.Errorf("Files() does not mention default %s:\n%s", def, text)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"abc", `"abc"`},
		{"a\x00\n", `"a\x00\n"`},
		{strings.Repeat("x", 80), `"` + strings.Repeat("x", 80) + `"`},
		{strings.Repeat("x", 81), `"` + strings.Repeat("x", 80) + `"...`},
		// A cut inside a rune backs off to the rune's start.
		{strings.Repeat("x", 79) + "é", `"` + strings.Repeat("x", 79) + `"...`},
	} {
		if got := quote(tc.in); got != tc.want {
			t.Errorf("quote(%q) = %s; want %s", tc.in, got, tc.want)
		}
	}
}

func compareConfig(t *testing.T, got, want *Config) {
	t.Helper()
	if got.Location == nil || want.Location == nil || got.Location.String() != want.Location.String() {
		t.Errorf("Location = %v; want %v", got.Location, want.Location)
	}
	g, w := *got, *want
	g.Location, w.Location = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("config\n got: %+v\nwant: %+v", g, w)
	}
}

// validFiles returns the three required files, valid.
func validFiles() map[string]string {
	return map[string]string{
		FileRedisD4:      "localhost:6380/2\n",
		FileRedisQueue:   sampleQueue + "\n",
		FileRedisParsers: "localhost:6500/16\n",
	}
}

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestValueCapFloorFitsParser keeps max_value_bytes' floor at or above the
// parser's: a smaller configured cap would be raised silently by the parser,
// and the operator would not get what the file says.
func TestValueCapFloorFitsParser(t *testing.T) {
	if minMaxValueBytes < sshd.MinValueBytes {
		t.Errorf("max_value_bytes may be %d, below the parser's minimum %d", minMaxValueBytes, sshd.MinValueBytes)
	}
}

func TestMaxAge(t *testing.T) {
	for _, tc := range []struct {
		days int
		want time.Duration
	}{{0, 0}, {1, 24 * time.Hour}, {3650, 3650 * 24 * time.Hour}, {36500, 36500 * 24 * time.Hour}} {
		c := Config{MaxAgeDays: tc.days}
		if got := c.MaxAge(); got != tc.want {
			t.Errorf("MaxAge() with %d days = %v; want %v", tc.days, got, tc.want)
		}
	}
}
