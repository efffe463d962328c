package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/geoip/geoiptest"
	"github.com/D4-project/analyzer-d4-log/internal/kinds"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// The geoip section: the queue run again, with and without both
// databases of SPEC §13, in the same run, so that the cost of the lookups
// is a ratio of two figures measured side by side. The databases are
// written by the bench (one /16 network per record over the workload's
// IPv4 sources, some without a country or an AS), so no download is needed.

// geoCountries are the codes the bench's world spreads over its networks.
var geoCountries = []string{"US", "CN", "DE", "FR", "GB", "RU", "BR", "IN", "NL", "KR", "JP", "VN", "ID", "SG", "TW", "UA", "IR", "TR", "IT", "ES"}

// geoWorld answers a /16 index (first octet 11 to 210) by the bench's own
// rule, used both to write the databases and to compute the expected
// statistics.
func geoWorld(i int) (country string, asn int, org string) {
	if geoReserved(11+i/256, i%256) {
		return "", 0, "" // in no database, as in real ones
	}
	if i%13 != 0 {
		country = geoCountries[i%len(geoCountries)]
	}
	if i%17 != 0 {
		asn = 1000 + i%4000
		org = fmt.Sprintf(`Org %d "<b>"`, i%4000)
	}
	return country, asn, org
}

// geoReserved reports whether the /16 a.b overlaps a reserved network
// (RFC 6890: shared, loopback, link-local, private, documentation,
// benchmarking), which databases do not hold.
func geoReserved(a, b int) bool {
	switch {
	case a == 100 && b >= 64 && b < 128, a == 127, a == 169 && b == 254,
		a == 172 && b >= 16 && b < 32, a == 192 && (b == 0 || b == 88 || b == 168),
		a == 198 && (b == 18 || b == 19 || b == 51), a == 203 && b == 0:
		return true
	}
	return false
}

// geoExpect answers a source the way §13 says, from geoWorld: an IPv4
// source in the world's range has its /16's answer, anything else
// (documentation IPv6, host names) is unknown.
func geoExpect(src string) (country, asn string) {
	country, asn = "??", "AS0"
	parts := strings.Split(src, ".")
	if len(parts) != 4 {
		return
	}
	var oct [4]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 {
			return
		}
		oct[i] = n
	}
	if oct[0] < 11 || oct[0] > 210 {
		return
	}
	c, a, _ := geoWorld((oct[0]-11)*256 + oct[1])
	if c != "" {
		country = c
	}
	if a != 0 {
		asn = "AS" + strconv.Itoa(a)
	}
	return
}

type geoipResult struct {
	Networks           int     `json:"networks"`
	WithoutLinesPerS   float64 `json:"without_lines_per_s"`
	WithLinesPerS      float64 `json:"with_lines_per_s"`
	RatioWithWithout   float64 `json:"ratio_with_without"`
	RatioWithCeiling   float64 `json:"ratio_with_ceiling,omitempty"`
	Exact              bool    `json:"exact"`
	DerivedDifferences int     `json:"derived_differences"`
}

