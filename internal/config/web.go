package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/htpasswd"
)

// Keys of analyzer.toml that protect the web server.
const (
	keyTLSCert   = "http_tls_cert"
	keyTLSKey    = "http_tls_key"
	keyHTTPUsers = "http_users"
)

// What each key allows, said when its value is refused.
const (
	wantTLSCert   = "a PEM certificate file (with its chain) whose key is http_tls_key, like \"tls/cert.pem\""
	wantTLSKey    = "the PEM private key file of http_tls_cert, like \"tls/key.pem\""
	wantHTTPUsers = "an htpasswd file with bcrypt hashes (htpasswd -B -c FILE USER), like \"users.htpasswd\""
	// maxPEMBytes caps a certificate or key file read at start; a chain
	// is a few kilobytes.
	maxPEMBytes = 1 << 20
)

// webFile reads a path-valued key: a non-empty string, resolved against the
// configuration directory when relative (so that files kept beside the
// configuration move with it). "" is the default: not set.
func webFile(path, key string, v any, want string, dir string) (string, error) {
	s, ok := v.(string)
	switch {
	case !ok:
		return "", notA(path, key, v, "a string", want)
	case s == "":
		return "", nil
	case strings.IndexByte(s, 0) >= 0:
		return "", fmt.Errorf("%s: %s %s contains a NUL byte; want %s", path, key, quote(s), want)
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(dir, s)
	}
	return s, nil
}

// decodeWeb applies and checks http_tls_cert, http_tls_key and http_users:
// both TLS keys or neither, a certificate that loads and matches its key,
// a password file that parses. The files are read here so that a daemon
// whose web server could not serve is refused before it starts.
func decodeWeb(path string, raw *tomlFile, cfg *Config) error {
	dir := filepath.Dir(path)
	var err error
	if raw.HTTPTLSCert != nil {
		if cfg.TLSCert, err = webFile(path, keyTLSCert, raw.HTTPTLSCert, wantTLSCert, dir); err != nil {
			return err
		}
	}
	if raw.HTTPTLSKey != nil {
		if cfg.TLSKey, err = webFile(path, keyTLSKey, raw.HTTPTLSKey, wantTLSKey, dir); err != nil {
			return err
		}
	}
	switch {
	case cfg.TLSCert != "" && cfg.TLSKey == "":
		return fmt.Errorf("%s: %s is set but %s is not; want both (HTTPS) or neither (plain HTTP)", path, keyTLSCert, keyTLSKey)
	case cfg.TLSKey != "" && cfg.TLSCert == "":
		return fmt.Errorf("%s: %s is set but %s is not; want both (HTTPS) or neither (plain HTTP)", path, keyTLSKey, keyTLSCert)
	case cfg.TLSCert != "":
		if _, err := LoadKeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			return fmt.Errorf("%s: %s/%s: %w", path, keyTLSCert, keyTLSKey, err)
		}
	}
	if raw.HTTPUsers != nil {
		if cfg.HTTPUsers, err = webFile(path, keyHTTPUsers, raw.HTTPUsers, wantHTTPUsers, dir); err != nil {
			return err
		}
	}
	if cfg.HTTPUsers != "" {
		if _, err := LoadUsers(cfg.HTTPUsers); err != nil {
			return fmt.Errorf("%s: %s: %w", path, keyHTTPUsers, err)
		}
	}
	return nil
}

// LoadKeyPair reads a PEM certificate and its key and checks that they
// belong together and that the certificate is valid now. The web server
// calls it again whenever the files change. Its errors are one line that
// says what to do.
func LoadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := readPEM(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readPEM(keyFile)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "tls: ")
		return nil, fmt.Errorf("%s and %s: %s; want a PEM certificate and the private key it was issued for", quote(certFile), quote(keyFile), msg)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%s: parse certificate: %v; want a PEM X.509 certificate", quote(certFile), err)
		}
	}
	if now := time.Now(); now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("%s: certificate expired at %s; renew it", quote(certFile), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &pair, nil
}

// readPEM reads a certificate or key file, regular files only (see
// readFile) and bounded.
func readPEM(name string) ([]byte, error) {
	s, found, err := readFile(name, maxPEMBytes, "a PEM file")
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%s: missing; want a PEM file", name)
	}
	return []byte(s), nil
}

// LoadUsers reads and parses an htpasswd file (see package htpasswd).
func LoadUsers(name string) (*htpasswd.Users, error) {
	s, found, err := readFile(name, htpasswd.MaxFileBytes, wantHTTPUsers)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%s: missing; want %s", name, wantHTTPUsers)
	}
	return htpasswd.Parse(name, []byte(s))
}
