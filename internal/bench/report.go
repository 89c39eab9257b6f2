package bench

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Meta describes a benchmark run; scripts/bench.sh writes it as meta.json
// in the run's directory.
type Meta struct {
	Kind        string  `json:"kind"` // "meta"
	Mode        string  `json:"mode"`
	Command     string  `json:"command"`
	Date        string  `json:"date"`
	Machine     string  `json:"machine"`
	Records     int     `json:"records"`
	Partitions  int     `json:"partitions"`
	ValueSize   int     `json:"value_size"`
	Concurrency int     `json:"concurrency"`
	Duration    float64 `json:"duration_seconds"`
	Warmup      float64 `json:"warmup_seconds"`
	Dist        string  `json:"dist"`
	Rounds      int     `json:"rounds,omitempty"`
	Kafka       string  `json:"kafka"`
	Go          string  `json:"go"`
	Java        string  `json:"java"`
	StreamsJVM  string  `json:"streams_jvm"`
	// IQStorage is iqengine's storage settings when not the defaults.
	IQStorage   string  `json:"iqengine_storage,omitempty"`
	WASM        string  `json:"wasm,omitempty"`
	Note        string  `json:"note,omitempty"`
	WallSeconds float64 `json:"wall_seconds,omitempty"`
}

// MemoryResult is one reading of a process's memory (`iqengine bench rss`).
type MemoryResult struct {
	Kind   string `json:"kind"` // "memory"
	PID    int    `json:"pid"`
	Memory Memory `json:"memory"`
}

// The files of a run directory, each the JSON output of one `iqengine
// bench` command: meta.json, produce.json, {a,b,c,d}-{iqengine,streams}.json
// (load), floor.json, e-{iqengine,streams}.json (restore) and
// f-{iqengine,streams}.json (memory after the load runs).
const (
	SystemIQ      = "iqengine"
	SystemStreams = "streams"
)

type run struct {
	meta    Meta
	produce *ProduceResult
	loads   map[string]*LoadResult // "a-iqengine", "floor", ...: the median round
	rounds  map[string][]*LoadResult
	restore map[string]*RestoreResult
	memory  map[string]*MemoryResult
}

