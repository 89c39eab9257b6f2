package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

// Server is the node's HTTP listener: HTTPS when a certificate is set.
type Server struct {
	// TLS serves HTTPS (and makes calls to other nodes over HTTPS): see
	// ServerTLS.
	TLS ServerTLS `yaml:"tls"`
	// InternalListen, when set, is a second listen address that alone
	// serves the calls between nodes (/v1/internal/...), which the public
	// listener then refuses; advertise must then point at it. Empty: the
	// one listener serves both.
	InternalListen string `yaml:"internal_listen"`
	// MaxInFlight bounds the requests being answered at once (not the
	// health probes); beyond it a request is refused at once with 429 and
	// Retry-After. Default 512.
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxInFlightScans is a smaller bound, within MaxInFlight, for the
	// requests that walk many records: scans and counts. Default 16.
	MaxInFlightScans int `yaml:"max_in_flight_scans"`
	// WriteTimeout is how long one write of an answer may block on a client
	// that does not read; past it the connection is dropped. Default 10s.
	WriteTimeout Duration `yaml:"write_timeout"`
}

// ServerTLS is the HTTPS listener's certificate, and how it checks client
// certificates. The files are read again when they change, so a rotated
// certificate takes effect without a restart.
type ServerTLS struct {
	// CertFile and KeyFile are the node's PEM certificate (chain) and key.
	// Both or neither; neither is plain HTTP.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile is a PEM bundle of the CAs whose client certificates the
	// node accepts; auth.client_certs maps them to scopes. Empty: client
	// certificates are not asked for.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is "optional" (the default: a client may present a
	// certificate, checked against ClientCAFile when it does) or "require"
	// (every connection must present one; other nodes present this node's
	// own certificate).
	ClientAuth string `yaml:"client_auth"`
	// PeerCAFile is a PEM bundle of the CAs that sign the other nodes'
	// certificates, for calls between nodes. Default: the system roots.
	PeerCAFile string `yaml:"peer_ca_file"`
	// MinVersion is "1.2" (the default) or "1.3".
	MinVersion string `yaml:"min_version"`
}

// On reports whether the listener serves HTTPS.
func (t ServerTLS) On() bool { return t.CertFile != "" }

// Auth says who may call the node's HTTP API, and what each caller may
// read. With no identity configured the API is open to anyone who reaches
// the port (the node logs a warning saying so). Health and readiness
// (/healthz, /readyz) are always open.
type Auth struct {
	// Tokens are bearer tokens (Authorization: Bearer <token>).
	Tokens []TokenIdentity `yaml:"tokens"`
	// JWT accepts JSON Web Tokens signed by a key of a local JWKS file.
	JWT JWTAuth `yaml:"jwt"`
	// ClientCerts maps client certificates (verified against
	// server.tls.client_ca_file) to scopes.
	ClientCerts []CertIdentity `yaml:"client_certs"`
	// OpenMetrics serves /metrics to anyone; otherwise (the default, when
	// auth is on) it needs an identity with metadata access.
	OpenMetrics bool `yaml:"open_metrics"`
}

// On reports whether any identity is configured, which turns
// authentication on.
func (a Auth) On() bool {
	return len(a.Tokens) > 0 || a.JWT.JWKSFile != "" || len(a.ClientCerts) > 0
}

// Scopes are what an identity may do.
type Scopes struct {
	// Stores are the stores it may read (lookups, scans, counts): names,
	// or "*" for every store.
	Stores []string `yaml:"stores"`
	// Metadata lets it see the cluster's metadata (/v1/metadata/...,
	// /v1/info, /v1/stores lists only the stores it may read either way)
	// and, unless auth.open_metrics, /metrics.
	Metadata bool `yaml:"metadata"`
}

// TokenIdentity is a caller known by a bearer token. The token itself is
// never in the file: give its SHA-256 (hex), or the name of an environment
// variable that holds it.
type TokenIdentity struct {
	// Name names the caller in logs and metrics.
	Name string `yaml:"name"`
	// SHA256 is the hex SHA-256 of the token (`printf %s "$TOKEN" |
	// sha256sum`).
	SHA256 string `yaml:"sha256"`
	// Env names an environment variable holding the token.
	Env    string `yaml:"env"`
	Scopes `yaml:",inline"`
}

// JWTAuth verifies JSON Web Tokens against the keys of a local JWKS file
// (read again when it changes), their issuer, audience and expiry. A
// token's scopes are in its "scope" claim (space separated, as OAuth 2.0
// writes them): "iqengine:read:<store>", "iqengine:read:*" and
// "iqengine:metadata".
type JWTAuth struct {
	JWKSFile string `yaml:"jwks_file"`
	// Issuer and Audience must match the token's iss and aud. Both
	// required with a JWKS file.
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// Leeway is the clock skew allowed on exp and nbf. Default 30s.
	Leeway Duration `yaml:"leeway"`
}

// CertIdentity is a caller known by its client certificate: one whose
// subject common name, or one of whose DNS, URI or email alternative
// names, equals Subject.
type CertIdentity struct {
	Subject string `yaml:"subject"`
	Scopes  `yaml:",inline"`
}

