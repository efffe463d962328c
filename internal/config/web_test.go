package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/testcert"
	"golang.org/x/crypto/bcrypt"
)

// webDir makes a valid configuration directory with toml as analyzer.toml.
func webDir(t *testing.T, toml string) string {
	t.Helper()
	dir := t.TempDir()
	for name, v := range map[string]string{
		FileRedisD4: "localhost:6380/2", FileRedisQueue: exampleQueue, FileRedisParsers: "localhost:6500/4",
		FileHTTPServer: "127.0.0.1:8080", FileAnalyzerTOML: toml,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadTLS(t *testing.T) {
	dir := webDir(t, "http_tls_cert = \"a.crt\"\nhttp_tls_key = \"a.key\"\n")
	testcert.Write(t, dir, "a", "a", time.Now().Add(time.Hour))
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLSCert != filepath.Join(dir, "a.crt") || cfg.TLSKey != filepath.Join(dir, "a.key") {
		t.Errorf("paths not resolved against the configuration directory: %q %q", cfg.TLSCert, cfg.TLSKey)
	}

	// A key of another certificate.
	testcert.Write(t, dir, "b", "b", time.Now().Add(time.Hour))
	dir2 := webDir(t, "http_tls_cert = \""+filepath.Join(dir, "a.crt")+"\"\nhttp_tls_key = \""+filepath.Join(dir, "b.key")+"\"\n")
	_, err = Load(dir2)
	want := filepath.Join(dir2, FileAnalyzerTOML) + `: http_tls_cert/http_tls_key: "` + filepath.Join(dir, "a.crt") + `" and "` + filepath.Join(dir, "b.key") +
		`": private key does not match public key; want a PEM certificate and the private key it was issued for`
	if err == nil || err.Error() != want {
		t.Errorf("mismatched pair\n got %v\nwant %s", err, want)
	}

	// Expired.
	testcert.Write(t, dir, "old", "old", time.Now().Add(-time.Minute))
	dir3 := webDir(t, "http_tls_cert = \""+filepath.Join(dir, "old.crt")+"\"\nhttp_tls_key = \""+filepath.Join(dir, "old.key")+"\"\n")
	if _, err = Load(dir3); err == nil || !strings.Contains(err.Error(), "certificate expired at ") || !strings.HasSuffix(err.Error(), "; renew it") {
		t.Errorf("expired certificate: got %v", err)
	}
}

func TestLoadUsers(t *testing.T) {
	dir := webDir(t, "http_users = \"users\"\n")
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte("alice:"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPUsers != filepath.Join(dir, "users") {
		t.Errorf("HTTPUsers = %q", cfg.HTTPUsers)
	}
	u, err := LoadUsers(cfg.HTTPUsers)
	if err != nil || !u.Check("alice", "pw") {
		t.Errorf("LoadUsers: %v", err)
	}
}
