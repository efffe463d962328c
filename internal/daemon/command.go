package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/api"
	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/metrics"
	"github.com/D4-project/analyzer-d4-log/internal/parsers"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/web"
)

// LogFile is where operators tail the daemon, in its working directory.
const LogFile = "analyzer-d4-log.log"

// Command is one invocation of the daemon, as the flags gave it.
type Command struct {
	ConfigDir string
	Parser    string // -o NAME; "" runs all parsers (-a)
	Debug     bool   // -d
	File      string // -f FILE ("-" is standard input); see FileGiven
	FileGiven bool   // -f was given, so an empty name is refused
	Poll      time.Duration
	Flush     bool // -F
	// CheckConfig (-check-config) validates and prints the configuration
	// to Out, then returns: no Redis, no log file, no output.
	CheckConfig bool
	Out         io.Writer
	Version     string
	Stdin       io.Reader
	Log         *LogSink
}

// UsageError is a command line or configuration to correct: exit status 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Main runs one invocation: the queue daemon, a file (-f) or a flush (-F).
// Everything that can be refused without side effects (the configuration,
// the input file, the web server's address, the output directory) is
// checked before the log file or the output directory is created, so a
// refused start leaves nothing behind.
func Main(ctx context.Context, c Command) error {
	if c.FileGiven && c.File == "" {
		return &UsageError{errors.New("-f needs a file name, or - for standard input")}
	}
	if c.File != "" && c.Flush {
		return &UsageError{errors.New("-f and -F exclude each other; give one")}
	}
	entries, err := parsers.Select(c.Parser)
	if err != nil {
		return &UsageError{fmt.Errorf("-o: %w", err)}
	}
	cfg, err := config.Load(c.ConfigDir)
	if err != nil {
		return &UsageError{err}
	}
	if c.CheckConfig {
		return printConfig(c.Out, c, cfg, entries)
	}
	level := slog.LevelInfo
	if c.Debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(c.Log, &slog.HandlerOptions{Level: level}))

	var (
		input io.Reader
		ref   time.Time
	)
	if c.File != "" {
		f, mtime, err := openInput(c.File, c.Stdin)
		if err != nil {
			return err
		}
		defer f.Close()
		input, ref = f, mtime
	}
	dbs, err := openGeoIP(cfg, log)
	if err != nil {
		return &UsageError{err}
	}
	d := New(Options{Config: cfg, Log: log, Version: c.Version, Parsers: entries, Poll: c.Poll, File: c.File != "", GeoIP: dbs})
	defer d.Close()

	var srv *web.Server
	if c.File == "" && !c.Flush {
		if srv, err = d.Listen(); err != nil {
			return err
		}
	}
	if c.File != "" {
		// Refused before the first line is counted: counting a file and
		// then failing to write its output would make a rerun count it
		// twice.
		if err := checkWritable(d.compiler.Dir); err != nil {
			return err
		}
	}
	if err := c.Log.Attach(LogFile); err != nil {
		return err
	}
	log.Info("start", "version", c.Version, "config", cfg.Dir, "d4", fmt.Sprintf("%s/%d", cfg.D4.Addr, cfg.D4.DB),
		"queue", cfg.Queue, "counting", cfg.Parsers, "pool", cfg.Pool, "http_server", cfg.HTTPServer,
		"timezone", cfg.Location.String(), "compile_interval", cfg.CompileInterval.String(),
		"output_dir", cfg.OutputDir, "chart_top", cfg.ChartTop, "batch_size", cfg.BatchSize,
		"max_line_bytes", cfg.MaxLineBytes, "max_age_days", cfg.MaxAgeDays, "max_value_bytes", cfg.MaxValueBytes, "dedupe_days", cfg.DedupeDays, "retain_days", cfg.RetainDays,
		"geoip_country_db", cfg.GeoIPCountryDB, "geoip_asn_db", cfg.GeoIPASNDB, "poll", c.Poll.String(), "debug", c.Debug)
	log.Info("sharing", "misp", cfg.MISP, "misp_org_name", cfg.MISPOrgName, "misp_org_uuid", cfg.MISPOrgUUID,
		"misp_days", cfg.MISPDays, "misp_top", cfg.MISPTop, "blocklist_days", cfg.BlocklistDays, "blocklist_min", cfg.BlocklistMin)
	if srv != nil {
		log.Info("serving output, /healthz and /metrics", "addr", srv.Addr().String(), "https", srv.TLS(), "passwords", cfg.HTTPUsers != "")
	}

	switch {
	case c.Flush:
		return d.Flush(ctx)
	case c.File != "":
		return d.countFile(ctx, c.File, input, ref)
	}
	return d.Run(ctx, srv)
}