// Cluster authenticates the nodes to each other.
type Cluster struct {
	// Secret is shared by every node of the application (at least 32
	// characters; IQENGINE_CLUSTER_SECRET, so it need not be in the file).
	// With it, each node signs its join metadata, the leader signs the
	// routing table, and every call between nodes is signed with a
	// timestamp: a group member that does not know it gets no partition and
	// is never called, and a call that is not signed, wrongly signed, or
	// replayed is refused with 401. Empty: nodes trust whatever joins the
	// consumer group (the node logs a warning saying so).
	Secret string `yaml:"secret"`
	// SecretFile is a file holding the secret (trailing newline ignored),
	// instead of Secret.
	SecretFile string `yaml:"secret_file"`
	// ReplayWindow is how old a signed call may be, and how far apart the
	// nodes' clocks may be. Default 30s.
	ReplayWindow Duration `yaml:"replay_window"`
}

// ReadSecret is the cluster secret, from Secret or SecretFile ("" when
// neither is set).
func (c Cluster) ReadSecret() (string, error) {
	if c.SecretFile == "" {
		return c.Secret, nil
	}
	b, err := os.ReadFile(c.SecretFile)
	if err != nil {
		return "", fmt.Errorf("cluster.secret_file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func (c *Config) checkSecurity(p *problems) {
	s := c.Server
	t := s.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.add("server.tls", "cert_file and key_file go together")
	}
	if t.ClientCAFile != "" && !t.On() {
		p.add("server.tls.client_ca_file", "needs cert_file and key_file: client certificates are checked over HTTPS")
	}
	switch t.ClientAuth {
	case "", "optional":
	case "require":
		if t.ClientCAFile == "" {
			p.add("server.tls.client_auth", "require needs client_ca_file")
		}
	default:
		p.add("server.tls.client_auth", "%q is not optional or require", t.ClientAuth)
	}
	switch t.MinVersion {
	case "", "1.2", "1.3":
	default:
		p.add("server.tls.min_version", "%q is not 1.2 or 1.3", t.MinVersion)
	}
	if t.On() {
		if u, err := url.Parse(c.Advertise); err == nil && u.Scheme != "https" {
			p.add("advertise", "%q must be https: the node serves HTTPS", c.Advertise)
		}
	}
	if s.InternalListen != "" {
		if _, _, err := net.SplitHostPort(s.InternalListen); err != nil {
			p.add("server.internal_listen", "%q is not host:port", s.InternalListen)
		}
	}
	if s.MaxInFlight <= 0 {
		p.add("server.max_in_flight", "must be positive")
	}
	if s.MaxInFlightScans <= 0 || s.MaxInFlightScans > s.MaxInFlight {
		p.add("server.max_in_flight_scans", "must be between 1 and server.max_in_flight (%d)", s.MaxInFlight)
	}
	p.positive("server.write_timeout", s.WriteTimeout)

	a := c.Auth
	names := map[string]bool{}
	for i, tk := range a.Tokens {
		f := fmt.Sprintf("auth.tokens[%d]", i)
		if tk.Name == "" {
			p.add(f+".name", "must not be empty")
		} else if names[tk.Name] {
			p.add(f+".name", "%q is used twice", tk.Name)
		}
		names[tk.Name] = true
		switch {
		case (tk.SHA256 == "") == (tk.Env == ""):
			p.add(f, "give sha256 or env, one of them")
		case tk.SHA256 != "":
			if b, err := hex.DecodeString(tk.SHA256); err != nil || len(b) != 32 {
				p.add(f+".sha256", "must be 64 hex digits (printf %%s \"$TOKEN\" | sha256sum)")
			}
		}
		c.checkScopes(p, f, tk.Scopes)
	}
	if j := a.JWT; j.JWKSFile != "" || j.Issuer != "" || j.Audience != "" {
		if j.JWKSFile == "" {
			p.add("auth.jwt.jwks_file", "is required with issuer or audience")
		}
		if j.Issuer == "" {
			p.add("auth.jwt.issuer", "is required with a JWKS file")
		}
		if j.Audience == "" {
			p.add("auth.jwt.audience", "is required with a JWKS file")
		}
		if j.Leeway < 0 {
			p.add("auth.jwt.leeway", "must not be negative")
		}
	}
	if len(a.ClientCerts) > 0 && t.ClientCAFile == "" {
		p.add("auth.client_certs", "need server.tls.client_ca_file to check the certificates against")
	}
	for i, ci := range a.ClientCerts {
		f := fmt.Sprintf("auth.client_certs[%d]", i)
		if ci.Subject == "" {
			p.add(f+".subject", "must not be empty")
		}
		c.checkScopes(p, f, ci.Scopes)
	}

	cl := c.Cluster
	if cl.Secret != "" && cl.SecretFile != "" {
		p.add("cluster.secret", "and cluster.secret_file: one or the other")
	}
	if secret, err := cl.ReadSecret(); err != nil {
		p.add("cluster.secret_file", "%v", err)
	} else if secret != "" && len(secret) < 32 {
		p.add("cluster.secret", "is %d characters; at least 32 are needed", len(secret))
	}
	p.positive("cluster.replay_window", cl.ReplayWindow)
	if a.On() && cl.Secret == "" && cl.SecretFile == "" {
		p.add("cluster.secret", "is required with auth: without it the endpoints between nodes (/v1/internal/...) would answer anyone, around the callers' scopes")
	}
}

// checkScopes checks the stores an identity may read name stores that
// exist.
func (c *Config) checkScopes(p *problems, f string, s Scopes) {
	for j, name := range s.Stores {
		if name == "*" {
			continue
		}
		found := false
		for _, st := range c.Stores {
			found = found || st.Name == name
		}
		if !found {
			p.add(fmt.Sprintf("%s.stores[%d]", f, j), "no store named %q", name)
		}
	}
}
