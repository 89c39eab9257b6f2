package auth_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/iqengine/iqengine/auth"
	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/testcerts"
	"github.com/iqengine/iqengine/internal/testutil"
)

const (
	issuer   = "https://login.example.org/"
	audience = "iqengine-prod"
)

// jwtAuth is an Authenticator that accepts JWTs signed by the keys of the
// JWKS file it returns the path of.
func jwtAuth(t *testing.T, jwks []byte) (*auth.Authenticator, string) {
	t.Helper()
	path := testcerts.WriteFile(t, t.TempDir(), "jwks.json", jwks)
	a, err := auth.New(config.Auth{JWT: config.JWTAuth{
		JWKSFile: path, Issuer: issuer, Audience: audience, Leeway: config.Duration(30 * time.Second),
	}}, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	return a, path
}

func authenticate(a *auth.Authenticator, raw string) (*auth.Identity, error) {
	r := httptest.NewRequest("GET", "/v1/stores/orders/keys/k", nil)
	r.Header.Set("Authorization", "Bearer "+raw)
	return a.Authenticate(r)
}

// unsigned is a token with header and claims as given and signature sig,
// built by hand as an attacker would.
func unsigned(t *testing.T, header, claims map[string]any, sig string) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "." + sig
}

func TestJWT(t *testing.T) {
	rsaKey := testcerts.NewRSA(t, "rsa-1")
	ecKey := testcerts.NewEC(t, "ec-1")
	a, _ := jwtAuth(t, testcerts.JWKS(t, rsaKey, ecKey))
	// impostor has the kid of rsaKey but another key.
	impostor := testcerts.NewRSA(t, "rsa-1")
	unknownKID := testcerts.NewRSA(t, "rsa-9")
	// ecAsRSA signs with the EC key, under the RSA key's kid.
	ecAsRSA := &testcerts.Signer{KID: "rsa-1", Alg: "ES256", Key: ecKey.Key}

	claims := func(change func(c map[string]any)) map[string]any {
		c := testcerts.Claims(issuer, audience, "svc-reporting", "iqengine:read:orders iqengine:metadata openid")
		if change != nil {
			change(c)
		}
		return c
	}
	now := time.Now()

	// The attack on HMAC: a token signed with HS256, keyed by the RSA
	// public key that anyone may read, under the RSA key's kid.
	pubDER, err := x509.MarshalPKIXPublicKey(rsaKey.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims(nil)))
	hs.Header["kid"] = "rsa-1"
	hsToken, err := hs.SignedString(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(claims(nil)))
	none.Header["kid"] = "rsa-1"
	noneToken, err := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		token string
		want  want
	}{
		{name: "an RS256 token is accepted: its name is sub, its stores and metadata from scope; other scopes are ignored",
			token: rsaKey.Sign(t, claims(nil)),
			want:  want{name: "svc-reporting", kind: auth.KindJWT, reads: []string{"orders"}, notReads: []string{"sensors", "openid"}, metadata: true}},
		{name: "an ES256 token is accepted",
			token: ecKey.Sign(t, claims(nil)),
			want:  want{name: "svc-reporting", kind: auth.KindJWT, reads: []string{"orders"}, metadata: true}},
		{name: "iqengine:read:* reads every store",
			token: rsaKey.Sign(t, claims(func(c map[string]any) { c["scope"] = "iqengine:read:*" })),
			want:  want{name: "svc-reporting", kind: auth.KindJWT, reads: []string{"orders", "sensors"}}},
		{name: "scopes may come as a JSON array in scp",
			token: rsaKey.Sign(t, claims(func(c map[string]any) {
				delete(c, "scope")
				c["scp"] = []string{"iqengine:read:sensors", "iqengine:metadata"}
			})),
			want: want{name: "svc-reporting", kind: auth.KindJWT, reads: []string{"sensors"}, notReads: []string{"orders"}, metadata: true}},
		{name: "scp may also be a space-separated string",
			token: rsaKey.Sign(t, claims(func(c map[string]any) { delete(c, "scope"); c["scp"] = "iqengine:read:sensors" })),
			want:  want{name: "svc-reporting", kind: auth.KindJWT, reads: []string{"sensors"}}},
		{name: "no scope reads nothing",
			token: rsaKey.Sign(t, claims(func(c map[string]any) { delete(c, "scope") })),
			want:  want{name: "svc-reporting", kind: auth.KindJWT, notReads: []string{"orders", "*"}}},
		{name: "iqengine:read: without a store reads nothing",
			token: rsaKey.Sign(t, claims(func(c map[string]any) { c["scope"] = "iqengine:read:" })),
			want:  want{name: "svc-reporting", kind: auth.KindJWT, notReads: []string{""}}},
		{name: "an audience array that contains ours is accepted",
			token: rsaKey.Sign(t, claims(func(c map[string]any) { c["aud"] = []string{"other", audience} })),
			want:  want{name: "svc-reporting", kind: auth.KindJWT, reads: []string{"orders"}, metadata: true}},
		{name: "a token expired within the leeway is accepted",
			token: rsaKey.Sign(t, claims(func(c map[string]any) { c["exp"] = now.Add(-10 * time.Second).Unix() })),
			want:  want{name: "svc-reporting", kind: auth.KindJWT, reads: []string{"orders"}, metadata: true}},
		{name: "an expired token is refused",
			token: rsaKey.Sign(t, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() })),
			want:  want{refused: "token expired"}},
		{name: "a token not valid yet is refused",
			token: rsaKey.Sign(t, claims(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() })),
			want:  want{refused: "token not valid yet"}},
		{name: "a token without exp is refused",
			token: rsaKey.Sign(t, claims(func(c map[string]any) { delete(c, "exp") })),
			want:  want{refused: "token has no exp claim"}},
		{name: "a token of another issuer is refused",
			token: rsaKey.Sign(t, claims(func(c map[string]any) { c["iss"] = "https://evil.example.org/" })),
			want:  want{refused: "token issuer is not accepted"}},
		{name: "a token without iss is refused",
			token: rsaKey.Sign(t, claims(func(c map[string]any) { delete(c, "iss") })),
			want:  want{refused: "token has no iss claim"}},
		{name: "a token for another audience is refused",
			token: rsaKey.Sign(t, claims(func(c map[string]any) { c["aud"] = "other-service" })),
			want:  want{refused: "token audience is not accepted"}},
		{name: "a token without aud is refused",
			token: rsaKey.Sign(t, claims(func(c map[string]any) { delete(c, "aud") })),
			want:  want{refused: "token has no aud claim"}},
		{name: "a token without sub is refused",
			token: rsaKey.Sign(t, claims(func(c map[string]any) { delete(c, "sub") })),
			want:  want{refused: "token has no sub claim"}},
		{name: "a token whose kid is not in the JWKS is refused",
			token: unknownKID.Sign(t, claims(nil)),
			want:  want{refused: "token signing key (kid) is not in the JWKS"}},
		{name: "a token signed by another key under a known kid is refused",
			token: impostor.Sign(t, claims(nil)),
			want:  want{refused: "token signature does not verify"}},
		{name: "a token whose claims were changed after signing is refused",
			token: func() string {
				parts := strings.Split(rsaKey.Sign(t, claims(nil)), ".")
				forged := strings.Split(rsaKey.Sign(t, claims(func(c map[string]any) { c["scope"] = "iqengine:read:*" })), ".")
				return parts[0] + "." + forged[1] + "." + parts[2]
			}(),
			want: want{refused: "token signature does not verify"}},
		{name: "a token without kid is refused when the JWKS has several keys",
			token: (&testcerts.Signer{Alg: "RS256", Key: rsaKey.Key}).Sign(t, claims(nil)),
			want:  want{refused: "token has no kid, and the JWKS has several keys"}},
		{name: "alg none is refused",
			token: noneToken,
			want:  want{refused: "token algorithm none is not accepted"}},
		{name: "alg none with a signature is refused",
			token: unsigned(t, map[string]any{"alg": "none", "kid": "rsa-1"}, claims(nil), "c2ln"),
			want:  want{refused: "token algorithm none is not accepted"}},
		{name: "HS256 keyed by the RSA public key is refused",
			token: hsToken,
			want:  want{refused: "token algorithm HS256 is not accepted"}},
		{name: "an algorithm that is not a JWS algorithm is refused",
			token: unsigned(t, map[string]any{"alg": "XS999", "kid": "rsa-1"}, claims(nil), "c2ln"),
			want:  want{refused: "token algorithm is missing or not accepted"}},
		{name: "a token signed with an EC key under an RSA key's kid is refused",
			token: ecAsRSA.Sign(t, claims(nil)),
			want:  want{refused: "token algorithm ES256 does not fit its signing key"}},
		{name: "a token whose kid is not a string is refused",
			token: unsigned(t, map[string]any{"alg": "RS256", "kid": 7}, claims(nil), "c2ln"),
			want:  want{refused: "token kid is not a string"}},
		{name: "a token whose scope is a number is malformed",
			token: rsaKey.Sign(t, claims(func(c map[string]any) { c["scope"] = 7 })),
			want:  want{refused: "malformed token"}},
		{name: "three parts that are not JSON are malformed",
			token: "aaa.bbb.ccc",
			want:  want{refused: "malformed token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := authenticate(a, tc.token)
			tc.want.check(t, id, err)
			if err != nil && strings.Contains(err.Error(), tc.token) {
				t.Fatalf("the error %q shows the token", err)
			}
		})
	}
}