func readRun(dir string) (*run, error) {
	r := &run{loads: map[string]*LoadResult{}, rounds: map[string][]*LoadResult{}, restore: map[string]*RestoreResult{}, memory: map[string]*MemoryResult{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("report: no results in %s", dir)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var k struct {
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(b, &k); err != nil {
			return nil, fmt.Errorf("report: %s: %w", f, err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		switch k.Kind {
		case "meta":
			err = json.Unmarshal(b, &r.meta)
		case "produce":
			r.produce = &ProduceResult{}
			err = json.Unmarshal(b, r.produce)
		case "load", "floor":
			l := &LoadResult{}
			err = json.Unmarshal(b, l)
			base := roundSuffix.ReplaceAllString(name, "")
			r.rounds[base] = append(r.rounds[base], l)
		case "restore":
			x := &RestoreResult{}
			err = json.Unmarshal(b, x)
			r.restore[name] = x
		case "memory":
			x := &MemoryResult{}
			err = json.Unmarshal(b, x)
			r.memory[name] = x
		default:
			err = fmt.Errorf("unknown kind %q", k.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("report: %s: %w", f, err)
		}
	}
	// Of several rounds of one run, the table shows the round with the
	// median throughput (its latencies too) and the range of throughputs.
	for name, ls := range r.rounds {
		sort.Slice(ls, func(i, j int) bool { return ls[i].OKThroughput < ls[j].OKThroughput })
		r.loads[name] = ls[(len(ls)-1)/2]
	}
	return r, nil
}

// roundSuffix is the "-2" of a-iqengine-2.json: the second round of (a).
var roundSuffix = regexp.MustCompile(`-[0-9]+$`)

// throughputText is the median round's throughput and, for several
// rounds, their range.
func (r *run) throughputText(name string) string {
	l := r.loads[name]
	if l == nil {
		return "—"
	}
	ls := r.rounds[name]
	if len(ls) < 2 {
		return num(l.OKThroughput, 0)
	}
	return fmt.Sprintf("%s (%s–%s)", num(l.OKThroughput, 0), num(ls[0].OKThroughput, 0), num(ls[len(ls)-1].OKThroughput, 0))
}

// aim is what a ratio (iqengine ÷ Kafka Streams) should be.
type aim struct {
	text string
	ok   func(float64) bool
}

var (
	aimThroughput = aim{"≥ 1.5", func(r float64) bool { return r >= 1.5 }}
	aimLower      = aim{"< 1", func(r float64) bool { return r < 1 }}
	aimAtMost     = aim{"≤ 1", func(r float64) bool { return r <= 1 }}
	aimNone       = aim{}
)

type table struct {
	b strings.Builder
}

func (t *table) row(scenario, measure, iq, ks string, ratio float64, a aim) {
	rs, as := "", a.text
	if !math.IsNaN(ratio) && !math.IsInf(ratio, 0) {
		rs = fmt.Sprintf("%.2f", ratio)
		if a.ok != nil {
			if a.ok(ratio) {
				as += " ✓"
			} else {
				as += " ✗"
			}
		}
	}
	fmt.Fprintf(&t.b, "| %s | %s | %s | %s | %s | %s |\n", scenario, measure, iq, ks, rs, as)
}

func ratio(a, b float64, okA, okB bool) float64 {
	if !okA || !okB || b == 0 {
		return math.NaN()
	}
	return a / b
}

// num formats n with thousands separators and digits decimals.
func num(n float64, digits int) string {
	s := strconv.FormatFloat(n, 'f', digits, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if neg {
		out = "-" + out
	}
	if frac != "" {
		out += "." + frac
	}
	return out
}

func ms(us float64) string {
	switch {
	case us >= 100_000:
		return num(us/1e3, 0)
	case us >= 10_000:
		return num(us/1e3, 1)
	default:
		return num(us/1e3, 2)
	}
}

func mib(b int64) string { return num(float64(b)/(1<<20), 0) }

func errorsText(l *LoadResult) string {
	if l == nil {
		return "—"
	}
	if len(l.Errors) == 0 {
		return "0"
	}
	var total int64
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l.Errors)) {
		total += l.Errors[k]
		parts = append(parts, fmt.Sprintf("%s: %s", k, num(float64(l.Errors[k]), 0)))
	}
	return fmt.Sprintf("%s (%.2f%%; %s)", num(float64(total), 0), 100*float64(total)/float64(max(l.Requests, 1)), strings.Join(parts, ", "))
}

func forwardedShare(l *LoadResult) string {
	if l == nil || l.Forwarded == nil {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", 100**l.Forwarded)
}

func (t *table) loadRows(r *run, scenario, what, scen string, throughputAim aim) {
	iq, ks := r.loads[scen+"-"+SystemIQ], r.loads[scen+"-"+SystemStreams]
	val := func(l *LoadResult, f func(*LoadResult) string) string {
		if l == nil {
			return "—"
		}
		return f(l)
	}
	get := func(l *LoadResult, f func(*LoadResult) float64) (float64, bool) {
		if l == nil {
			return 0, false
		}
		return f(l), true
	}
	thr := func(l *LoadResult) float64 { return l.OKThroughput }
	a, okA := get(iq, thr)
	b, okB := get(ks, thr)
	t.row(scenario, what+"/s (successful)", r.throughputText(scen+"-"+SystemIQ), r.throughputText(scen+"-"+SystemStreams),
		ratio(a, b, okA, okB), throughputAim)
	for _, p := range []struct {
		name string
		f    func(*LoadResult) float64
		aim  aim
	}{
		{"p50 latency (ms)", func(l *LoadResult) float64 { return l.Latency.P50 }, aimNone},
		{"p90 latency (ms)", func(l *LoadResult) float64 { return l.Latency.P90 }, aimNone},
		{"p99 latency (ms)", func(l *LoadResult) float64 { return l.Latency.P99 }, aimLower},
		{"p99.9 latency (ms)", func(l *LoadResult) float64 { return l.Latency.P999 }, aimNone},
	} {
		a, okA := get(iq, p.f)
		b, okB := get(ks, p.f)
		t.row("", p.name, val(iq, func(l *LoadResult) string { return ms(p.f(l)) }),
			val(ks, func(l *LoadResult) string { return ms(p.f(l)) }), ratio(a, b, okA, okB), p.aim)
	}
	t.row("", "errors", errorsText(iq), errorsText(ks), math.NaN(), aimNone)
}

// Report writes the markdown results of the run in dir: iqengine and Kafka
// Streams side by side, with the ratio iqengine ÷ Kafka Streams and the
// aim for it, and what each number means.
func Report(dir string) (string, error) {
	r, err := readRun(dir)
	if err != nil {
		return "", err
	}
	m := r.meta
	var out strings.Builder
	title := "iqengine vs Kafka Streams"
	if m.Mode != "" {
		title += " (" + m.Mode + ")"
	}
	fmt.Fprintf(&out, "## %s\n\n", title)
	if m.Command != "" {
		fmt.Fprintf(&out, "`%s`", m.Command)
		if m.Date != "" {
			fmt.Fprintf(&out, ", %s", m.Date)
		}
		if m.WallSeconds > 0 {
			fmt.Fprintf(&out, ", %s wall", wall(m.WallSeconds))
		}
		out.WriteString(".\n")
	}
	if m.Machine != "" {
		fmt.Fprintf(&out, "Machine: %s.\n", m.Machine)
	}
	if m.Kafka != "" || m.Go != "" || m.Java != "" {
		storage := "default storage settings (128 MiB block cache)"
		if m.IQStorage != "" {
			storage = m.IQStorage
		}
		fmt.Fprintf(&out, "Apache Kafka %s (one broker, same machine); iqengine built with %s, %s; Kafka Streams %s on %s (%s), default RocksDB settings.\n",
			m.Kafka, m.Go, storage, m.Kafka, m.Java, m.StreamsJVM)
	}
	records := m.Records
	if r.produce != nil {
		records = r.produce.Records
		fmt.Fprintf(&out, "Data: %s records of ~%d-byte JSON values, keys `%s`, over %d partitions (produced in %.1f s).\n",
			num(float64(records), 0), r.produce.ValueSize, fmt.Sprintf(r.produce.KeyFormat, 42), r.produce.Partitions, r.produce.Seconds)
	}
	if m.Concurrency > 0 {
		fmt.Fprintf(&out, "Load: %d concurrent keep-alive connections, %s s measured after %s s warm-up per run, %s keys; one system under load at a time",
			m.Concurrency, num(m.Duration, 0), num(m.Warmup, 0), m.Dist)
		if m.Rounds > 1 {
			fmt.Fprintf(&out, ", %d rounds alternating the systems: each figure is from the round with the median throughput, the throughput range of all rounds in brackets", m.Rounds)
		}
		out.WriteString(".\n")
	}
	out.WriteString("\n| scenario | measure | iqengine | Kafka Streams | iqengine ÷ Streams | aim |\n|---|---|---:|---:|---:|---|\n")
	var t table
	t.loadRows(r, "(a) key lookup, answered locally (1 node / 1 instance)", "lookups", "a", aimThroughput)
	if f := r.loads["floor"]; f != nil {
		t.row("floor under (a): raw Pebble point get, same keys and concurrency, no HTTP", "gets/s", num(f.OKThroughput, 0), "—", math.NaN(), aimNone)
		t.row("", "p50 / p99 / p99.9 (µs)", fmt.Sprintf("%s / %s / %s", num(f.Latency.P50, 1), num(f.Latency.P99, 1), num(f.Latency.P999, 1)), "—", math.NaN(), aimNone)
	}
	if d := r.loads["d-iqengine"]; d != nil {
		a := r.loads["a-iqengine"]
		rd := math.NaN()
		if a != nil && a.OKThroughput > 0 {
			rd = d.OKThroughput / a.OKThroughput
		}
		t.row("(d) key lookup through a WASM value serializer (1 node)", "lookups/s (ratio: ÷ (a) iqengine)", r.throughputText("d-iqengine"), "—", rd, aimNone)
		t.row("", "p50 / p99 / p99.9 latency (ms)", fmt.Sprintf("%s / %s / %s", ms(d.Latency.P50), ms(d.Latency.P99), ms(d.Latency.P999)), "—", math.NaN(), aimNone)
		t.row("", "errors", errorsText(d), "—", math.NaN(), aimNone)
	} else {
		t.row("(d) key lookup through a WASM value serializer", "not measured in this run", "—", "—", math.NaN(), aimNone)
	}
	b1, b2 := r.loads["b-iqengine"], r.loads["b-streams"]
	t.loadRows(r, "(b) key lookup through one node of two (about half forwarded)", "lookups", "b", aimThroughput)
	t.row("", "answered by the other node", forwardedShare(b1), forwardedShare(b2), math.NaN(), aimNone)
	t.loadRows(r, "(c) 100-key range scan (1 node / 1 instance)", "scans", "c", aimNone)

	e1, e2 := r.restore["e-"+SystemIQ], r.restore["e-"+SystemStreams]
	rs := func(x *RestoreResult, f func(*RestoreResult) string) string {
		if x == nil {
			return "—"
		}
		return f(x)
	}
	rf := func(x *RestoreResult, f func(*RestoreResult) float64) (float64, bool) {
		if x == nil {
			return 0, false
		}
		return f(x), true
	}
	restoreLabel := "(e) restore from empty to all keys queryable"
	if records > 0 {
		restoreLabel = fmt.Sprintf("(e) restore %s records from empty to all keys queryable", num(float64(records), 0))
	}
	secs := func(x *RestoreResult) float64 { return x.Seconds }
	a, okA := rf(e1, secs)
	b, okB := rf(e2, secs)
	t.row(restoreLabel, "seconds (process start → ready)", rs(e1, func(x *RestoreResult) string { return num(x.Seconds, 2) }),
		rs(e2, func(x *RestoreResult) string { return num(x.Seconds, 2) }), ratio(a, b, okA, okB), aimAtMost)
	up := func(x *RestoreResult) float64 { return x.UpSeconds }
	a, okA = rf(e1, up)
	b, okB = rf(e2, up)
	t.row("", "of which start-up (first HTTP answer)", rs(e1, func(x *RestoreResult) string { return num(x.UpSeconds, 2) }),
		rs(e2, func(x *RestoreResult) string { return num(x.UpSeconds, 2) }), ratio(a, b, okA, okB), aimNone)
	rps := func(x *RestoreResult) float64 { return x.RecordsPerSecond }
	a, okA = rf(e1, rps)
	b, okB = rf(e2, rps)
	t.row("", "records/s", rs(e1, func(x *RestoreResult) string { return num(x.RecordsPerSecond, 0) }),
		rs(e2, func(x *RestoreResult) string { return num(x.RecordsPerSecond, 0) }), ratio(a, b, okA, okB), aimNone)

	memLabel := "(f) memory of one node / instance holding every key"
	rssAt := func(x *RestoreResult) float64 { return float64(x.Memory.RSS) }
	a, okA = rf(e1, rssAt)
	b, okB = rf(e2, rssAt)
	t.row(memLabel, "RSS when restored (MiB)", rs(e1, func(x *RestoreResult) string { return mib(x.Memory.RSS) }),
		rs(e2, func(x *RestoreResult) string { return mib(x.Memory.RSS) }), ratio(a, b, okA, okB), aimLower)
	settled := func(x *RestoreResult) string {
		if x.MemoryAfterSettle == nil {
			return "—"
		}
		return mib(x.MemoryAfterSettle.RSS)
	}
	if (e1 != nil && e1.MemoryAfterSettle != nil) || (e2 != nil && e2.MemoryAfterSettle != nil) {
		sv := func(x *RestoreResult) float64 {
			if x.MemoryAfterSettle == nil {
				return math.NaN()
			}
			return float64(x.MemoryAfterSettle.RSS)
		}
		a, okA = rf(e1, sv)
		b, okB = rf(e2, sv)
		settle := 0.0
		if e1 != nil {
			settle = e1.SettleSeconds
		}
		t.row("", fmt.Sprintf("RSS %s s later, idle (MiB)", num(settle, 0)), rs(e1, settled), rs(e2, settled), ratio(a, b, okA, okB), aimLower)
	}
	peak := func(x *RestoreResult) float64 { return float64(x.Memory.Peak) }
	a, okA = rf(e1, peak)
	b, okB = rf(e2, peak)
	t.row("", "peak RSS during the restore (MiB)", rs(e1, func(x *RestoreResult) string { return mib(x.Memory.Peak) }),
		rs(e2, func(x *RestoreResult) string { return mib(x.Memory.Peak) }), ratio(a, b, okA, okB), aimNone)
	f1, f2 := r.memory["f-"+SystemIQ], r.memory["f-"+SystemStreams]
	ms := func(x *MemoryResult) string {
		if x == nil {
			return "—"
		}
		return mib(x.Memory.RSS)
	}
	a, okA, b, okB = 0, f1 != nil, 0, f2 != nil
	if okA {
		a = float64(f1.Memory.RSS)
	}
	if okB {
		b = float64(f2.Memory.RSS)
	}
	t.row("", "RSS after the (a) and (c) load runs (MiB)", ms(f1), ms(f2), ratio(a, b, okA, okB), aimLower)
	out.WriteString(t.b.String())
	out.WriteString(meanings)
	if m.Note != "" {
		fmt.Fprintf(&out, "\n%s\n", m.Note)
	}
	return out.String(), nil
}

func wall(s float64) string {
	d := int(math.Round(s))
	return fmt.Sprintf("%dm%02ds", d/60, d%60)
}

const meanings = `
What the numbers mean:

- **lookups/s, scans/s**: successful answers (2xx, and every 25th one decoded and checked) per second of the
  measured window, with that many clients each keeping one request in flight (closed loop) over keep-alive
  HTTP/1.1 on loopback. The load generator runs on the same 2 cores as the system under test, the broker is
  idle during load runs.
- **latency**: from sending a request to reading the last byte of its answer, HDR histogram of every measured
  request, errors included. The ratio column is iqengine ÷ Kafka Streams: above 1 means iqengine is higher
  (better for throughput, worse for latency, time and memory). "aim" is the issue's target; ✓ or ✗ says whether this run met it.
- **(b)**: two nodes (two instances) of one application, every request sent to the first; a key owned by the
  other is forwarded once, inside the system (iqengine: its internal endpoint; Kafka Streams: the peer asks
  the owner that ` + "`queryMetadataForKey`" + ` names). "answered by the other node" counts the answers' served-by header.
- **floor**: the same keys, distribution and concurrency as (a), as direct point gets on the stopped node's
  Pebble store (` + "`iqengine bench floor`" + `): what a lookup costs with no HTTP, routing or JSON.
- **(e)**: a fresh process with an empty state directory, timed from its start until its readiness endpoint
  answers 200 *and* the last key written to every partition can be read through the HTTP API (so every
  record is applied). iqengine: ` + "`/readyz`" + ` (every assigned partition caught up). Kafka Streams: state RUNNING and the
  store queryable; the application already has committed offsets at the end of the topic, so Kafka Streams
  restores the store from the topic (the source topic is the changelog, ` + "`topology.optimization=all`" + `) before RUNNING,
  which is its fastest path. Start-up is when the process first answered HTTP at all (JVM start for Streams).
- **settings**: both systems run with their defaults. iqengine: one Pebble store with a 128 MiB block cache
  shared by all partitions, 32 KiB blocks. Kafka Streams: one RocksDB per partition, each with its own 50 MB
  block cache (600 MB for 12 partitions) and 4 KiB blocks, plus a 10 MB record cache.
- **(f)**: VmRSS of the process from /proc (resident memory, including Pebble's or RocksDB's caches and, for the
  JVM, the heap it has taken from the OS). Kafka Streams runs with the JVM flags shown above.
`
