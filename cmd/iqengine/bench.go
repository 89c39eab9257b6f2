package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/bench"
)

const benchUsage = `usage: iqengine bench <command> [flags]

The benchmark harness (scripts/bench.sh runs the whole comparison with Kafka
Streams; BENCHMARKS.md has the results):

  load     HTTP load: lookups or range scans at a fixed concurrency and duration
  produce  write N benchmark records (keys k-0000042, ~SIZE-byte JSON values) to a topic
  restore  time a node (or any command) from an empty state to ready
  wait     wait until a running system is ready and holds every produced record
  rss      resident memory (VmRSS, VmHWM) of a process
  floor    raw Pebble point gets on a stopped node's data directory
  report   the markdown results table of a run directory

Every command prints a human summary, or JSON with --json; --out FILE also
writes the JSON to FILE. Run "iqengine bench <command> -h" for its flags.
`

// benchCmd runs `iqengine bench <command>`.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("bench: a command is required: load, produce, restore, wait, rss, floor or report (see iqengine bench -h)")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "load":
		return benchLoad(ctx, rest, stdout, stderr)
	case "produce":
		return benchProduce(ctx, rest, stdout, stderr)
	case "restore":
		return benchRestore(ctx, rest, stdout, stderr)
	case "wait":
		return benchWait(ctx, rest, stdout, stderr)
	case "rss":
		return benchRSS(rest, stdout, stderr)
	case "floor":
		return benchFloor(ctx, rest, stdout, stderr)
	case "report":
		return benchReport(rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, benchUsage)
		return nil
	default:
		return usageError{fmt.Errorf("bench: unknown command %q: want load, produce, restore, wait, rss, floor or report", cmd)}
	}
}

// listFlag is a repeatable flag whose values may also be comma separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// output is the --json and --out flags every bench command has.
type output struct {
	json *bool
	out  *string
}

func addOutput(fs *flags) output {
	return output{
		json: fs.Bool("json", false, "print JSON instead of the human summary"),
		out:  fs.String("out", "", "also write the JSON to this file"),
	}
}

// emit writes v as JSON to --out and prints it as JSON (--json) or with
// human(w).
func (o output) emit(stdout io.Writer, v any, human func(io.Writer)) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *o.out != "" {
		if err := os.WriteFile(*o.out, b, 0o644); err != nil {
			return err
		}
	}
	if *o.json {
		_, err = stdout.Write(b)
		return err
	}
	human(stdout)
	return nil
}

// keyFlags are the key-space flags of load and floor.
type keyFlags struct {
	keys   *int
	format *string
	zipf   *float64
}

func addKeyFlags(fs *flags) keyFlags {
	return keyFlags{
		keys:   fs.Int("keys", 0, "the key space: keys 0 to N-1 in --key-format (required)"),
		format: fs.String("key-format", bench.DefaultKeyFormat, "the keys' text, one integer verb"),
		zipf:   fs.Float64("zipf", 0, "Zipf exponent s > 1 for the key choice (key 0 hottest); 0: uniform"),
	}
}

func (k keyFlags) parse(cmd string) (bench.KeySpace, bench.Distribution, error) {
	ks := bench.KeySpace{N: *k.keys, Format: *k.format}
	if *k.keys < 1 {
		return ks, "", usageError{fmt.Errorf("bench %s: --keys N is required (see iqengine bench %s -h)", cmd, cmd)}
	}
	if err := ks.Validate(); err != nil {
		return ks, "", usageError{fmt.Errorf("bench %s: %w", cmd, err)}
	}
	switch {
	case *k.zipf == 0:
		return ks, bench.Uniform, nil
	case *k.zipf > 1:
		return ks, bench.Zipf, nil
	default:
		return ks, "", usageError{fmt.Errorf("bench %s: --zipf %v: want 0 (uniform) or more than 1", cmd, *k.zipf)}
	}
}

