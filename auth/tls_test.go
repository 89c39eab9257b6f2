package auth_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/iqengine/iqengine/auth"
	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/testcerts"
)

// serveTLS serves HTTPS with cfg, as the node does (http.Server.ServeTLS),
// and returns its URL. The answer names the verified client certificate
// ("cn serial", or "-" for none) and the protocol.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: cfg,
		ErrorLog:  log.New(io.Discard, "", 0), // the refused handshakes
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			client := "-"
			if ch := r.TLS.VerifiedChains; len(ch) > 0 {
				client = fmt.Sprintf("%s %s", ch[0][0].Subject.CommonName, ch[0][0].SerialNumber)
			}
			fmt.Fprintf(w, "%s %s", client, r.Proto)
		}),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeTLS(ln, "", "")
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return "https://" + ln.Addr().String()
}

// answer is what one request over a new connection saw.
type answer struct {
	serverSerial string // the serial of the certificate the server presented
	body         string
}

// get sends one request over a new connection (no keep-alive, no session
// resumption), so each sees the certificates of a full handshake.
func get(cfg *tls.Config, url string) (answer, error) {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true, ForceAttemptHTTP2: true}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{serverSerial: resp.TLS.PeerCertificates[0].SerialNumber.String(), body: string(b)}, nil
}

// present makes a client present l whatever CAs the server asks for (a
// Go client given Certificates presents none of another CA).
func present(l *testcerts.Leaf) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &l.Pair, nil }
}

func mustGet(t *testing.T, cfg *tls.Config, url string) answer {
	t.Helper()
	a, err := get(cfg, url)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newTLS(t *testing.T, cfg config.ServerTLS, log *logBuffer) *auth.TLS {
	t.Helper()
	var l *slog.Logger // nil: none
	if log != nil {
		l = newLogTo(log)
	}
	tl, err := auth.NewTLS(cfg, l)
	if err != nil {
		t.Fatal(err)
	}
	auth.ReadFilesAlways(tl)
	return tl
}

func TestNewTLSRefuses(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	dir := t.TempDir()
	node := ca.Node(t, "n1")
	certFile, keyFile := node.WriteFiles(t, dir, "n1")
	_, otherKey := ca.Node(t, "n2").WriteFiles(t, dir, "n2")
	keyAsCert := testcerts.WriteFile(t, dir, "key-as-cert.pem", node.KeyPEM)
	caFile := ca.WriteFile(t, dir, "ca.pem")

	for _, tc := range []struct {
		name string
		cfg  config.ServerTLS
		want string
	}{
		{name: "a certificate file that cannot be read",
			cfg:  config.ServerTLS{CertFile: dir + "/missing.crt", KeyFile: keyFile},
			want: "server.tls.cert_file: open " + dir + "/missing.crt"},
		{name: "a key file that cannot be read",
			cfg:  config.ServerTLS{CertFile: certFile, KeyFile: dir + "/missing.key"},
			want: "server.tls.key_file: open " + dir + "/missing.key"},
		{name: "a certificate file with no certificate",
			cfg:  config.ServerTLS{CertFile: keyAsCert, KeyFile: keyFile},
			want: "server.tls.cert_file: " + keyAsCert + ": no certificate in PEM"},
		{name: "a key file with no key",
			cfg:  config.ServerTLS{CertFile: certFile, KeyFile: certFile},
			want: "server.tls.key_file: " + certFile + ": no private key in PEM"},
		{name: "a key that does not match the certificate",
			cfg:  config.ServerTLS{CertFile: certFile, KeyFile: otherKey},
			want: "server.tls.key_file: " + otherKey + " does not match the certificate in " + certFile},
		{name: "a client CA file with no certificate",
			cfg:  config.ServerTLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: keyFile},
			want: "server.tls.client_ca_file: " + keyFile + ": no certificate in PEM"},
		{name: "a peer CA file that cannot be read",
			cfg:  config.ServerTLS{CertFile: certFile, KeyFile: keyFile, PeerCAFile: dir + "/missing.pem"},
			want: "server.tls.peer_ca_file: open " + dir + "/missing.pem"},
		{name: "require without a client CA file",
			cfg:  config.ServerTLS{CertFile: certFile, KeyFile: keyFile, ClientAuth: "require"},
			want: "server.tls.client_auth: require needs client_ca_file"},
		{name: "an unknown client_auth",
			cfg:  config.ServerTLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, ClientAuth: "always"},
			want: `server.tls.client_auth: "always" is not optional or require`},
		{name: "an unknown min_version",
			cfg:  config.ServerTLS{CertFile: certFile, KeyFile: keyFile, MinVersion: "1.1"},
			want: `server.tls.min_version: "1.1" is not 1.2 or 1.3`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl, err := auth.NewTLS(tc.cfg, nil)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("NewTLS: %v; want an error starting %q", err, tc.want)
			}
			if tl != nil {
				t.Fatal("a TLS with the error")
			}
		})
	}

	tl, err := auth.NewTLS(config.ServerTLS{}, nil)
	if tl != nil || err != nil || tl.ServerConfig() != nil || tl.ClientConfig() != nil {
		t.Fatalf("NewTLS without a certificate: %v, %v; want nil, nil and nil configs", tl, err)
	}
}

