// Package node runs one iqengine node: the engine that materialises the
// configured topics, the HTTP API that answers any query (forwarding to
// the owner of a key's partition), and the plugins the stores use. It is
// what the iqengine binary runs, and what a Go program embeds to serve
// queries from its own process:
//
//	n, err := node.Start(ctx, cfg)
//	...
//	err = n.Wait(ctx) // until ctx ends or the node fails, then a clean stop
//
// A node joins its application's consumer group when it starts; other
// nodes with the same application id share the partitions with it.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/iqengine/iqengine/cluster"
	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/engine"
	"github.com/iqengine/iqengine/internal/buildinfo"
	"github.com/iqengine/iqengine/internal/kafkaconn"
	"github.com/iqengine/iqengine/internal/logging"
	"github.com/iqengine/iqengine/internal/store"
	"github.com/iqengine/iqengine/router"
	"github.com/iqengine/iqengine/ui"
)

// Node is one running iqengine node.
type Node struct {
	cfg     config.Config
	log     *slog.Logger
	traces  *sdktrace.TracerProvider // built from cfg.Tracing; nil when off or given
	engine  *engine.Engine
	admin   *kgo.Client // the node's own client, for the routing table
	plugins *storePlugins
	handler http.Handler
	srv     *http.Server
	ln      net.Listener
	served  chan error
	// requests are the HTTP handlers running: the store closes only once
	// none is left (Server.Close does not wait for them).
	requests *inflight
	// requestsCtx is every request's base context; cancelRequests cancels
	// it, past the drain.
	requestsCtx    context.Context
	cancelRequests context.CancelFunc

	stopOnce sync.Once
	stopErr  error
}

// An Option changes how Start runs a node.
type Option func(*options)

type options struct {
	ln  net.Listener
	log *slog.Logger
	fs  vfs.FS               // tests: the store's file system
	tp  trace.TracerProvider // see WithTracerProvider
}

// WithListener serves the node's HTTP API on ln instead of listening on
// cfg.Listen. The node owns ln from then on, also when Start fails.
func WithListener(ln net.Listener) Option { return func(o *options) { o.ln = ln } }

// WithLogger sends the node's logs to log (default slog.Default()).
func WithLogger(log *slog.Logger) Option { return func(o *options) { o.log = log } }

