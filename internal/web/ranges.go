package web

import (
	"errors"
	"slices"
	"strconv"
	"strings"
)

// maxRanges is the most ranges one request may ask for. http.ServeContent
// answers every range it is given, each in its own multipart section, so
// "bytes=0-1,0-1,…" repeated 3000 times once returned 35 times the request;
// readers that resume or seek ask for one range.
const maxRanges = 5

var (
	errTooManyRanges    = errors.New("too many ranges")
	errOverlappingRange = errors.New("overlapping ranges")
)

// byteRange is an inclusive range of byte offsets.
type byteRange struct{ first, last int64 }

// checkRanges refuses a Range header value that asks for more than maxRanges
// ranges or for ranges that overlap within a file of size bytes (RFC 9110
// §14.2 lets a server reject both). Anything else, malformed values included,
// is left to http.ServeContent, which answers them as the RFC says.
func checkRanges(header string, size int64) error {
	spec, ok := strings.CutPrefix(header, "bytes=")
	if !ok {
		return nil
	}
	var ranges []byteRange
	count := 0
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue // empty list elements are allowed and ignored
		}
		count++
		if count > maxRanges {
			return errTooManyRanges
		}
		if r, ok := resolveRange(part, size); ok {
			ranges = append(ranges, r)
		}
	}
	slices.SortFunc(ranges, func(a, b byteRange) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	for i := 1; i < len(ranges); i++ {
		if ranges[i].first <= ranges[i-1].last {
			return errOverlappingRange
		}
	}
	return nil
}

// resolveRange turns one range spec ("a-b", "a-" or "-n") into the bytes it
// selects in a file of size bytes. ok is false for a spec that is malformed
// or selects nothing; those cannot overlap anything.
func resolveRange(spec string, size int64) (r byteRange, ok bool) {
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return r, false
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == "" {
		// A suffix: the last n bytes.
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 || size <= 0 {
			return r, false
		}
		return byteRange{first: max(size-n, 0), last: size - 1}, true
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 || first >= size {
		return r, false
	}
	last := size - 1
	if b != "" {
		l, err := strconv.ParseInt(b, 10, 64)
		if err != nil || l < first {
			return r, false
		}
		last = min(l, size-1)
	}
	return byteRange{first: first, last: last}, true
}
