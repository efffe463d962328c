// Package geoip owns the MaxMind-format (.mmdb) databases of SPEC §13: it
// answers the country and the autonomous system of a source, and follows
// the files as operators replace them (a monthly download dropped in place).
//
// Contract:
//   - A database is read whole into memory, checked (Verify walks the whole
//     search tree and data section) and sampled for the field its role needs
//     before it is used, at start and at every replacement: a half-written,
//     truncated or wrong file is never used; the previous one stays.
//   - The file is never memory-mapped: a file rewritten in place under a
//     mapping would change answers mid-batch, or fault.
//   - A switch is atomic (one pointer swap) and logged. A batch takes one
//     snapshot of both databases at its start (Cache.Begin), so every line
//     of a batch is answered by the same files.
//   - A source is looked up as the address it is (an IPv4-mapped IPv6
//     address as IPv4; a zone is dropped); anything that is not an address
//     (a host name) is unknown: country "??", AS "AS0".
package geoip

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Unknown answers of SPEC §13.
const (
	UnknownCountry = "??"
	UnknownASN     = "AS0"
)

// Role is what a database is used for.
type Role int

// The two roles of §13.
const (
	CountryRole Role = iota
	ASNRole
)

func (r Role) String() string {
	if r == ASNRole {
		return "AS"
	}
	return "country"
}

// article names the role with its article, for messages.
func (r Role) article() string {
	if r == ASNRole {
		return "an AS"
	}
	return "a country"
}

// field names the field a database of the role must have, for messages.
func (r Role) field() string {
	if r == ASNRole {
		return "autonomous_system_number"
	}
	return "country.iso_code"
}

// layout is how a database spells its fields: GeoLite2 and DB-IP lite
// (country.iso_code, autonomous_system_number) or IPinfo lite
// (country_code, asn "AS…", as_name), found by sampling at open.
type layout int

const (
	layoutMaxMind layout = iota
	layoutIPinfo
)

// sampleRecords is how many records an open reads to recognise the
// layout: the first networks of any real database carry the fields, and a
// database of the other role carries none of them.
const sampleRecords = 256

// maxNameBytes bounds an organisation or country name kept: names come
// from a file, end up in Redis and on pages, and a real one is short.
const maxNameBytes = 200

// db is one opened, verified file.
type db struct {
	r      *maxminddb.Reader
	layout layout
	stamp  fileStamp
	built  time.Time
}

// fileStamp tells whether a file changed since it was read.
type fileStamp struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

func stampOf(fi os.FileInfo) fileStamp {
	s := fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return s
}

// open reads, checks and samples the file at path for role.
func open(path string, role Role) (*db, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// The stamp is taken before the read: a file that changed during it
	// differs from the stamp at the next check and is read again.
	stamp := stampOf(fi)
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("not a MaxMind-format (.mmdb) database: %w", err)
	}
	if err := r.Verify(); err != nil {
		return nil, fmt.Errorf("not a complete MaxMind-format (.mmdb) database (a file still being written?): %w", err)
	}
	l, err := recognise(r, role)
	if err != nil {
		return nil, err
	}
	return &db{r: r, layout: l, stamp: stamp, built: r.Metadata.BuildTime()}, nil
}

// recognise samples the first records for the role's field.
func recognise(r *maxminddb.Reader, role Role) (layout, error) {
	n := 0
	for res := range r.Networks() {
		if res.Err() != nil {
			return 0, fmt.Errorf("read its networks: %w", res.Err())
		}
		var rec map[string]any
		if err := res.Decode(&rec); err != nil {
			return 0, fmt.Errorf("read a record: %w", err)
		}
		switch role {
		case CountryRole:
			if c, ok := rec["country"].(map[string]any); ok {
				if _, ok := c["iso_code"].(string); ok {
					return layoutMaxMind, nil
				}
			}
			if _, ok := rec["country_code"].(string); ok {
				return layoutIPinfo, nil
			}
		case ASNRole:
			if _, ok := rec["autonomous_system_number"]; ok {
				return layoutMaxMind, nil
			}
			if _, ok := rec["asn"].(string); ok {
				return layoutIPinfo, nil
			}
		}
		if n++; n >= sampleRecords {
			break
		}
	}
	return 0, fmt.Errorf("it is not %s database: none of its first %d records has %s (is it the other database?)", role.article(), sampleRecords, role.field())
}

