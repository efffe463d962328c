package daemon

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/parsers"
)

// printConfig writes the effective configuration of -check-config: every
// setting with the value the daemon would use, defaults filled in, in the
// names of the files and keys that set them, so an operator sees what a
// start would do without starting (no Redis is asked, no file written).
func printConfig(w io.Writer, c Command, cfg *config.Config, entries []parsers.Entry) error {
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name
	}
	httpServer := cfg.HTTPServer
	if httpServer == "" {
		httpServer = `"" (no web server)`
	}
	zone := cfg.Location.String()
	if cfg.TimezoneName == "" {
		zone += " (the machine's local zone)"
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "configuration directory\t%s\n", cfg.Dir)
	fmt.Fprintf(tw, "%s\t%s/%d\n", config.FileRedisD4, cfg.D4.Addr, cfg.D4.DB)
	fmt.Fprintf(tw, "%s\t%s (queue analyzer:3:%s)\n", config.FileRedisQueue, cfg.Queue, cfg.Queue)
	fmt.Fprintf(tw, "%s\t%s/%d\n", config.FileRedisParsers, cfg.Parsers, cfg.Pool)
	fmt.Fprintf(tw, "%s\t%s\n", config.FileHTTPServer, httpServer)
	fmt.Fprintf(tw, "timezone\t%s\n", zone)
	fmt.Fprintf(tw, "compile_interval\t%s\n", cfg.CompileInterval)
	fmt.Fprintf(tw, "output_dir\t%s\n", cfg.OutputDir)
	fmt.Fprintf(tw, "chart_top\t%d\n", cfg.ChartTop)
	fmt.Fprintf(tw, "batch_size\t%d\n", cfg.BatchSize)
	fmt.Fprintf(tw, "max_line_bytes\t%d\n", cfg.MaxLineBytes)
	fmt.Fprintf(tw, "max_age_days\t%d\n", cfg.MaxAgeDays)
	fmt.Fprintf(tw, "max_value_bytes\t%d\n", cfg.MaxValueBytes)
	fmt.Fprintf(tw, "dedupe_days\t%d\n", cfg.DedupeDays)
	fmt.Fprintf(tw, "geoip_country_db\t%q\n", cfg.GeoIPCountryDB)
	fmt.Fprintf(tw, "geoip_asn_db\t%q\n", cfg.GeoIPASNDB)
	fmt.Fprintf(tw, "min_replicas\t%d\n", cfg.MinReplicas)
	fmt.Fprintf(tw, "http_tls_cert\t%q\n", cfg.TLSCert)
	fmt.Fprintf(tw, "http_tls_key\t%q\n", cfg.TLSKey)
	fmt.Fprintf(tw, "http_users\t%q\n", cfg.HTTPUsers)
	fmt.Fprintf(tw, "retain_days\t%d\n", cfg.RetainDays)
	fmt.Fprintf(tw, "drilldown\t%t\n", cfg.Drilldown)
	fmt.Fprintf(tw, "api_cache_mb\t%d\n", cfg.APICacheMB)
	fmt.Fprintf(tw, "misp\t%t\n", cfg.MISP)
	fmt.Fprintf(tw, "misp_org_name\t%q\n", cfg.MISPOrgName)
	fmt.Fprintf(tw, "misp_org_uuid\t%s\n", cfg.MISPOrgUUID)
	fmt.Fprintf(tw, "misp_event_info\t%q\n", cfg.MISPEventInfo)
	fmt.Fprintf(tw, "misp_tags\t%q\n", cfg.MISPTags)
	fmt.Fprintf(tw, "misp_distribution\t%d\n", cfg.MISPDistribution)
	fmt.Fprintf(tw, "misp_published\t%t\n", cfg.MISPPublished)
	fmt.Fprintf(tw, "misp_top\t%d\n", cfg.MISPTop)
	fmt.Fprintf(tw, "misp_days\t%d\n", cfg.MISPDays)
	fmt.Fprintf(tw, "blocklist_days\t%d\n", cfg.BlocklistDays)
	fmt.Fprintf(tw, "blocklist_min\t%d\n", cfg.BlocklistMin)
	fmt.Fprintf(tw, "parsers (-a/-o)\t%v\n", names)
	fmt.Fprintf(tw, "poll (-r)\t%s\n", c.Poll.Round(time.Millisecond))
	fmt.Fprintf(tw, "debug (-d)\t%t\n", c.Debug)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print the configuration: %w", err)
	}
	_, err := fmt.Fprintf(w, "configuration OK: %s\n", cfg.Dir)
	return err
}