// ConfigError is a configuration the node cannot run with: a field that
// fails validation, a plugin that does not load, Kafka client options that
// do not build. Nothing was started.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Start loads the stores' plugins, checks the connection to the brokers
// (one clear error for unreachable brokers, wrong credentials or TLS
// problems), opens the store, joins the group and serves HTTP. It
// returns once the node has joined; its partitions may still be restoring
// (Ready on /readyz says when they serve). cfg is validated first (see
// config.Config.Validate).
func Start(ctx context.Context, cfg config.Config, opts ...Option) (_ *Node, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	if o.ln != nil {
		defer func() {
			if err != nil {
				o.ln.Close()
			}
		}()
	}
	if err := cfg.Validate(); err != nil {
		return nil, &ConfigError{err}
	}
	log, kafkaLog := logging.ForNode(o.log.With("node", cfg.NodeID), cfg.Log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector())
	tp, traces, err := o.tracerProvider(ctx, cfg, log)
	if err != nil {
		return nil, &ConfigError{err}
	}
	defer func() {
		if err != nil && traces != nil {
			_ = traces.Shutdown(context.Background())
		}
	}()
	// Plugins before Kafka: a module that does not load is a configuration
	// error, found before anything reaches the brokers (as Check finds it).
	sp, err := loadStores(ctx, cfg, reg, log, tp)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			sp.close()
		}
	}()
	sec, err := loadSecurity(cfg, log)
	if err != nil {
		return nil, &ConfigError{err}
	}
	kopts, admin, err := connect(ctx, cfg.Kafka, kgo.WithLogger(kafkaLog))
	if err != nil {
		return nil, err
	}
	kopts = append(kopts, kgo.WithLogger(kafkaLog)) // the engine's client logs too
	kafkaLog.Enable()                               // a failed check's error says what the client's retries would have
	defer func() {
		if err != nil {
			admin.Close()
		}
	}()
	// Listen first: with port 0 the advertised URL is known only now.
	ln := o.ln
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
		defer func() {
			if err != nil {
				ln.Close()
			}
		}()
	}
	var iln net.Listener // the internal listener, when separate
	if cfg.Server.InternalListen != "" {
		if iln, err = net.Listen("tcp", cfg.Server.InternalListen); err != nil {
			return nil, fmt.Errorf("listen on %s (server.internal_listen): %w", cfg.Server.InternalListen, err)
		}
		defer func() {
			if err != nil {
				iln.Close()
			}
		}()
	}
	if u, err := url.Parse(cfg.Advertise); err == nil && u.Port() == "0" {
		u.Host = ln.Addr().String()
		if iln != nil {
			u.Host = iln.Addr().String()
		}
		cfg.Advertise = u.String()
	}
	// The balancer reports the engine's positions in the join metadata,
	// and hands the engine every routing table (its standbys).
	var eng atomic.Pointer[engine.Engine]
	key := sec.key
	balancer := cluster.NewBalancer(cluster.Member{NodeID: cfg.NodeID, URL: cfg.Advertise}, cluster.Config{
		Standbys:      cfg.Replication.StandbyReplicas,
		AcceptableLag: cfg.Replication.AcceptableRecoveryLag,
		Key:           key,
		Logger:        log,
		Positions: func() cluster.Positions {
			if e := eng.Load(); e != nil {
				return e.Positions()
			}
			return nil
		},
	})
	e, err := openEngine(cfg, kopts, balancer, o.fs, log, reg, sp)
	if err != nil {
		return nil, err
	}
	eng.Store(e)
	balancer.OnChange(e.UseTable)
	startCtx, cancel := context.WithTimeout(ctx, cfg.Kafka.StartupTimeout.D())
	defer cancel()
	if err := e.Start(startCtx); err != nil {
		_ = e.Stop(context.Background())
		return nil, err
	}
	adm := kadm.NewClient(admin)
	about := newInfo(cfg, sp, tp != nil)
	h := router.New(router.Options{
		Engine:       e,
		Timeout:      cfg.Query.Timeout.D(),
		MaxTimeout:   cfg.Query.MaxTimeout.D(),
		DefaultLimit: cfg.Query.DefaultLimit,
		MaxLimit:     cfg.Query.MaxLimit,
		ActiveOnly:   cfg.Query.Replica == "active",
		Registry:     reg,
		Logger:       log,
		Routing:      balancer,
		Refresh: func(ctx context.Context) error {
			return balancer.Refresh(ctx, adm, cfg.ApplicationID)
		},
		Transforms:       sp.transforms,
		Info:             func() router.Info { return about.with(sp) },
		TracerProvider:   tp,
		MaxInFlight:      cfg.Server.MaxInFlight,
		MaxInFlightScans: cfg.Server.MaxInFlightScans,
		MaxPageBytes:     int(cfg.Query.MaxPageBytes),
		WriteTimeout:     cfg.Server.WriteTimeout.D(),
		ClusterKey:       key,
		ReplayWindow:     cfg.Cluster.ReplayWindow.D(),
		Authenticate:     sec.authenticate(),
		OpenMetrics:      cfg.Auth.OpenMetrics,
		SeparateInternal: iln != nil,
		PeerTLS:          sec.tls.ClientConfig(),
	})
	sp.watch(cfg)
	reqCtx, cancelRequests := context.WithCancel(context.Background())
	n := &Node{
		cfg: cfg, log: log, traces: traces, engine: e, admin: admin, ln: ln, served: make(chan error, 2), plugins: sp,
		requests: &inflight{}, requestsCtx: reqCtx, cancelRequests: cancelRequests,
	}
	// The console (/ui/) is files for the browser, which then calls the API.
	n.handler = n.track(ui.Handler(h))
	internal := n.track(h.Internal())
	n.srv = &http.Server{
		// One server for both listeners, so that stopping it stops both:
		// a connection to the internal listener reaches the internal
		// endpoints only.
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Context().Value(internalConnKey{}) != nil {
				internal.ServeHTTP(w, r)
				return
			}
			n.handler.ServeHTTP(w, r)
		}),
		ConnContext:       markInternal,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	if sec.tls != nil {
		n.srv.TLSConfig = sec.tls.ServerConfig()
		ln = tls.NewListener(ln, n.srv.TLSConfig)
		n.ln = ln
	}
	if iln != nil {
		iln = &internalListener{iln}
		if sec.tls != nil {
			iln = tls.NewListener(iln, n.srv.TLSConfig)
		}
		go func() { n.served <- n.srv.Serve(iln) }()
	}
	go func() { n.served <- n.srv.Serve(ln) }()
	log.Info("node started", "listen", ln.Addr().String(), "advertise", cfg.Advertise,
		"application_id", cfg.ApplicationID, "data_dir", cfg.DataDir, "stores", len(sp.specs),
		"https", sec.tls != nil, "auth", sec.auth.On(), "cluster_secret", key != nil)
	sec.warn(log)
	return n, nil
}

