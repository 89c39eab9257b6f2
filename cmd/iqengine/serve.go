package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/logging"
	"github.com/iqengine/iqengine/node"
)

// serveCmd runs a node until interrupted. Settings come from the defaults,
// then the config file, then IQENGINE_* variables, then flags. It logs to
// stderr as the config's log section says.
func serveCmd(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	cfg, err := loadServeConfig(args, stderr, getenv)
	if err != nil {
		return err
	}
	log := logging.New(stderr, cfg.Log)
	slog.SetDefault(log)
	n, err := node.Start(ctx, cfg, node.WithLogger(log))
	if err != nil {
		return startError(err)
	}
	return n.Wait(ctx)
}

// loadServeConfig builds and validates the configuration of serve.
func loadServeConfig(args []string, stderr io.Writer, getenv func(string) string) (config.Config, error) {
	fs := newFlags("serve", "serve --config FILE [flags]", stderr)
	path := fs.String("config", "", "the YAML configuration file (required)")
	brokers := fs.String("brokers", "", "seed brokers, comma separated (overrides kafka.brokers)")
	listen := fs.String("listen", "", "HTTP listen address (overrides listen)")
	advertise := fs.String("advertise", "", "URL other nodes reach this one at (overrides advertise)")
	dataDir := fs.String("data-dir", "", "store directory (overrides data_dir)")
	nodeID := fs.String("node-id", "", "this node's id (overrides node_id)")
	if err := fs.parse(args); err != nil {
		return config.Config{}, err
	}
	if *path == "" {
		return config.Config{}, usageError{errorf("serve: --config FILE is required (see iqengine serve -h)")}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return cfg, usageError{err}
	}
	cfg.Env(getenv)
	if *brokers != "" {
		cfg.Kafka.Brokers = config.SplitBrokers(*brokers)
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.Listen, *listen)
	set(&cfg.Advertise, *advertise)
	set(&cfg.DataDir, *dataDir)
	set(&cfg.NodeID, *nodeID)
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{errorf("config %s: %v", *path, err)}
	}
	return cfg, nil
}