// File is one configured database, re-read when its file changes.
type File struct {
	Path string
	Role Role

	cur atomic.Pointer[db]
}

// Databases are the configured files; either may be nil.
type Databases struct {
	Country, ASN *File

	// CheckEvery is the least time between two looks at the files
	// (default 2s): a look is a stat, cheap, but not free per batch.
	CheckEvery time.Duration

	log *slog.Logger
	now func() time.Time

	mu        sync.Mutex // held by the one goroutine checking the files
	lastCheck atomic.Int64
	// failed remembers the stamp of a replacement that could not be used,
	// so that it is logged once and read again only when it changes.
	failed map[*File]fileStamp
}

// Open opens the configured files (an empty path is not configured). An
// error names the file and what was expected; it is for the config check
// at start, where a bad file is refused.
func Open(countryPath, asnPath string, log *slog.Logger, now func() time.Time) (*Databases, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	d := &Databases{CheckEvery: 2 * time.Second, log: log, now: now, failed: map[*File]fileStamp{}}
	for _, f := range []struct {
		path string
		role Role
		dst  **File
	}{{countryPath, CountryRole, &d.Country}, {asnPath, ASNRole, &d.ASN}} {
		if f.path == "" {
			continue
		}
		x, err := open(f.path, f.role)
		if err != nil {
			return nil, err
		}
		file := &File{Path: f.path, Role: f.role}
		file.cur.Store(x)
		*f.dst = file
	}
	d.lastCheck.Store(now().UnixNano())
	return d, nil
}

// Check is what config validation calls: it opens the file for role and
// says what is wrong with it, without keeping it.
func Check(path string, role Role) error {
	_, err := open(path, role)
	return err
}

// Refresh looks at the files when CheckEvery has passed since the last
// look, and switches to a replaced file once it reads and checks whole.
// Only one caller looks at a time; the others go on with what they have.
func (d *Databases) Refresh() {
	if d == nil {
		return
	}
	now := d.now().UnixNano()
	if now-d.lastCheck.Load() < int64(d.CheckEvery) || !d.mu.TryLock() {
		return
	}
	defer d.mu.Unlock()
	if now-d.lastCheck.Load() < int64(d.CheckEvery) {
		return
	}
	d.lastCheck.Store(now)
	for _, f := range []*File{d.Country, d.ASN} {
		if f != nil {
			d.refresh(f)
		}
	}
}

// Reload looks at the files now, whatever CheckEvery says, waiting for a
// look in progress.
func (d *Databases) Reload() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastCheck.Store(d.now().UnixNano())
	for _, f := range []*File{d.Country, d.ASN} {
		if f != nil {
			d.refresh(f)
		}
	}
}

func (d *Databases) refresh(f *File) {
	fi, err := os.Stat(f.Path)
	if err != nil {
		// Between a remove and a rename, or gone: the loaded one stays.
		if old, seen := d.failed[f]; !seen || old != (fileStamp{}) {
			d.failed[f] = fileStamp{}
			d.log.Warn("geoip: cannot look at the database file; keeping the one loaded", "role", f.Role.String(), "path", f.Path, "err", err)
		}
		return
	}
	st := stampOf(fi)
	cur := f.cur.Load()
	if st == cur.stamp {
		return
	}
	if old, seen := d.failed[f]; seen && old == st {
		return
	}
	x, err := open(f.Path, f.Role)
	if err != nil {
		d.failed[f] = st
		d.log.Warn("geoip: the replaced database file cannot be used yet; keeping the one loaded until it changes again", "role", f.Role.String(), "path", f.Path, "err", err)
		return
	}
	delete(d.failed, f)
	f.cur.Store(x)
	d.log.Info("geoip: switched to the replaced database file", "role", f.Role.String(), "path", f.Path,
		"built", x.built.UTC().Format(time.RFC3339), "was_built", cur.built.UTC().Format(time.RFC3339))
}

// Kinds tells which roles are configured.
func (d *Databases) Kinds() (country, asn bool) {
	if d == nil {
		return false, false
	}
	return d.Country != nil, d.ASN != nil
}

// Answer is what the databases say about one source.
type Answer struct {
	Country     string // ISO 3166 alpha-2 code, or "??"
	CountryName string // English name, "" when unknown
	ASN         string // "AS<number>", or "AS0"
	ASOrg       string // organisation name, "" when unknown
}

