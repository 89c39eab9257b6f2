package node

import (
	"slices"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/buildinfo"
	"github.com/iqengine/iqengine/router"
)

// info is the node's answer to GET /v1/info. Features is a map so that
// each optional part adds its own entry here (see router.Info); the README
// lists them.
func info(cfg config.Config, sp *storePlugins, tracing bool) router.Info {
	stores := make([]string, 0, len(cfg.Stores))
	for _, s := range cfg.Stores {
		stores = append(stores, s.Name)
	}
	slices.Sort(stores)
	modules := make([]string, 0, len(sp.modules))
	for _, m := range sp.modules {
		modules = append(modules, m.Name())
	}
	slices.Sort(modules)
	sasl := cfg.Kafka.SASL.Mechanism
	if sasl == "" {
		sasl = "none"
	}
	return router.Info{
		Info:          buildinfo.Get(),
		NodeID:        cfg.NodeID,
		ApplicationID: cfg.ApplicationID,
		Stores:        stores,
		Features: map[string]any{
			"plugins":         slices.Compact(modules),
			"plugin_reload":   len(modules) > 0 && cfg.Plugins.ReloadInterval > 0,
			"isolation_level": cfg.Kafka.IsolationLevel,
			"kafka_tls":       cfg.Kafka.TLS.On(),
			"kafka_sasl":      sasl,
			"disk_check":      cfg.Storage.MinFreeSpace > 0,
			"tracing":         tracing,
			"console":         true,
		},
	}
}
