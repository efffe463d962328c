// Package geoiptest writes small MaxMind-format (.mmdb) databases in the
// layouts real ones use (GeoLite2-Country, GeoLite2-ASN, IPinfo lite), so
// tests need no download and no licence.
package geoiptest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Network is one network and what a database says of it. Country or ASN
// may be empty/zero: the record then lacks that field.
type Network struct {
	CIDR        string
	Country     string // ISO code
	CountryName string // English name
	ASN         uint32
	Org         string
}

// Layout is how the records spell their fields.
type Layout int

// The layouts.
const (
	GeoLite2Country Layout = iota
	GeoLite2ASN
	IPinfoLite
)

// Build returns the bytes of a database of nets in layout.
func Build(layout Layout, nets []Network) ([]byte, error) {
	dbType := map[Layout]string{GeoLite2Country: "GeoLite2-Country", GeoLite2ASN: "GeoLite2-ASN", IPinfoLite: "ipinfo lite.mmdb"}[layout]
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24,
		Description: map[string]string{"en": dbType + " written by a test"}, Languages: []string{"en"}})
	if err != nil {
		return nil, fmt.Errorf("new tree: %w", err)
	}
	for _, n := range nets {
		_, ipnet, err := net.ParseCIDR(n.CIDR)
		if err != nil {
			return nil, fmt.Errorf("network %q: %w", n.CIDR, err)
		}
		rec := mmdbtype.Map{}
		switch layout {
		case GeoLite2Country:
			if n.Country != "" {
				rec["country"] = mmdbtype.Map{
					"iso_code":   mmdbtype.String(n.Country),
					"geoname_id": mmdbtype.Uint32(1),
					"names":      mmdbtype.Map{"en": mmdbtype.String(n.CountryName), "de": mmdbtype.String("x" + n.CountryName)},
				}
			}
			rec["continent"] = mmdbtype.Map{"code": mmdbtype.String("EU")}
		case GeoLite2ASN:
			if n.ASN != 0 {
				rec["autonomous_system_number"] = mmdbtype.Uint32(n.ASN)
				rec["autonomous_system_organization"] = mmdbtype.String(n.Org)
			}
		case IPinfoLite:
			if n.Country != "" {
				rec["country_code"] = mmdbtype.String(n.Country)
				rec["country"] = mmdbtype.String(n.CountryName)
			}
			if n.ASN != 0 {
				rec["asn"] = mmdbtype.String(fmt.Sprintf("AS%d", n.ASN))
				rec["as_name"] = mmdbtype.String(n.Org)
			}
		}
		if err := tree.Insert(ipnet, rec); err != nil {
			return nil, fmt.Errorf("insert %q: %w", n.CIDR, err)
		}
	}
	f := &memFile{}
	if _, err := tree.WriteTo(f); err != nil {
		return nil, fmt.Errorf("write tree: %w", err)
	}
	return f.b, nil
}

type memFile struct{ b []byte }

func (m *memFile) Write(p []byte) (int, error) { m.b = append(m.b, p...); return len(p), nil }

// Write writes a database of nets in layout to path, replacing it by a
// rename as a careful download does.
func Write(path string, layout Layout, nets []Network) error {
	b, err := Build(layout, nets)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".geoiptest-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Sample is a small world: IPv4 and IPv6 networks, a network without a
// country, and an organisation name with markup and quotes. 10.0.0.0/8
// (reserved) and 2001:db8::/32 (documentation) are in none of them, as in
// real databases.
func Sample() []Network {
	return []Network{
		{CIDR: "1.2.3.0/24", Country: "AU", CountryName: "Australia", ASN: 13335, Org: "Cloudflare, Inc."},
		{CIDR: "81.2.69.0/24", Country: "GB", CountryName: "United Kingdom", ASN: 20712, Org: `<script>alert("x")</script> & 'Andrews' "Arnold"`},
		{CIDR: "89.160.20.0/22", Country: "SE", CountryName: "Sweden", ASN: 29518, Org: "Bredband2 AB"},
		{CIDR: "2a02:cf40::/29", Country: "NO", CountryName: "Norway", ASN: 29695, Org: "Altibox AS"},
		{CIDR: "2001:480::/32", Country: "US", CountryName: "United States", ASN: 668, Org: "DoD Network Information Center"},
		{CIDR: "5.6.7.0/24", ASN: 64512, Org: "No Country Ltd"},
		{CIDR: "8.8.8.0/24", Country: "US", CountryName: "United States"},
	}
}