func (b *bench) geoip(ctx context.Context) error {
	r := &geoipResult{}
	b.rep.GeoIP = r
	dir := filepath.Join(b.tmp, "geoip")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	var nets []geoiptest.Network
	for i := 0; i < 200*256; i++ {
		c, a, org := geoWorld(i)
		if c == "" && a == 0 {
			continue
		}
		nets = append(nets, geoiptest.Network{CIDR: fmt.Sprintf("%d.%d.0.0/16", 11+i/256, i%256),
			Country: c, CountryName: "Country " + c, ASN: uint32(a), Org: org})
	}
	r.Networks = len(nets)
	b.say("geoip: writing country and AS databases of %s networks", thousands(float64(len(nets))))
	cPath, aPath := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geoiptest.Write(cPath, geoiptest.GeoLite2Country, nets); err != nil {
		return fmt.Errorf("write the country database: %w", err)
	}
	if err := geoiptest.Write(aPath, geoiptest.GeoLite2ASN, nets); err != nil {
		return fmt.Errorf("write the AS database: %w", err)
	}
	conf := filepath.Join(b.tmp, "conf-geoip")
	if err := writeConf(conf, b.d4.addr(), queueUUID, b.cnt.addr(), b.o.pool, b.o.batch); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(conf, "analyzer.toml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open the geoip analyzer.toml: %w", err)
	}
	_, err = fmt.Fprintf(f, "geoip_country_db = %q\ngeoip_asn_db = %q\n", cPath, aPath)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write the geoip analyzer.toml: %w", err)
	}

	run := func(label, confDir string) (float64, error) {
		if err := b.flushAll(b.cnt); err != nil {
			return 0, err
		}
		if err := b.flushAll(b.d4); err != nil {
			return 0, err
		}
		if err := b.push(ctx, b.lines); err != nil {
			return 0, err
		}
		b.say("geoip: draining %s lines %s the databases", thousands(float64(len(b.lines))), label)
		t0 := time.Now()
		p, err := startDaemon(ctx, b.bin, confDir, filepath.Join(b.tmp, "run-geoip-"+label))
		if err != nil {
			return 0, err
		}
		defer p.kill()
		dr, err := b.drain(ctx, p, "geoip", yearsOf(b.want), int64(b.want.Attempts))
		if err != nil {
			return 0, err
		}
		return float64(len(b.lines)) / dr.at.Sub(t0).Seconds(), nil
	}
	if r.WithoutLinesPerS, err = run("without", b.conf); err != nil {
		return err
	}
	if r.WithLinesPerS, err = run("with", conf); err != nil {
		return err
	}
	r.RatioWithWithout = r.WithLinesPerS / r.WithoutLinesPerS

	// Every key of the three kinds as in the queue section, and every
	// country and asn key equal to the bench's own computation.
	c, err := b.cnt.dial(stats.StatsDB)
	if err != nil {
		return err
	}
	defer c.Close()
	got, err := readStats(c)
	if err != nil {
		return err
	}
	base := map[string]map[string]float64{}
	derived := map[string]map[string]float64{}
	for k, m := range got {
		if _, kind, _ := stats.SplitStatsKey(k); kind == kinds.Country || kind == kinds.ASN {
			derived[k] = m
		} else {
			base[k] = m
		}
	}
	want := workload.Expected{Sets: map[string]map[string]int64{}}
	for k, m := range b.want.Sets {
		period, kind, ok := stats.SplitStatsKey(k)
		if !ok || kind != kinds.Src {
			continue
		}
		for src, n := range m {
			country, asn := geoExpect(src)
			for _, kv := range [][2]string{{kinds.Country, country}, {kinds.ASN, asn}} {
				key := stats.StatsKey(period, kv[0])
				if want.Sets[key] == nil {
					want.Sets[key] = map[string]int64{}
				}
				want.Sets[key][kv[1]] += n
			}
		}
	}
	diffs := append(b.want.Diff(base), want.Diff(derived)...)
	r.DerivedDifferences = len(diffs)
	r.Exact = len(diffs) == 0
	b.showDiffs("geoip", diffs)

	rep := b.rep
	rep.info("geoip", "databases", fmt.Sprintf("%s networks, country and AS", thousands(float64(r.Networks))))
	rep.info("geoip", "lines/s end to end without / with both databases",
		fmt.Sprintf("%s / %s (%.2f×)", thousands(r.WithoutLinesPerS), thousands(r.WithLinesPerS), r.RatioWithWithout))
	if cl := rep.Ceiling; cl != nil {
		r.RatioWithCeiling = r.WithLinesPerS / cl.NaiveLinesPerS
		rep.target("geoip", "lines/s end to end with both databases",
			fmt.Sprintf("%s (%.2f × ceiling)", thousands(r.WithLinesPerS), r.RatioWithCeiling),
			"≥ 3 × ceiling = "+thousands(3*cl.NaiveLinesPerS), r.RatioWithCeiling >= 3)
	}
	rep.correct("geoip", "DB 1 equals the expected statistics, country and asn included", diffSummary(diffs), r.Exact,
		fmt.Sprintf("DB 1 with the databases differs from the expected statistics (%d differences)", len(diffs)))
	return nil
}
