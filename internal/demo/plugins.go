package demo

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
)

// The readings store's plugins: prebuilt WebAssembly modules (the
// AssemblyScript SDK's builds of the example plugins; plugins/README.md says
// how to rebuild them), so that the demo needs nothing but the iqengine
// binary.
const (
	KeyPlugin       = "sensor-key"   // readings keys: site and sensor, "12-7"
	ValuePlugin     = "sensor-value" // readings values: the binary record as JSON
	TransformPlugin = "project"      // t.fields=… and t.min_FIELD=N
)

//go:embed plugins/*.wasm
var modules embed.FS

// PluginNames returns the names of the embedded modules, as the readings
// store refers to them.
func PluginNames() []string { return []string{KeyPlugin, ValuePlugin, TransformPlugin} }

// Plugin returns the embedded module of that name.
func Plugin(name string) ([]byte, error) {
	b, err := modules.ReadFile("plugins/" + name + ".wasm")
	if err != nil {
		return nil, fmt.Errorf("demo: no embedded plugin %q", name)
	}
	return b, nil
}

// WritePlugins writes every embedded module into dir as NAME.wasm, the
// layout of a node's plugins.dir, creating dir if needed. A file already
// there is replaced, so a demo restarted on the same data directory runs the
// modules of this binary, which wrote its data.
func WritePlugins(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("demo: plugins: %w", err)
	}
	for _, name := range PluginNames() {
		b, err := Plugin(name)
		if err != nil {
			return err
		}
		// Write beside and rename, so that a node watching the file never
		// reads it half-written.
		path := filepath.Join(dir, name+".wasm")
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return fmt.Errorf("demo: plugins: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("demo: plugins: %w", err)
		}
	}
	return nil
}
