package node

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/iqengine/iqengine/auth"
	"github.com/iqengine/iqengine/cluster"
	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/router"
)

// security is what a node's configuration says of who may call it: its
// HTTPS listener (nil: plain HTTP), its callers' identities and the
// cluster key.
type security struct {
	tls  *auth.TLS
	auth *auth.Authenticator
	key  *cluster.Key
}

// loadSecurity reads the certificates, tokens, JWKS and cluster secret of
// cfg.
func loadSecurity(cfg config.Config, log *slog.Logger) (security, error) {
	var s security
	var err error
	if s.tls, err = auth.NewTLS(cfg.Server.TLS, log); err != nil {
		return s, err
	}
	if s.auth, err = auth.New(cfg.Auth, os.Getenv, log); err != nil {
		return s, err
	}
	secret, err := cfg.Cluster.ReadSecret()
	if err != nil {
		return s, err
	}
	s.key = cluster.NewKey(secret)
	return s, nil
}

// warn logs one warning for each of client authentication and the cluster
// secret that is missing; the node calls it once it runs (before, a
// failure is the one line it exits with).
func (s security) warn(log *slog.Logger) {
	if !s.auth.On() {
		log.Warn("no auth configured: anyone who reaches this node's port reads every store and the cluster's metadata (see README, Securing a cluster)")
	}
	if s.key == nil {
		log.Warn("no cluster.secret: this node trusts any member of its consumer group and answers calls between nodes from anyone who reaches its port (see README, Securing a cluster)")
	}
}

// authenticate is the router's view of the authenticator; nil when auth is
// off.
func (s security) authenticate() router.Authenticate {
	if !s.auth.On() {
		return nil
	}
	return func(r *http.Request) (router.Identity, error) {
		id, err := s.auth.Authenticate(r)
		switch {
		case errors.Is(err, auth.ErrNoCredentials):
			return nil, nil
		case err != nil:
			return nil, err
		}
		return id, nil
	}
}

// internalListener marks the connections of the internal listener
// (server.internal_listen), which serve the calls between nodes only.
type internalListener struct{ net.Listener }

type internalConn struct{ net.Conn }

type internalConnKey struct{}

func (l *internalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return internalConn{c}, nil
}

// markInternal is the server's ConnContext: a connection of the internal
// listener (under TLS or not) is marked in its context.
func markInternal(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if _, ok := c.(internalConn); ok {
		return context.WithValue(ctx, internalConnKey{}, true)
	}
	return ctx
}
