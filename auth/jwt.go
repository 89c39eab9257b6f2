package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/iqengine/iqengine/config"
)

// jwtAlgs are the signature algorithms a JWT may use: asymmetric ones
// only. Never "none", and never HMAC, whose key would be the public key
// anyone can read.
var jwtAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// jwtVerifier checks JWTs against the keys of a JWKS file, read again
// when it changes, and against the configured issuer and audience.
type jwtVerifier struct {
	keys   *watched[*keySet]
	parser *jwt.Parser

	// verified caches the tokens verified (by their SHA-256) until they
	// expire or the key set changes: a client sends the same token with
	// every request, and a signature check costs 100 to 250 µs.
	mu       sync.Mutex
	verified map[[sha256.Size]byte]verifiedToken
}

// verifiedToken is a token that verified against set, valid until exp.
type verifiedToken struct {
	id  *Identity
	set *keySet
	exp time.Time
}

// maxVerified bounds the cache of verified tokens; when it is full it
// starts again empty.
const maxVerified = 4096

// keySet is the usable keys of a JWKS file.
type keySet struct {
	keys  []verifyKey
	byKID map[string]verifyKey
}

type verifyKey struct {
	kid string
	alg string // "": any of jwtAlgs that fits the key
	key crypto.PublicKey
}

func newJWTVerifier(cfg config.JWTAuth, log *slog.Logger) (*jwtVerifier, error) {
	switch {
	case cfg.Issuer == "":
		return nil, fmt.Errorf("auth.jwt.issuer: is required with a JWKS file")
	case cfg.Audience == "":
		return nil, fmt.Errorf("auth.jwt.audience: is required with a JWKS file")
	case cfg.Leeway < 0:
		return nil, fmt.Errorf("auth.jwt.leeway: must not be negative")
	}
	const field = "auth.jwt.jwks_file"
	keys, err := newWatched(field, log, loadJWKS(cfg.JWKSFile, log), file{field, cfg.JWKSFile})
	if err != nil {
		return nil, err
	}
	keys.loaded = func(s *keySet) { log.Info(field+" reloaded", "keys", len(s.keys)) }
	return &jwtVerifier{
		keys: keys,
		parser: jwt.NewParser(
			jwt.WithValidMethods(jwtAlgs),
			jwt.WithExpirationRequired(),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithLeeway(cfg.Leeway.D()),
		),
	}, nil
}

// loadJWKS reads a JWKS file (RFC 7517): its RSA, EC (P-256, P-384,
// P-521) and Ed25519 public keys whose use, if said, is "sig". Other keys
// (private or symmetric ones included) are skipped, each with a log line;
// a file with no usable key, or two keys of one kid, is an error.
func loadJWKS(path string, log *slog.Logger) func([][]byte) (*keySet, error) {
	const field = "auth.jwt.jwks_file"
	return func(data [][]byte) (*keySet, error) {
		var raw struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(data[0], &raw); err != nil {
			return nil, fmt.Errorf("%s: %s: not a JWKS: %w", field, path, err)
		}
		s := &keySet{byKID: map[string]verifyKey{}}
		skip := func(i int, kid, why string) {
			log.Warn(field+": key skipped", "file", path, "index", i, "kid", kid, "why", why)
		}
		for i, b := range raw.Keys {
			var k jose.JSONWebKey
			if err := json.Unmarshal(b, &k); err != nil {
				skip(i, "", err.Error())
				continue
			}
			switch k.Key.(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			default:
				skip(i, k.KeyID, "not an RSA, EC or Ed25519 public key")
				continue
			}
			if k.Use != "" && k.Use != "sig" {
				skip(i, k.KeyID, fmt.Sprintf("its use is %q, not sig", k.Use))
				continue
			}
			if k.Algorithm != "" && !algFits(k.Algorithm, k.Key) {
				skip(i, k.KeyID, fmt.Sprintf("its alg %q is not one of %s for its key", k.Algorithm, strings.Join(jwtAlgs, ", ")))
				continue
			}
			vk := verifyKey{kid: k.KeyID, alg: k.Algorithm, key: k.Key}
			if vk.kid != "" {
				if _, dup := s.byKID[vk.kid]; dup {
					return nil, fmt.Errorf("%s: %s: two keys have kid %q", field, path, vk.kid)
				}
				s.byKID[vk.kid] = vk
			}
			s.keys = append(s.keys, vk)
		}
		if len(s.keys) == 0 {
			return nil, fmt.Errorf("%s: %s: no usable signing key (RSA, EC or Ed25519 public keys)", field, path)
		}
		return s, nil
	}
}

