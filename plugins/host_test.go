package plugins_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/internal/wasmgen"
	"github.com/iqengine/iqengine/plugins"
	"github.com/iqengine/iqengine/serde"
)

func newHost(t testing.TB, o plugins.Options) (*plugins.Host, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h, err := plugins.NewHost(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h, reg
}

func load(t testing.TB, h *plugins.Host, name string, bin []byte, need ...plugins.Capability) *plugins.Module {
	t.Helper()
	m, err := h.Load(context.Background(), plugins.Spec{Name: name, Binary: bin, Need: need})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestEchoRoundTrip(t *testing.T) {
	h, _ := newHost(t, plugins.Options{})
	m := load(t, h, "echo", wasmgen.Echo(), plugins.CapValueToJSON, plugins.CapKeyToJSON, plugins.CapKeyFromText)
	for _, in := range []string{`{"a":1}`, `"x"`, `[1,2,3]`, strings.Repeat(`"`+strings.Repeat("é", 3000)+`"`, 1)} {
		got, err := m.ValueToJSON([]byte("prefix:"), []byte(in))
		if err != nil || string(got) != "prefix:"+in {
			t.Fatalf("ValueToJSON(%.20q) = %.40q, %v", in, got, err)
		}
	}
	// A bigger input than the first buffer grows it through iq_alloc.
	big := `"` + strings.Repeat("x", 200<<10) + `"`
	if got, err := m.KeyToJSON(nil, []byte(big)); err != nil || string(got) != big {
		t.Fatalf("KeyToJSON(200 KiB) = %d bytes, %v", len(got), err)
	}
	if got, err := m.KeyFromText(nil, "o-42"); err != nil || string(got) != "o-42" {
		t.Fatalf("KeyFromText = %q, %v", got, err)
	}
	// Empty input and output.
	if _, err := m.KeyFromText(nil, ""); err != nil {
		t.Fatalf("KeyFromText(\"\") = %v", err)
	}
	info := m.Info()
	if info.ABIVersion != 1 || !info.Has(plugins.CapValueToJSON) || info.Has(plugins.CapTransform) {
		t.Fatalf("Info = %+v", info)
	}
}

// The hot path borrows an instance, writes the input, calls and copies the
// output without allocating. wazero itself allocates for the goroutine that
// lets a runaway call be stopped (a channel, a closure, a goroutine); the
// host's own path is measured on a host without it.
func TestCallDoesNotAllocate(t *testing.T) {
	h, err := plugins.NewUninterruptibleHost(plugins.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	m := load(t, h, "echo", wasmgen.Echo())
	in := []byte(`{"sensor":4711,"site":12,"status":"ok"}`)
	dst := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(1000, func() {
		if dst, err = m.ValueToJSON(dst[:0], in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("the host's call path allocates %.1f times per call", allocs)
	}
	// Through a serde bound to a request's context, on a host that does not
	// trace, it is the same call.
	var s serde.Serde = plugins.ValueSerde{M: m} // a store holds its serdes as interfaces
	allocs = testing.AllocsPerRun(1000, func() {
		if dst, err = plugins.WithContext(context.Background(), s).AppendJSON(dst[:0], in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a bound serde's call on a host that does not trace allocates %.1f times per call", allocs)
	}
	safe, _ := newHost(t, plugins.Options{})
	sm := load(t, safe, "echo", wasmgen.Echo())
	allocs = testing.AllocsPerRun(1000, func() {
		if dst, err = sm.ValueToJSON(dst[:0], in); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("with wazero's close watcher: %.1f allocations per call", allocs)
}

func TestLoadRefusesBadModules(t *testing.T) {
	h, _ := newHost(t, plugins.Options{MemoryLimit: 64 << 20})
	cases := []struct {
		name string
		bin  []byte
		need []plugins.Capability
		want string
	}{
		{"not wasm", wasmgen.NotWasm(), nil, "not a WebAssembly module"},
		{"truncated", wasmgen.Echo()[:40], nil, "not a valid WebAssembly module"},
		{"missing exports", wasmgen.MissingExports(), nil, "missing required export iq_alloc"},
		{"wrong signature", wasmgen.WrongSignature(), nil, "export iq_value_to_json has signature (i32) -> (i32), want (i32, i32) -> (i64)"},
		{"unknown ABI version", wasmgen.UnknownABI(), nil, "unsupported ABI version 7"},
		{"forbidden import path_open", wasmgen.ForbiddenImport(), nil, "forbidden import wasi_snapshot_preview1.path_open"},
		{"forbidden import sock_accept", wasmgen.ForbiddenImportSock(), nil, "forbidden import wasi_snapshot_preview1.sock_accept"},
		{"memory over the cap", wasmgen.HugeMemory(), nil, "over limit of 1024 pages"},
		{"partial transform", wasmgen.PartialTransform(), nil, "a transform exports all of"},
		{"iq_init fails", wasmgen.InitFails(), nil, "iq_init refused the config {}: " + wasmgen.InitFailsMessage},
		{"lacks a needed capability", wasmgen.Echo(), []plugins.Capability{plugins.CapTransform}, "lacks the transform capability"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.Load(context.Background(), plugins.Spec{Name: "bad", Binary: c.bin, Need: c.need})
			var le *plugins.LoadError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load: %v; want a LoadError containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

// Every fault gives an Error of its kind naming the plugin; the faulty
// instance is replaced, the module keeps answering (with the same fault,
// promptly), and a well-behaved module on the same host is unaffected.
func TestFaultsAreContained(t *testing.T) {
	h, reg := newHost(t, plugins.Options{Timeout: 500 * time.Millisecond, MemoryLimit: 3 << 20, Instances: 2})
	good := load(t, h, "good", wasmgen.Echo())
	cases := []struct {
		name string
		bin  []byte
		kind plugins.Kind
		want string
	}{
		{"trap", wasmgen.Trap(), plugins.KindTrap, "unreachable"},
		{"out-of-bounds access", wasmgen.OutOfBoundsAccess(), plugins.KindTrap, "out of bounds memory access"},
		{"infinite loop", wasmgen.InfiniteLoop(), plugins.KindTimeout, "ran past the 500ms deadline"},
		{"unbounded memory growth", wasmgen.MemoryGrowth(), plugins.KindMemory, "memory cap of 3 MiB"},
		{"out-of-bounds result", wasmgen.OutOfBoundsResult(), plugins.KindBadResult, "outside memory"},
		{"result one past the end", wasmgen.ResultPastEnd(), plugins.KindBadResult, "outside memory"},
		{"invalid JSON", wasmgen.InvalidJSON(), plugins.KindBadOutput, "not valid UTF-8 JSON"},
		{"result over the cap", wasmgen.HugeResult(), plugins.KindTooLarge, "over the 1048576-byte cap"},
		{"unknown status", wasmgen.BadStatus(), plugins.KindBadResult, "unknown status -7"},
		{"alloc outside memory", wasmgen.AllocOutOfBounds(), plugins.KindBadResult, "iq_alloc"},
		{"panic on stderr", wasmgen.StderrThenTrap(), plugins.KindTrap, "panic: something went wrong"},
		{"proc_exit", wasmgen.ProcExit(), plugins.KindTrap, "exited with code 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := load(t, h, c.name, c.bin)
			for i := 0; i < 3; i++ { // the replacement instance faults the same way
				_, err := m.ValueToJSON(nil, []byte(`{"a":1}`))
				var pe *plugins.Error
				if !errors.As(err, &pe) || pe.Kind != c.kind || pe.Plugin != c.name || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("call %d: %v; want kind %s containing %q", i, err, c.kind, c.want)
				}
				if pe.Rejected() || errors.Is(err, plugins.ErrRejected) {
					t.Fatalf("a fault reads as a rejection: %v", err)
				}
				if got, err := good.ValueToJSON(nil, []byte(`{"ok":true}`)); err != nil || string(got) != `{"ok":true}` {
					t.Fatalf("the good module after the fault: %q, %v", got, err)
				}
			}
			if n := testutil.Metric(t, reg, "iqengine_plugin_faults_total", "plugin", c.name, "kind", string(c.kind)); n != 3 {
				t.Fatalf("faults_total{kind=%s} = %v, want 3", c.kind, n)
			}
		})
	}
}

func TestRejectAndPartition(t *testing.T) {
	h, reg := newHost(t, plugins.Options{})
	rej := load(t, h, "rej", wasmgen.Reject())
	_, err := rej.KeyFromText(nil, "abc")
	var pe *plugins.Error
	if !errors.As(err, &pe) || !pe.Rejected() || !errors.Is(err, plugins.ErrRejected) || !strings.Contains(err.Error(), wasmgen.RejectMessage) {
		t.Fatalf("reject: %v", err)
	}
	if n := testutil.Metric(t, reg, "iqengine_plugin_rejections_total", "plugin", "rej"); n != 1 {
		t.Fatalf("rejections = %v", n)
	}
	part := load(t, h, "part", wasmgen.EchoWith(wasmgen.EchoOptions{Partition: true}))
	if p, err := part.Partition([]byte("abcde"), 3); err != nil || p != 2 {
		t.Fatalf("Partition = %d, %v; want 5%%3 = 2", p, err)
	}
	bad := load(t, h, "badpart", wasmgen.WrongPartition())
	if _, err := bad.Partition([]byte("k"), 12); !errors.As(err, &pe) || pe.Kind != plugins.KindBadResult || !strings.Contains(err.Error(), "partition 99 is outside [0, 12)") {
		t.Fatalf("wrong partition: %v", err)
	}
}

func TestTransformBatch(t *testing.T) {
	h, _ := newHost(t, plugins.Options{})
	m := load(t, h, "tr", wasmgen.EchoWith(wasmgen.EchoOptions{Transform: true, Initialize: true, Init: true}), plugins.CapTransform)
	b, err := m.Begin(context.Background(), []byte(`{"fields":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		v := fmt.Sprintf(`{"n":%d}`, i)
		out, keep, err := b.Record([]byte("x:"), []byte(`"k"`), []byte(v))
		if err != nil || !keep || string(out) != "x:"+v {
			t.Fatalf("record %d: %q, %v, %v", i, out, keep, err)
		}
	}
	b.End()
}

// Many goroutines through one module: every answer right, the pool never
// above its bound.
func TestConcurrentCallsShareABoundedPool(t *testing.T) {
	const bound = 3
	h, reg := newHost(t, plugins.Options{Instances: bound})
	m := load(t, h, "echo", wasmgen.Echo())
	var wrong atomic.Int64
	var maxSeen atomic.Int64
	sample := func() {
		n := int64(testutil.Metric(t, reg, "iqengine_plugin_instances", "plugin", "echo"))
		for {
			old := maxSeen.Load()
			if n <= old || maxSeen.CompareAndSwap(old, n) {
				return
			}
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dst []byte
			for i := 0; i < 300; i++ {
				in := fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)
				var err error
				dst, err = m.ValueToJSON(dst[:0], []byte(in))
				if err != nil || string(dst) != in {
					wrong.Add(1)
				}
				if i%50 == 0 {
					sample()
				}
			}
		}()
	}
	wg.Wait()
	if wrong.Load() != 0 {
		t.Fatalf("%d wrong answers", wrong.Load())
	}
	if maxSeen.Load() > bound || maxSeen.Load() == 0 {
		t.Fatalf("instances peaked at %d, bound %d", maxSeen.Load(), bound)
	}
	t.Logf("32 goroutines x 300 calls; instances peaked at %d (bound %d)", maxSeen.Load(), bound)
}

// Replace under load: answers switch to the new version, no call fails, and
// a broken replacement is refused while the old version keeps serving.
func TestReplaceUnderLoad(t *testing.T) {
	h, reg := newHost(t, plugins.Options{Instances: 2})
	m := load(t, h, "v", wasmgen.ConstValue(`{"v":1}`))
	var failed, v1, v2 atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, err := m.ValueToJSON(nil, []byte(`{}`))
				switch {
				case err != nil:
					failed.Add(1)
				case string(out) == `{"v":1}`:
					v1.Add(1)
				case string(out) == `{"v":2}`:
					v2.Add(1)
				default:
					failed.Add(1)
				}
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	testutil.WaitFor(t, 10*time.Second, "answers from v1", func() bool { return v1.Load() >= 100 })
	if err := m.Replace(context.Background(), wasmgen.ConstValue(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "answers from v2", func() bool { return v2.Load() >= 100 })
	if err := m.Replace(context.Background(), wasmgen.NotWasm()); err == nil {
		t.Fatal("a broken replacement was accepted")
	}
	if err := m.Replace(context.Background(), wasmgen.Trap()[:30]); err == nil {
		t.Fatal("a truncated replacement was accepted")
	}
	// v2 keeps answering after the refusals.
	refused := v2.Load()
	testutil.WaitFor(t, 10*time.Second, "answers from v2 after the refused replacements", func() bool { return v2.Load() >= refused+100 })
	stopLoad()
	if failed.Load() != 0 || v1.Load() == 0 || v2.Load() == 0 {
		t.Fatalf("failed %d, v1 %d, v2 %d", failed.Load(), v1.Load(), v2.Load())
	}
	if out, err := m.ValueToJSON(nil, nil); err != nil || string(out) != `{"v":2}` {
		t.Fatalf("after the refused replacements: %q, %v", out, err)
	}
	if n := testutil.Metric(t, reg, "iqengine_plugin_reloads_total", "plugin", "v", "result", "refused"); n != 2 {
		t.Fatalf("refused reloads = %v", n)
	}
	t.Logf("answers: %d from v1, %d from v2, %d failed", v1.Load(), v2.Load(), failed.Load())
}