func positiveDuration(cmd, name string, d time.Duration, zeroOK bool) error {
	if d < 0 || (d == 0 && !zeroOK) {
		return usageError{fmt.Errorf("bench %s: --%s %v: want a positive duration", cmd, name, d)}
	}
	return nil
}

func benchLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench load", "bench load --target URL --store NAME --keys N [flags]", stderr)
	var targets listFlag
	fs.Var(&targets, "target", "base URL to send requests to, e.g. http://127.0.0.1:7070 (repeatable or comma separated; requests take turns)")
	store := fs.String("store", "", "the store name in the URL (required)")
	scan := fs.Bool("scan", false, "range scans of --scan-limit consecutive keys instead of key lookups")
	scanLimit := fs.Int("scan-limit", 100, "keys per scan, and the scan's limit")
	template := fs.String("template", "", "URL template with {base} {store} {key} {from} {to} {limit} (default: iqengine's API: "+bench.LookupTemplate+" or "+bench.ScanTemplate+")")
	kf := addKeyFlags(fs)
	concurrency := fs.Int("concurrency", 16, "concurrent requests (one keep-alive connection each)")
	duration := fs.Duration("duration", 10*time.Second, "measured duration")
	warmup := fs.Duration("warmup", 2*time.Second, "warm-up before the measurement, not recorded")
	timeout := fs.Duration("timeout", 10*time.Second, "one request's timeout")
	servedBy := fs.String("served-by-header", "", "count answers by this response header (iqengine: Iqengine-Served-By)")
	targetName := fs.String("target-name", "", "the first target's own --served-by-header value: other values were forwarded")
	seed := fs.Int64("seed", 1, "seed of the key choice")
	out := addOutput(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if len(targets) == 0 || *store == "" {
		return usageError{errors.New("bench load: --target URL and --store NAME are required (see iqengine bench load -h)")}
	}
	keys, dist, err := kf.parse("load")
	if err != nil {
		return err
	}
	if *concurrency < 1 || *concurrency > 10000 {
		return usageError{fmt.Errorf("bench load: --concurrency %d: want 1 to 10000", *concurrency)}
	}
	if *scanLimit < 1 || (*scan && *scanLimit > keys.N) {
		return usageError{fmt.Errorf("bench load: --scan-limit %d: want 1 to --keys", *scanLimit)}
	}
	for _, c := range []struct {
		name string
		d    time.Duration
		zero bool
	}{{"duration", *duration, false}, {"warmup", *warmup, true}, {"timeout", *timeout, false}} {
		if err := positiveDuration("load", c.name, c.d, c.zero); err != nil {
			return err
		}
	}
	o := bench.LoadOptions{
		Targets: targets, Store: *store, Mode: bench.Lookup, Template: *template, Keys: keys,
		Dist: dist, ZipfS: *kf.zipf, ScanLimit: *scanLimit, Concurrency: *concurrency,
		Warmup: *warmup, Duration: *duration, Timeout: *timeout,
		ServedByHeader: *servedBy, TargetName: *targetName, Seed: *seed,
	}
	if *scan {
		o.Mode = bench.Scan
	}
	if *template != "" {
		if _, err := bench.ParseTemplate(*template); err != nil {
			return usageError{fmt.Errorf("bench load: --template: %w", err)}
		}
	}
	res, err := bench.Load(ctx, o)
	if err != nil {
		return err
	}
	return out.emit(stdout, res, func(w io.Writer) { printLoad(w, res) })
}

