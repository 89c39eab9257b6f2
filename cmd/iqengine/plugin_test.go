package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iqengine/iqengine/internal/wasmgen"
)

func writeBytes(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr, func(string) string { return "" })
	return code, stdout.String(), stderr.String()
}

// plugin test passes matching vectors, and fails (exit 1, one line naming
// the file, the line and the difference) on a wrong one.
func TestPluginTestVectors(t *testing.T) {
	dir := t.TempDir()
	mod := writeBytes(t, dir, "echo.wasm", wasmgen.EchoWith(wasmgen.EchoOptions{Partition: true, Transform: true}))
	good := writeBytes(t, dir, "good.jsonl", []byte(`# echo returns its input
{"op":"value_to_json","in":"{\"a\":1}","out":"{\"a\":1}"}
{"op":"key_to_json","in_hex":"22c3a922","out":"\"é\""}
{"op":"key_from_text","in":"abc","out_hex":"616263","partitions":2,"partition":1}
{"op":"partition","in":"abcd","partitions":3,"partition":1}
{"op":"transform","params":{"x":"1"},"key":"\"k\"","value":"[1,2]","out":"[1,2]"}
{"op":"init","config":{"any":"thing"}}
{"op":"key_from_text","in":"","out":""}
`))
	code, stdout, stderr := runCLI("plugin", "test", mod, "--vectors", good)
	if code != 0 || !strings.Contains(stdout, "PASS") || !strings.Contains(stdout, "7 vectors") {
		t.Fatalf("good vectors: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}

	bad := writeBytes(t, dir, "bad.jsonl", []byte(`{"op":"value_to_json","in":"{\"a\":1}","out":"{\"a\":1}"}
{"op":"value_to_json","name":"wrong on purpose","in":"{\"a\":1}","out":"{\"a\":2}"}
{"op":"partition","in":"abcd","partitions":3,"partition":2}
{"op":"value_to_json","in":"{}","error":"reject"}
`))
	code, stdout, stderr = runCLI("plugin", "test", "--vectors", bad, mod)
	if code != 1 {
		t.Fatalf("bad vectors: exit %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	for _, want := range []string{
		`bad.jsonl:2: value_to_json (wrong on purpose): got "{\"a\":1}", want "{\"a\":2}"`,
		`bad.jsonl:3: partition: got partition 1, want 2`,
		`bad.jsonl:4: value_to_json: got success, want reject`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if lines := strings.Count(strings.TrimSpace(stderr), "\n"); lines != 0 || !strings.Contains(stderr, "3 of 4 vectors failed") {
		t.Errorf("stderr is not one summary line: %q", stderr)
	}

	// Usage errors: exit 2 and one line.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"plugin", "test", mod}, "--vectors FILE.jsonl is required"},
		{[]string{"plugin", "test", filepath.Join(dir, "nope.wasm"), "--vectors", good}, "no such file"},
		{[]string{"plugin", "test", writeBytes(t, dir, "trap.wasm", wasmgen.NotWasm()), "--vectors", good}, "not a WebAssembly module"},
		{[]string{"plugin", "test", mod, "--vectors", writeBytes(t, dir, "junk.jsonl", []byte("{\"op\":\"frobnicate\"}\n"))}, `junk.jsonl:1: unknown op "frobnicate"`},
		{[]string{"plugin", "frob"}, `unknown subcommand "frob"`},
	} {
		code, _, stderr := runCLI(c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args[1:], code, stderr, c.want)
		}
	}
}

func TestPluginInspect(t *testing.T) {
	dir := t.TempDir()
	mod := writeBytes(t, dir, "echo.wasm", wasmgen.EchoWith(wasmgen.EchoOptions{Transform: true}))
	code, stdout, stderr := runCLI("plugin", "inspect", mod)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"abi           v1", "capabilities  key_to_json, value_to_json, key_from_text, transform", "imports       none"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect lacks %q:\n%s", want, stdout)
		}
	}
	bad := writeBytes(t, dir, "imp.wasm", wasmgen.ForbiddenImport())
	code, _, stderr = runCLI("plugin", "inspect", bad)
	if code != 1 || !strings.Contains(stderr, "forbidden import wasi_snapshot_preview1.path_open") {
		t.Fatalf("forbidden import: exit %d, %q", code, stderr)
	}
}
