// Package plugins runs WebAssembly plugins with wazero: key and value
// serializers and query transforms, as specified by sdk/ABI.md.
//
// A plugin is untrusted code. The host validates a module before it runs
// any of it (exports, signatures, ABI version, memory, an import
// allow-list), runs each module in its own wazero runtime with a memory cap,
// bounds every call (or transform batch) by a deadline, caps and checks
// every result, and closes and replaces an instance that faults, so a bad
// plugin costs the queries that use it a 500 and nothing else.
//
// Each module keeps a bounded pool of pre-initialised instances with cached
// function handles; a call borrows an instance, calls it with
// CallWithStack on a stack the instance owns, copies the result out and
// returns the instance, so the steady-state path allocates nothing.
package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tetratelabs/wazero"
	"go.opentelemetry.io/otel/trace"

	"github.com/iqengine/iqengine/serde/registry"
)

// Options configure a Host. Zero fields take the defaults of sdk/ABI.md.
type Options struct {
	// CacheDir keeps compiled machine code across restarts (wazero's
	// on-disk compilation cache). Empty: compile in memory only.
	CacheDir string
	// MemoryLimit caps each instance's linear memory, in bytes (rounded
	// down to 64 KiB pages). Default 64 MiB.
	MemoryLimit uint64
	// Timeout bounds one call, or the plugin time of one transform batch.
	// Default 1s.
	Timeout time.Duration
	// MaxOutput is the longest result accepted from a plugin. Default 1 MiB.
	MaxOutput int
	// Instances bounds each module's pool. Default: the number of CPUs.
	Instances int
	// Logger receives load, reload and fault events. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the plugin metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// TracerProvider records plugin calls as spans of the requests that
	// make them (see WithContext and Module.Begin). Nil: no spans.
	TracerProvider trace.TracerProvider
	// Registry is the node's schema registry client, whose cache the
	// modules granted the registry capability share with the registry
	// serdes (iq.schema). Nil: no registry; such modules are refused.
	Registry *registry.Client
}

// Defaults of Options.
const (
	DefaultMemoryLimit = 64 << 20
	DefaultTimeout     = time.Second
	DefaultMaxOutput   = 1 << 20
)

// Host loads and runs plugins. It is safe for concurrent use.
type Host struct {
	opts Options
	// uninterruptible drops wazero's loop checks and per-call close
	// watcher; only tests set it, to measure the host's own call path.
	uninterruptible bool
	pages           uint32
	cache           wazero.CompilationCache
	metrics         *metrics
	tracer          trace.Tracer // nil: no spans
}

// NewHost returns a host with the given options.
func NewHost(opts Options) (*Host, error) {
	if opts.MemoryLimit == 0 {
		opts.MemoryLimit = DefaultMemoryLimit
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxOutput <= 0 {
		opts.MaxOutput = DefaultMaxOutput
	}
	if opts.Instances <= 0 {
		opts.Instances = runtime.GOMAXPROCS(0)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	pages := opts.MemoryLimit / 65536
	if pages < 1 {
		return nil, fmt.Errorf("plugins: memory limit %d bytes is under one 64 KiB page", opts.MemoryLimit)
	}
	if pages > 65536 {
		pages = 65536
	}
	h := &Host{opts: opts, pages: uint32(pages)}
	if opts.TracerProvider != nil {
		h.tracer = opts.TracerProvider.Tracer(tracerName)
	}
	if opts.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("plugins: compilation cache %s: %w", opts.CacheDir, err)
		}
		h.cache = c
	} else {
		h.cache = wazero.NewCompilationCache()
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	h.metrics = m
	return h, nil
}

// Options returns the host's options with defaults filled in.
func (h *Host) Options() Options { return h.opts }

// Close releases the compilation cache. Close every module first.
func (h *Host) Close(ctx context.Context) error { return h.cache.Close(ctx) }

// runtimeConfig is one module's runtime: the compiler, the shared cache, the
// memory cap, and the loop checks that let the watchdog stop a call.
func (h *Host) runtimeConfig() wazero.RuntimeConfig {
	return wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(h.cache).
		WithMemoryLimitPages(h.pages).
		WithCloseOnContextDone(!h.uninterruptible)
}

// Inspect validates a module and describes it, without running it.
func (h *Host) Inspect(ctx context.Context, bin []byte) (Info, error) {
	rt := wazero.NewRuntimeWithConfig(ctx, h.runtimeConfig())
	defer rt.Close(ctx)
	cm, err := compile(ctx, rt, bin)
	if err != nil {
		return Info{}, err
	}
	return check(cm, h.pages)
}

func compile(ctx context.Context, rt wazero.Runtime, bin []byte) (wazero.CompiledModule, error) {
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly module (no \\0asm header)")
	}
	cm, err := rt.CompileModule(ctx, bin)
	if err != nil {
		return nil, fmt.Errorf("not a valid WebAssembly module: %v", err)
	}
	return cm, nil
}

// Spec is what Load needs to know about one use of a module.
type Spec struct {
	// Name identifies the module in errors, logs and metrics.
	Name string
	// Binary is the module's bytes.
	Binary []byte
	// Config is the static config passed to iq_init, as JSON. Nil: "{}".
	Config []byte
	// AllowClock gives the module the real clock instead of a virtual one.
	AllowClock bool
	// AllowRegistry grants the registry capability: a module that imports
	// iq.schema is refused without it.
	AllowRegistry bool
	// Need lists the capabilities the use requires; a module without them
	// is refused at load time.
	Need []Capability
}

// Load validates, compiles and instantiates a module (one instance, to run
// its initialisation now rather than on the first query).
func (h *Host) Load(ctx context.Context, spec Spec) (*Module, error) {
	if spec.Config == nil {
		spec.Config = []byte("{}")
	}
	m := &Module{h: h, name: spec.Name, spec: spec}
	v, err := m.build(ctx, spec.Binary)
	if err != nil {
		return nil, err
	}
	m.cur.Store(v)
	h.opts.Logger.Info("plugin loaded", "plugin", m.name, "abi", v.info.ABIVersion, "capabilities", v.info.Capabilities, "sha256", v.hash, "bytes", len(spec.Binary))
	return m, nil
}

func shortHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:6])
}
