package plugins

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Module is one loaded plugin. Its code can be replaced while it serves
// (Replace): calls that started on the old version finish on it, new calls
// use the new one. It is safe for concurrent use.
type Module struct {
	h       *Host
	name    string
	spec    Spec
	cur     atomic.Pointer[version]
	metrics moduleMetrics
	once    sync.Once
}

// Name is the module's name, as given to Load.
func (m *Module) Name() string { return m.name }

// Info describes the module version now serving.
func (m *Module) Info() Info { return m.cur.Load().info }

// Hash is a short SHA-256 of the module version now serving.
func (m *Module) Hash() string { return m.cur.Load().hash }

// Replace validates bin as the module's next version and swaps it in. On
// any error the current version keeps serving and the error says why.
func (m *Module) Replace(ctx context.Context, bin []byte) error {
	v, err := m.build(ctx, bin)
	if err != nil {
		m.metrics.refused.Inc()
		m.h.opts.Logger.Warn("plugin replacement refused; the old version keeps serving", "plugin", m.name, "err", err)
		return err
	}
	old := m.cur.Swap(v)
	m.metrics.loaded.Inc()
	m.h.opts.Logger.Info("plugin replaced", "plugin", m.name, "sha256", v.hash, "previous", old.hash, "capabilities", v.info.Capabilities)
	old.retire()
	return nil
}

// Close closes every instance once in-flight calls end.
func (m *Module) Close() {
	if v := m.cur.Load(); v != nil {
		v.retire()
	}
}

// acquire pins the current version for one call or batch.
func (m *Module) acquire() *version {
	for {
		v := m.cur.Load()
		v.refs.Add(1)
		if m.cur.Load() == v {
			return v
		}
		v.release()
	}
}

// build compiles, validates and pre-initialises one version of the module.
func (m *Module) build(ctx context.Context, bin []byte) (*version, error) {
	m.once.Do(func() { m.metrics = m.h.metrics.forModule(m.name) })
	refuse := func(format string, args ...any) error {
		return &LoadError{Plugin: m.name, Reason: fmt.Sprintf(format, args...)}
	}
	rt := wazero.NewRuntimeWithConfig(ctx, m.h.runtimeConfig())
	ok := false
	defer func() {
		if !ok {
			rt.Close(ctx)
		}
	}()
	cm, err := compile(ctx, rt, bin)
	if err != nil {
		return nil, refuse("%v", err)
	}
	info, err := check(cm, m.h.pages)
	if err != nil {
		return nil, refuse("%v", err)
	}
	for _, need := range m.spec.Need {
		if !info.Has(need) {
			return nil, refuse("lacks the %s capability this use needs (it has %v; see sdk/ABI.md)", need, info.Capabilities)
		}
	}
	if info.Has(CapRegistry) {
		switch {
		case !m.spec.AllowRegistry:
			return nil, refuse("imports %s (the registry capability), which this use does not grant: set allow_registry: true beside wasm (see sdk/ABI.md)", SchemaImport)
		case m.h.opts.Registry == nil:
			return nil, refuse("imports %s (the registry capability), but this node has no schema registry: set schema_registry.url", SchemaImport)
		}
		if _, err := rt.NewHostModuleBuilder("iq").
			NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(m.h.schema), importSignatures[SchemaImport].params, importSignatures[SchemaImport].results).Export("schema").
			Instantiate(ctx); err != nil {
			return nil, refuse("iq: %v", err)
		}
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return nil, refuse("wasi: %v", err)
	}
	if _, err := rt.NewHostModuleBuilder("env").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(abort), []api.ValueType{i32, i32, i32, i32}, nil).Export("abort").
		Instantiate(ctx); err != nil {
		return nil, refuse("env: %v", err)
	}
	v := &version{
		m:     m,
		rt:    rt,
		cm:    cm,
		info:  info,
		hash:  shortHash(bin),
		idle:  make(chan *instance, m.h.opts.Instances),
		slots: make(chan struct{}, m.h.opts.Instances),
		live:  map[*instance]struct{}{},
		stop:  make(chan struct{}),
	}
	go v.watchdog()
	v.slots <- struct{}{}
	in, err := v.newInstance(ctx)
	if err != nil {
		<-v.slots
		close(v.stop)
		return nil, refuse("%v", err)
	}
	v.idle <- in
	ok = true
	return v, nil
}