func printLoad(w io.Writer, r *bench.LoadResult) {
	what := "lookups"
	if r.Mode == bench.Scan {
		what = fmt.Sprintf("scans of %d keys", r.ScanLimit)
	}
	if r.Kind == "floor" {
		what = "Pebble point gets"
	}
	dist := string(r.Dist)
	if r.Dist == bench.Zipf {
		dist = fmt.Sprintf("zipf s=%g", r.ZipfS)
	}
	fmt.Fprintf(w, "%s: %d concurrent, %.1f s measured after %.0f s warm-up, %d keys (%s), %s\n",
		what, r.Concurrency, r.Seconds, r.Warmup, r.Keys, dist, strings.Join(r.Targets, " "))
	fmt.Fprintf(w, "  requests   %d (%.1f/s), ok %d (%.1f/s)\n", r.Requests, r.Throughput, r.OK, r.OKThroughput)
	fmt.Fprintf(w, "  errors     %s\n", errorCounts(r.Errors))
	l := r.Latency
	if r.Kind == "floor" {
		fmt.Fprintf(w, "  latency    mean %.2f  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.1f (µs)\n", l.Mean, l.P50, l.P90, l.P99, l.P999, l.Max)
	} else {
		fmt.Fprintf(w, "  latency    mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.1f (ms)\n",
			l.Mean/1e3, l.P50/1e3, l.P90/1e3, l.P99/1e3, l.P999/1e3, l.Max/1e3)
	}
	if len(r.ServedBy) > 0 {
		var total int64
		for _, v := range r.ServedBy {
			total += v
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.ServedBy)) {
			parts = append(parts, fmt.Sprintf("%s %.1f%%", k, 100*float64(r.ServedBy[k])/float64(total)))
		}
		fmt.Fprintf(w, "  served by  %s\n", strings.Join(parts, ", "))
	}
}

func errorCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func benchProduce(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench produce", "bench produce --brokers HOST:PORT --topic T --records N [flags]", stderr)
	brokers := fs.String("brokers", "", "seed brokers, comma separated (required)")
	topic := fs.String("topic", "", "the topic (required)")
	partitions := fs.Int("partitions", 12, "the topic's partitions (created with them with --create, else checked)")
	create := fs.Bool("create", false, "create the topic if it does not exist")
	records := fs.Int("records", 0, "records to write, one per key 0 to N-1 (required)")
	size := fs.Int("value-size", 200, "approximate bytes of each JSON value")
	format := fs.String("key-format", bench.DefaultKeyFormat, "the keys' text, one integer verb")
	seed := fs.Int64("seed", 1, "seed of the values' random payload")
	out := addOutput(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if *brokers == "" || *topic == "" || *records < 1 {
		return usageError{errors.New("bench produce: --brokers, --topic and --records N are required (see iqengine bench produce -h)")}
	}
	if *partitions < 1 || *partitions > 100000 {
		return usageError{fmt.Errorf("bench produce: --partitions %d: want 1 to 100000", *partitions)}
	}
	if *size < 40 || *size > 10<<20 {
		return usageError{fmt.Errorf("bench produce: --value-size %d: want 40 to 10485760", *size)}
	}
	if err := (bench.KeySpace{N: *records, Format: *format}).Validate(); err != nil {
		return usageError{fmt.Errorf("bench produce: %w", err)}
	}
	res, err := bench.Produce(ctx, bench.ProduceOptions{
		Brokers: config.SplitBrokers(*brokers), Topic: *topic, Partitions: int32(*partitions), Create: *create,
		Records: *records, ValueSize: *size, KeyFormat: *format, Seed: *seed,
	})
	if err != nil {
		return err
	}
	return out.emit(stdout, res, func(w io.Writer) {
		fmt.Fprintf(w, "produced %d records (%.1f MB) to %s (%d partitions) in %.2f s: %.0f records/s\n",
			res.Records, float64(res.Bytes)/1e6, res.Topic, res.Partitions, res.Seconds, res.RecordsPerSecond)
	})
}

// probeFlags name the records whose presence proves a system holds every
// produced record: the last key of each partition, from produce's JSON.
type probeFlags struct {
	file     *string
	base     *string
	store    *string
	template *string
}

func addProbeFlags(fs *flags) probeFlags {
	return probeFlags{
		file:     fs.String("probe-file", "", "JSON of bench produce: its last key of every partition must be found before the system counts as ready"),
		base:     fs.String("probe-base", "", "base URL the probe lookups go to (default: the readiness URL's scheme and host)"),
		store:    fs.String("store", "", "the store name in the probe lookups (required with --probe-file)"),
		template: fs.String("template", bench.LookupTemplate, "the probe lookups' URL template"),
	}
}

// probes returns the probe URLs and the number of records produced.
func (p probeFlags) probes(cmd, readyURL string) ([]string, int, error) {
	if *p.file == "" {
		return nil, 0, nil
	}
	if *p.store == "" {
		return nil, 0, usageError{fmt.Errorf("bench %s: --probe-file needs --store", cmd)}
	}
	b, err := os.ReadFile(*p.file)
	if err != nil {
		return nil, 0, usageError{fmt.Errorf("bench %s: %w", cmd, err)}
	}
	var pr bench.ProduceResult
	if err := json.Unmarshal(b, &pr); err != nil || pr.Kind != "produce" {
		return nil, 0, usageError{fmt.Errorf("bench %s: %s is not the JSON of bench produce", cmd, *p.file)}
	}
	base := *p.base
	if base == "" {
		i := strings.Index(readyURL, "://")
		if i < 0 {
			return nil, 0, usageError{fmt.Errorf("bench %s: --probe-base is required", cmd)}
		}
		j := strings.IndexByte(readyURL[i+3:], '/')
		base = readyURL
		if j >= 0 {
			base = readyURL[:i+3+j]
		}
	}
	tpl, err := bench.ParseTemplate(*p.template)
	if err != nil {
		return nil, 0, usageError{fmt.Errorf("bench %s: --template: %w", cmd, err)}
	}
	parts := make([]int32, 0, len(pr.LastKeys))
	for part := range pr.LastKeys {
		parts = append(parts, part)
	}
	slices.Sort(parts)
	urls := make([]string, 0, len(parts))
	for _, part := range parts {
		urls = append(urls, tpl.URL(base, *p.store, pr.LastKeys[part]))
	}
	return urls, pr.Records, nil
}

func benchRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var command []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, command = args[:i], args[i+1:]
	}
	fs := newFlags("bench restore", "bench restore (--config FILE | --ready-url URL [--wipe DIR] -- COMMAND ARGS...) [flags]", stderr)
	cfgPath := fs.String("config", "", "an iqengine config: starts `iqengine serve --config FILE --data-dir DIR` with an empty DIR")
	dataDir := fs.String("data-dir", "", "with --config: the empty data directory (default: a new temporary one, removed afterwards)")
	bin := fs.String("bin", "", "with --config: the iqengine binary (default: this one)")
	readyURL := fs.String("ready-url", "", "the readiness URL (default with --config: http://LISTEN/readyz)")
	wipe := fs.String("wipe", "", "with a COMMAND: remove this state directory before starting it")
	probes := addProbeFlags(fs)
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for ready")
	settle := fs.Duration("settle", 0, "after ready, wait this long and read the memory again")
	logPath := fs.String("log", "", "write the process's output to this file (default: discarded)")
	out := addOutput(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if (*cfgPath == "") == (len(command) == 0) {
		return usageError{errors.New("bench restore: give either --config FILE or -- COMMAND ARGS... (see iqengine bench restore -h)")}
	}
	if err := positiveDuration("restore", "timeout", *timeout, false); err != nil {
		return err
	}
	if err := positiveDuration("restore", "settle", *settle, true); err != nil {
		return err
	}
	o := bench.RestoreOptions{Timeout: *timeout, Settle: *settle, Wipe: *wipe}
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return usageError{err}
		}
		if err := cfg.Env(os.Getenv); err != nil {
			return usageError{errorf("environment: %v", err)}
		}
		if *readyURL == "" {
			*readyURL = "http://" + cfg.Listen + "/readyz"
		}
		exe := *bin
		if exe == "" {
			if exe, err = os.Executable(); err != nil {
				return err
			}
		}
		dir := *dataDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "iqengine-bench-restore-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			dir = filepath.Join(tmp, "data")
		}
		if *wipe != "" {
			return usageError{errors.New("bench restore: --wipe is for a COMMAND; with --config, --data-dir is emptied")}
		}
		o.Wipe = dir
		o.Command = []string{exe, "serve", "--config", *cfgPath, "--data-dir", dir}
	} else {
		if *readyURL == "" && *probes.file == "" {
			return usageError{errors.New("bench restore: a COMMAND needs --ready-url or --probe-file")}
		}
		o.Command = command
	}
	urls, records, err := probes.probes("restore", *readyURL)
	if err != nil {
		return err
	}
	if *readyURL == "" && *probes.base == "" {
		return usageError{errors.New("bench restore: --probe-file without --ready-url needs --probe-base")}
	}
	o.Ready = bench.ReadyOptions{URL: *readyURL, Probes: urls}
	o.Records = records
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		o.Log = f
	}
	res, err := bench.Restore(ctx, o)
	if err != nil {
		return err
	}
	return out.emit(stdout, res, func(w io.Writer) {
		fmt.Fprintf(w, "restored in %.2f s (up after %.2f s, ready after %.2f s)", res.Seconds, res.UpSeconds, res.ReadySeconds)
		if res.Records > 0 {
			fmt.Fprintf(w, ": %d records, %.0f records/s", res.Records, res.RecordsPerSecond)
		}
		fmt.Fprintf(w, "\n  memory     RSS %.0f MiB, peak %.0f MiB\n", mibOf(res.Memory.RSS), mibOf(res.Memory.Peak))
		if m := res.MemoryAfterSettle; m != nil {
			fmt.Fprintf(w, "  after %.0f s RSS %.0f MiB, peak %.0f MiB\n", res.SettleSeconds, mibOf(m.RSS), mibOf(m.Peak))
		}
		fmt.Fprintf(w, "  stopped in %.2f s\n", res.StopSeconds)
	})
}

