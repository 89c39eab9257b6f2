package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/iqengine/iqengine/config"
)

// TLS is the node's HTTPS (server.tls): the certificate it serves, and
// presents to the other nodes, and the CAs it checks client and peer
// certificates against. The certificate, its key and the client CAs are
// read again when their files change (looked at at most once a second, on
// a handshake), so a rotated certificate takes effect on the next
// connection without a restart; files that change but do not load keep
// the certificate in use, and log one line. The peer CAs are read once, in
// NewTLS.
//
// A nil *TLS is plain HTTP: its configs are nil.
type TLS struct {
	min        uint16
	clientAuth tls.ClientAuthType
	cert       *watched[*tls.Certificate]
	clientCAs  *watched[*x509.CertPool] // nil: client certificates are not asked for
	peerCAs    *x509.CertPool           // nil: the system roots
}

// NewTLS reads the certificate, key and CA files of cfg, and returns nil
// (and no error) when cfg is off (no cert_file). Its errors name the field
// and say what is wrong: a file that cannot be read, a PEM file with no
// certificate or no key, a key that does not match the certificate. log
// (nil: none) receives the reloads, and the reloads that fail.
func NewTLS(cfg config.ServerTLS, log *slog.Logger) (*TLS, error) {
	if !cfg.On() {
		return nil, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &TLS{min: tls.VersionTLS12}
	switch cfg.MinVersion {
	case "", "1.2":
	case "1.3":
		t.min = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("server.tls.min_version: %q is not 1.2 or 1.3", cfg.MinVersion)
	}
	if cfg.KeyFile == "" {
		return nil, fmt.Errorf("server.tls.key_file: is required with cert_file")
	}
	var err error
	t.cert, err = newWatched("server.tls certificate", log, loadKeyPair(cfg.CertFile, cfg.KeyFile),
		file{"server.tls.cert_file", cfg.CertFile}, file{"server.tls.key_file", cfg.KeyFile})
	if err != nil {
		return nil, err
	}
	t.cert.loaded = func(c *tls.Certificate) {
		log.Info("server.tls certificate reloaded", "subject", c.Leaf.Subject.String(),
			"serial", c.Leaf.SerialNumber.String(), "not_after", c.Leaf.NotAfter)
	}
	switch cfg.ClientAuth {
	case "", "optional":
		t.clientAuth = tls.VerifyClientCertIfGiven
	case "require":
		t.clientAuth = tls.RequireAndVerifyClientCert
		if cfg.ClientCAFile == "" {
			return nil, fmt.Errorf("server.tls.client_auth: require needs client_ca_file")
		}
		if leaf := t.cert.get().Leaf; !hasUsage(leaf, x509.ExtKeyUsageClientAuth) {
			log.Warn("server.tls.cert_file: the certificate's extended key usage lacks clientAuth, " +
				"so the other nodes, which require client certificates, will refuse it when this node calls them")
		}
	default:
		return nil, fmt.Errorf("server.tls.client_auth: %q is not optional or require", cfg.ClientAuth)
	}
	if cfg.ClientCAFile != "" {
		const field = "server.tls.client_ca_file"
		t.clientCAs, err = newWatched(field, log, loadPool(field, cfg.ClientCAFile), file{field, cfg.ClientCAFile})
		if err != nil {
			return nil, err
		}
		t.clientCAs.loaded = func(*x509.CertPool) { log.Info(field + " reloaded") }
	}
	if cfg.PeerCAFile != "" {
		const field = "server.tls.peer_ca_file"
		data, err := readFiles([]file{{field, cfg.PeerCAFile}})
		if err != nil {
			return nil, err
		}
		if t.peerCAs, err = loadPool(field, cfg.PeerCAFile)(data); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// ServerConfig is the HTTPS listener's config: TLS 1.2 or newer
// (min_version), the current certificate, and, with a client CA file,
// client certificates checked against the current client CAs
// (tls.VerifyClientCertIfGiven, or tls.RequireAndVerifyClientCert when
// client_auth is require). It offers h2 and http/1.1 through ALPN, as
// net/http's server serves both. Each call returns a new config.
func (t *TLS) ServerConfig() *tls.Config {
	if t == nil {
		return nil
	}
	c := &tls.Config{
		MinVersion: t.min,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return t.cert.get(), nil
		},
	}
	if t.clientCAs == nil {
		return c
	}
	c.ClientAuth = t.clientAuth
	c.ClientCAs = t.clientCAs.get()
	// A config of its own for each connection, as the CAs may have
	// changed since; everything else as c.
	perConn := c.Clone()
	c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cc := perConn.Clone()
		cc.ClientCAs = t.clientCAs.get()
		return cc, nil
	}
	return c
}

// ClientConfig is the config of the node's calls to the other nodes: their
// certificates are checked against peer_ca_file (default: the system
// roots), and the node presents its own current certificate when asked
// for one (a node whose peers require client certificates needs a
// certificate whose extended key usage includes clientAuth, as well as
// serverAuth). Each call returns a new config.
func (t *TLS) ClientConfig() *tls.Config {
	if t == nil {
		return nil
	}
	return &tls.Config{
		MinVersion: t.min,
		RootCAs:    t.peerCAs,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return t.cert.get(), nil
		},
	}
}

// loadKeyPair reads a PEM certificate chain and its PEM private key
// (PKCS#8, PKCS#1 or SEC 1), saying which file is at fault when they do
// not make a pair.
func loadKeyPair(certPath, keyPath string) func([][]byte) (*tls.Certificate, error) {
	return func(data [][]byte) (*tls.Certificate, error) {
		var chain [][]byte
		for rest := data[0]; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if b.Type == "CERTIFICATE" {
				chain = append(chain, b.Bytes)
			}
		}
		if len(chain) == 0 {
			return nil, fmt.Errorf("server.tls.cert_file: %s: no certificate in PEM", certPath)
		}
		leaf, err := x509.ParseCertificate(chain[0])
		if err != nil {
			return nil, fmt.Errorf("server.tls.cert_file: %s: %w", certPath, err)
		}
		var keyDER []byte
		for rest := data[1]; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if strings.HasSuffix(b.Type, "PRIVATE KEY") {
				keyDER = b.Bytes
				break
			}
		}
		if keyDER == nil {
			return nil, fmt.Errorf("server.tls.key_file: %s: no private key in PEM", keyPath)
		}
		key, err := parsePrivateKey(keyDER)
		if err != nil {
			return nil, fmt.Errorf("server.tls.key_file: %s: %w", keyPath, err)
		}
		pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(key.Public()) {
			return nil, fmt.Errorf("server.tls.key_file: %s does not match the certificate in %s", keyPath, certPath)
		}
		return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
	}
}

// parsePrivateKey reads a DER private key as PKCS#8, PKCS#1 or SEC 1, as
// tls.X509KeyPair does.
func parsePrivateKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch k := k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		}
		return nil, fmt.Errorf("a %T cannot sign a TLS handshake", k)
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("the private key is not PKCS#8, PKCS#1 or SEC 1")
}

// loadPool reads a PEM bundle of CA certificates.
func loadPool(field, path string) func([][]byte) (*x509.CertPool, error) {
	return func(data [][]byte) (*x509.CertPool, error) {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data[0]) {
			return nil, fmt.Errorf("%s: %s: no certificate in PEM", field, path)
		}
		return pool, nil
	}
}

// hasUsage reports whether c may be used for u (a certificate that lists
// no extended key usage may be used for any).
func hasUsage(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	return len(c.ExtKeyUsage) == 0 || slices.Contains(c.ExtKeyUsage, u) ||
		slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny)
}
