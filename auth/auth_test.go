package auth_test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/iqengine/iqengine/auth"
	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/testcerts"
	"github.com/iqengine/iqengine/internal/testutil"
)

const (
	tokenA = "tok-a-6f1c2b0e9d"   // given by its SHA-256
	tokenB = "tok-b-from-the-env" // given by IQ_TOKEN_B
)

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

// want is what Authenticate should say: an identity (name, kind, what it
// may read), or an error.
type want struct {
	name, kind string
	reads      []string // stores it may read
	notReads   []string // stores it may not
	metadata   bool
	// noCreds: ErrNoCredentials; refused: an *Error whose Reason contains
	// it.
	noCreds bool
	refused string
}

// check asserts what Authenticate said for a request.
func (w want) check(t *testing.T, id *auth.Identity, err error) {
	t.Helper()
	switch {
	case w.noCreds:
		if !errors.Is(err, auth.ErrNoCredentials) {
			t.Fatalf("got %+v, %v; want ErrNoCredentials", id, err)
		}
		return
	case w.refused != "":
		var e *auth.Error
		if !errors.As(err, &e) {
			t.Fatalf("got %+v, %v; want an *auth.Error", id, err)
		}
		if !strings.Contains(e.Reason, w.refused) {
			t.Fatalf("reason %q; want it to say %q", e.Reason, w.refused)
		}
		if id != nil {
			t.Fatalf("refused, yet identity %+v", id)
		}
		return
	}
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	if id.Name != w.name || id.Kind != w.kind {
		t.Fatalf("identity %q (%s); want %q (%s)", id.Name, id.Kind, w.name, w.kind)
	}
	for _, s := range w.reads {
		if !id.CanRead(s) {
			t.Errorf("%s may not read %q", id.Name, s)
		}
	}
	for _, s := range w.notReads {
		if id.CanRead(s) {
			t.Errorf("%s may read %q", id.Name, s)
		}
	}
	if id.Metadata() != w.metadata {
		t.Errorf("%s: Metadata() = %v, want %v", id.Name, id.Metadata(), w.metadata)
	}
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// verified is the connection state of a client certificate that the
// handshake verified; presented, of one it only presented.
func verified(c *x509.Certificate, ca *testcerts.CA) *tls.ConnectionState {
	return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c, ca.Cert}}}
}

func presented(c *x509.Certificate) *tls.ConnectionState {
	return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}}
}

