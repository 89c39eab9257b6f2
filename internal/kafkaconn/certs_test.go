package kafkaconn_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"github.com/iqengine/iqengine/internal/testcerts"
)

// testCA is a throwaway certificate authority for one test.
type testCA struct{ *testcerts.CA }

func newCA(t *testing.T, name string) *testCA { return &testCA{testcerts.NewCA(t, name)} }

// issued is a leaf certificate signed by a testCA, as a tls.Certificate and
// as PEM files.
type issued struct {
	pair              tls.Certificate
	certFile, keyFile string
}

// issue signs a server (127.0.0.1 and dnsNames) or client certificate.
func (ca *testCA) issue(t *testing.T, name string, server bool, dnsNames ...string) *issued {
	t.Helper()
	tmpl := &x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	tmpl.Subject.CommonName = name
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = dnsNames
	}
	leaf := ca.Issue(t, tmpl)
	certFile, keyFile := leaf.WriteFiles(t, t.TempDir(), name)
	return &issued{pair: leaf.Pair, certFile: certFile, keyFile: keyFile}
}

// caFile writes the CA certificate to a PEM file and returns its path.
func (ca *testCA) caFile(t *testing.T) string {
	t.Helper()
	return ca.WriteFile(t, t.TempDir(), "ca.pem")
}

// serverTLS is the brokers' TLS config: the server certificate, and with
// clientCA set, mutual TLS that requires a client certificate signed by it.
func serverTLS(srv *issued, clientCA *testCA) *tls.Config {
	c := &tls.Config{
		Certificates: []tls.Certificate{srv.pair},
		MinVersion:   tls.VersionTLS12,
	}
	if clientCA != nil {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = clientCA.Pool
	}
	return c
}
