// Package bench is iqengine's benchmark harness: an HTTP load generator
// (Load), a producer of benchmark data (Produce), a restore timer (Restore),
// memory readings (ReadMemory), the raw Pebble point-get floor (Floor) and
// the results report (Report). `iqengine bench` is its command line and
// scripts/bench.sh runs the whole comparison with Kafka Streams.
//
// The load generator is closed-loop: a fixed number of workers, each with
// one keep-alive connection's worth of requests in flight, for a fixed
// duration after a warm-up. Latency is measured from sending a request to
// reading the last byte of its answer and kept in HDR histograms
// (github.com/HdrHistogram/hdrhistogram-go, 3 significant digits), one per
// worker, merged at the end. Being closed-loop, it reports the latency a
// client sees at the throughput the system sustains; it does not correct
// for coordinated omission.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Mode is what a load run asks for.
type Mode string

// The modes: key lookups and range scans.
const (
	Lookup Mode = "get"
	Scan   Mode = "scan"
)

// LoadOptions configures Load. Zero values take the defaults noted.
type LoadOptions struct {
	// Targets are the base URLs requests go to, in turn (each worker starts
	// at a different one).
	Targets []string
	// Store is the store name in the URL.
	Store string
	// Mode is Lookup (default) or Scan.
	Mode Mode
	// Template is the request URL template; default LookupTemplate or
	// ScanTemplate by Mode.
	Template string
	// Keys is the key space requests are drawn from.
	Keys KeySpace
	// Dist and ZipfS choose key numbers: uniform (default) or Zipf with
	// exponent ZipfS > 1. For a scan, the number is the first key's.
	Dist  Distribution
	ZipfS float64
	// ScanLimit is a scan's page size and the number of keys in its range
	// (default 100).
	ScanLimit int
	// Concurrency is the number of workers, each with one request in flight
	// (default 16).
	Concurrency int
	// Warmup runs before the measurement and is not recorded; Duration is
	// the measurement (default 10s).
	Warmup, Duration time.Duration
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
	// ServedByHeader, when set, counts answers by that response header's
	// value (iqengine: Iqengine-Served-By), which shows how many lookups an
	// owner other than the target answered.
	ServedByHeader string
	// TargetName is the ServedByHeader value of the first target itself:
	// answers with another value were forwarded.
	TargetName string
	// VerifyEvery decodes every n-th successful answer and checks it (the
	// key of a lookup, the first key and the item count of a scan); a wrong
	// answer counts as a "bad-body" error. Default 25; negative: never.
	VerifyEvery int
	// Seed seeds the workers' key choices (worker i uses Seed+i).
	Seed int64
	// Client overrides the HTTP client (tests).
	Client *http.Client
}

// LoadResult is what a load run measured. Latencies are in microseconds.
type LoadResult struct {
	Kind        string       `json:"kind"` // "load"
	Mode        Mode         `json:"mode"`
	Targets     []string     `json:"targets"`
	Store       string       `json:"store"`
	Template    string       `json:"template"`
	Keys        int          `json:"keys"`
	Dist        Distribution `json:"dist"`
	ZipfS       float64      `json:"zipf_s,omitempty"`
	ScanLimit   int          `json:"scan_limit,omitempty"`
	Concurrency int          `json:"concurrency"`
	Warmup      float64      `json:"warmup_seconds"`
	// Seconds is the measured window, from the end of the warm-up until the
	// last measured request finished.
	Seconds float64 `json:"seconds"`
	// Requests counts the requests started in the measured window; OK those
	// answered 2xx with a body that passed the check.
	Requests int64 `json:"requests"`
	OK       int64 `json:"ok"`
	// Errors counts the rest by HTTP status ("404", "503"), or "transport",
	// "timeout" or "bad-body".
	Errors map[string]int64 `json:"errors"`
	// Throughput is Requests per second; OKThroughput OK per second.
	Throughput   float64 `json:"throughput"`
	OKThroughput float64 `json:"ok_throughput"`
	// Latency of the measured requests, errors included.
	Latency Latency `json:"latency_us"`
	// BytesPerRequest is the mean size of an answer's body.
	BytesPerRequest float64 `json:"bytes_per_request"`
	// Verified counts the answers decoded and checked.
	Verified int64 `json:"verified"`
	// ServedBy counts answers by the ServedByHeader's value.
	ServedBy   map[string]int64 `json:"served_by,omitempty"`
	TargetName string           `json:"target_name,omitempty"`
	// Forwarded is the share of ServedBy answers not served by TargetName.
	Forwarded *float64 `json:"forwarded,omitempty"`
}

// Latency summarises a histogram, in microseconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// histogram records nanoseconds from 1 ns to a minute with 3 significant
// digits; longer values are recorded as a minute.
func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(time.Minute), 3)
}