func TestAuthenticateTokensAndCertificates(t *testing.T) {
	ca := testcerts.NewCA(t, "clients")
	byCN := ca.Client(t, "reporting").Cert
	byDNS := ca.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "x"}, DNSNames: []string{"batch.internal"}}).Cert
	spiffe, _ := url.Parse("spiffe://example.org/ns/prod/sa/etl")
	byURI := ca.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "y"}, URIs: []*url.URL{spiffe}}).Cert
	byEmail := ca.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "z"}, EmailAddresses: []string{"ops@example.org"}}).Cert
	stranger := ca.Client(t, "stranger").Cert

	a, err := auth.New(config.Auth{
		Tokens: []config.TokenIdentity{
			{Name: "dashboard", SHA256: sha256Hex(tokenA), Scopes: config.Scopes{Stores: []string{"orders"}, Metadata: true}},
			{Name: "etl", Env: "IQ_TOKEN_B", Scopes: config.Scopes{Stores: []string{"*"}}},
		},
		ClientCerts: []config.CertIdentity{
			{Subject: "reporting", Scopes: config.Scopes{Stores: []string{"sensors"}}},
			{Subject: "batch.internal", Scopes: config.Scopes{Stores: []string{"orders", "sensors"}}},
			{Subject: "spiffe://example.org/ns/prod/sa/etl", Scopes: config.Scopes{Metadata: true}},
			{Subject: "ops@example.org", Scopes: config.Scopes{Stores: []string{"*"}, Metadata: true}},
		},
	}, env(map[string]string{"IQ_TOKEN_B": tokenB}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !a.On() {
		t.Fatal("On() = false with identities configured")
	}

	for _, tc := range []struct {
		name          string
		authorization []string
		tls           *tls.ConnectionState
		want          want
	}{
		{name: "a token given by its SHA-256 is accepted, with its scopes",
			authorization: []string{"Bearer " + tokenA},
			want:          want{name: "dashboard", kind: auth.KindToken, reads: []string{"orders"}, notReads: []string{"sensors"}, metadata: true}},
		{name: "a token given by an environment variable is accepted; stores * reads every store",
			authorization: []string{"Bearer " + tokenB},
			want:          want{name: "etl", kind: auth.KindToken, reads: []string{"orders", "sensors", "anything"}}},
		{name: "the scheme is case-insensitive",
			authorization: []string{"bearer " + tokenA},
			want:          want{name: "dashboard", kind: auth.KindToken, reads: []string{"orders"}, metadata: true}},
		{name: "an unknown token is refused",
			authorization: []string{"Bearer tok-c-nobody-has-it"},
			want:          want{refused: "unknown bearer token"}},
		{name: "a known token with a character more is unknown",
			authorization: []string{"Bearer " + tokenA + "x"},
			want:          want{refused: "unknown bearer token"}},
		{name: "a token that looks like a JWT is unknown when no JWKS is configured",
			authorization: []string{"Bearer aaa.bbb.ccc"},
			want:          want{refused: "unknown bearer token"}},
		{name: "another scheme is refused",
			authorization: []string{"Basic " + tokenA},
			want:          want{refused: "scheme must be Bearer"}},
		{name: "Bearer without a token is malformed",
			authorization: []string{"Bearer "},
			want:          want{refused: "malformed Authorization header"}},
		{name: "Bearer with two words is malformed",
			authorization: []string{"Bearer " + tokenA + " " + tokenB},
			want:          want{refused: "malformed Authorization header"}},
		{name: "two Authorization headers are refused",
			authorization: []string{"Bearer " + tokenA, "Bearer " + tokenB},
			want:          want{refused: "more than one Authorization header"}},
		{name: "nothing presented is no credentials",
			want: want{noCreds: true}},
		{name: "a TLS connection without a client certificate is no credentials",
			tls:  &tls.ConnectionState{},
			want: want{noCreds: true}},
		{name: "a verified certificate is known by its common name",
			tls:  verified(byCN, ca),
			want: want{name: "reporting", kind: auth.KindCertificate, reads: []string{"sensors"}, notReads: []string{"orders"}}},
		{name: "a verified certificate is known by a DNS alternative name",
			tls:  verified(byDNS, ca),
			want: want{name: "batch.internal", kind: auth.KindCertificate, reads: []string{"orders", "sensors"}}},
		{name: "a verified certificate is known by a URI alternative name",
			tls:  verified(byURI, ca),
			want: want{name: "spiffe://example.org/ns/prod/sa/etl", kind: auth.KindCertificate, notReads: []string{"orders"}, metadata: true}},
		{name: "a verified certificate is known by an email alternative name",
			tls:  verified(byEmail, ca),
			want: want{name: "ops@example.org", kind: auth.KindCertificate, reads: []string{"orders"}, metadata: true}},
		{name: "a verified certificate of no configured subject is refused",
			tls:  verified(stranger, ca),
			want: want{refused: `certificate subject "stranger" is not configured`}},
		{name: "a certificate presented but not verified is ignored",
			tls:  presented(byCN),
			want: want{noCreds: true}},
		{name: "the Authorization header is judged before the certificate",
			authorization: []string{"Bearer " + tokenB},
			tls:           verified(byCN, ca),
			want:          want{name: "etl", kind: auth.KindToken, reads: []string{"orders"}}},
		{name: "a bad token is refused even with a good certificate",
			authorization: []string{"Bearer nope"},
			tls:           verified(byCN, ca),
			want:          want{refused: "unknown bearer token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/stores/orders/keys/k", nil)
			for _, h := range tc.authorization {
				r.Header.Add("Authorization", h)
			}
			r.TLS = tc.tls
			id, err := a.Authenticate(r)
			tc.want.check(t, id, err)
			if err != nil {
				for _, secret := range []string{tokenA, tokenB} {
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("the error %q shows a token", err)
					}
				}
			}
		})
	}
}

