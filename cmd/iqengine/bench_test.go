package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/iqengine/iqengine/internal/testutil"
)

func TestBenchUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"bench"}, []string{"a command is required"}},
		{[]string{"bench", "fly"}, []string{`unknown command "fly"`}},
		{[]string{"bench", "load"}, []string{"--target URL and --store NAME are required"}},
		{[]string{"bench", "load", "--target", "http://x", "--store", "s"}, []string{"--keys N is required"}},
		{[]string{"bench", "load", "--target", "http://x", "--store", "s", "--keys", "10", "--zipf", "0.5"}, []string{"--zipf 0.5"}},
		{[]string{"bench", "load", "--target", "http://x", "--store", "s", "--keys", "10", "--concurrency", "0"}, []string{"--concurrency 0"}},
		{[]string{"bench", "load", "--target", "http://x", "--store", "s", "--keys", "10", "--duration", "0s"}, []string{"--duration 0s"}},
		{[]string{"bench", "load", "--target", "http://x", "--store", "s", "--keys", "10", "--scan", "--scan-limit", "11"}, []string{"--scan-limit 11"}},
		{[]string{"bench", "load", "--target", "http://x", "--store", "s", "--keys", "10", "--key-format", "k-%s"}, []string{"key format"}},
		{[]string{"bench", "load", "--target", "http://x", "--store", "s", "--keys", "10", "--template", "{base}/{nope}"}, []string{"unknown placeholder {nope}"}},
		{[]string{"bench", "load", "--bogus"}, []string{"bench load: flag provided but not defined: -bogus", "iqengine bench load -h"}},
		{[]string{"bench", "load", "extra"}, []string{`unexpected argument "extra"`}},
		{[]string{"bench", "produce", "--brokers", "127.0.0.1:1"}, []string{"--brokers, --topic and --records N are required"}},
		{[]string{"bench", "produce", "--brokers", "b:1", "--topic", "t", "--records", "5", "--value-size", "10"}, []string{"--value-size 10"}},
		{[]string{"bench", "restore"}, []string{"either --config FILE or -- COMMAND"}},
		{[]string{"bench", "restore", "--config", "c.yaml", "--", "java"}, []string{"either --config FILE or -- COMMAND"}},
		{[]string{"bench", "restore", "--", "java"}, []string{"needs --ready-url or --probe-file"}},
		{[]string{"bench", "restore", "--ready-url", "http://x/readyz", "--probe-file", "p.json", "--", "java"}, []string{"--probe-file needs --store"}},
		{[]string{"bench", "wait"}, []string{"--ready-url"}},
		{[]string{"bench", "rss"}, []string{"--pid PID is required"}},
		{[]string{"bench", "floor", "--data-dir", "d"}, []string{"--data-dir and --topic are required"}},
		{[]string{"bench", "report"}, []string{"--dir DIR is required"}},
	} {
		r := runArgs(t, tc.args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2; stderr %s", tc.args, r.code, r.stderr)
			continue
		}
		wantOneLine(t, r.stderr, tc.wants...)
	}
}

