package ingest

import (
	"github.com/D4-project/analyzer-d4-log/internal/geoip"
	"github.com/D4-project/analyzer-d4-log/internal/kinds"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// Enricher answers the country and AS of sources for one batch at a time
// (a stats.Enricher): Begin takes one snapshot of the databases, after
// letting them notice a replaced file, and the answers of the batch are
// cached by source, since an attacker's source repeats in a batch far more
// often than it changes. One goroutine uses it.
type Enricher struct {
	dbs          *geoip.Databases
	kinds        []string
	country, asn int // index of each kind in kinds, -1 when off
	snap         geoip.Snapshot
	cache        map[string]geoip.Answer
}

// NewEnricher returns the Enricher of dbs, or nil when no database is
// configured (nothing to derive: the batch counts the three kinds only).
func NewEnricher(dbs *geoip.Databases) *Enricher {
	c, a := dbs.Kinds()
	if !c && !a {
		return nil
	}
	e := &Enricher{dbs: dbs, country: -1, asn: -1, cache: map[string]geoip.Answer{}}
	// The order is the page order of the kind list.
	for _, k := range kinds.Active(DerivedKinds(dbs)...).Derived() {
		switch k {
		case kinds.Country:
			e.country = len(e.kinds)
		case kinds.ASN:
			e.asn = len(e.kinds)
		}
		e.kinds = append(e.kinds, k)
	}
	return e
}

// DerivedKinds names the kinds the configured databases add.
func DerivedKinds(dbs *geoip.Databases) []string {
	var out []string
	c, a := dbs.Kinds()
	if c {
		out = append(out, kinds.Country)
	}
	if a {
		out = append(out, kinds.ASN)
	}
	return out
}

// Kinds implements stats.Enricher.
func (e *Enricher) Kinds() []string { return e.kinds }

// cacheLimit bounds the cache of one batch: a batch is at most a few
// thousand lines, but a -F rebuild batch holds 100,000 attempts.
const cacheLimit = 1 << 16

// Begin implements stats.Enricher.
func (e *Enricher) Begin() {
	e.dbs.Refresh()
	snap := e.dbs.Snapshot()
	if snap != e.snap || len(e.cache) > cacheLimit {
		clear(e.cache)
	}
	e.snap = snap
}

// Enrich implements stats.Enricher.
func (e *Enricher) Enrich(src []byte, out []stats.Derived) {
	ans, ok := e.cache[string(src)]
	if !ok {
		ans = e.snap.Lookup(src)
		if len(e.cache) < cacheLimit {
			e.cache[string(src)] = ans
		}
	}
	if e.country >= 0 {
		out[e.country] = stats.Derived{Value: ans.Country, Name: ans.CountryName}
	}
	if e.asn >= 0 {
		out[e.asn] = stats.Derived{Value: ans.ASN, Name: ans.ASOrg}
	}
}
