package demo

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/iqengine/iqengine/plugins"
	"github.com/iqengine/iqengine/sdk/go/iq/vectors"
)

// conformance is where the example plugins' vectors are, from this package.
const conformance = "../../sdk/conformance"

// TestEmbeddedPluginsConform runs every conformance vector of each
// embedded module through the real plugin host, as `iqengine plugin test`
// does, so that a stale or broken module fails the tests.
func TestEmbeddedPluginsConform(t *testing.T) {
	for _, name := range PluginNames() {
		t.Run(name, func(t *testing.T) {
			bin, err := Plugin(name)
			if err != nil {
				t.Fatal(err)
			}
			vs, err := vectors.Load(filepath.Join(conformance, name+".jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			h, err := plugins.NewHost(plugins.Options{Instances: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close(ctx)
			bad, err := h.Conform(ctx, plugins.Spec{Name: name, Binary: bin}, vs)
			if err != nil {
				t.Fatalf("the embedded module does not load: %v", err)
			}
			for _, b := range bad {
				t.Errorf("%s.jsonl:%d: %s %s: %s", name, b.Vector.Line, b.Vector.Op, b.Vector.Name, b.Problem)
			}
			t.Logf("%d vectors", len(vs))
		})
	}
}

func TestWritePlugins(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plugins")
	for range 2 { // the second time replaces the files
		if err := WritePlugins(dir); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(PluginNames()) {
		t.Errorf("%d files in the plugins dir, want %d", len(entries), len(PluginNames()))
	}
	for _, name := range PluginNames() {
		want, _ := Plugin(name)
		got, err := os.ReadFile(filepath.Join(dir, name+".wasm"))
		if err != nil || !bytes.Equal(got, want) || len(want) == 0 {
			t.Errorf("%s.wasm: %d bytes, %v; want the %d embedded bytes", name, len(got), err, len(want))
		}
	}
	if _, err := Plugin("nope"); err == nil {
		t.Error(`Plugin("nope"): no error`)
	}
}
