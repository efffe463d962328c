package uuidv5

import "testing"

// The DNS namespace and "python.org" give 886313e1-3b8a-5372-9b90-0c9aee199e5d
// in RFC 9562's and Python's uuid.uuid5 examples.
func TestKnownAnswer(t *testing.T) {
	dns, err := Parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := New(dns, "python.org").String(), "886313e1-3b8a-5372-9b90-0c9aee199e5d"; got != want {
		t.Fatalf("uuid5(dns, python.org) = %s, want %s", got, want)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, s := range []string{"", "6ba7b810-9dad-11d1-80b4-00c04fd430c", "6ba7b810x9dad-11d1-80b4-00c04fd430c8", "6ba7b810-9dad-11d1-80b4-00c04fd430cg"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
	u, err := Parse("6BA7B810-9DAD-11D1-80B4-00C04FD430C8")
	if err != nil || u.String() != "6ba7b810-9dad-11d1-80b4-00c04fd430c8" {
		t.Fatalf("Parse upper case = %s, %v", u, err)
	}
}