// Listen binds the web server of http_server, or returns nil when none is
// configured.
func (d *Daemon) Listen() (*web.Server, error) {
	if d.cfg.HTTPServer == "" {
		return nil, nil
	}
	inv, err := d.investigation()
	if err != nil {
		return nil, fmt.Errorf("web server: %w", err)
	}
	metrics.RegisterAPI(d.reg, inv)
	d.inv = inv
	h, err := web.Handler(d.cfg.OutputDir, d.health, d.reg, web.Route{Prefix: api.Prefix, Handler: inv})
	if err != nil {
		return nil, fmt.Errorf("web server: %w", err)
	}
	toml := filepath.Join(d.cfg.Dir, config.FileAnalyzerTOML)
	if d.cfg.HTTPUsers != "" {
		auth, err := web.NewAuth(d.cfg.HTTPUsers, d.metrics.HTTPAuthFailures)
		if err != nil {
			return nil, fmt.Errorf("%s: http_users: %w", toml, err)
		}
		h = auth.Wrap(h)
	}
	srv, err := web.Listen(d.cfg.HTTPServer, filepath.Join(d.cfg.Dir, config.FileHTTPServer), h)
	if err != nil {
		return nil, err
	}
	if d.cfg.TLSCert != "" {
		if err := srv.UseTLS(d.cfg.TLSCert, d.cfg.TLSKey); err != nil {
			srv.Close()
			return nil, fmt.Errorf("%s: http_tls_cert/http_tls_key: %w", toml, err)
		}
	}
	srv.SetLogger(d.log)
	return srv, nil
}

// investigation builds the §10 API. It reads DB 1 over a pool of its own,
// sized for the questions it computes at once, so that questions never
// take the connections the compile loop and the health check need.
func (d *Daemon) investigation() (*api.API, error) {
	cfg := d.cfg
	setBytes := int64(cfg.APICacheMB) << 20
	if setBytes == 0 {
		setBytes = -1 // api_cache_mb = 0: keep none
	}
	return api.New(api.Options{
		Store: &stats.Store{
			Stats:         d.countingPool(stats.StatsDB, api.Connections()),
			MaxValueBytes: cfg.MaxValueBytes,
		},
		Location:      cfg.Location,
		Now:           d.clock.Now,
		NoDrill:       !cfg.Drilldown,
		Kinds:         activeKinds(d.geoip),
		SetCacheBytes: setBytes,
		Log:           d.log,
	})
}

// openInput opens the -f input: a file, whose modification time is the
// reference time of year inference (a rotated log's stamps are dated
// against when it was last written, so last year's file lands in last
// year), or standard input, read now.
func openInput(name string, stdin io.Reader) (io.ReadCloser, time.Time, error) {
	if name == "-" {
		return io.NopCloser(stdin), time.Now(), nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("-f: open the input: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, time.Time{}, fmt.Errorf("-f: read the input's modification time: %w", err)
	}
	if st.IsDir() {
		f.Close()
		return nil, time.Time{}, fmt.Errorf("-f: %s is a directory; give a log file, or - for standard input", name)
	}
	return f, st.ModTime(), nil
}

// checkWritable makes dir if needed and proves a file can be written in
// it.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output directory %s cannot be created: %w; fix output_dir or its permissions: nothing was counted", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("output directory %s is not writable: %w; fix output_dir or its permissions: nothing was counted", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// countFile counts the input, logs its summary and compiles.
func (d *Daemon) countFile(ctx context.Context, name string, in io.Reader, ref time.Time) error {
	d.log.Info("reading", "file", name, "reference_time", ref.Format(time.RFC3339))
	sum, err := d.RunFile(ctx, in, ref)
	d.log.Info("file done", "file", name, "lines", sum.Lines, "counted", sum.Counted,
		"duplicates", sum.Duplicates, "skipped", sum.Skipped, "seconds", fmt.Sprintf("%.2f", sum.Duration.Seconds()))
	if err != nil {
		return fmt.Errorf("file not fully counted: %w", err)
	}
	if err := d.loop.Last(ctx); err != nil {
		return fmt.Errorf("compile the output: %w", err)
	}
	return nil
}