func TestJWTWithoutKIDAndOneKey(t *testing.T) {
	key := testcerts.NewEC(t, "only")
	a, _ := jwtAuth(t, testcerts.JWKS(t, key))
	noKID := &testcerts.Signer{Alg: "ES256", Key: key.Key}
	id, err := authenticate(a, noKID.Sign(t, testcerts.Claims(issuer, audience, "svc", "iqengine:read:*")))
	want{name: "svc", kind: auth.KindJWT, reads: []string{"orders"}}.check(t, id, err)
}

func TestJWKSRotation(t *testing.T) {
	old, next := testcerts.NewRSA(t, "2026-01"), testcerts.NewEC(t, "2026-02")
	log, logs := newLog()
	path := testcerts.WriteFile(t, t.TempDir(), "jwks.json", testcerts.JWKS(t, old))
	a, err := auth.New(config.Auth{JWT: config.JWTAuth{JWKSFile: path, Issuer: issuer, Audience: audience}}, env(nil), log)
	if err != nil {
		t.Fatal(err)
	}
	auth.ReadJWKSAlways(a)
	claims := testcerts.Claims(issuer, audience, "svc", "iqengine:read:orders")
	oldToken, nextToken := old.Sign(t, claims), next.Sign(t, claims)
	accepted := want{name: "svc", kind: auth.KindJWT, reads: []string{"orders"}}
	unknownKey := want{refused: "not in the JWKS"}

	id, err := authenticate(a, oldToken)
	accepted.check(t, id, err)
	id, err = authenticate(a, nextToken)
	unknownKey.check(t, id, err)

	// The issuer rotates: the file now holds the new key alone.
	testcerts.WriteFile(t, filepath.Dir(path), "jwks.json", testcerts.JWKS(t, next))
	id, err = authenticate(a, nextToken)
	accepted.check(t, id, err)
	id, err = authenticate(a, oldToken)
	unknownKey.check(t, id, err)

	// A file that does not load keeps the keys in use, and logs once.
	testcerts.WriteFile(t, filepath.Dir(path), "jwks.json", []byte(`{"keys": [`))
	for range 3 {
		id, err = authenticate(a, nextToken)
		accepted.check(t, id, err)
	}
	if l := logs.lines("does not load"); len(l) != 1 {
		t.Fatalf("a JWKS that does not load logged %d lines, want 1: %q", len(l), l)
	}
}