// abort is AssemblyScript's env.abort: a trap with the place it came from.
func abort(ctx context.Context, mod api.Module, stack []uint64) {
	panic(fmt.Sprintf("abort called at line %d, column %d", uint32(stack[2]), uint32(stack[3])))
}

// version is one compiled module in its own runtime (its own memory cap),
// with its pool of instances.
type version struct {
	m     *Module
	rt    wazero.Runtime
	cm    wazero.CompiledModule
	info  Info
	hash  string
	idle  chan *instance
	slots chan struct{} // one token per live instance: the pool's bound

	mu   sync.Mutex
	live map[*instance]struct{} // watched by the watchdog
	stop chan struct{}

	refs      atomic.Int64
	retired   atomic.Bool
	closeOnce sync.Once
}

func (v *version) release() {
	if v.refs.Add(-1) == 0 && v.retired.Load() {
		v.close()
	}
}

// retire marks the version replaced; it closes when its last call ends.
func (v *version) retire() {
	v.retired.Store(true)
	if v.refs.Load() == 0 {
		v.close()
	}
}

func (v *version) close() {
	v.closeOnce.Do(func() {
		close(v.stop)
		v.mu.Lock()
		n := len(v.live)
		v.live = map[*instance]struct{}{}
		v.mu.Unlock()
		v.m.metrics.instances.Sub(float64(n))
		v.rt.Close(context.Background())
	})
}

// get borrows an instance: an idle one, a new one while the pool has room,
// or the next one returned before the timeout.
func (v *version) get() (*instance, error) {
	select {
	case in := <-v.idle:
		return in, nil
	default:
	}
	for {
		select {
		case in := <-v.idle:
			return in, nil
		case v.slots <- struct{}{}:
			in, err := v.newInstance(context.Background())
			if err != nil {
				<-v.slots
				return nil, err
			}
			return in, nil
		default:
		}
		t := time.NewTimer(v.m.h.opts.Timeout)
		select {
		case in := <-v.idle:
			t.Stop()
			return in, nil
		case v.slots <- struct{}{}:
			t.Stop()
			in, err := v.newInstance(context.Background())
			if err != nil {
				<-v.slots
				return nil, err
			}
			return in, nil
		case <-t.C:
			v.m.metrics.faults[KindBusy].Inc()
			return nil, &Error{Plugin: v.m.name, Kind: KindBusy, Msg: fmt.Sprintf("all %d instances stayed busy for %s", cap(v.slots), v.m.h.opts.Timeout)}
		}
	}
}

// put returns a borrowed instance; a broken one is closed instead, and a
// fresh one is started in the background to take its place.
func (v *version) put(in *instance) {
	if !in.broken {
		v.idle <- in
		return
	}
	v.discard(in)
	go func() {
		if v.retired.Load() {
			return
		}
		select {
		case v.slots <- struct{}{}:
		default:
			return // the pool is full again
		}
		fresh, err := v.newInstance(context.Background())
		if err != nil {
			<-v.slots
			v.m.h.opts.Logger.Warn("plugin instance replacement failed", "plugin", v.m.name, "err", err)
			return
		}
		v.idle <- fresh
	}()
}

func (v *version) discard(in *instance) {
	v.mu.Lock()
	_, ok := v.live[in]
	delete(v.live, in)
	v.mu.Unlock()
	if ok {
		v.m.metrics.instances.Dec()
	}
	in.mod.Close(context.Background())
	<-v.slots
}

// watchdog stops calls that run past the timeout: it closes the instance
// from outside, and wazero's loop checks end the running code.
func (v *version) watchdog() {
	timeout := v.m.h.opts.Timeout
	tick := timeout / 10
	tick = min(max(tick, time.Millisecond), 100*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-v.stop:
			return
		case <-t.C:
		}
		now := nanotime()
		v.mu.Lock()
		for in := range v.live {
			start := in.busySince.Load()
			if start != 0 && in.spent.Load()+(now-start) > int64(timeout) {
				in.timedOut.Store(true)
				in.mod.CloseWithExitCode(context.Background(), exitTimeout)
			}
		}
		v.mu.Unlock()
	}
}

// exitTimeout is the exit code the watchdog closes an instance with.
const exitTimeout = 0x1d1e

var epoch = time.Now()

// nanotime is monotonic nanoseconds since the process started.
func nanotime() int64 { return int64(time.Since(epoch)) }