func mibOf(b int64) float64 { return float64(b) / (1 << 20) }

func benchWait(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench wait", "bench wait --ready-url URL [--probe-file F --store S] [flags]", stderr)
	readyURL := fs.String("ready-url", "", "the readiness URL, e.g. http://127.0.0.1:7070/readyz")
	probes := addProbeFlags(fs)
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait")
	instancesURL := fs.String("instances-url", "", "also wait until this URL's JSON \"instances\" array has --min-instances entries that own partitions")
	minInstances := fs.Int("min-instances", 2, "with --instances-url: how many instances must own partitions")
	pid := fs.Int("pid", 0, "fail at once if this process (the system waited for) exits")
	out := addOutput(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if *readyURL == "" && (*probes.file == "" || *probes.base == "") {
		return usageError{errors.New("bench wait: --ready-url, or --probe-file with --probe-base, is required (see iqengine bench wait -h)")}
	}
	if err := positiveDuration("wait", "timeout", *timeout, false); err != nil {
		return err
	}
	urls, _, err := probes.probes("wait", *readyURL)
	if err != nil {
		return err
	}
	start := time.Now()
	wctx, cancel := context.WithTimeoutCause(ctx, *timeout, fmt.Errorf("gave up after %v", *timeout))
	defer cancel()
	var exited <-chan struct{}
	if *pid > 0 {
		exited = bench.WatchPID(wctx, *pid)
	}
	t, err := bench.WaitReady(wctx, start, bench.ReadyOptions{
		URL: *readyURL, Probes: urls, InstancesURL: *instancesURL, MinInstances: *minInstances,
	}, exited)
	if err != nil {
		return fmt.Errorf("bench wait: %w", err)
	}
	res := map[string]any{"kind": "wait", "ready_seconds": t.Ready.Seconds(), "seconds": t.Probed.Seconds(), "probes": len(urls)}
	return out.emit(stdout, res, func(w io.Writer) {
		fmt.Fprintf(w, "ready after %.2f s (%d probe keys found)\n", t.Probed.Seconds(), len(urls))
	})
}

func benchRSS(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench rss", "bench rss --pid PID [--json]", stderr)
	pid := fs.Int("pid", 0, "the process id (required)")
	out := addOutput(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if *pid < 1 {
		return usageError{errors.New("bench rss: --pid PID is required (see iqengine bench rss -h)")}
	}
	m, err := bench.ReadMemory(*pid)
	if err != nil {
		return err
	}
	res := bench.MemoryResult{Kind: "memory", PID: *pid, Memory: m}
	return out.emit(stdout, res, func(w io.Writer) {
		fmt.Fprintf(w, "pid %d: RSS %.1f MiB, peak %.1f MiB\n", *pid, mibOf(m.RSS), mibOf(m.Peak))
	})
}

func benchFloor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench floor", "bench floor --data-dir DIR --topic T --keys N [flags]", stderr)
	dir := fs.String("data-dir", "", "a stopped node's data_dir (required)")
	topic := fs.String("topic", "", "the topic whose keys to get (required)")
	partitions := fs.Int("partitions", 12, "the topic's partition count")
	kf := addKeyFlags(fs)
	concurrency := fs.Int("concurrency", 16, "concurrent goroutines doing gets")
	duration := fs.Duration("duration", 10*time.Second, "measured duration")
	warmup := fs.Duration("warmup", 2*time.Second, "warm-up, not recorded")
	cache := fs.Int64("cache-size", 128<<20, "Pebble's block cache, bytes (the node's default)")
	seed := fs.Int64("seed", 1, "seed of the key choice")
	metrics := fs.Bool("pebble-metrics", false, "print Pebble's metrics (levels, files, cache hits) to stderr after the run")
	out := addOutput(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if *dir == "" || *topic == "" {
		return usageError{errors.New("bench floor: --data-dir and --topic are required (see iqengine bench floor -h)")}
	}
	keys, dist, err := kf.parse("floor")
	if err != nil {
		return err
	}
	if *concurrency < 1 || *concurrency > 10000 || *partitions < 1 {
		return usageError{errors.New("bench floor: --concurrency and --partitions must be positive")}
	}
	if err := positiveDuration("floor", "duration", *duration, false); err != nil {
		return err
	}
	if err := positiveDuration("floor", "warmup", *warmup, true); err != nil {
		return err
	}
	if _, err := os.Stat(*dir); err != nil {
		return usageError{fmt.Errorf("bench floor: %w", err)}
	}
	fo := bench.FloorOptions{
		Dir: *dir, Topic: *topic, Partitions: int32(*partitions), Keys: keys, Dist: dist, ZipfS: *kf.zipf,
		Concurrency: *concurrency, Warmup: *warmup, Duration: *duration, CacheSize: *cache, Seed: *seed,
	}
	if *metrics {
		fo.Metrics = stderr
	}
	res, err := bench.Floor(ctx, fo)
	if err != nil {
		return err
	}
	return out.emit(stdout, res, func(w io.Writer) { printLoad(w, res) })
}

func benchReport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench report", "bench report --dir DIR [--out FILE]", stderr)
	dir := fs.String("dir", "", "the run directory with the commands' JSON files (required)")
	outPath := fs.String("out", "", "also write the markdown to this file")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return usageError{errors.New("bench report: --dir DIR is required (see iqengine bench report -h)")}
	}
	md, err := bench.Report(*dir)
	if err != nil {
		return err
	}
	if *outPath != "" {
		if err := os.WriteFile(*outPath, []byte(md), 0o644); err != nil {
			return err
		}
	}
	_, err = io.WriteString(stdout, md)
	return err
}
