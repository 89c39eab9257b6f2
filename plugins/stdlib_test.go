package plugins_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/iqengine/iqengine/plugins"
)

// A Go plugin may use fmt, strconv, encoding/json, time and os: they link
// os and syscall, whose start-up asks WASI for preopened directories
// (fd_prestat_get, fd_prestat_dir_name) and sets descriptor flags
// (fd_fdstat_set_flags). The host allows those imports and answers that
// there are no preopens (sdk/ABI.md, Imports), so such a module loads and
// runs. testdata/stdlib is the plugin, a module of its own that requires only
// the SDK, built here as a plugin author would.
func TestGoPluginMayUseTheStandardLibrary(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain on PATH to build testdata/stdlib for wasip1")
	}
	wasm := filepath.Join(t.TempDir(), "stdlib.wasm")
	build := exec.Command(goTool, "build", "-buildmode=c-shared", "-trimpath", "-o", wasm, ".")
	build.Dir = filepath.Join("testdata", "stdlib")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building testdata/stdlib: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}

	h, _ := newHost(t, plugins.Options{Instances: 1})
	m := load(t, h, "stdlib", bin, plugins.CapValueToJSON)
	for _, imp := range []string{"fd_prestat_get", "fd_prestat_dir_name", "fd_fdstat_set_flags"} {
		if !slices.Contains(m.Info().Imports, "wasi_snapshot_preview1."+imp) {
			t.Errorf("the module does not import %s, so this test no longer shows the host accepts it; imports: %v", imp, m.Info().Imports)
		}
	}

	const n = 1700000042
	got, err := m.ValueToJSON(nil, []byte(strconv.Itoa(n)))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(map[string]string{
		"fmt":     fmt.Sprintf("%05d|%x|%8.3f|%q|%v", n, n, float64(n)/7, strconv.Itoa(n), []int64{n, -n}),
		"strconv": strconv.Quote(strconv.FormatFloat(float64(n)/3, 'g', -1, 64)),
		"time":    time.Unix(n, 0).UTC().Format(time.RFC3339),
		"env":     "", // the host gives a plugin no environment
	})
	if string(got) != string(want) {
		t.Errorf("ValueToJSON(%d) =\n  %s\nwant (the same formatting natively)\n  %s", n, got, want)
	}

	// iq.Reject formats with fmt.Errorf: %q and %w as fmt does.
	_, err = m.ValueToJSON(nil, []byte("x"))
	var pe *plugins.Error
	if !errors.As(err, &pe) || pe.Kind != plugins.KindRejected || pe.Msg != `value "x": strconv.ParseInt: parsing "x": invalid syntax` {
		t.Errorf(`ValueToJSON("x"): %v, want a rejection with fmt's message`, err)
	}
}