// openEngine opens the node's engine on its configuration.
func openEngine(cfg config.Config, kopts []kgo.Opt, balancer kgo.GroupBalancer, fs vfs.FS,
	log *slog.Logger, reg prometheus.Registerer, sp *storePlugins) (*engine.Engine, error) {
	return engine.Open(engine.Config{
		ApplicationID:   cfg.ApplicationID,
		NodeID:          cfg.NodeID,
		Stores:          sp.specs,
		Kafka:           kopts,
		Balancer:        balancer,
		InstanceID:      cfg.NodeID,
		SessionTimeout:  cfg.Kafka.SessionTimeout.D(),
		ReadUncommitted: cfg.Kafka.IsolationLevel == "read_uncommitted",
		StallTimeout:    cfg.Storage.StallTimeout.D(),
		MinFreeSpace:    int64(cfg.Storage.MinFreeSpace),
		ExpireInterval:  cfg.Storage.ExpireInterval.D(),

		UnservedRetention: cfg.Storage.UnservedRetention.D(),
		Store: store.Options{
			Dir:          cfg.DataDir,
			FS:           fs,
			CacheSize:    int64(cfg.Storage.CacheSize),
			MemTableSize: int64(cfg.Storage.MemTableSize),
			SyncInterval: cfg.Storage.SyncInterval.D(),
		},
		Logger:     log,
		Registerer: reg,
	})
}

// connect builds the node's Kafka client options and its own client (with
// extra options of its own), and checks that the brokers answer and accept
// the credentials (see kafkaconn.Check). Options that do not build are a
// *ConfigError.
func connect(ctx context.Context, k config.Kafka, extra ...kgo.Opt) ([]kgo.Opt, *kgo.Client, error) {
	kopts, err := kafkaconn.Options(k)
	if err != nil {
		return nil, nil, &ConfigError{err}
	}
	cl, err := kgo.NewClient(append(kopts[:len(kopts):len(kopts)], extra...)...)
	if err != nil {
		return nil, nil, &ConfigError{err}
	}
	if err := kafkaconn.Check(ctx, cl, k.StartupTimeout.D()); err != nil {
		cl.Close()
		return nil, nil, err
	}
	return kopts, cl, nil
}

// Addr is the address the node's HTTP API listens on.
func (n *Node) Addr() net.Addr { return n.ln.Addr() }

// URL is the URL other nodes reach this one at (config advertise, with the
// port filled in when it was 0).
func (n *Node) URL() string { return n.cfg.Advertise }

// Handler is the node's HTTP API and its web console (/ui/), the handler it
// serves on Addr: mount it in a test server, or behind a proxy. Other nodes
// forward to URL, so the node must also stay reachable there.
func (n *Node) Handler() http.Handler { return n.handler }

// Wait blocks until ctx ends or the node fails, then stops it (see Close).
// A failed engine (a store that fails or stalls, a full disk) ends it with
// an error that names the failure.
func (n *Node) Wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-n.served:
	case <-n.engine.Failed():
		failure := n.engine.Err()
		n.log.Warn("stopping: the engine failed") // the engine logged why
		if err := n.Close(); err != nil {
			// The failure is the news; what stopping a failed node hit is
			// in the log.
			n.log.Error("stopping the failed node", "err", err)
		}
		return fmt.Errorf("node failed: %w", failure)
	}
	return errors.Join(err, n.Close())
}
