package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/internal/wasmgen"
)

// checkFile writes a check configuration: the brokers, an application id,
// short Kafka timeouts, then extra (which may add stores and sections).
func checkFile(t *testing.T, dir string, brokers []string, app, extra string) string {
	t.Helper()
	return writeFile(t, dir, "iqengine.yaml", "application_id: "+app+"\n"+
		"node_id: n1\n"+
		"data_dir: "+filepath.Join(dir, "data")+"\n"+
		"kafka:\n"+
		"  brokers: ["+strings.Join(brokers, ", ")+"]\n"+
		"  dial_timeout: 1s\n"+
		"  startup_timeout: 10s\n"+
		extra)
}

// wantCheck fails t unless check exited with code and printed exactly the
// one FAIL line that holds every one of fail (or none, for nil), and a
// one-line summary on stderr when it failed.
func wantCheck(t *testing.T, r result, code int, fail ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	var fails []string
	for line := range strings.Lines(r.stdout) {
		if strings.HasPrefix(line, "FAIL ") {
			fails = append(fails, line)
		} else if !strings.HasPrefix(line, "ok   ") && !strings.Contains(line, " checks passed") {
			t.Errorf("stdout line is neither ok nor FAIL: %q", line)
		}
	}
	if fail == nil {
		if len(fails) != 0 || r.stderr != "" {
			t.Fatalf("want no failure\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		}
		return
	}
	if len(fails) != 1 {
		t.Fatalf("%d FAIL lines, want 1:\n%s", len(fails), r.stdout)
	}
	for _, w := range fail {
		if !strings.Contains(fails[0], w) {
			t.Errorf("the FAIL line does not mention %q: %s", w, fails[0])
		}
	}
	wantOneLine(t, r.stderr, "check: ")
}

// A configuration check needs no broker. TestConfigErrors runs its
// wrong configurations through check too; these are the ways the
// environment reaches one: a variable the file names, and IQENGINE_*.
func TestCheckConfig(t *testing.T) {
	const (
		store  = "stores: [{name: a, topic: '${ORDERS_TOPIC:-t}'}]\n"
		strict = "stores: [{name: a, topic: '${ORDERS_TOPIC}'}]\n"
	)
	tests := []struct {
		name, yaml string
		env        map[string]string
		fail       string // the FAIL line holds it; "": the check passes
	}{
		{"valid", store, nil, ""},
		{"a variable in the file", strict, map[string]string{"ORDERS_TOPIC": "orders"}, ""},
		{"an unset variable in the file", strict, nil, "line 8: ${ORDERS_TOPIC}: ORDERS_TOPIC is not set"},
		{"a bad value in the environment", store, map[string]string{"IQENGINE_STORAGE_MEMTABLE_SIZE": "huge"}, `FAIL environment: IQENGINE_STORAGE_MEMTABLE_SIZE: "huge" is not a size`},
		{"a value from the environment that fails validation", store, map[string]string{"IQENGINE_STORAGE_MEMTABLE_SIZE": "64KiB"}, "storage.memtable_size: must be at least 1MiB"},
		{"a list from the environment that fails validation", store, map[string]string{"IQENGINE_BROKERS": "kafka-1"}, `kafka.brokers[0]: "kafka-1" is not host:port`},
	}
	closed := []string{testutil.FreeAddr(t)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := checkFile(t, t.TempDir(), closed, "app", tt.yaml)
			r := runCtx(t, context.Background(), envOf(tt.env), "check", "--config", path, fmt.Sprintf("--kafka=%t", tt.fail != ""))
			if tt.fail == "" {
				wantCheck(t, r, 0)
				if want := "ok   config " + path + ": valid: application app, node n1, 1 store on 1 topic\n1 of 1 checks passed (Kafka not checked: add --kafka)\n"; r.stdout != want {
					t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, want)
				}
				return
			}
			wantCheck(t, r, 2, tt.fail)
			if r.took > 2*time.Second {
				t.Errorf("took %s: a configuration check waits for nothing", r.took)
			}
		})
	}
}

