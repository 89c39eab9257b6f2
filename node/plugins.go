package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/kafkaconn"
	"github.com/iqengine/iqengine/plugins"
	"github.com/iqengine/iqengine/router"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/serde/registry"
	"github.com/iqengine/iqengine/state"
)

// storePlugins is what a node's config needs from the plugin host: each
// store's serdes and transform, and the modules to watch and close.
type storePlugins struct {
	host       *plugins.Host
	specs      []state.Store
	transforms map[string]router.Transform
	modules    []loadedModule
	cancel     context.CancelFunc
	// registry is the schema registry's client, shared by the stores'
	// registry serdes (and so is its cache); nil when none uses one.
	registry *registry.Client
}

// loadedModule is a module as loaded for the stores' fields that use it.
type loadedModule struct {
	*plugins.Module
	path  string       // its file
	field string       // the first store field that uses it, as named in errors
	spec  plugins.Spec // how it was loaded: Check runs its vectors on the same
}

// loadStores resolves every store's serdes (built-in or WebAssembly) and
// transform. Modules used the same way by several stores load once. Errors
// name the store field and the module; every field that fails is in the
// error, not only the first.
func loadStores(ctx context.Context, cfg config.Config, reg prometheus.Registerer, log *slog.Logger, tp trace.TracerProvider) (*storePlugins, error) {
	sp := &storePlugins{transforms: map[string]router.Transform{}}
	type use struct {
		path, config    string
		clock, registry bool
	}
	loaded := map[use]*plugins.Module{}
	hostFailed := false
	load := func(field string, p config.Plugin, need ...plugins.Capability) (*plugins.Module, error) {
		if hostFailed {
			return nil, nil // the first field that needed the host has the error
		}
		if sp.host == nil {
			// Plugins granted the registry share the serdes' client, and
			// so its cache.
			if sp.registry == nil && len(cfg.SchemaRegistry.URLs()) > 0 {
				c, err := newRegistryClient(cfg.SchemaRegistry)
				if err != nil {
					hostFailed = true
					return nil, fmt.Errorf("%s: the plugin host: %w", field, err)
				}
				sp.registry = c
			}
			h, err := plugins.NewHost(plugins.Options{
				CacheDir:       cfg.Plugins.CacheDir,
				MemoryLimit:    uint64(cfg.Plugins.MemoryLimit),
				Timeout:        cfg.Plugins.Timeout.D(),
				MaxOutput:      int(cfg.Plugins.MaxOutput),
				Instances:      cfg.Plugins.Instances,
				Logger:         log,
				Registerer:     reg,
				TracerProvider: tp,
				Registry:       sp.registry,
			})
			if err != nil {
				hostFailed = true
				return nil, fmt.Errorf("%s: the plugin host: %w", field, err)
			}
			sp.host = h
		}
		path := cfg.ModulePath(p)
		u := use{path, string(p.ConfigJSON()), p.AllowClock, p.AllowRegistry}
		if m, ok := loaded[u]; ok {
			for _, c := range need {
				if !m.Info().Has(c) {
					return nil, fmt.Errorf("%s: plugin %s lacks the %s capability", field, p.Wasm, c)
				}
			}
			return m, nil
		}
		bin, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %v (modules named without a path are found in plugins.dir as NAME.wasm)", field, err)
		}
		spec := plugins.Spec{Name: p.Wasm, Binary: bin, Config: p.ConfigJSON(), AllowClock: p.AllowClock, AllowRegistry: p.AllowRegistry, Need: need}
		m, err := sp.host.Load(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", field, err)
		}
		loaded[u] = m
		sp.modules = append(sp.modules, loadedModule{Module: m, path: path, field: field, spec: spec})
		return m, nil
	}
	var errs []error
	for i, s := range cfg.Stores {
		f := fmt.Sprintf("stores[%d]", i)
		spec := state.Store{Name: s.Name, Topic: s.Topic, Window: state.Window{Size: s.WindowSize.D(), Retention: s.Retention.D()}}
		switch s.Kind {
		case "window":
			spec.Kind = state.WindowKind
		case "session":
			spec.Kind = state.SessionKind
		}
		if s.WindowKey == "plain" {
			spec.Window.Key = state.WindowKeyPlain
		}
		var kerr, verr, terr error
		switch {
		case s.Key.Wasm != "":
			m, err := load(f+".key", s.Key.Plugin, plugins.CapKeyToJSON, plugins.CapKeyFromText)
			spec.Key, kerr = plugins.KeySerde{M: m}, err
		case s.Key.IsRegistry():
			spec.Key, kerr = sp.registrySerde(cfg, f+".key", s.Key, s.Topic, true)
		default:
			spec.Key, kerr = serde.Lookup(s.Key.Builtin)
		}
		switch {
		case s.Value.Wasm != "":
			m, err := load(f+".value", s.Value.Plugin, plugins.CapValueToJSON)
			spec.Value, verr = plugins.ValueSerde{M: m}, err
		case s.Value.IsRegistry():
			spec.Value, verr = sp.registrySerde(cfg, f+".value", s.Value, s.Topic, false)
		default:
			spec.Value, verr = serde.Lookup(s.Value.Builtin)
		}
		if s.Transform != nil {
			m, err := load(f+".transform", s.Transform.Plugin, plugins.CapTransform)
			sp.transforms[s.Name], terr = router.Transform{Module: m, Params: s.Transform.Params}, err
		}
		errs = append(errs, kerr, verr, terr)
		sp.specs = append(sp.specs, spec)
	}
	if err := errors.Join(errs...); err != nil {
		sp.close()
		return nil, &ConfigError{err}
	}
	return sp, nil
}

// registrySerde is a store field's schema registry serde; the registry's
// client is made for the first, and shared. It reaches nothing: schemas
// are fetched when a record or a key first needs one.
func (sp *storePlugins) registrySerde(cfg config.Config, field string, sd config.Serde, topic string, key bool) (serde.Serde, error) {
	if sp.registry == nil {
		c, err := newRegistryClient(cfg.SchemaRegistry)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		sp.registry = c
	}
	var reader string
	if file := sd.Registry.ReaderSchemaFile; file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s.reader_schema_file: %v", field, err)
		}
		reader = string(b)
	}
	s, err := registry.New(sp.registry, sd.RegistryConfig(topic, key, reader))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", field, err)
	}
	return s, nil
}

// newRegistryClient is the client of the configured schema registry.
func newRegistryClient(r config.SchemaRegistry) (*registry.Client, error) {
	tlsCfg, err := kafkaconn.TLSConfig("schema_registry.tls", r.TLS)
	if err != nil {
		return nil, err
	}
	return registry.NewClient(registry.Options{
		URLs:        r.URLs(),
		TLS:         tlsCfg,
		Username:    r.BasicAuth.Username,
		Password:    r.BasicAuth.Password,
		BearerToken: r.BearerToken,
		CacheSize:   r.CacheSize,
		CacheTTL:    r.CacheTTL.D(),
		Timeout:     r.Timeout.D(),
	})
}

// watch reloads modules whose files change, until close.
func (sp *storePlugins) watch(cfg config.Config) {
	if cfg.Plugins.ReloadInterval <= 0 || len(sp.modules) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	sp.cancel = cancel
	for _, m := range sp.modules {
		go m.Watch(ctx, m.path, cfg.Plugins.ReloadInterval.D())
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
