// Package testcerts makes throwaway credentials for tests: a certificate
// authority, the certificates it signs (a node's, for 127.0.0.1 and
// localhost; a client's, with a given common name), written as PEM files;
// and JWT signing keys, the JWKS of their public keys, and tokens they
// sign.
//
// Every helper fails the test on error. Keys are ECDSA P-256 for
// certificates; RSA 2048 or ECDSA P-256 for JWTs.
package testcerts

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

var serial atomic.Int64

// nextSerial is a serial number no other certificate of this process has.
func nextSerial() *big.Int { return big.NewInt(serial.Add(1)) }

// CA is a certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// PEM is Cert in PEM.
	PEM []byte
	// Pool holds Cert alone.
	Pool *x509.CertPool
}

// NewCA makes a self-signed CA named name, valid from an hour ago for a
// day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := ecKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, Key: key, PEM: pemBlock("CERTIFICATE", der), Pool: pool}
}

// WriteFile writes the CA's certificate to dir/name and returns its path.
func (ca *CA) WriteFile(t testing.TB, dir, name string) string {
	t.Helper()
	return WriteFile(t, dir, name, ca.PEM)
}

// Leaf is a certificate a CA signed, with its key.
type Leaf struct {
	Cert *x509.Certificate
	// Pair is Cert and its key, for a tls.Config.
	Pair tls.Certificate
	// CertPEM and KeyPEM are the PEM files' content (the key in PKCS#8).
	CertPEM, KeyPEM []byte
}

// Node issues a node's certificate: for 127.0.0.1, ::1 and localhost, with
// the server and client extended key usages (a node serves HTTPS and
// presents the same certificate when it calls the other nodes).
func (ca *CA) Node(t testing.TB, name string) *Leaf {
	t.Helper()
	return ca.Issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
}

// Client issues a client certificate with common name cn.
func (ca *CA) Client(t testing.TB, cn string) *Leaf {
	t.Helper()
	return ca.Issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// Issue signs a certificate from tmpl, which gives its subject, names and
// extended key usages; its serial number, validity (from an hour ago for
// a day, unless tmpl sets NotAfter) and key usage are filled in.
func (ca *CA) Issue(t testing.TB, tmpl *x509.Certificate) *Leaf {
	t.Helper()
	key := ecKey(t)
	c := *tmpl
	c.SerialNumber = nextSerial()
	if c.NotAfter.IsZero() {
		c.NotBefore = time.Now().Add(-time.Hour)
		c.NotAfter = time.Now().Add(24 * time.Hour)
	}
	c.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, &c, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	l := &Leaf{CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("PRIVATE KEY", keyDER)}
	if l.Pair, err = tls.X509KeyPair(l.CertPEM, l.KeyPEM); err != nil {
		t.Fatal(err)
	}
	l.Cert = l.Pair.Leaf
	return l
}

// WriteFiles writes the certificate and key to dir/name.crt and
// dir/name.key (replacing them, as a rotation does) and returns their
// paths.
func (l *Leaf) WriteFiles(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	return WriteFile(t, dir, name+".crt", l.CertPEM), WriteFile(t, dir, name+".key", l.KeyPEM)
}

// WriteFile writes data to dir/name and returns its path.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Signer is a JWT signing key.
type Signer struct {
	// KID is the key's id, in the JWKS and in the tokens' header ("": the
	// tokens have no kid).
	KID string
	// Alg is its algorithm: RS256 or ES256.
	Alg string
	Key crypto.Signer
}

// NewRSA makes an RS256 signing key (RSA 2048).
func NewRSA(t testing.TB, kid string) *Signer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{KID: kid, Alg: "RS256", Key: key}
}

// NewEC makes an ES256 signing key (ECDSA P-256).
func NewEC(t testing.TB, kid string) *Signer {
	t.Helper()
	return &Signer{KID: kid, Alg: "ES256", Key: ecKey(t)}
}

// Sign is a JWT of claims signed by s, with s's kid in its header.
func (s *Signer) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(s.Alg), jwt.MapClaims(claims))
	if s.KID != "" {
		tok.Header["kid"] = s.KID
	}
	raw, err := tok.SignedString(s.Key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// JWKS is the JWKS of the signers' public keys, each with its kid, alg
// and use "sig".
func JWKS(t testing.TB, signers ...*Signer) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, s := range signers {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: s.Key.Public(), KeyID: s.KID, Algorithm: s.Alg, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Claims are the claims of a token valid for an hour from now, from
// issuer to audience, for subject sub, with the given scope claim (space
// separated; "": none). Tests change or delete claims before signing.
func Claims(issuer, audience, sub, scope string) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": issuer,
		"aud": audience,
		"sub": sub,
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	if scope != "" {
		c["scope"] = scope
	}
	return c
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