func TestBenchHelp(t *testing.T) {
	r := runArgs(t, "bench", "-h")
	if r.code != 0 || !strings.Contains(r.stdout, "load     HTTP load") {
		t.Fatalf("exit %d, stdout %s", r.code, r.stdout)
	}
	r = runArgs(t, "bench", "load", "-h")
	if r.code != 0 || !strings.Contains(r.stderr, "usage: iqengine bench load") || !strings.Contains(r.stderr, "-served-by-header") {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	if r := runArgs(t, "-h"); !strings.Contains(r.stdout, "bench    the benchmark harness") {
		t.Errorf("main usage lacks bench: %s", r.stdout)
	}
}

func TestBenchLoadAndRSS(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/v1/stores/bench/keys/")
		w.Header().Set("Iqengine-Served-By", "n1")
		fmt.Fprintf(w, `{"key":%q,"value":{"a":1}}`, key)
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "a.json")
	r := runArgs(t, "bench", "load", "--target", srv.URL, "--store", "bench", "--keys", "100", "--concurrency", "2",
		"--duration", "200ms", "--warmup", "0s", "--served-by-header", "Iqengine-Served-By", "--target-name", "n1", "--json", "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var res struct {
		Kind     string           `json:"kind"`
		Requests int64            `json:"requests"`
		OK       int64            `json:"ok"`
		ServedBy map[string]int64 `json:"served_by"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if res.Kind != "load" || res.Requests == 0 || res.OK != res.Requests || res.ServedBy["n1"] != res.Requests {
		t.Errorf("%+v", res)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != r.stdout {
		t.Errorf("--out file differs from stdout (%v)", err)
	}

	// The human summary.
	r = runArgs(t, "bench", "load", "--target", srv.URL, "--store", "bench", "--keys", "100", "--scan", "--scan-limit", "1",
		"--duration", "100ms", "--warmup", "0s")
	if r.code != 0 || !strings.Contains(r.stdout, "scans of 1 keys") || !strings.Contains(r.stdout, "latency") {
		t.Errorf("exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
	}

	r = runArgs(t, "bench", "rss", "--pid", strconv.Itoa(os.Getpid()), "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"rss_bytes"`) {
		t.Errorf("rss: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
	r = runArgs(t, "bench", "rss", "--pid", "1073741824")
	if r.code != 1 {
		t.Errorf("rss of a missing pid: exit %d", r.code)
	}
	wantOneLine(t, r.stderr, "memory of pid 1073741824")
}

func TestBenchLoadDeadTargetIsOneLine(t *testing.T) {
	r := runArgs(t, "bench", "load", "--target", "http://"+testutil.FreeAddr(t), "--store", "bench", "--keys", "10")
	if r.code != 1 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	wantOneLine(t, r.stderr, "load: target", "connection refused")
}

func TestBenchReport(t *testing.T) {
	dir := t.TempDir()
	r := runArgs(t, "bench", "report", "--dir", dir)
	if r.code != 1 {
		t.Fatalf("empty dir: exit %d", r.code)
	}
	wantOneLine(t, r.stderr, "no results")
	if err := os.WriteFile(filepath.Join(dir, "a-iqengine.json"), []byte(`{"kind":"load","ok_throughput":1000,"requests":10,"ok":10}`), 0o644); err != nil {
		t.Fatal(err)
	}
	md := filepath.Join(t.TempDir(), "latest.md")
	r = runArgs(t, "bench", "report", "--dir", dir, "--out", md)
	if r.code != 0 || !strings.Contains(r.stdout, "| 1,000 | — |") {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if b, err := os.ReadFile(md); err != nil || string(b) != r.stdout {
		t.Errorf("--out differs (%v)", err)
	}
}

func TestBenchWaitProbes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" && !strings.HasPrefix(r.URL.Path, "/v1/stores/bench/keys/k-") {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	probe := filepath.Join(t.TempDir(), "produce.json")
	if err := os.WriteFile(probe, []byte(`{"kind":"produce","records":10,"last_keys":{"0":"k-0000009","1":"k-0000008"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runArgs(t, "bench", "wait", "--ready-url", srv.URL+"/readyz", "--probe-file", probe, "--store", "bench", "--timeout", "10s")
	if r.code != 0 || !strings.Contains(r.stdout, "2 probe keys found") {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	r = runArgs(t, "bench", "wait", "--ready-url", srv.URL+"/readyz", "--probe-file", probe, "--store", "other", "--timeout", "300ms")
	if r.code != 1 {
		t.Fatalf("wrong store: exit %d", r.code)
	}
	wantOneLine(t, r.stderr, "not ready", "404", "gave up after 300ms")
	if err := os.WriteFile(probe, []byte(`{"kind":"load"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runArgs(t, "bench", "wait", "--ready-url", srv.URL+"/readyz", "--probe-file", probe, "--store", "bench")
	if r.code != 2 {
		t.Fatalf("not a produce file: exit %d", r.code)
	}
	wantOneLine(t, r.stderr, "is not the JSON of bench produce")
}