// Snapshot is both databases as they were at one instant.
type Snapshot struct {
	country, asn *db
}

// Snapshot returns the databases loaded now.
func (d *Databases) Snapshot() Snapshot {
	var s Snapshot
	if d == nil {
		return s
	}
	if d.Country != nil {
		s.country = d.Country.cur.Load()
	}
	if d.ASN != nil {
		s.asn = d.ASN.cur.Load()
	}
	return s
}

// ParseSource returns the address a source is, or false for a host name
// (or anything else that is not an address).
func ParseSource(src []byte) (netip.Addr, bool) {
	if len(src) == 0 || len(src) > 64 {
		return netip.Addr{}, false
	}
	// Cheap refusal of host names before the parser: an address holds
	// digits, hex letters, dots, colons and maybe a zone.
	if bytes.IndexByte(src, '.') < 0 && bytes.IndexByte(src, ':') < 0 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(string(src))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// Lookup answers one source.
func (s Snapshot) Lookup(src []byte) Answer {
	ans := Answer{Country: UnknownCountry, ASN: UnknownASN}
	a, ok := ParseSource(src)
	if !ok {
		return ans
	}
	if s.country != nil {
		ans.Country, ans.CountryName = s.country.country(a)
	}
	if s.asn != nil {
		ans.ASN, ans.ASOrg = s.asn.asn(a)
	}
	return ans
}

type maxmindCountry struct {
	Country struct {
		ISOCode string            `maxminddb:"iso_code"`
		Names   map[string]string `maxminddb:"names"`
	} `maxminddb:"country"`
}

type ipinfoRecord struct {
	CountryCode string `maxminddb:"country_code"`
	Country     string `maxminddb:"country"`
	ASN         string `maxminddb:"asn"`
	ASName      string `maxminddb:"as_name"`
}

type maxmindASN struct {
	Number uint64 `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

// country answers the code and name of a; a record without a well-formed
// code is unknown.
func (x *db) country(a netip.Addr) (code, name string) {
	res := x.r.Lookup(a)
	if !res.Found() {
		return UnknownCountry, ""
	}
	switch x.layout {
	case layoutIPinfo:
		var rec ipinfoRecord
		if res.Decode(&rec) != nil {
			return UnknownCountry, ""
		}
		code, name = rec.CountryCode, rec.Country
	default:
		var rec maxmindCountry
		if res.Decode(&rec) != nil {
			return UnknownCountry, ""
		}
		code, name = rec.Country.ISOCode, rec.Country.Names["en"]
	}
	if !isCode(code) {
		return UnknownCountry, ""
	}
	return code, clip(name)
}

// asn answers "AS<number>" and the organisation of a.
func (x *db) asn(a netip.Addr) (string, string) {
	res := x.r.Lookup(a)
	if !res.Found() {
		return UnknownASN, ""
	}
	var num uint64
	var org string
	switch x.layout {
	case layoutIPinfo:
		var rec ipinfoRecord
		if res.Decode(&rec) != nil {
			return UnknownASN, ""
		}
		n, err := parseASN(rec.ASN)
		if err != nil {
			return UnknownASN, ""
		}
		num, org = n, rec.ASName
	default:
		var rec maxmindASN
		if res.Decode(&rec) != nil {
			return UnknownASN, ""
		}
		num, org = rec.Number, rec.Org
	}
	if num == 0 || num > 1<<32-1 {
		return UnknownASN, ""
	}
	return "AS" + strconv.FormatUint(num, 10), clip(org)
}

var errASN = errors.New("not an AS number")

// parseASN reads IPinfo's "AS13335".
func parseASN(s string) (uint64, error) {
	if len(s) < 3 || (s[:2] != "AS" && s[:2] != "as") {
		return 0, errASN
	}
	return strconv.ParseUint(s[2:], 10, 32)
}

// isCode reports whether s is two ASCII capital letters, the only shape
// an ISO 3166 alpha-2 code has; anything else from a file is unknown.
func isCode(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

// clip bounds a name at maxNameBytes without cutting a UTF-8 sequence.
func clip(s string) string {
	if len(s) <= maxNameBytes {
		return s
	}
	i := maxNameBytes
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}
