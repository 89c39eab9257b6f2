package plugins_test

// Decode benchmarks: one ~200-byte record to JSON through a WebAssembly
// plugin, next to the built-in json serde doing the same job natively. Run
// them side by side with
//
//	go test -run '^$' -bench Decode ./plugins/

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iqengine/iqengine/internal/testplugins"
	"github.com/iqengine/iqengine/internal/wasmgen"
	"github.com/iqengine/iqengine/plugins"
	"github.com/iqengine/iqengine/serde"
)

// record200 is a 200-byte JSON value.
var record200 = []byte(`{"sensor":4711,"site":12,"time":1700000000000,"status":"ok","temp_c":21.37,"humidity":45.1,"label":"hall ` + strings.Repeat("x", 200-107) + `"}`)

func benchHost(b *testing.B) *plugins.Host {
	h, err := plugins.NewHost(plugins.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close(context.Background()) })
	return h
}

func benchDecode(b *testing.B, s serde.Serde, in []byte) {
	dst := make([]byte, 0, 512)
	out, err := s.AppendJSON(dst, in)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		out, _ = s.AppendJSON(dst[:0], in)
	}
	_ = out
}

// BenchmarkDecodeBuiltinJSON is the floor: the built-in json serde checks
// and copies the 200-byte value.
func BenchmarkDecodeBuiltinJSON(b *testing.B) {
	if len(record200) != 200 {
		b.Fatalf("record is %d bytes", len(record200))
	}
	js, _ := serde.Lookup("json")
	benchDecode(b, js, record200)
}

// BenchmarkDecodeWasmPassthrough is the same job through a minimal
// WebAssembly plugin (the ABI's cost alone): the host writes the input into
// the plugin's memory, calls it, bounds-checks the result, checks it is JSON
// and copies it out.
func BenchmarkDecodeWasmPassthrough(b *testing.B) {
	m, err := benchHost(b).Load(context.Background(), plugins.Spec{Name: "echo", Binary: wasmgen.Echo()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Close)
	benchDecode(b, plugins.ValueSerde{M: m}, record200)
}

// BenchmarkDecodeWasmSensorGo decodes a binary sensor record (24 bytes and a
// 64-byte label) into ~170 bytes of JSON with the example Go plugin
// (examples/plugins/sensor-value): the ABI's cost plus real work in Go
// compiled to WebAssembly.
func BenchmarkDecodeWasmSensorGo(b *testing.B) {
	m, err := benchHost(b).Load(context.Background(), plugins.Spec{Name: "sensor-value", Binary: testplugins.Module(b, "sensor-value"), AllowClock: os.Getenv("CLOCK") != ""})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Close)
	v := sensorRecord()
	out, err := m.ValueToJSON(nil, v)
	if err != nil || len(out) < 160 {
		b.Fatalf("decode: %d bytes %s, %v", len(out), out, err)
	}
	benchDecode(b, plugins.ValueSerde{M: m}, v)
}

// sensorRecord is a binary sensor record with a 64-byte label (88 bytes);
// decoded it is ~170 bytes of JSON.
func sensorRecord() []byte {
	v := []byte{1, 0}
	v = binary.LittleEndian.AppendUint16(v, 12)
	v = binary.LittleEndian.AppendUint32(v, 4711)
	v = binary.LittleEndian.AppendUint64(v, 1700000000000)
	v = binary.LittleEndian.AppendUint32(v, 2137)
	v = binary.LittleEndian.AppendUint32(v, 451)
	return append(v, "hall, north wing, second floor, next to the window by the stairs"[:64]...)
}

// BenchmarkDecodeSensorBySDK decodes the same sensor record with the
// sensor-value example of every SDK given in IQENGINE_SDK_BUILDS
// (name=dir,..., as scripts/sdk-test.sh passes after building them) and the
// Go example, and, as the native floor, runs the built-in json serde on the
// JSON they produce. All outputs must be identical.
func BenchmarkDecodeSensorBySDK(b *testing.B) {
	rec := sensorRecord()
	builds := []struct{ name, path string }{{"go", ""}}
	for _, kv := range strings.Split(os.Getenv("IQENGINE_SDK_BUILDS"), ",") {
		if name, dir, ok := strings.Cut(kv, "="); ok {
			builds = append(builds, struct{ name, path string }{name, filepath.Join(dir, "sensor-value.wasm")})
		}
	}
	var want []byte
	for _, bl := range builds {
		var bin []byte
		if bl.path == "" {
			bin = testplugins.Module(b, "sensor-value")
		} else {
			var err error
			if bin, err = os.ReadFile(bl.path); err != nil {
				b.Fatal(err)
			}
		}
		m, err := benchHost(b).Load(context.Background(), plugins.Spec{Name: bl.name, Binary: bin})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(m.Close)
		out, err := m.ValueToJSON(nil, rec)
		if err != nil {
			b.Fatal(err)
		}
		if want == nil {
			want = out
		} else if string(out) != string(want) {
			b.Fatalf("%s decodes to %s, go to %s", bl.name, out, want)
		}
		b.Run("wasm-"+bl.name, func(b *testing.B) { benchDecode(b, plugins.ValueSerde{M: m}, rec) })
	}
	js, _ := serde.Lookup("json")
	b.Run("native-json-serde", func(b *testing.B) { benchDecode(b, js, want) })
}

// BenchmarkDecodeSensorLoopChecks is where a plugin's time goes: the
// passthrough plugin and the Go example's decode with the host as it runs
// (wazero's loop checks on, so a runaway call can be stopped) and without
// them (a test-only host that could not stop a plugin that loops forever).
// The difference is wazero's per-call close watcher (a goroutine) and its
// exit to Go at every loop iteration of the plugin's code.
func BenchmarkDecodeSensorLoopChecks(b *testing.B) {
	for _, c := range []struct {
		name string
		bin  []byte
		in   []byte
	}{
		{"passthrough", wasmgen.Echo(), record200},
		{"sensor-go", testplugins.Module(b, "sensor-value"), sensorRecord()},
	} {
		b.Run(c.name, func(b *testing.B) { benchLoopChecks(b, c.bin, c.in) })
	}
}

func benchLoopChecks(b *testing.B, bin, rec []byte) {
	for _, interruptible := range []bool{true, false} {
		var h *plugins.Host
		var err error
		o := plugins.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if interruptible {
			h, err = plugins.NewHost(o)
		} else {
			h, err = plugins.NewUninterruptibleHost(o)
		}
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { h.Close(context.Background()) })
		m, err := h.Load(context.Background(), plugins.Spec{Name: "p", Binary: bin})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(m.Close)
		name := map[bool]string{true: "loop-checks-on", false: "loop-checks-off"}[interruptible]
		b.Run(name, func(b *testing.B) { benchDecode(b, plugins.ValueSerde{M: m}, rec) })
	}
}
