package api

import (
	"strings"
	"testing"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
)

// FuzzParseQuery: any query string is either refused with a message naming
// a parameter, or gives a query within the limits of SPEC §10.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"kind=src&from=20250101&to=20251231",
		"kind=username&of=src&value=admin&from=20241230&to=20250102&limit=1000&format=csv",
		"kind=host&value_b64=/w==&from=20250101&to=20250101",
		"kind=src&from=20250230&to=20250301", "limit=-1", "%zz", "value=a&value=b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, ep := range []endpoint{epTop, epDrill, epSeries} {
			q, err := parseQuery(ep, raw, kinds.Known, kinds.Names())
			if err != nil {
				msg := err.Error()
				name, _, _ := strings.Cut(msg, ":")
				named := strings.HasPrefix(msg, "unknown parameter ") || name == "query string"
				for _, a := range allowed[ep] {
					named = named || name == a
				}
				if !named || len(msg) > 600 {
					t.Fatalf("error %q does not name a parameter or is too long", msg)
				}
				continue
			}
			if q.from.After(q.to) || dayCount(q.from, q.to) > maxDays {
				t.Fatalf("accepted range %s..%s", dayName(q.from), dayName(q.to))
			}
			if q.limit < 1 || q.limit > maxLimit || !kinds.Known(q.kind) {
				t.Fatalf("accepted limit %d kind %q", q.limit, q.kind)
			}
			if ep == epDrill && (q.of == q.kind || !kinds.Known(q.of)) {
				t.Fatalf("accepted of %q for kind %q", q.of, q.kind)
			}
		}
	})
}
