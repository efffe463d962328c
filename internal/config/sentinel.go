package config

import (
	"fmt"
	"strconv"
	"strings"
)

// SentinelScheme starts a redis_parsers value that names Redis Sentinels
// instead of one server (SPEC §14).
const SentinelScheme = "sentinel://"

const (
	sentinelForm    = "sentinel://HOST:PORT[,HOST:PORT...]/MASTERNAME/N with N the pool size"
	sentinelExample = "sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/counting/16"
	// maxMasterName bounds a master name; Sentinel itself has no limit,
	// but a name this long is a pasted mistake.
	maxMasterName = 128
)

// ParseSentinelAddr parses "sentinel://HOST:PORT[,HOST:PORT…]/MASTERNAME/N":
// the Sentinels' addresses as given, the master's name as the Sentinels
// know it, and N (the pool size, whose range is the caller's). The error
// says what is wrong and what is wanted.
func ParseSentinelAddr(s string) (sentinels []string, master string, n int, err error) {
	sentinels, master, nText, n, err := splitSentinelAddr(s)
	if err != nil {
		return nil, "", 0, fmt.Errorf("sentinel address %s %s; want %s, like %s", quote(s), err.Error(), sentinelForm, sentinelExample)
	}
	if n < 0 {
		return nil, "", 0, fmt.Errorf("sentinel address %s has %s after the master name, too large a number; want %s, like %s", quote(s), quote(nText), sentinelForm, sentinelExample)
	}
	return sentinels, master, n, nil
}

// sentinelFault is what is wrong with a sentinel:// value, worded to
// follow the quoted value.
type sentinelFault string

func (f sentinelFault) Error() string { return string(f) }

// splitSentinelAddr splits a sentinel:// value. A number too large for an
// int comes back as n = -1 with nText, so that a caller words it as out of
// range.
func splitSentinelAddr(s string) (sentinels []string, master, nText string, n int, err error) {
	rest, ok := strings.CutPrefix(s, SentinelScheme)
	if !ok {
		return nil, "", "", 0, sentinelFault(`does not start with "` + SentinelScheme + `"`)
	}
	hosts, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return nil, "", "", 0, sentinelFault("has no master name")
	}
	master, nText, ok = strings.Cut(rest, "/")
	if !ok {
		return nil, "", "", 0, sentinelFault("has no pool size after the master name")
	}
	if hosts == "" {
		return nil, "", "", 0, sentinelFault("has no sentinel host:port")
	}
	seen := map[string]bool{}
	for _, h := range strings.Split(hosts, ",") {
		if _, _, f := splitHostPort(h, false); f != nil {
			return nil, "", "", 0, sentinelFault(fmt.Sprintf("has sentinel %s that %s", quote(h), f.describe("")))
		}
		if seen[h] {
			return nil, "", "", 0, sentinelFault(fmt.Sprintf("names sentinel %s twice", quote(h)))
		}
		seen[h] = true
		sentinels = append(sentinels, h)
	}
	if master == "" {
		return nil, "", "", 0, sentinelFault("has no master name")
	}
	// The name is sent as one argument and written in sentinel.conf, where
	// spaces and quotes would not survive; letters, digits, "-", "." and
	// "_" are what operators use.
	if len(master) > maxMasterName || !isHostName(master) {
		return nil, "", "", 0, sentinelFault(fmt.Sprintf("has master name %s, not letters, digits, '-', '.' or '_' (at most %d)", quote(master), maxMasterName))
	}
	if !isDigits(nText) {
		return nil, "", "", 0, sentinelFault(fmt.Sprintf("has pool size %s, not a decimal number", quote(nText)))
	}
	n, aerr := strconv.Atoi(nText)
	if aerr != nil {
		return sentinels, master, nText, -1, nil
	}
	return sentinels, master, nText, n, nil
}

// parseSentinelParsers turns a sentinel:// redis_parsers value into cfg's
// Parsers (the value without its pool size, for logs), Sentinels,
// SentinelMaster and Pool.
func parseSentinelParsers(path, s string, cfg *Config) error {
	sentinels, master, nText, n, err := splitSentinelAddr(s)
	if err != nil {
		return fmt.Errorf("%s: %s %s; want %s, like %s", path, quote(s), err.Error(), sentinelForm, sentinelExample)
	}
	if n < minPool || n > maxPool {
		return fmt.Errorf("%s: %s has pool size %s; want a pool size from %d to %d, like %s",
			path, quote(s), quote(nText), minPool, maxPool, sentinelExample)
	}
	cfg.Parsers = s[:len(s)-len(nText)-1]
	cfg.Sentinels, cfg.SentinelMaster, cfg.Pool = sentinels, master, n
	return nil
}

// validateSentinel checks the Sentinel fields of a Config built in code.
func (c *Config) validateSentinel() error {
	if c.SentinelMaster == "" {
		return fmt.Errorf("redis_parsers sentinels given without a master name")
	}
	if !isHostName(c.SentinelMaster) || len(c.SentinelMaster) > maxMasterName {
		return fmt.Errorf("redis_parsers master name %s is not letters, digits, '-', '.' or '_'", quote(c.SentinelMaster))
	}
	for _, h := range c.Sentinels {
		if _, _, bad := splitHostPort(h, false); bad != nil {
			return fmt.Errorf("redis_parsers sentinel %s is not host:port", quote(h))
		}
	}
	return nil
}
