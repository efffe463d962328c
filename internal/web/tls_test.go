package web

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/testcert"
	"github.com/D4-project/analyzer-d4-log/internal/testlog"
)

// httpsClient trusts only the given certificates.
func httpsClient(certs ...testcert.Pair) *http.Client {
	cfg := &tls.Config{RootCAs: testcert.Pool(certs[0].Cert)}
	for _, c := range certs[1:] {
		cfg.RootCAs.AddCert(c.Cert)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

// peerCN makes a fresh handshake and returns the server certificate's
// common name.
func peerCN(t *testing.T, addr string, certs ...testcert.Pair) string {
	t.Helper()
	cfg := &tls.Config{RootCAs: testcert.Pool(certs[0].Cert), ServerName: "127.0.0.1"}
	for _, c := range certs[1:] {
		cfg.RootCAs.AddCert(c.Cert)
	}
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("tls dial: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	first := testcert.Write(t, dir, "site", "first", time.Now().Add(24*time.Hour))
	var logs testlog.Buffer
	var clock atomic.Int64 // the reloader's clock in unix ns; advanced by hand below
	advance := func() { clock.Add(int64(reloadCheckEvery)) }
	s := start(t, newHandler(t, fixture(t), nil, nil), func(s *Server) {
		if err := s.UseTLS(first.CertFile, first.KeyFile); err != nil {
			t.Fatal(err)
		}
		clock.Store(time.Now().UnixNano())
		s.cert.now = func() time.Time { return time.Unix(0, clock.Load()) }
		s.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	})
	addr := s.Addr().String()
	if !s.TLS() {
		t.Fatal("TLS() = false after UseTLS")
	}

	resp, err := httpsClient(first).Get("https://" + addr + "/sshd/dailystatistics.html")
	if err != nil {
		t.Fatalf("https get: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("https: %d %q", resp.StatusCode, body)
	}

	// HTTPS only: a plain request is not served.
	plain := &http.Client{Timeout: 10 * time.Second}
	if resp, err := plain.Get("http://" + addr + "/sshd/dailystatistics.html"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("plain http served: %q", b)
		}
	}

	// Renewal: the files are replaced (written and renamed, as certbot
	// does). Not picked up before the check interval...
	second := testcert.Write(t, dir, "site", "second", time.Now().Add(48*time.Hour))
	if cn := peerCN(t, addr, first, second); cn != "first" {
		t.Fatalf("certificate changed before the check interval: %q", cn)
	}
	// ...and picked up after it, without a restart.
	advance()
	if cn := peerCN(t, addr, first, second); cn != "second" {
		t.Fatalf("after renewal the server presents %q, want second", cn)
	}
	if !strings.Contains(logs.String(), "reloaded tls certificate") {
		t.Errorf("renewal not logged: %s", logs.String())
	}

	// A bad pair (the key of another certificate) keeps the good one and
	// is logged once, however many handshakes follow.
	other := testcert.Write(t, dir, "other", "other", time.Now().Add(time.Hour))
	key, err := os.ReadFile(other.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "site.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		advance()
		if cn := peerCN(t, addr, first, second); cn != "second" {
			t.Fatalf("with a mismatched new pair the server presents %q, want the previous one", cn)
		}
	}
	if n := strings.Count(logs.String(), "reload tls certificate failed"); n != 1 {
		t.Errorf("bad pair logged %d times, want once: %s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "private key does not match public key") {
		t.Errorf("the log does not say why: %s", logs.String())
	}

	// Fixed: the next change is picked up.
	third := testcert.Write(t, dir, "site", "third", time.Now().Add(72*time.Hour))
	advance()
	if cn := peerCN(t, addr, first, second, third); cn != "third" {
		t.Fatalf("after fixing the pair the server presents %q, want third", cn)
	}
}

func TestUseTLSRefusesBadPairs(t *testing.T) {
	dir := t.TempDir()
	a := testcert.Write(t, dir, "a", "a", time.Now().Add(time.Hour))
	b := testcert.Write(t, dir, "b", "b", time.Now().Add(time.Hour))
	for _, c := range []struct {
		name, cert, key, want string
	}{
		{"mismatch", a.CertFile, b.KeyFile, "private key does not match public key; want a PEM certificate and the private key it was issued for"},
		{"missing", filepath.Join(dir, "none.crt"), a.KeyFile, "none.crt: missing; want a PEM file"},
		{"key as cert", a.KeyFile, a.KeyFile, "want a PEM certificate and the private key it was issued for"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Listen("127.0.0.1:0", "conf.sample/http_server", http.NotFoundHandler())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.UseTLS(c.cert, c.key)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("UseTLS: got %v, want one line containing %q", err, c.want)
			}
			if s.TLS() {
				t.Error("a refused pair left the server in TLS mode")
			}
		})
	}
}
