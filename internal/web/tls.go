package web

import (
	"crypto/tls"

	"github.com/D4-project/analyzer-d4-log/internal/config"
)

// UseTLS makes the server speak HTTPS only, with the PEM certificate and key
// in certFile and keyFile. It loads them now and refuses a pair that cannot
// be read, does not match or has expired, so that the daemon does not start
// with a web server nobody can reach; while serving, the files are re-read
// when they change (see reloaded), so a renewed certificate is used without
// a restart. Call it before SetLogger and Run.
func (s *Server) UseTLS(certFile, keyFile string) error {
	r, err := newReloaded("tls certificate", []string{certFile, keyFile}, func() (*tls.Certificate, error) {
		return config.LoadKeyPair(certFile, keyFile)
	})
	if err != nil {
		return err
	}
	s.cert = r
	s.srv.TLSConfig = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// HTTP/1.1 only: the connection limits and per-write deadlines
		// (limitConn) count connections, which HTTP/2 would multiplex.
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.get(), nil
		},
	}
	return nil
}
