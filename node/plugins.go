package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/plugins"
	"github.com/iqengine/iqengine/router"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

// storePlugins is what a node's config needs from the plugin host: each
// store's serdes and transform, and the modules to watch and close.
type storePlugins struct {
	host       *plugins.Host
	specs      []state.Store
	transforms map[string]router.Transform
	modules    []*plugins.Module
	paths      []string // modules[i]'s file
	cancel     context.CancelFunc
}

// loadStores resolves every store's serdes (built-in or WebAssembly) and
// transform. Modules used the same way by several stores load once. Errors
// name the store field and the module.
func loadStores(ctx context.Context, cfg config.Config, reg prometheus.Registerer, log *slog.Logger, tp trace.TracerProvider) (*storePlugins, error) {
	sp := &storePlugins{transforms: map[string]router.Transform{}}
	type use struct {
		path, config string
		clock        bool
	}
	loaded := map[use]*plugins.Module{}
	load := func(field string, p config.Plugin, need ...plugins.Capability) (*plugins.Module, error) {
		if sp.host == nil {
			h, err := plugins.NewHost(plugins.Options{
				CacheDir:       cfg.Plugins.CacheDir,
				MemoryLimit:    uint64(cfg.Plugins.MemoryLimit),
				Timeout:        cfg.Plugins.Timeout.D(),
				MaxOutput:      int(cfg.Plugins.MaxOutput),
				Instances:      cfg.Plugins.Instances,
				Logger:         log,
				Registerer:     reg,
				TracerProvider: tp,
			})
			if err != nil {
				return nil, &ConfigError{err}
			}
			sp.host = h
		}
		path := cfg.ModulePath(p)
		u := use{path, string(p.ConfigJSON()), p.AllowClock}
		if m, ok := loaded[u]; ok {
			for _, c := range need {
				if !m.Info().Has(c) {
					return nil, &ConfigError{fmt.Errorf("%s: plugin %s lacks the %s capability", field, p.Wasm, c)}
				}
			}
			return m, nil
		}
		bin, err := os.ReadFile(path)
		if err != nil {
			return nil, &ConfigError{fmt.Errorf("%s: %v (modules named without a path are found in plugins.dir as NAME.wasm)", field, err)}
		}
		m, err := sp.host.Load(ctx, plugins.Spec{Name: p.Wasm, Binary: bin, Config: p.ConfigJSON(), AllowClock: p.AllowClock, Need: need})
		if err != nil {
			return nil, &ConfigError{fmt.Errorf("%s: %v", field, err)}
		}
		loaded[u] = m
		sp.modules = append(sp.modules, m)
		sp.paths = append(sp.paths, path)
		return m, nil
	}
	for i, s := range cfg.Stores {
		f := fmt.Sprintf("stores[%d]", i)
		spec := state.Store{Name: s.Name, Topic: s.Topic}
		var err error
		if s.Key.Wasm != "" {
			m, lerr := load(f+".key", s.Key.Plugin, plugins.CapKeyToJSON, plugins.CapKeyFromText)
			spec.Key, err = plugins.KeySerde{M: m}, lerr
		} else {
			spec.Key, err = serde.Lookup(s.Key.Builtin)
		}
		if err == nil && s.Value.Wasm != "" {
			m, lerr := load(f+".value", s.Value.Plugin, plugins.CapValueToJSON)
			spec.Value, err = plugins.ValueSerde{M: m}, lerr
		} else if err == nil {
			spec.Value, err = serde.Lookup(s.Value.Builtin)
		}
		if err == nil && s.Transform != nil {
			m, lerr := load(f+".transform", s.Transform.Plugin, plugins.CapTransform)
			sp.transforms[s.Name], err = router.Transform{Module: m, Params: s.Transform.Params}, lerr
		}
		if err != nil {
			sp.close()
			if _, ok := err.(*ConfigError); !ok {
				err = &ConfigError{err}
			}
			return nil, err
		}
		sp.specs = append(sp.specs, spec)
	}
	return sp, nil
}

// watch reloads modules whose files change, until close.
func (sp *storePlugins) watch(cfg config.Config) {
	if cfg.Plugins.ReloadInterval <= 0 || len(sp.modules) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	sp.cancel = cancel
	for i, m := range sp.modules {
		go m.Watch(ctx, sp.paths[i], cfg.Plugins.ReloadInterval.D())
	}
}

// close stops watching and closes every module and the host.
func (sp *storePlugins) close() {
	if sp.cancel != nil {
		sp.cancel()
	}
	for _, m := range sp.modules {
		m.Close()
	}
	if sp.host != nil {
		_ = sp.host.Close(context.Background())
	}
}