func TestAuthOff(t *testing.T) {
	a, err := auth.New(config.Auth{}, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.On() {
		t.Fatal("On() with no identity configured")
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tokenA)
	if _, err := a.Authenticate(r); !errors.Is(err, auth.ErrNoCredentials) {
		t.Fatalf("Authenticate with auth off: %v; want ErrNoCredentials", err)
	}
	var nilAuth *auth.Authenticator
	var nilID *auth.Identity
	if nilAuth.On() || nilID.CanRead("orders") || nilID.Metadata() {
		t.Fatal("a nil Authenticator is on, or a nil Identity may read")
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  config.Auth
		env  map[string]string
		want string
	}{
		{name: "a token variable that is not set",
			cfg:  config.Auth{Tokens: []config.TokenIdentity{{Name: "a", Env: "IQ_MISSING"}}},
			want: "auth.tokens[0].env: IQ_MISSING is not set"},
		{name: "a token variable that is empty",
			cfg:  config.Auth{Tokens: []config.TokenIdentity{{Name: "a", Env: "IQ_EMPTY"}}},
			env:  map[string]string{"IQ_EMPTY": ""},
			want: "auth.tokens[0].env: IQ_EMPTY is not set"},
		{name: "a token variable with a newline",
			cfg:  config.Auth{Tokens: []config.TokenIdentity{{Name: "a", Env: "IQ_NL"}}},
			env:  map[string]string{"IQ_NL": "abc\n"},
			want: "auth.tokens[0].env: IQ_NL holds white space"},
		{name: "a SHA-256 that is not 64 hex digits",
			cfg:  config.Auth{Tokens: []config.TokenIdentity{{Name: "a", SHA256: "abc"}}},
			want: "auth.tokens[0].sha256: must be 64 hex digits"},
		{name: "the same token twice",
			cfg: config.Auth{Tokens: []config.TokenIdentity{
				{Name: "a", SHA256: sha256Hex(tokenB)}, {Name: "b", Env: "IQ_TOKEN_B"}}},
			env:  map[string]string{"IQ_TOKEN_B": tokenB},
			want: "auth.tokens[1]: the same token as auth.tokens[0]"},
		{name: "a JWKS file that cannot be read",
			cfg:  config.Auth{JWT: config.JWTAuth{JWKSFile: "/nonexistent/jwks.json", Issuer: "i", Audience: "a"}},
			want: "auth.jwt.jwks_file: open /nonexistent/jwks.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth.New(tc.cfg, env(tc.env), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v; want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestWWWAuthenticate(t *testing.T) {
	if got := auth.WWWAuthenticate(auth.ErrNoCredentials); got != `Bearer realm="iqengine"` {
		t.Errorf("no credentials: %s", got)
	}
	if got := auth.WWWAuthenticate(&auth.Error{Reason: "token expired"}); got != `Bearer realm="iqengine", error="invalid_token"` {
		t.Errorf("refused: %s", got)
	}
}

// logBuffer collects a logger's lines; safe for the handshakes' goroutines.
type logBuffer struct{ testutil.Buffer }

// lines are the lines logged that contain s.
func (b *logBuffer) lines(s string) []string {
	var out []string
	for l := range strings.Lines(b.String()) {
		if strings.Contains(l, s) {
			out = append(out, strings.TrimSuffix(l, "\n"))
		}
	}
	return out
}

func newLogTo(b *logBuffer) *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

func newLog() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return newLogTo(b), b
}