func TestJWKSFileRefused(t *testing.T) {
	rsaKey := testcerts.NewRSA(t, "a")
	var pub map[string]any
	if err := json.Unmarshal(testcerts.JWKS(t, rsaKey), &pub); err != nil {
		t.Fatal(err)
	}
	rsaJWK := pub["keys"].([]any)[0].(map[string]any)
	for _, tc := range []struct {
		name string
		jwks string
		want string
	}{
		{name: "not JSON", jwks: `keys`, want: "not a JWKS"},
		{name: "no keys", jwks: `{"keys": []}`, want: "no usable signing key"},
		{name: "a symmetric key only",
			jwks: `{"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]}`,
			want: "no usable signing key"},
		{name: "an encryption key only",
			jwks: mustJSON(t, map[string]any{"keys": []any{with(rsaJWK, "use", "enc")}}),
			want: "no usable signing key"},
		{name: "an RSA key whose alg is HS256",
			jwks: mustJSON(t, map[string]any{"keys": []any{with(rsaJWK, "alg", "HS256")}}),
			want: "no usable signing key"},
		{name: "two keys of one kid",
			jwks: mustJSON(t, map[string]any{"keys": []any{rsaJWK, rsaJWK}}),
			want: `two keys have kid "a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := testcerts.WriteFile(t, t.TempDir(), "jwks.json", []byte(tc.jwks))
			_, err := auth.New(config.Auth{JWT: config.JWTAuth{JWKSFile: path, Issuer: issuer, Audience: audience}}, env(nil), nil)
			if err == nil || !strings.Contains(err.Error(), "auth.jwt.jwks_file") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v; want an auth.jwt.jwks_file error saying %q", err, tc.want)
			}
		})
	}
}

func with(m map[string]any, k string, v any) map[string]any {
	c := map[string]any{}
	for mk, mv := range m {
		c[mk] = mv
	}
	c[k] = v
	return c
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestVerifiedTokenExpires: a token taken once (and so cached) is refused
// once it expires.
func TestVerifiedTokenExpires(t *testing.T) {
	key := testcerts.NewRSA(t, "k")
	path := testcerts.WriteFile(t, t.TempDir(), "jwks.json", testcerts.JWKS(t, key))
	a, err := auth.New(config.Auth{JWT: config.JWTAuth{JWKSFile: path, Issuer: issuer, Audience: audience}}, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	claims := testcerts.Claims(issuer, audience, "svc", "iqengine:read:orders")
	claims["exp"] = time.Now().Add(2 * time.Second).Unix()
	tok := key.Sign(t, claims)
	if _, err := authenticate(a, tok); err != nil {
		t.Fatalf("a valid token: %v", err)
	}
	testutil.WaitFor(t, 10*time.Second, "the cached token to expire", func() bool {
		_, err := authenticate(a, tok)
		return err != nil && strings.Contains(err.Error(), "expired")
	})
}
