package node

import (
	"slices"
	"strings"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/buildinfo"
	"github.com/iqengine/iqengine/plugins"
	"github.com/iqengine/iqengine/router"
)

// info is the node's answer to GET /v1/info but for its plugins, which
// with adds to each answer.
type info router.Info

// newInfo is the node's info. Features is a map so that each optional part
// adds its own entry here (see router.Info); the README lists them.
func newInfo(cfg config.Config, sp *storePlugins, tracing bool) info {
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
	return info{
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
			// Which replicas answer by default, and how many standbys
			// the node's balancer plans when it leads the group.
			"standby_replicas": cfg.Replication.StandbyReplicas,
			"default_replica":  cfg.Query.Replica,
			"schema_registry":  cfg.SchemaRegistry.URL != "",
		},
	}
}

// with is i with the plugins as they serve now: a module reloaded from its
// file has a new hash.
func (i info) with(sp *storePlugins) router.Info {
	out := router.Info(i)
	out.Plugins = []router.PluginInfo{}
	seen := map[*plugins.Module]bool{}
	for _, m := range sp.modules {
		if seen[m.Module] {
			continue
		}
		seen[m.Module] = true
		in := m.Info()
		caps := make([]string, len(in.Capabilities))
		for j, c := range in.Capabilities {
			caps[j] = string(c)
		}
		out.Plugins = append(out.Plugins, router.PluginInfo{Module: m.Name(), SHA256: m.Hash(), ABIVersion: in.ABIVersion, Capabilities: caps})
	}
	slices.SortFunc(out.Plugins, func(a, b router.PluginInfo) int { return strings.Compare(a.Module, b.Module) })
	return out
}
