package plugins_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/iqengine/iqengine/internal/wasmgen"
	"github.com/iqengine/iqengine/plugins"
	"github.com/iqengine/iqengine/serde/registry"
)

// fakeRegistry is an in-process schema registry (franz-go's srfake) that
// counts the requests for schemas by id and can be taken down, or made to
// hang, and the node's client of it.
type fakeRegistry struct {
	*srfake.Registry
	client *registry.Client
	byID   atomic.Int64
	down   atomic.Bool
	hang   atomic.Bool
}

func newFakeRegistry(t *testing.T) *fakeRegistry {
	t.Helper()
	f := &fakeRegistry{Registry: srfake.New()}
	t.Cleanup(f.Close)
	f.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			f.byID.Add(1)
		}
		if f.hang.Load() {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
		if f.down.Load() {
			http.Error(w, `{"error_code":50301,"message":"down for the test"}`, http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	c, err := registry.NewClient(registry.Options{URLs: []string{f.URL()}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	return f
}

func (f *fakeRegistry) register(t *testing.T, subject string, typ sr.SchemaType, text string) int32 {
	t.Helper()
	id, _, err := f.RegisterSchema(subject, sr.Schema{Schema: text, Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	return int32(id)
}

// askSchema has wasmgen.SchemaReader call iq.schema(id, buf, capacity) and
// returns its result and the text it wrote.
func askSchema(m *plugins.Module, id int32, buf, capacity uint32) (int64, string, error) {
	in := binary.LittleEndian.AppendUint32(nil, uint32(id))
	in = binary.LittleEndian.AppendUint32(in, buf)
	in = binary.LittleEndian.AppendUint32(in, capacity)
	out, err := m.KeyFromText(nil, string(in))
	if err != nil {
		return 0, "", err
	}
	return int64(binary.LittleEndian.Uint64(out)), string(out[8:]), nil
}

const avroOrder = `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"total","type":"long"}]}`

// TestSchemaHostFunction: iq.schema gives a granted module the registry's
// schema for an id through the node's client: the text when it fits the
// buffer, and its type and length either way; -1 for an id the registry
// does not have (or that cannot exist), -2 while the registry is down for
// a schema not cached (cached ones keep answering), also when the registry
// hangs (the host waits at most half the call's time, so the call ends
// with the status, not past its deadline); a buffer outside the module's
// memory is a fault.
func TestSchemaHostFunction(t *testing.T) {
	f := newFakeRegistry(t)
	avroID := f.register(t, "orders-value", sr.TypeAvro, avroOrder)
	protoID := f.register(t, "p-value", sr.TypeProtobuf, `syntax = "proto3"; message M { string a = 1; }`)
	jsonID := f.register(t, "j-value", sr.TypeJSON, `{"type":"object"}`)

	h, _ := newHost(t, plugins.Options{Registry: f.client, Timeout: 400 * time.Millisecond, Instances: 1})
	m, err := h.Load(context.Background(), plugins.Spec{Name: "schema-reader", Binary: wasmgen.SchemaReader(), AllowRegistry: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	if info := m.Info(); info.ABIVersion != 1 || info.ABIMinor != 1 || !info.Has(plugins.CapRegistry) {
		t.Fatalf("Info = %+v, want ABI 1.1 with the registry capability", info)
	}

	for _, tc := range []struct {
		id   int32
		typ  int64
		text string
	}{
		{avroID, 1, avroOrder},
		{protoID, 2, `syntax = "proto3"; message M { string a = 1; }`},
		{jsonID, 3, `{"type":"object"}`},
	} {
		r, text, err := askSchema(m, tc.id, 4096, 4096)
		if err != nil || r != tc.typ<<32|int64(len(tc.text)) || text != tc.text {
			t.Errorf("schema id %d: %#x %q %v, want %#x %q", tc.id, r, text, err, tc.typ<<32|int64(len(tc.text)), tc.text)
		}
		// A buffer too short: nothing written, the length to ask again with.
		r, text, err = askSchema(m, tc.id, 4096, 4)
		if err != nil || r != tc.typ<<32|int64(len(tc.text)) || text != "" {
			t.Errorf("schema id %d in 4 bytes: %#x %q %v", tc.id, r, text, err)
		}
	}
	if n := f.byID.Load(); n != 3 {
		t.Errorf("%d requests for schemas by id, want 3: the node's client caches them", n)
	}

	asked := f.byID.Load()
	for _, id := range []int32{0, -1, -2147483648} {
		if r, _, err := askSchema(m, id, 4096, 4096); err != nil || r != -1 {
			t.Errorf("schema id %d: %d, %v, want -1", id, r, err)
		}
	}
	if f.byID.Load() != asked {
		t.Error("ids that cannot exist were asked of the registry")
	}
	if r, _, err := askSchema(m, 9999, 4096, 4096); err != nil || r != -1 {
		t.Errorf("unknown schema id: %d, %v, want -1", r, err)
	}

	f.down.Store(true)
	newID := f.register(t, "later-value", sr.TypeAvro, `"string"`)
	if r, _, err := askSchema(m, newID, 4096, 4096); err != nil || r != -2 {
		t.Errorf("registry down, schema not cached: %d, %v, want -2", r, err)
	}
	if r, text, err := askSchema(m, avroID, 4096, 4096); err != nil || text != avroOrder {
		t.Errorf("registry down, schema cached: %#x %q %v", r, text, err)
	}
	f.down.Store(false)
	f.hang.Store(true)
	hangID := f.register(t, "hang-value", sr.TypeAvro, `"long"`)
	if r, _, err := askSchema(m, hangID, 4096, 4096); err != nil || r != -2 {
		t.Errorf("registry hanging: %d, %v, want -2 (within the call's deadline, not a timeout)", r, err)
	}
	f.hang.Store(false)

	// The buffer must lie in the module's memory (one page).
	_, _, err = askSchema(m, avroID, 65000, 1000)
	var pe *plugins.Error
	if !errors.As(err, &pe) || pe.Kind != plugins.KindTrap || !strings.Contains(pe.Msg, "iq.schema: the buffer [65000, 66000) is outside memory") {
		t.Errorf("buffer outside memory: %v, want a trap naming iq.schema", err)
	}
}

// TestSchemaImportNeedsGrantAndVersion: a module importing iq.schema loads
// only when its use grants the registry capability on a node with a
// registry, and only when it declares ABI 1.1 (iq_abi_v1_1) with the
// import's signature; a module needing a newer minor version is refused
// naming it; v1 modules are unchanged.
func TestSchemaImportNeedsGrantAndVersion(t *testing.T) {
	f := newFakeRegistry(t)
	withRegistry, _ := newHost(t, plugins.Options{Registry: f.client})
	without, _ := newHost(t, plugins.Options{})
	wrongSig := wasmgen.SchemaImport()
	wrongSig.Type.Results = nil
	for _, tc := range []struct {
		name  string
		h     *plugins.Host
		bin   []byte
		grant bool
		err   string
	}{
		{"not granted", withRegistry, wasmgen.SchemaReader(), false, "imports iq.schema (the registry capability), which this use does not grant: set allow_registry: true"},
		{"no registry", without, wasmgen.SchemaReader(), true, "imports iq.schema (the registry capability), but this node has no schema registry: set schema_registry.url"},
		{"no 1.1 marker", withRegistry, wasmgen.EchoWith(wasmgen.EchoOptions{Imports: []wasmgen.Import{wasmgen.SchemaImport()}}), true,
			"imports iq.schema, which ABI version 1.1 added, without declaring that version: export iq_abi_v1_1 as well"},
		{"wrong signature", withRegistry, wasmgen.EchoWith(wasmgen.EchoOptions{Markers: []string{"iq_abi_v1", "iq_abi_v1_1"}, Imports: []wasmgen.Import{wrongSig}}), true,
			"import iq.schema has signature (i32, i32, i32) -> (), want (i32, i32, i32) -> (i64)"},
		{"a newer minor version", withRegistry, wasmgen.EchoWith(wasmgen.EchoOptions{Markers: []string{"iq_abi_v1", "iq_abi_v1_2"}}), true,
			"needs ABI version 1.2 (its export iq_abi_v1_2); this host supports up to 1.1"},
	} {
		_, err := tc.h.Load(context.Background(), plugins.Spec{Name: "m", Binary: tc.bin, AllowRegistry: tc.grant})
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
	// A 1.1 module that does not import iq.schema needs no grant; a v1
	// module loads as before, granted or not.
	for _, bin := range [][]byte{wasmgen.EchoWith(wasmgen.EchoOptions{Markers: []string{"iq_abi_v1", "iq_abi_v1_1"}}), wasmgen.Echo()} {
		m, err := without.Load(context.Background(), plugins.Spec{Name: "m", Binary: bin, AllowRegistry: true})
		if err != nil {
			t.Fatal(err)
		}
		if m.Info().Has(plugins.CapRegistry) {
			t.Errorf("%+v has the registry capability without importing iq.schema", m.Info())
		}
		m.Close()
	}
}

// TestAvroValueExample: the SDK example examples/plugins/avro-value, built
// as a plugin author would, decodes Confluent-framed Avro records with the
// schemas iq.schema gives it; a record naming an unknown id is rejected, and
// one whose schema cannot be fetched while the registry is down fails (the
// record is not at fault) while records of cached schemas keep decoding.
func TestAvroValueExample(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain on PATH to build examples/plugins/avro-value for wasip1")
	}
	wasm := filepath.Join(t.TempDir(), "avro-value.wasm")
	build := exec.Command(goTool, "build", "-buildmode=c-shared", "-trimpath", "-o", wasm, ".")
	build.Dir = filepath.Join("..", "examples", "plugins", "avro-value")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building examples/plugins/avro-value: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}

	f := newFakeRegistry(t)
	v1 := f.register(t, "orders-value", sr.TypeAvro, avroOrder)
	const order2 = `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"total","type":"long"},{"name":"note","type":["null","string"],"default":null}]}`
	v2 := f.register(t, "orders-value", sr.TypeAvro, order2)
	h, _ := newHost(t, plugins.Options{Registry: f.client, Instances: 1})
	m, err := h.Load(context.Background(), plugins.Spec{Name: "avro-value", Binary: bin, AllowRegistry: true, Need: []plugins.Capability{plugins.CapValueToJSON}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)

	frame := func(id int32, schema string, v any) []byte {
		b, err := avro.Marshal(avro.MustParse(schema), v)
		if err != nil {
			t.Fatal(err)
		}
		return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(id)), b...)
	}
	for _, tc := range []struct {
		value []byte
		want  string
	}{
		{frame(v1, avroOrder, map[string]any{"id": "o-1", "total": int64(1250)}), `{"id":"o-1","total":1250}`},
		{frame(v2, order2, map[string]any{"id": "o-2", "total": int64(7), "note": "gift"}), `{"id":"o-2","total":7,"note":{"string":"gift"}}`},
	} {
		got, err := m.ValueToJSON(nil, tc.value)
		if err != nil || !sameJSON(got, tc.want) {
			t.Errorf("ValueToJSON = %s, %v, want %s", got, err, tc.want)
		}
	}

	var pe *plugins.Error
	_, err = m.ValueToJSON(nil, frame(4242, avroOrder, map[string]any{"id": "x", "total": int64(1)}))
	if !errors.As(err, &pe) || pe.Kind != plugins.KindRejected || !strings.Contains(pe.Msg, "schema id 4242, which the registry does not have") {
		t.Errorf("unknown schema id: %v, want a rejection", err)
	}
	_, err = m.ValueToJSON(nil, []byte("not framed"))
	if !errors.As(err, &pe) || pe.Kind != plugins.KindRejected {
		t.Errorf("a value without the Confluent header: %v, want a rejection", err)
	}

	f.down.Store(true)
	v3 := f.register(t, "orders-value", sr.TypeAvro, `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}`)
	_, err = m.ValueToJSON(nil, frame(v3, `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}`, map[string]any{"id": "o-3"}))
	if !errors.As(err, &pe) || pe.Kind != plugins.KindFailed || !strings.Contains(pe.Msg, "schema registry unavailable") || !errors.Is(err, registry.ErrRegistryUnavailable) {
		t.Errorf("registry down, schema not cached: %v, want a failure saying the registry is unavailable, which is registry.ErrRegistryUnavailable", err)
	}
	if got, err := m.ValueToJSON(nil, frame(v1, avroOrder, map[string]any{"id": "o-4", "total": int64(4)})); err != nil || !sameJSON(got, `{"id":"o-4","total":4}`) {
		t.Errorf("registry down, schema cached: %s, %v", got, err)
	}
	// Once the registry is back (and the client's backoff after the
	// failed fetch has passed), the record decodes.
	f.down.Store(false)
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		got, err := m.ValueToJSON(nil, frame(v3, `{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}`, map[string]any{"id": "o-3"}))
		if err == nil && sameJSON(got, `{"id":"o-3"}`) {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("registry back: %s, %v", got, err)
		}
	}
}

// sameJSON reports whether got is the JSON want (goavro writes a record's
// fields in no set order).
func sameJSON(got []byte, want string) bool {
	var g, w any
	return json.Unmarshal(got, &g) == nil && json.Unmarshal([]byte(want), &w) == nil && reflect.DeepEqual(g, w)
}
