// Package auth is who may call a node, and what each caller may read: the
// node's HTTPS (TLS: its certificate, client certificates, the calls to the
// other nodes), and the identities of the auth section (Authenticator:
// bearer tokens, JSON Web Tokens, client certificates), each with its
// scopes. The router asks Authenticate who a request comes from, and the
// Identity whether it may read a store or see the metadata.
//
// Credentials are looked for in this order, and the first found decides:
//
//  1. the Authorization header (Bearer): a configured token, else, when it
//     has the three parts of a JWT and a JWKS file is configured, a JWT;
//  2. the client certificate, from the chain the TLS handshake verified
//     against server.tls.client_ca_file (a certificate that was not
//     verified is never looked at).
//
// So a request that carries a bearer token is judged by the token alone,
// whatever certificate its connection presented.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/iqengine/iqengine/config"
)

// The kinds of identity.
const (
	KindToken       = "token"
	KindJWT         = "jwt"
	KindCertificate = "certificate"
)

// Scopes: a JWT's "scope" (or "scp") claim grants reading one store
// (ScopeReadPrefix + name), every store (ScopeReadPrefix + "*"), or the
// metadata (ScopeMetadata). Other scopes are ignored.
const (
	ScopeReadPrefix = "iqengine:read:"
	ScopeMetadata   = "iqengine:metadata"
)

// ErrNoCredentials is Authenticate's error for a request that presents
// none: no Authorization header and no verified client certificate.
var ErrNoCredentials = errors.New("no credentials")

// Error is Authenticate's error for credentials that are presented but not
// accepted. Reason is one sentence safe to show the client ("token
// expired"); it never holds the credential.
type Error struct {
	Reason string
}

func (e *Error) Error() string { return e.Reason }

func refuse(format string, args ...any) *Error { return &Error{Reason: fmt.Sprintf(format, args...)} }

// Identity is a caller that Authenticate recognised.
type Identity struct {
	// Name is the configured name of a token, the sub claim of a JWT, or
	// the configured subject of a certificate.
	Name string
	// Kind is KindToken, KindJWT or KindCertificate.
	Kind string

	allStores bool
	stores    []string
	metadata  bool
}

// CanRead reports whether the identity may read the store (lookups, scans,
// counts). A nil Identity may read nothing.
func (id *Identity) CanRead(store string) bool {
	return id != nil && (id.allStores || slices.Contains(id.stores, store))
}

// Metadata reports whether the identity may see the cluster's metadata.
func (id *Identity) Metadata() bool { return id != nil && id.metadata }

func newIdentity(name, kind string, s config.Scopes) *Identity {
	id := &Identity{Name: name, Kind: kind, metadata: s.Metadata}
	for _, st := range s.Stores {
		if st == "*" {
			id.allStores = true
		} else {
			id.stores = append(id.stores, st)
		}
	}
	return id
}

// Authenticator recognises the callers of the auth section.
type Authenticator struct {
	on     bool
	tokens []token
	jwt    *jwtVerifier // nil: no JWKS file
	certs  []certIdentity
}

// token is a configured bearer token, known by its SHA-256.
type token struct {
	digest [sha256.Size]byte
	id     *Identity
}

type certIdentity struct {
	subject string
	id      *Identity
}

