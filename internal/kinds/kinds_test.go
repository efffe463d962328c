package kinds

import (
	"slices"
	"strings"
	"testing"
)

func TestVocabulary(t *testing.T) {
	if got, want := Names(), []string{User, Src, Host}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if got, want := FirstSeenNames(), []string{User, Src}; !slices.Equal(got, want) {
		t.Errorf("FirstSeenNames() = %q, want %q", got, want)
	}
	seen := map[string]bool{}
	for _, k := range All() {
		if seen[k.Name] {
			t.Errorf("kind %q listed twice", k.Name)
		}
		seen[k.Name] = true
		// A name becomes part of key, file and URL names: lowercase ASCII
		// letters only, so it needs no escaping anywhere.
		if k.Name == "" || strings.Trim(k.Name, "abcdefghijklmnopqrstuvwxyz") != "" {
			t.Errorf("kind name %q is not lowercase letters", k.Name)
		}
		if k.Label == "" || k.Noun == "" {
			t.Errorf("kind %q lacks a label or noun", k.Name)
		}
		if Label(k.Name) != k.Label || Noun(k.Name) != k.Noun || !Known(k.Name) {
			t.Errorf("lookups of %q disagree with its entry", k.Name)
		}
	}
	if Label("bogus") != "bogus" || Noun("bogus") != "values" || Known("bogus") {
		t.Error("an unknown kind must not look known")
	}
	all := All()
	all[0].Name = "changed"
	if Names()[0] != User {
		t.Error("All() handed out the vocabulary itself")
	}
}

func TestStatsName(t *testing.T) {
	for _, tc := range []struct {
		name, period, kind string
		ok                 bool
	}{
		{"20261125:statssrc", "20261125", Src, true},
		{"202611:statsusername", "202611", User, true},
		{"2026:statshost", "2026", Host, true},
		{"2026:statsbogus", "", "", false},
		{"20261:statssrc", "", "", false},
		{"2026x:statssrc", "", "", false},
		{":statssrc", "", "", false},
		{"2026:stat", "", "", false},
		{"2026:countsrc", "", "", false},
		{"toupdate:daily", "", "", false},
		{"2026", "", "", false},
	} {
		p, k, ok := SplitStatsName(tc.name)
		if p != tc.period || k != tc.kind || ok != tc.ok {
			t.Errorf("SplitStatsName(%q) = %q, %q, %v; want %q, %q, %v", tc.name, p, k, ok, tc.period, tc.kind, tc.ok)
		}
		if ok && StatsName(p, k) != tc.name {
			t.Errorf("StatsName(%q, %q) = %q, want %q", p, k, StatsName(p, k), tc.name)
		}
	}
}

func TestDigits(t *testing.T) {
	for s, want := range map[string]bool{"": false, "0": true, "20261125": true, "2026-11": false, "٣": false, " 1": false, "1a": false} {
		if got := Digits(s); got != want {
			t.Errorf("Digits(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzSplitStatsName(f *testing.F) {
	for _, s := range []string{"20261125:statssrc", "2026:statshost", "x:stats", ":", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, k, ok := SplitStatsName(s)
		if !ok {
			return
		}
		if StatsName(p, k) != s || !Digits(p) || !Known(k) {
			t.Errorf("SplitStatsName(%q) = %q, %q accepted a name it cannot rebuild", s, p, k)
		}
	})
}

// The optional kinds exist only in a Set that enables them; the
// vocabulary knows their names either way, so that their keys and files
// stay readable.
func TestActiveSet(t *testing.T) {
	if got, want := (Set{}).Names(), []string{User, Src, Host}; !slices.Equal(got, want) {
		t.Errorf("zero Set = %q, want %q", got, want)
	}
	both := Active(ASN, Country, "bogus", User)
	if got, want := both.Names(), []string{User, Src, Host, Country, ASN}; !slices.Equal(got, want) {
		t.Errorf("Active(asn, country) = %q, want %q", got, want)
	}
	if got, want := both.Derived(), []string{Country, ASN}; !slices.Equal(got, want) {
		t.Errorf("Derived() = %q, want %q", got, want)
	}
	if got, want := both.FirstSeenNames(), []string{User, Src, Country, ASN}; !slices.Equal(got, want) {
		t.Errorf("FirstSeenNames() = %q, want %q", got, want)
	}
	asn := Active(ASN)
	if asn.Has(Country) || !asn.Has(ASN) || !asn.Has(Host) || asn.Has("bogus") {
		t.Error("Has disagrees with the set")
	}
	if got, want := asn.Names(), []string{User, Src, Host, ASN}; !slices.Equal(got, want) {
		t.Errorf("Active(asn) = %q, want %q", got, want)
	}
	for _, n := range []string{Country, ASN} {
		if !Known(n) || Label(n) == n {
			t.Errorf("%s not in the vocabulary", n)
		}
		if _, k, ok := SplitStatsName("202611:stats" + n); !ok || k != n {
			t.Errorf("SplitStatsName of a %s key: %q %v", n, k, ok)
		}
	}
	if slices.Contains(Names(), Country) || slices.Contains(FirstSeenNames(), ASN) {
		t.Error("the package-level lists include an optional kind")
	}
}
