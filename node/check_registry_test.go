package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/wasmgen"
)

// registryConfig is the config of yaml (stores, and anything else) with
// schema_registry.url set to url when it is not empty.
func registryConfig(t *testing.T, url, yaml string) config.Config {
	t.Helper()
	if url != "" {
		yaml = "schema_registry: {url: " + url + ", timeout: 2s}\n" + yaml
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(p, []byte("application_id: app\nnode_id: n1\ndata_dir: "+filepath.Join(dir, "data")+"\n"+yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.LoadEnv(p, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// downRegistry is an in-process registry that answers 503 while down.
func downRegistry(t *testing.T) (*srfake.Registry, *atomic.Bool) {
	f := srfake.New()
	t.Cleanup(f.Close)
	var down atomic.Bool
	f.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if down.Load() {
			http.Error(w, `{"error_code":50301,"message":"down for the test"}`, http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	return f, &down
}

// checkLines runs checkRegistry and returns its lines as `iqengine check`
// prints them: "ok WHAT: FOUND" or "FAIL WHAT: ERR".
func checkLines(cfg config.Config) []string {
	var lines []string
	checkRegistry(context.Background(), cfg, func(what, found string, err error) {
		if err != nil {
			lines = append(lines, "FAIL "+what+": "+err.Error())
			return
		}
		lines = append(lines, "ok "+what+": "+found)
	})
	return lines
}

// TestCheckRegistry: `iqengine check --kafka` says whether the schema
// registry answers, and for each registry key serde which schema it encodes
// key text with (its pinned id or version, or the subject's latest), or why
// there is none; nothing when no store uses the registry.
func TestCheckRegistry(t *testing.T) {
	f, down := downRegistry(t)
	id, _, err := f.RegisterSchema("orders-key", sr.Schema{Schema: `"string"`})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.RegisterSchema("orders-key", sr.Schema{Schema: `"long"`}); err != nil {
		t.Fatal(err)
	}
	stores := fmt.Sprintf(`stores:
  - {name: a, topic: orders, key: avro, value: avro}
  - {name: b, topic: orders, key: {format: avro, schema_id: %d}, value: string}
  - {name: c, topic: orders, key: {format: avro, version: 1}}
  - {name: d, topic: payments, key: protobuf, value: json}
  - {name: e, topic: orders, key: {format: avro, schema_id: 999}}
  - {name: f, topic: orders, key: string, value: json-schema}
`, id)
	url := f.URL()
	got := checkLines(registryConfig(t, url, stores))
	want := []string{
		"ok schema registry " + url + ": answers; 1 subject",
		"ok key schema subject orders-key (latest version) (stores[0].key): schema id 2, a AVRO schema",
		fmt.Sprintf("ok key schema id %d (stores[1].key): schema id %d, a AVRO schema", id, id),
		"ok key schema subject orders-key version 1 (stores[2].key): schema id 1, a AVRO schema",
		"FAIL key schema subject payments-key (latest version) (stores[3].key): ",
		"FAIL key schema id 999 (stores[4].key): ",
	}
	if len(got) != len(want) {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("line %d:\n got %s\nwant %s...", i, got[i], want[i])
		}
	}
	for _, i := range []int{4, 5} {
		if !strings.Contains(got[i], "the schema registry has no") {
			t.Errorf("line %d: %s, want the registry's answer", i, got[i])
		}
	}

	// Down: one line saying so, no key lines.
	down.Store(true)
	got = checkLines(registryConfig(t, url, stores))
	if len(got) != 1 || !strings.HasPrefix(got[0], "FAIL schema registry "+url+": schema registry unavailable") || !strings.Contains(got[0], "down for the test") {
		t.Errorf("registry down: %q", got)
	}

	if got := checkLines(registryConfig(t, url, "stores: [{name: a, topic: t, key: string, value: json}]\n")); len(got) != 0 {
		t.Errorf("no store uses the registry: %q", got)
	}
}

// TestPluginRegistryGrant: a plugin store granted the registry
// (allow_registry) gets the node's client; without the grant, or without
// schema_registry, the node refuses it naming the field and why.
func TestPluginRegistryGrant(t *testing.T) {
	f, _ := downRegistry(t)
	wasm := filepath.Join(t.TempDir(), "schema-reader.wasm")
	if err := os.WriteFile(wasm, wasmgen.SchemaReader(), 0o644); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	load := func(cfg config.Config) (*storePlugins, error) {
		return loadStores(context.Background(), cfg, prometheus.NewRegistry(), log, nil)
	}

	sp, err := load(registryConfig(t, f.URL(), "stores: [{name: a, topic: t, key: string, value: {wasm: "+wasm+", allow_registry: true}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if sp.registry == nil || sp.host.Options().Registry != sp.registry {
		t.Error("the plugin host does not have the node's registry client")
	}
	sp.close()

	_, err = load(registryConfig(t, f.URL(), "stores: [{name: a, topic: t, key: string, value: {wasm: "+wasm+"}}]\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "stores[0].value: ") || !strings.Contains(err.Error(), "set allow_registry: true") {
		t.Errorf("not granted: %v", err)
	}

	cfg := registryConfig(t, "", "stores: [{name: a, topic: t, key: string, value: {wasm: "+wasm+", allow_registry: true}}]\n")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "schema_registry.url: is required: stores[0].value.allow_registry grants its plugin the schema registry") {
		t.Errorf("granted without a registry: Validate = %v", err)
	}
	if _, err := load(cfg); err == nil || !strings.Contains(err.Error(), "this node has no schema registry") {
		t.Errorf("granted without a registry: %v", err)
	}
}