// algFits reports whether alg, one of jwtAlgs, signs with key's type (and
// for ECDSA, its curve).
func algFits(alg string, key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return slices.Contains(jwtAlgs, alg) && (strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS"))
	case *ecdsa.PublicKey:
		want := map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[k.Curve.Params().Name]
		return want != "" && alg == want
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// jwtClaims are the claims a JWT is read for.
type jwtClaims struct {
	jwt.RegisteredClaims
	// Scope is space separated (RFC 8693, as OAuth 2.0 writes scopes);
	// Scp, as some issuers write them, an array or a space-separated
	// string. Both are read.
	Scope scopeList `json:"scope"`
	Scp   scopeList `json:"scp"`
}

// scopeList reads a space-separated string, or an array of strings.
type scopeList []string

func (s *scopeList) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = strings.Fields(str)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("a scope claim is neither a string nor an array of strings")
	}
	*s = list
	return nil
}

// verify checks a JWT and returns its identity, or an *Error. A token
// that verified before, under the same keys, and has not expired since, is
// taken from the cache.
func (v *jwtVerifier) verify(raw string) (*Identity, error) {
	set := v.keys.get()
	digest := sha256.Sum256([]byte(raw))
	v.mu.Lock()
	hit, ok := v.verified[digest]
	v.mu.Unlock()
	if ok && hit.set == set && time.Now().Before(hit.exp) {
		return hit.id, nil
	}
	id, exp, err := v.check(raw, set)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if v.verified == nil || len(v.verified) >= maxVerified {
		v.verified = map[[sha256.Size]byte]verifiedToken{}
	}
	v.verified[digest] = verifiedToken{id, set, exp}
	v.mu.Unlock()
	return id, nil
}

// check verifies a JWT against set, and returns its identity and expiry.
func (v *jwtVerifier) check(raw string, set *keySet) (*Identity, time.Time, error) {
	var c jwtClaims
	tok, err := v.parser.ParseWithClaims(raw, &c, set.keyfunc)
	if err != nil {
		return nil, time.Time{}, jwtRefusal(tok, &c, err)
	}
	if c.Subject == "" {
		return nil, time.Time{}, refuse("token has no sub claim")
	}
	id := &Identity{Name: c.Subject, Kind: KindJWT}
	for _, s := range slices.Concat(c.Scope, c.Scp) {
		switch {
		case s == ScopeMetadata:
			id.metadata = true
		case s == ScopeReadPrefix+"*":
			id.allStores = true
		case strings.HasPrefix(s, ScopeReadPrefix) && len(s) > len(ScopeReadPrefix):
			id.stores = append(id.stores, strings.TrimPrefix(s, ScopeReadPrefix))
		}
	}
	return id, c.ExpiresAt.Time, nil
}

// keyfunc selects the key of a token by its kid (a token without one is
// verified by the only key of a set of one), and checks that the token's
// algorithm fits it.
func (s *keySet) keyfunc(t *jwt.Token) (any, error) {
	var k verifyKey
	if h, ok := t.Header["kid"]; ok {
		kid, ok := h.(string)
		if !ok {
			return nil, refuse("token kid is not a string")
		}
		if k, ok = s.byKID[kid]; !ok {
			return nil, refuse("token signing key (kid) is not in the JWKS")
		}
	} else if len(s.keys) == 1 {
		k = s.keys[0]
	} else {
		return nil, refuse("token has no kid, and the JWKS has several keys")
	}
	alg := t.Method.Alg()
	if (k.alg != "" && alg != k.alg) || !algFits(alg, k.key) {
		return nil, refuse("token algorithm %s does not fit its signing key", alg)
	}
	return k.key, nil
}

// jwtRefusal is the *Error for a JWT the parser refused. The claims are
// judged only once the signature verifies, so a claim is named only for a
// token that its issuer did sign.
func jwtRefusal(tok *jwt.Token, c *jwtClaims, err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, jwt.ErrTokenMalformed):
		return refuse("malformed token")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && tok != nil && tok.Method != nil && !slices.Contains(jwtAlgs, tok.Method.Alg()):
		return refuse("token algorithm %s is not accepted (only %s)", tok.Method.Alg(), strings.Join(jwtAlgs, ", "))
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return refuse("token algorithm is missing or not accepted (only %s)", strings.Join(jwtAlgs, ", "))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return refuse("token signature does not verify")
	case errors.Is(err, jwt.ErrTokenExpired):
		return refuse("token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return refuse("token not valid yet (nbf)")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		switch {
		case c.ExpiresAt == nil:
			return refuse("token has no exp claim")
		case c.Issuer == "":
			return refuse("token has no iss claim")
		default:
			return refuse("token has no aud claim")
		}
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return refuse("token issuer is not accepted")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return refuse("token audience is not accepted")
	}
	return refuse("token is not valid")
}
