// Package testplugins builds the Go example plugins (examples/plugins) for
// tests and benchmarks, once per test binary, as `make plugins` does.
package testplugins

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	once sync.Once
	dir  string
	err  error
)

// Names are the example plugins built.
var Names = []string{"sensor-value", "sensor-key", "project"}

// Dir builds every example plugin into a temporary directory (NAME.wasm)
// the first time it is called in a test binary, and returns it.
func Dir(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err = os.MkdirTemp("", "iqengine-example-plugins-")
		if err != nil {
			return
		}
		for _, name := range Names {
			cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", filepath.Join(dir, name+".wasm"), ".")
			cmd.Dir = filepath.Join(root, "examples", "plugins", name)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if out, berr := cmd.CombinedOutput(); berr != nil {
				err = fmt.Errorf("building example plugin %s: %v\n%s", name, berr, out)
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Module returns the bytes of one built example plugin.
func Module(t testing.TB, name string) []byte {
	t.Helper()
	b, rerr := os.ReadFile(filepath.Join(Dir(t), name+".wasm"))
	if rerr != nil {
		t.Fatal(rerr)
	}
	return b
}
