package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// faultKind says what is wrong with an address, so that each file can word
// it in its own terms ("database", "pool size").
type faultKind int

const (
	faultNoSlash     faultKind = iota // no "/n" after host:port
	faultNotNumber                    // the "/n" part is not decimal digits
	faultBigNumber                    // the "/n" part overflows an int
	faultNoPort                       // no ":port"
	faultNotHostPort                  // not splittable into host and port
	faultUnbracketed                  // an IPv6 address without brackets
	faultBracketed                    // brackets around something not IPv6
	faultNoHost                       // empty host
	faultBadHost                      // host is neither a name nor an IP address
	faultBadPort                      // port not a number from 1 to 65535
)

// fault is what is wrong with an address, and the part of it at fault.
type fault struct {
	kind faultKind
	part string
}

// describe words f after the quoted address; noun names the "/n" part.
func (f *fault) describe(noun string) string {
	switch f.kind {
	case faultNoSlash:
		if noun == "" {
			return `has no "/" after host:port`
		}
		return "has no " + noun
	case faultNotNumber:
		if noun == "" {
			return fmt.Sprintf(`has %s after "/", not a decimal number`, quote(f.part))
		}
		return fmt.Sprintf("has %s %s, not a decimal number", noun, quote(f.part))
	case faultBigNumber:
		if noun == "" {
			return fmt.Sprintf(`has %s after "/", too large a number`, quote(f.part))
		}
		return fmt.Sprintf("has %s %s, too large a number", noun, quote(f.part))
	case faultNoPort:
		return "has no port"
	case faultNotHostPort:
		return "is not host:port"
	case faultUnbracketed:
		return "is not host:port (an IPv6 address goes in brackets, like [::1]:6380)"
	case faultBracketed:
		return fmt.Sprintf("has host %s in brackets, which are for IPv6 addresses only", quote(f.part))
	case faultNoHost:
		return "has no host"
	case faultBadHost:
		return fmt.Sprintf("has host %s, not a host name or IP address", quote(f.part))
	case faultBadPort:
		return fmt.Sprintf("has port %s", quote(f.part))
	}
	return "is malformed"
}

// want says what is allowed instead: form is the expected shape, example
// a value of that shape.
func (f *fault) want(form, example string) string {
	if f.kind == faultBadPort {
		return "a port from 1 to 65535, like " + example
	}
	return form + ", like " + example
}

// ParseRedisAddr parses "host:port/n" (host may be a name, IPv4 or [IPv6];
// port 1..65535; n decimal) and is used for redis_d4 (n = DB 0..15) and
// redis_parsers (n = pool size); it returns the address as given and n, or
// an error that says what is wrong. The range of n is the caller's: it
// means a different thing in each file.
func ParseRedisAddr(s string) (addr string, n int, err error) {
	addr, _, n, f := splitRedisAddr(s)
	if f != nil {
		return "", 0, fmt.Errorf("redis address %s %s; want %s", quote(s), f.describe(""), f.want("host:port/n", "localhost:6380/2"))
	}
	return addr, n, nil
}

// splitRedisAddr splits "host:port/n"; nText is the "/n" part as written,
// for messages. A number too large for an int still comes back with addr
// and nText, since to a caller it is simply out of range.
func splitRedisAddr(s string) (addr, nText string, n int, f *fault) {
	// The last "/" because neither host names nor IP addresses hold one.
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return "", "", 0, &fault{kind: faultNoSlash}
	}
	addr, nText = s[:i], s[i+1:]
	if _, _, f := splitHostPort(addr, false); f != nil {
		return "", "", 0, f
	}
	if !isDigits(nText) {
		return "", "", 0, &fault{kind: faultNotNumber, part: nText}
	}
	n, err := strconv.Atoi(nText)
	if err != nil {
		return addr, nText, 0, &fault{kind: faultBigNumber, part: nText}
	}
	return addr, nText, n, nil
}

// splitHostPort checks "host:port". emptyHost allows ":port", which means
// every interface to a listener but nothing to a client.
func splitHostPort(s string, emptyHost bool) (host string, port int, f *fault) {
	var portText string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, &fault{kind: faultNotHostPort}
		}
		host = s[1:end]
		rest := s[end+1:]
		if rest == "" {
			return "", 0, &fault{kind: faultNoPort}
		}
		if rest[0] != ':' {
			return "", 0, &fault{kind: faultNotHostPort}
		}
		portText = rest[1:]
		if host == "" {
			return "", 0, &fault{kind: faultNoHost}
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || (a.Zone() != "" && !isHostName(a.Zone())) {
			return "", 0, &fault{kind: faultBracketed, part: host}
		}
	} else {
		i := strings.LastIndexByte(s, ':')
		if i < 0 {
			return "", 0, &fault{kind: faultNoPort}
		}
		host, portText = s[:i], s[i+1:]
		if strings.ContainsAny(host, ":[]") {
			if _, err := netip.ParseAddr(host); err == nil {
				return "", 0, &fault{kind: faultUnbracketed}
			}
			return "", 0, &fault{kind: faultNotHostPort}
		}
		if host == "" {
			if !emptyHost {
				return "", 0, &fault{kind: faultNoHost}
			}
		} else if !isHostName(host) {
			return "", 0, &fault{kind: faultBadHost, part: host}
		} else if strings.Trim(host, "0123456789.") == "" {
			// All digits and dots is meant as IPv4; a resolver would
			// otherwise look "10.0.0.256" up as a name.
			if a, err := netip.ParseAddr(host); err != nil || !a.Is4() {
				return "", 0, &fault{kind: faultBadHost, part: host}
			}
		}
	}
	port, ok := parsePort(portText)
	if !ok {
		return "", 0, &fault{kind: faultBadPort, part: portText}
	}
	return host, port, nil
}

func parsePort(s string) (int, bool) {
	// Five digits at most, so the conversion cannot overflow; a port
	// padded with zeros beyond that is a typo anyway.
	if !isDigits(s) || len(s) > 5 {
		return 0, false
	}
	p, _ := strconv.Atoi(s)
	return p, p >= 1 && p <= 65535
}

// isHostName accepts what a resolver could look up or what is an IPv4
// address: letters, digits, '-', '.', '_' (seen in container and service
// names), at most 253 bytes. Anything else (spaces, control bytes, a stray
// "@" or "/") is a typo that would otherwise surface as a confusing dial
// error much later.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_':
		default:
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
