package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeJSON(t *testing.T, dir, name string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func load(thr, p99 float64) *LoadResult {
	return &LoadResult{Kind: "load", Requests: int64(thr), OK: int64(thr), OKThroughput: thr, Errors: map[string]int64{},
		Latency: Latency{P50: p99 / 4, P90: p99 / 2, P99: p99, P999: 2 * p99}}
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	writeJSON(t, dir, "meta", Meta{Kind: "meta", Mode: "quick", Command: "scripts/bench.sh quick", Date: "2026-11-26 23:00 UTC",
		Machine: "2 cores", Records: 20000, Concurrency: 16, Duration: 3, Warmup: 1, Dist: "uniform", Kafka: "4.4.0",
		Go: "go1.26.8", Java: "openjdk 17", StreamsJVM: "-Xmx1g", WallSeconds: 91})
	writeJSON(t, dir, "produce", ProduceResult{Kind: "produce", Records: 20000, Partitions: 12, ValueSize: 200, KeyFormat: DefaultKeyFormat, Seconds: 0.3})
	writeJSON(t, dir, "a-iqengine", load(12000, 5000))
	writeJSON(t, dir, "a-streams", load(4000, 10000))
	bi := load(6000, 9000)
	f := 0.5
	bi.Forwarded = &f
	bi.Errors["503"] = 6
	writeJSON(t, dir, "b-iqengine", bi)
	writeJSON(t, dir, "b-streams", load(5000, 8000))
	writeJSON(t, dir, "c-iqengine", load(900, 50000))
	writeJSON(t, dir, "floor", &LoadResult{Kind: "floor", OKThroughput: 150000, Latency: Latency{P50: 5, P99: 30, P999: 5000}})
	writeJSON(t, dir, "e-iqengine", RestoreResult{Kind: "restore", Seconds: 2, UpSeconds: 0.05, RecordsPerSecond: 10000, Memory: Memory{RSS: 100 << 20, Peak: 120 << 20}})
	writeJSON(t, dir, "e-streams", RestoreResult{Kind: "restore", Seconds: 8, UpSeconds: 1, RecordsPerSecond: 2500, Memory: Memory{RSS: 400 << 20, Peak: 400 << 20}})
	writeJSON(t, dir, "f-iqengine", MemoryResult{Kind: "memory", Memory: Memory{RSS: 50 << 20}})

	md, err := Report(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"## iqengine vs Kafka Streams (quick)",
		"`scripts/bench.sh quick`, 2026-11-26 23:00 UTC, 1m31s wall.",
		"Data: 20,000 records of ~200-byte JSON values, keys `k-0000042`, over 12 partitions",
		"| lookups/s (successful) | 12,000 | 4,000 | 3.00 | ≥ 1.5 ✓ |",
		"| p99 latency (ms) | 5.00 | 10.0 | 0.50 | < 1 ✓ |",
		"| lookups/s (successful) | 6,000 | 5,000 | 1.20 | ≥ 1.5 ✗ |",
		"| p99 latency (ms) | 9.00 | 8.00 | 1.12 | < 1 ✗ |",
		"| answered by the other node | 50.0% | — |",
		"| errors | 6 (0.10%; 503: 6) | 0 |",
		"| scans/s (successful) | 900 | — |  |  |",
		"| gets/s | 150,000 | — |",
		"not measured in this run",
		"| (e) restore 20,000 records from empty to all keys queryable | seconds (process start → ready) | 2.00 | 8.00 | 0.25 | ≤ 1 ✓ |",
		"| RSS when restored (MiB) | 100 | 400 | 0.25 | < 1 ✓ |",
		"| RSS after the (a) and (c) load runs (MiB) | 50 | — |  | < 1 |",
		"What the numbers mean:",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}

	writeJSON(t, dir, "d-iqengine", load(6000, 6000))
	md, err = Report(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md, "| (d) key lookup through a WASM value serializer (1 node) | lookups/s (ratio: ÷ (a) iqengine) | 6,000 | — | 0.50 |") {
		t.Errorf("no (d) row:\n%s", md)
	}

	// Rounds: the median one is shown, with the range.
	writeJSON(t, dir, "a-iqengine-2", load(9000, 4000))
	writeJSON(t, dir, "a-iqengine-3", load(15000, 3000))
	md, err = Report(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md, "| lookups/s (successful) | 12,000 (9,000–15,000) | 4,000 | 3.00 | ≥ 1.5 ✓ |") {
		t.Errorf("rounds:\n%s", md)
	}

	if _, err := Report(t.TempDir()); err == nil {
		t.Error("empty directory accepted")
	}
	bad := t.TempDir()
	writeJSON(t, bad, "x", map[string]string{"kind": "nonsense"})
	if _, err := Report(bad); err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestNum(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.891: "1,234,568", -4200: "-4,200"} {
		if got := num(in, 0); got != want {
			t.Errorf("num(%v) = %q, want %q", in, got, want)
		}
	}
	if got := num(12345.678, 2); got != "12,345.68" {
		t.Errorf("num 2 digits: %q", got)
	}
}