// New builds the authenticator of cfg: the tokens (those given by env read
// with getenv; a variable unset or empty is an error naming it), and the
// JWKS file read a first time. log (nil: none) receives the JWKS reloads.
// With no identity configured it is off (On false), and Authenticate
// finds no credentials.
func New(cfg config.Auth, getenv func(string) string, log *slog.Logger) (*Authenticator, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{on: cfg.On()}
	for i, tk := range cfg.Tokens {
		f := fmt.Sprintf("auth.tokens[%d]", i)
		var d [sha256.Size]byte
		switch {
		case tk.SHA256 != "" && tk.Env != "":
			return nil, fmt.Errorf("%s: give sha256 or env, one of them", f)
		case tk.SHA256 != "":
			b, err := hex.DecodeString(tk.SHA256)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("%s.sha256: must be 64 hex digits", f)
			}
			copy(d[:], b)
		case tk.Env != "":
			v := getenv(tk.Env)
			if v == "" {
				return nil, fmt.Errorf("%s.env: %s is not set", f, tk.Env)
			}
			if strings.ContainsAny(v, " \t\r\n") {
				return nil, fmt.Errorf("%s.env: %s holds white space, which a bearer token cannot", f, tk.Env)
			}
			d = sha256.Sum256([]byte(v))
		default:
			return nil, fmt.Errorf("%s: give sha256 or env, one of them", f)
		}
		for j, o := range a.tokens {
			if o.digest == d {
				return nil, fmt.Errorf("%s: the same token as auth.tokens[%d]", f, j)
			}
		}
		a.tokens = append(a.tokens, token{digest: d, id: newIdentity(tk.Name, KindToken, tk.Scopes)})
	}
	if cfg.JWT.JWKSFile != "" {
		var err error
		if a.jwt, err = newJWTVerifier(cfg.JWT, log); err != nil {
			return nil, err
		}
	}
	for _, c := range cfg.ClientCerts {
		a.certs = append(a.certs, certIdentity{subject: c.Subject, id: newIdentity(c.Subject, KindCertificate, c.Scopes)})
	}
	return a, nil
}

// On reports whether any identity is configured, which turns
// authentication on. A nil Authenticator is off.
func (a *Authenticator) On() bool { return a != nil && a.on }

// Authenticate says who r comes from (see the package doc for the order
// credentials are looked in): an Identity, ErrNoCredentials when r
// presents none, or an *Error when what it presents is not accepted.
func (a *Authenticator) Authenticate(r *http.Request) (*Identity, error) {
	if !a.On() {
		return nil, ErrNoCredentials
	}
	if h := r.Header.Values("Authorization"); len(h) > 0 {
		if len(h) > 1 {
			return nil, refuse("more than one Authorization header")
		}
		scheme, cred, _ := strings.Cut(strings.TrimSpace(h[0]), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return nil, refuse("the Authorization scheme must be Bearer")
		}
		cred = strings.TrimLeft(cred, " ")
		if cred == "" || strings.ContainsAny(cred, " \t") {
			return nil, refuse("malformed Authorization header: want Bearer and one token")
		}
		return a.bearer(cred)
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		return a.certificate(r.TLS.VerifiedChains[0][0])
	}
	return nil, ErrNoCredentials
}

// bearer recognises a configured token, else a JWT.
func (a *Authenticator) bearer(cred string) (*Identity, error) {
	d := sha256.Sum256([]byte(cred))
	var found *Identity
	for _, t := range a.tokens {
		// Every digest is compared, in constant time.
		if subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1 {
			found = t.id
		}
	}
	if found != nil {
		return found, nil
	}
	if a.jwt != nil && strings.Count(cred, ".") == 2 {
		return a.jwt.verify(cred)
	}
	return nil, refuse("unknown bearer token")
}

// certificate maps a verified client certificate to its configured
// identity: the first whose subject is the certificate's common name, or
// one of its DNS, URI or email alternative names.
func (a *Authenticator) certificate(c *x509.Certificate) (*Identity, error) {
	for _, ci := range a.certs {
		if certMatches(c, ci.subject) {
			return ci.id, nil
		}
	}
	name := c.Subject.CommonName
	if name == "" {
		name = c.Subject.String()
	}
	return nil, refuse("certificate subject %q is not configured", name)
}

func certMatches(c *x509.Certificate, subject string) bool {
	if c.Subject.CommonName == subject || slices.Contains(c.EmailAddresses, subject) {
		return true
	}
	for _, n := range c.DNSNames {
		if strings.EqualFold(n, subject) {
			return true
		}
	}
	for _, u := range c.URIs {
		if u.String() == subject {
			return true
		}
	}
	return false
}

// WWWAuthenticate is the WWW-Authenticate header of a 401 for err, an
// error of Authenticate (RFC 6750): a challenge, with error="invalid_token"
// when credentials were presented and refused.
func WWWAuthenticate(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return `Bearer realm="iqengine", error="invalid_token"`
	}
	return `Bearer realm="iqengine"`
}