func TestServerCertificateRotates(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	dir := t.TempDir()
	first := ca.Node(t, "n1")
	certFile, keyFile := first.WriteFiles(t, dir, "n1")
	logs := &logBuffer{}
	tl := newTLS(t, config.ServerTLS{CertFile: certFile, KeyFile: keyFile}, logs)
	url := serveTLS(t, tl.ServerConfig())
	client := &tls.Config{RootCAs: ca.Pool}

	if got := mustGet(t, client, url).serverSerial; got != first.Cert.SerialNumber.String() {
		t.Fatalf("served serial %s, want the first certificate's %s", got, first.Cert.SerialNumber)
	}

	// The files are rotated under the running server.
	second := ca.Node(t, "n1")
	second.WriteFiles(t, dir, "n1")
	if got := mustGet(t, client, url).serverSerial; got != second.Cert.SerialNumber.String() {
		t.Fatalf("after the rotation, served serial %s, want the new certificate's %s", got, second.Cert.SerialNumber)
	}

	// Half a rotation (the certificate written, not yet its key) does not
	// load: the certificate in use is kept, and one line logged.
	third := ca.Node(t, "n1")
	testcerts.WriteFile(t, dir, "n1.crt", third.CertPEM)
	for range 3 {
		if got := mustGet(t, client, url).serverSerial; got != second.Cert.SerialNumber.String() {
			t.Fatalf("with a key that does not match, served serial %s, want the one in use, %s", got, second.Cert.SerialNumber)
		}
	}
	if l := logs.lines("does not load"); len(l) != 1 || !strings.Contains(l[0], "does not match") {
		t.Fatalf("logged %q; want one line saying the key does not match", l)
	}
	testcerts.WriteFile(t, dir, "n1.key", third.KeyPEM)
	if got := mustGet(t, client, url).serverSerial; got != third.Cert.SerialNumber.String() {
		t.Fatalf("once the key is written, served serial %s, want %s", got, third.Cert.SerialNumber)
	}
}

func TestClientWithoutTheCA(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	certFile, keyFile := ca.Node(t, "n1").WriteFiles(t, t.TempDir(), "n1")
	url := serveTLS(t, newTLS(t, config.ServerTLS{CertFile: certFile, KeyFile: keyFile}, nil).ServerConfig())

	_, err := get(&tls.Config{}, url) // the system roots
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Fatalf("a client without the CA: %v; want a certificate verification error", err)
	}
	mustGet(t, &tls.Config{RootCAs: ca.Pool}, url)
}

func TestMinVersion13(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	certFile, keyFile := ca.Node(t, "n1").WriteFiles(t, t.TempDir(), "n1")
	url := serveTLS(t, newTLS(t, config.ServerTLS{CertFile: certFile, KeyFile: keyFile, MinVersion: "1.3"}, nil).ServerConfig())
	if _, err := get(&tls.Config{RootCAs: ca.Pool, MaxVersion: tls.VersionTLS12}, url); err == nil {
		t.Fatal("a TLS 1.2 client was served with min_version 1.3")
	}
	mustGet(t, &tls.Config{RootCAs: ca.Pool}, url)
}

func TestClientCertificates(t *testing.T) {
	ca, otherCA := testcerts.NewCA(t, "ca"), testcerts.NewCA(t, "other")
	dir := t.TempDir()
	certFile, keyFile := ca.Node(t, "n1").WriteFiles(t, dir, "n1")
	caFile := ca.WriteFile(t, dir, "ca.pem")
	alice := ca.Client(t, "alice")
	mallory := otherCA.Client(t, "mallory")
	wantAlice := fmt.Sprintf("alice %s HTTP/2.0", alice.Cert.SerialNumber)

	for _, tc := range []struct {
		name       string
		clientAuth string
		clientCert *testcerts.Leaf
		want       string // the answer; "": refused
	}{
		{name: "optional: no certificate is served, with no client identity", clientAuth: "optional", want: "- HTTP/2.0"},
		{name: "optional is the default", clientAuth: "", want: "- HTTP/2.0"},
		{name: "optional: a certificate of the CA is verified", clientAuth: "optional", clientCert: alice, want: wantAlice},
		{name: "optional: a certificate of another CA is refused", clientAuth: "optional", clientCert: mallory},
		{name: "require: no certificate is refused", clientAuth: "require"},
		{name: "require: a certificate of the CA is verified", clientAuth: "require", clientCert: alice, want: wantAlice},
		{name: "require: a certificate of another CA is refused", clientAuth: "require", clientCert: mallory},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTLS(t, config.ServerTLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, ClientAuth: tc.clientAuth}, nil)
			url := serveTLS(t, tl.ServerConfig())
			client := &tls.Config{RootCAs: ca.Pool}
			if tc.clientCert != nil {
				client.GetClientCertificate = present(tc.clientCert)
			}
			got, err := get(client, url)
			switch {
			case tc.want == "" && err == nil:
				t.Fatalf("served (%q), want refused", got.body)
			case tc.want != "" && err != nil:
				t.Fatalf("refused (%v), want %q", err, tc.want)
			case got.body != tc.want:
				t.Fatalf("answer %q, want %q", got.body, tc.want)
			}
		})
	}
}