func record(h *hdrhistogram.Histogram, d time.Duration) {
	v := int64(d)
	if v < 1 {
		v = 1
	}
	if v > h.HighestTrackableValue() {
		v = h.HighestTrackableValue()
	}
	_ = h.RecordValue(v)
}

func summarize(h *hdrhistogram.Histogram) Latency {
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Mean: h.Mean() / 1e3,
		P50:  us(h.ValueAtQuantile(50)),
		P90:  us(h.ValueAtQuantile(90)),
		P99:  us(h.ValueAtQuantile(99)),
		P999: us(h.ValueAtQuantile(99.9)),
		Max:  us(h.Max()),
	}
}

func (o *LoadOptions) defaults() error {
	if len(o.Targets) == 0 {
		return errors.New("load: no target")
	}
	if o.Store == "" {
		return errors.New("load: no store")
	}
	if o.Mode == "" {
		o.Mode = Lookup
	}
	if o.Mode != Lookup && o.Mode != Scan {
		return fmt.Errorf("load: mode %q: want get or scan", o.Mode)
	}
	if o.Template == "" {
		o.Template = LookupTemplate
		if o.Mode == Scan {
			o.Template = ScanTemplate
		}
	}
	if err := o.Keys.Validate(); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if o.ScanLimit == 0 {
		o.ScanLimit = 100
	}
	if o.ScanLimit < 1 {
		return fmt.Errorf("load: scan limit %d: want at least 1", o.ScanLimit)
	}
	if o.Mode == Scan && o.ScanLimit > o.Keys.N {
		return fmt.Errorf("load: scan limit %d is more than the %d keys", o.ScanLimit, o.Keys.N)
	}
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
	if o.Concurrency < 1 {
		return fmt.Errorf("load: concurrency %d: want at least 1", o.Concurrency)
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Duration < 0 || o.Warmup < 0 {
		return errors.New("load: negative duration or warm-up")
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.VerifyEvery == 0 {
		o.VerifyEvery = 25
	}
	if o.Dist == "" {
		o.Dist = Uniform
	}
	return nil
}

// NewClient is the load generator's HTTP client: keep-alive HTTP/1.1 with
// room for every worker's connection to every target, no compression.
func NewClient(concurrency int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        0,
			MaxIdleConnsPerHost: concurrency * 2,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

// worker is one closed-loop client.
type worker struct {
	o        *LoadOptions
	tpl      Template
	client   *http.Client
	ch       *chooser
	fk       fastKey
	hist     *hdrhistogram.Histogram
	errs     map[string]int64
	servedBy map[string]int64
	served   string // the last answer's ServedByHeader
	requests int64
	ok       int64
	verified int64
	bytes    int64
	warmups  int64
	url      []byte
	key      []byte
	body     bytes.Buffer
}

// Load runs the load described by o and returns what it measured. It first
// asks each target for one key and fails fast if a target does not answer.
func Load(ctx context.Context, o LoadOptions) (*LoadResult, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	tpl, err := ParseTemplate(o.Template)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if o.Mode == Lookup && !tpl.has(phKey) {
		return nil, fmt.Errorf("load: lookup template %q has no {key}", o.Template)
	}
	if o.Mode == Scan && !tpl.has(phFrom) {
		return nil, fmt.Errorf("load: scan template %q has no {from}", o.Template)
	}
	client := o.Client
	if client == nil {
		client = NewClient(o.Concurrency, o.Timeout)
	}
	workers := make([]*worker, o.Concurrency)
	for i := range workers {
		n := o.Keys.N
		if o.Mode == Scan {
			n = o.Keys.N - o.ScanLimit + 1
		}
		ch, err := newChooser(o.Seed+int64(i), n, o.Dist, o.ZipfS)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		workers[i] = &worker{
			o: &o, tpl: tpl, client: client, ch: ch, fk: compileKey(o.Keys.Format),
			hist: newHistogram(), errs: map[string]int64{}, servedBy: map[string]int64{},
		}
	}
	// One request per target first: a target that is down is an error, not
	// a run full of transport errors.
	for _, t := range o.Targets {
		w := workers[0]
		status, err := w.do(ctx, t, 0)
		if err != nil {
			return nil, fmt.Errorf("load: target %s: %w", t, err)
		}
		if status >= 500 {
			return nil, fmt.Errorf("load: target %s answered %d to %s", t, status, w.url)
		}
	}
	workers[0].errs = map[string]int64{}
	workers[0].servedBy = map[string]int64{}

	start := time.Now()
	measure := start.Add(o.Warmup)
	end := measure.Add(o.Duration)
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx, i, measure, end)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	elapsed := time.Since(measure)

	res := &LoadResult{
		Kind: "load", Mode: o.Mode, Targets: o.Targets, Store: o.Store, Template: o.Template,
		Keys: o.Keys.N, Dist: o.Dist, Concurrency: o.Concurrency,
		Warmup: o.Warmup.Seconds(), Seconds: elapsed.Seconds(), Errors: map[string]int64{},
	}
	if o.Dist == Zipf {
		res.ZipfS = o.ZipfS
	}
	if o.Mode == Scan {
		res.ScanLimit = o.ScanLimit
	}
	h := newHistogram()
	var bodyBytes int64
	for _, w := range workers {
		h.Merge(w.hist)
		res.Requests += w.requests
		res.OK += w.ok
		res.Verified += w.verified
		bodyBytes += w.bytes
		for k, v := range w.errs {
			res.Errors[k] += v
		}
		if o.ServedByHeader != "" {
			if res.ServedBy == nil {
				res.ServedBy = map[string]int64{}
			}
			for k, v := range w.servedBy {
				res.ServedBy[k] += v
			}
		}
	}
	res.Latency = summarize(h)
	if o.TargetName != "" && len(res.ServedBy) > 0 {
		var total int64
		for _, v := range res.ServedBy {
			total += v
		}
		f := float64(total-res.ServedBy[o.TargetName]) / float64(total)
		res.TargetName, res.Forwarded = o.TargetName, &f
	}
	if elapsed > 0 {
		res.Throughput = float64(res.Requests) / elapsed.Seconds()
		res.OKThroughput = float64(res.OK) / elapsed.Seconds()
	}
	if res.Requests > 0 {
		res.BytesPerRequest = float64(bodyBytes) / float64(res.Requests)
	}
	return res, nil
}

// run sends requests until end; those started at or after measure are
// recorded.
func (w *worker) run(ctx context.Context, id int, measure, end time.Time) {
	targets := w.o.Targets
	for i := id; ctx.Err() == nil; i++ {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		recording := !now.Before(measure)
		n := w.ch.next()
		t0 := time.Now()
		status, err := w.do(ctx, targets[i%len(targets)], n)
		lat := time.Since(t0)
		if !recording {
			w.warmups++
			continue
		}
		w.requests++
		record(w.hist, lat)
		if w.served != "" {
			w.servedBy[w.served]++
		}
		switch {
		case err != nil:
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				w.errs["timeout"]++
			} else {
				w.errs["transport"]++
			}
		case status < 200 || status > 299:
			w.errs[strconv.Itoa(status)]++
		default:
			w.bytes += int64(w.body.Len())
			if w.o.VerifyEvery > 0 && w.requests%int64(w.o.VerifyEvery) == 0 {
				w.verified++
				if verr := w.verify(n); verr != nil {
					w.errs["bad-body"]++
					continue
				}
			}
			w.ok++
		}
	}
}

// keyText formats key number n into w.key.
func (w *worker) keyText(n int) string {
	if w.fk.ok {
		w.key = w.fk.appendKey(w.key[:0], n)
		return string(w.key)
	}
	return w.o.Keys.Key(n)
}

// do sends the request for key number n (a scan's first key) to target
// and reads the whole answer into w.body.
func (w *worker) do(ctx context.Context, target string, n int) (int, error) {
	v := values{Base: target, Store: w.o.Store, Limit: w.o.ScanLimit}
	if w.o.Mode == Scan {
		v.From = w.keyText(n)
		v.To = w.keyText(n + w.o.ScanLimit - 1)
	} else {
		v.Key = w.keyText(n)
	}
	w.url = w.tpl.appendURL(w.url[:0], &v)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, string(w.url), nil)
	if err != nil {
		return 0, err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	w.body.Reset()
	_, err = w.body.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	w.served = ""
	if w.o.ServedByHeader != "" {
		w.served = resp.Header.Get(w.o.ServedByHeader)
	}
	return resp.StatusCode, nil
}

// verify checks the answer in w.body for key number n.
func (w *worker) verify(n int) error {
	if w.o.Mode == Scan {
		var page struct {
			Items []struct {
				Key string `json:"key"`
			} `json:"items"`
		}
		if err := json.Unmarshal(w.body.Bytes(), &page); err != nil {
			return err
		}
		if len(page.Items) != w.o.ScanLimit {
			return fmt.Errorf("%d items, want %d", len(page.Items), w.o.ScanLimit)
		}
		if want := w.keyText(n); page.Items[0].Key != want {
			return fmt.Errorf("first key %q, want %q", page.Items[0].Key, want)
		}
		return nil
	}
	var rec struct {
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(w.body.Bytes(), &rec); err != nil {
		return err
	}
	if want := w.keyText(n); rec.Key != want || len(rec.Value) == 0 {
		return fmt.Errorf("key %q, want %q with a value", rec.Key, want)
	}
	return nil
}
