package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/cluster"
	"github.com/iqengine/iqengine/engine"
	"github.com/iqengine/iqengine/engine/store"
	"github.com/iqengine/iqengine/internal/config"
	"github.com/iqengine/iqengine/internal/kafkaconn"
	"github.com/iqengine/iqengine/router"
)

// node is one running iqengine node: its engine and its HTTP server.
type node struct {
	cfg     config.Config
	log     *slog.Logger
	engine  *engine.Engine
	plugins *storePlugins
	srv     *http.Server
	ln      net.Listener
	served  chan error
}

// startNode checks the connection to the brokers (one clear error for
// unreachable brokers, wrong credentials or TLS problems), opens the store,
// joins the group and starts serving HTTP. cfg must be validated.
func startNode(ctx context.Context, cfg config.Config, log *slog.Logger) (*node, error) {
	return startNodeOn(ctx, cfg, nil, log)
}

// startNodeOn is startNode on a listener the caller has already bound (nil:
// bind cfg.Listen). It owns ln from here on, also when it fails.
func startNodeOn(ctx context.Context, cfg config.Config, ln net.Listener, log *slog.Logger) (_ *node, err error) {
	if ln != nil {
		defer func() {
			if err != nil {
				ln.Close()
			}
		}()
	}
	log = log.With("node", cfg.NodeID)
	if err := checkKafka(ctx, cfg.Kafka); err != nil {
		return nil, err
	}
	kopts, err := kafkaconn.Options(cfg.Kafka)
	if err != nil {
		return nil, usageError{err}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sp, err := loadStores(ctx, cfg, reg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			sp.close()
		}
	}()
	specs := sp.specs
	// Listen first: with port 0 the advertised URL is known only now.
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
	}
	if u, err := url.Parse(cfg.Advertise); err == nil && u.Port() == "0" {
		u.Host = ln.Addr().String()
		cfg.Advertise = u.String()
	}
	balancer := cluster.NewBalancer(cluster.Member{NodeID: cfg.NodeID, URL: cfg.Advertise})
	e, err := engine.Open(engine.Config{
		ApplicationID:  cfg.ApplicationID,
		NodeID:         cfg.NodeID,
		Stores:         specs,
		Kafka:          kopts,
		Balancer:       balancer,
		InstanceID:     cfg.NodeID,
		SessionTimeout: cfg.Kafka.SessionTimeout.D(),
		Store: store.Options{
			Dir:          cfg.DataDir,
			CacheSize:    cfg.Storage.CacheSize,
			MemTableSize: cfg.Storage.MemTableSize,
			SyncInterval: cfg.Storage.SyncInterval.D(),
		},
		Logger:     log,
		Registerer: reg,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	startCtx, cancel := context.WithTimeout(ctx, cfg.Kafka.StartupTimeout.D())
	defer cancel()
	if err := e.Start(startCtx); err != nil {
		ln.Close()
		_ = e.Stop(context.Background())
		return nil, err
	}
	h := router.New(router.Options{
		Engine:       e,
		Timeout:      cfg.Query.Timeout.D(),
		MaxTimeout:   cfg.Query.MaxTimeout.D(),
		DefaultLimit: cfg.Query.DefaultLimit,
		MaxLimit:     cfg.Query.MaxLimit,
		Registry:     reg,
		Logger:       log,
		Routing:      balancer,
		Refresh: func(ctx context.Context) error {
			return balancer.Refresh(ctx, e.Admin(), cfg.ApplicationID)
		},
		Transforms: sp.transforms,
	})
	sp.watch(cfg)
	n := &node{
		cfg: cfg, log: log, engine: e, ln: ln, served: make(chan error, 1), plugins: sp,
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute},
	}
	go func() { n.served <- n.srv.Serve(ln) }()
	log.Info("node started", "listen", ln.Addr().String(), "advertise", cfg.Advertise,
		"application_id", cfg.ApplicationID, "data_dir", cfg.DataDir, "stores", len(specs))
	return n, nil
}

// checkKafka runs the startup check with a client of its own.
func checkKafka(ctx context.Context, k config.Kafka) error {
	opts, err := kafkaconn.Options(k)
	if err != nil {
		return usageError{err}
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return usageError{err}
	}
	defer cl.Close()
	return kafkaconn.Check(ctx, cl, k.StartupTimeout.D())
}

// wait blocks until ctx ends or the node fails, then stops it.
func (n *node) wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-n.served:
	}
	return errors.Join(err, n.stop())
}

// stop stops serving HTTP, leaves the group and closes the store.
func (n *node) stop() error {
	// Queries in flight get a few seconds to finish. Shutdown would also
	// wait up to 5 s for connections that other nodes opened and never
	// used; the partitions should not wait for those to move.
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer scancel()
	var err error
	if serr := n.srv.Shutdown(sctx); errors.Is(serr, context.DeadlineExceeded) {
		err = n.srv.Close()
	} else if !errors.Is(serr, http.ErrServerClosed) {
		err = serr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = errors.Join(err, n.engine.Stop(ctx))
	n.plugins.close()
	n.log.Info("node stopped")
	return err
}
