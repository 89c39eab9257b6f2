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
	cf := addConfigFlags(fs)
	if err := fs.parse(args); err != nil {
		return config.Config{}, err
	}
	return cf.load(getenv)
}

// configFlags are the flags that make a node's configuration: serve and
// check take the same, so that check checks what serve would run.
type configFlags struct {
	fs                                                *flags
	path, brokers, listen, advertise, dataDir, nodeID *string
}

func addConfigFlags(fs *flags) configFlags {
	return configFlags{
		fs:        fs,
		path:      fs.String("config", "", "the YAML configuration file (required)"),
		brokers:   fs.String("brokers", "", "seed brokers, comma separated (overrides kafka.brokers)"),
		listen:    fs.String("listen", "", "HTTP listen address (overrides listen)"),
		advertise: fs.String("advertise", "", "URL other nodes reach this one at (overrides advertise)"),
		dataDir:   fs.String("data-dir", "", "store directory (overrides data_dir)"),
		nodeID:    fs.String("node-id", "", "this node's id (overrides node_id)"),
	}
}

// load builds and validates the configuration, once the flags are parsed:
// the defaults, then the file (its ${VAR} references expanded), then
// IQENGINE_* variables, then flags. Every error is a usage error.
func (f configFlags) load(getenv func(string) string) (config.Config, error) {
	name := f.fs.Name()
	if *f.path == "" {
		return config.Config{}, usageError{errorf("%s: --config FILE is required (see iqengine %s -h)", name, name)}
	}
	cfg, err := config.LoadEnv(*f.path, getenv)
	if err != nil {
		return cfg, usageError{err}
	}
	if err := cfg.Env(getenv); err != nil {
		return cfg, usageError{errorf("environment: %v", err)}
	}
	if *f.brokers != "" {
		cfg.Kafka.Brokers = config.SplitBrokers(*f.brokers)
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.Listen, *f.listen)
	set(&cfg.Advertise, *f.advertise)
	set(&cfg.DataDir, *f.dataDir)
	set(&cfg.NodeID, *f.nodeID)
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{errorf("config %s: %v", *f.path, err)}
	}
	return cfg, nil
}