func TestClientCAsRotate(t *testing.T) {
	ca, newCA := testcerts.NewCA(t, "ca-2025"), testcerts.NewCA(t, "ca-2026")
	dir := t.TempDir()
	certFile, keyFile := ca.Node(t, "n1").WriteFiles(t, dir, "n1")
	caFile := ca.WriteFile(t, dir, "clients.pem")
	tl := newTLS(t, config.ServerTLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, ClientAuth: "require"}, nil)
	url := serveTLS(t, tl.ServerConfig())
	client := &tls.Config{RootCAs: ca.Pool, GetClientCertificate: present(newCA.Client(t, "bob"))}

	if _, err := get(client, url); err == nil {
		t.Fatal("a client certificate of a CA not in client_ca_file was accepted")
	}
	testcerts.WriteFile(t, dir, "clients.pem", append(append([]byte{}, ca.PEM...), newCA.PEM...))
	if got := mustGet(t, client, url).body; !strings.HasPrefix(got, "bob ") {
		t.Fatalf("after the new CA was added to client_ca_file: %q, want bob verified", got)
	}
}

func TestClientConfigPresentsTheNodeCertificate(t *testing.T) {
	ca := testcerts.NewCA(t, "cluster")
	dir := t.TempDir()
	caFile := ca.WriteFile(t, dir, "ca.pem")
	nodeCfg := func(name string) config.ServerTLS {
		certFile, keyFile := ca.Node(t, name).WriteFiles(t, dir, name)
		return config.ServerTLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, ClientAuth: "require", PeerCAFile: caFile}
	}
	n1 := newTLS(t, nodeCfg("n1"), nil)
	n2url := serveTLS(t, newTLS(t, nodeCfg("n2"), nil).ServerConfig())

	got := mustGet(t, n1.ClientConfig(), n2url).body
	if !strings.HasPrefix(got, "n1 ") {
		t.Fatalf("n2 saw %q; want n1's certificate verified", got)
	}

	// n1's certificate rotates: its calls present the new one.
	rotated := ca.Node(t, "n1")
	rotated.WriteFiles(t, dir, "n1")
	if got := mustGet(t, n1.ClientConfig(), n2url).body; !strings.HasPrefix(got, fmt.Sprintf("n1 %s ", rotated.Cert.SerialNumber)) {
		t.Fatalf("after n1's rotation n2 saw %q; want the serial %s", got, rotated.Cert.SerialNumber)
	}

	// n1 checks the nodes it calls against peer_ca_file.
	stranger := testcerts.NewCA(t, "stranger")
	certFile, keyFile := stranger.Node(t, "n3").WriteFiles(t, t.TempDir(), "n3")
	n3url := serveTLS(t, newTLS(t, config.ServerTLS{CertFile: certFile, KeyFile: keyFile}, nil).ServerConfig())
	var verr *tls.CertificateVerificationError
	if _, err := get(n1.ClientConfig(), n3url); !errors.As(err, &verr) {
		t.Fatalf("n1 called a node whose CA is not in peer_ca_file: %v; want a certificate verification error", err)
	}
}

func TestRequireWarnsOfACertificateWithoutClientAuth(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	dir := t.TempDir()
	serverOnly := ca.Issue(t, &x509.Certificate{
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	certFile, keyFile := serverOnly.WriteFiles(t, dir, "n1")
	caFile := ca.WriteFile(t, dir, "ca.pem")
	logs := &logBuffer{}
	newTLS(t, config.ServerTLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, ClientAuth: "require"}, logs)
	if l := logs.lines("lacks clientAuth"); len(l) != 1 {
		t.Fatalf("logged %q; want one warning that the certificate lacks clientAuth", l)
	}
}