// Every plugin loads as a node would load it, and runs the vectors beside
// it; a module that does not load or fails a vector is one FAIL line and
// exit 2.
func TestCheckPlugins(t *testing.T) {
	const echoVectors = `{"op":"value_to_json","in":"{\"a\":1}","out":"{\"a\":1}"}` + "\n" +
		`{"op":"key_from_text","in":"k","out":"k"}` + "\n"
	closed := []string{testutil.FreeAddr(t)}
	tests := []struct {
		name   string
		files  map[string][]byte // in the test's plugins.dir
		stores string
		fail   []string
		lines  []string
	}{
		{
			name:   "loads, no vectors",
			files:  map[string][]byte{"echo.wasm": wasmgen.Echo()},
			stores: "  - {name: a, topic: t, value: {wasm: echo}}\n",
			lines:  []string{"ok   plugin stores[0].value: ", "echo.wasm loads (ABI v1: key_to_json, value_to_json, key_from_text); no vectors beside it"},
		},
		{
			name:   "NAME.vectors.jsonl beside NAME.wasm",
			files:  map[string][]byte{"echo.wasm": wasmgen.Echo(), "echo.vectors.jsonl": []byte(echoVectors)},
			stores: "  - {name: a, topic: t, key: {wasm: echo}, value: {wasm: echo}}\n",
			lines:  []string{"ok   vectors stores[0].key: ", "echo.vectors.jsonl: 2 vectors pass"},
		},
		{
			name:   "vectors.jsonl in the module's directory",
			files:  map[string][]byte{"echo.wasm": wasmgen.Echo(), "vectors.jsonl": []byte(echoVectors)},
			stores: "  - {name: a, topic: t, value: {wasm: echo}}\n",
			lines:  []string{"vectors.jsonl: 2 vectors pass"},
		},
		{
			name:   "not a module",
			files:  map[string][]byte{"junk.wasm": wasmgen.NotWasm()},
			stores: "  - {name: a, topic: t}\n  - {name: b, topic: t, value: {wasm: junk}}\n",
			fail:   []string{"FAIL plugin: stores[1].value: ", "not a WebAssembly module"},
		},
		{
			name:   "a missing module",
			stores: "  - {name: a, topic: t, value: {wasm: nowhere}}\n",
			fail:   []string{"FAIL plugin: stores[0].value: ", "nowhere.wasm", "no such file"},
		},
		{
			name:   "a capability the store needs",
			files:  map[string][]byte{"echo.wasm": wasmgen.Echo()},
			stores: "  - {name: a, topic: t, transform: {wasm: echo}}\n",
			fail:   []string{"FAIL plugin: stores[0].transform: ", "transform"},
		},
		{
			name:   "fails its vectors",
			files:  map[string][]byte{"echo.wasm": wasmgen.Echo(), "echo.vectors.jsonl": []byte(echoVectors + `{"op":"value_to_json","name":"wrong on purpose","in":"1","out":"2"}` + "\n")},
			stores: "  - {name: a, topic: t, value: {wasm: echo}}\n",
			fail:   []string{"FAIL vectors stores[0].value: 1 of 3 vectors fail; the first: ", `echo.vectors.jsonl:3: value_to_json (wrong on purpose): got "1", want "2"`},
		},
		{
			name:   "an unreadable vectors file",
			files:  map[string][]byte{"echo.wasm": wasmgen.Echo(), "echo.vectors.jsonl": []byte("{\"op\":\"frobnicate\"}\n")},
			stores: "  - {name: a, topic: t, value: {wasm: echo}}\n",
			fail:   []string{"FAIL vectors stores[0].value: ", `echo.vectors.jsonl:1: unknown op "frobnicate"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			plugins := filepath.Join(dir, "plugins")
			if err := os.Mkdir(plugins, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, data := range tt.files {
				writeBytes(t, plugins, name, data)
			}
			path := checkFile(t, dir, closed, "app", "plugins: {dir: '"+plugins+"'}\nstores:\n"+tt.stores)
			r := runCtx(t, context.Background(), noEnv, "check", "--config", path)
			if tt.fail == nil {
				wantCheck(t, r, 0)
			} else {
				wantCheck(t, r, 2, tt.fail...)
			}
			for _, l := range tt.lines {
				if !strings.Contains(r.stdout, l) {
					t.Errorf("stdout lacks %q:\n%s", l, r.stdout)
				}
			}
			// Not even the plugins' compilation cache is written.
			if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("data dir: stat = %v, want it not created", err)
			}
		})
	}
}

// serve loads the plugins before it reaches Kafka, as check does: a
// module that does not load is exit 2 at once, not after the wait for an
// unreachable broker.
func TestServeLoadsPluginsBeforeKafka(t *testing.T) {
	dir := t.TempDir()
	junk := writeBytes(t, dir, "junk.wasm", wasmgen.NotWasm())
	path := checkFile(t, dir, []string{testutil.FreeAddr(t)}, "app", "stores: [{name: a, topic: t, value: {wasm: '"+junk+"'}}]\n")
	r := runArgs(t, "serve", "--config", path)
	if r.code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%s", r.code, r.stderr)
	}
	wantOneLine(t, r.stderr, "stores[0].value: ", "not a WebAssembly module")
	if r.took > 5*time.Second {
		t.Errorf("took %s: the plugin was loaded after waiting for the broker (startup_timeout 10s)", r.took)
	}
}
