package router_test

// Benchmarks of queries through the HTTP handler, without a network: the
// handler's ServeHTTP is called with pre-built requests and an
// httptest.ResponseRecorder. Run them with
//
//	go test -run '^$' -bench . ./router/
//
// Each benchmark function loads its own node once (b.Loop runs the function
// body once): an embedded kfake broker with one 12-partition topic of
// 100,000 records with 100-byte JSON values, and a real engine that restores
// it into a Pebble store in b.TempDir() with the node's default store
// options. The broker runs in this process and shares the CPUs.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/iqengine/iqengine/engine"
	"github.com/iqengine/iqengine/internal/store"
	"github.com/iqengine/iqengine/internal/testplugins"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/plugins"
	"github.com/iqengine/iqengine/router"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

const (
	benchKeys       = 100_000
	benchPartitions = 12
	benchValueLen   = 100
	benchTopic      = "bench"
)

// benchValue is a benchValueLen-byte JSON document for key.
func benchValue(key []byte) []byte { return testutil.JSONValue(key, benchValueLen) }

func benchKey(i int) string { return fmt.Sprintf("key-%08d", i) }

// benchNode is one loaded node.
type benchNode struct {
	e *engine.Engine
	h *router.Handler
	// keys are the keys present, in a random order fixed by a seed.
	keys []string
}

// newBenchNode produces benchKeys records to a fresh kfake cluster, starts
// an engine on it and waits until every partition serves and has applied
// everything. Everything is closed at b's end.
func newBenchNode(b *testing.B) *benchNode {
	b.Helper()
	start := time.Now()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second),
		kfake.SeedTopics(benchPartitions, benchTopic))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	seeds := kgo.SeedBrokers(c.ListenAddrs()...)

	cl, err := kgo.NewClient(seeds, kgo.DefaultProduceTopic(benchTopic), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	keys := make([]string, benchKeys)
	rs := make([]*kgo.Record, 0, benchKeys)
	for i := range keys {
		keys[i] = benchKey(i)
		rs = append(rs, &kgo.Record{Key: []byte(keys[i]), Value: benchValue([]byte(keys[i]))})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		b.Fatalf("produce: %v", err)
	}
	produced := time.Since(start)

	str, _ := serde.Lookup("string")
	js, _ := serde.Lookup("json")
	log := slog.New(slog.DiscardHandler)
	e, err := engine.Open(engine.Config{
		ApplicationID:  "bench-app",
		NodeID:         "n1",
		Stores:         []state.Store{{Name: "s", Topic: benchTopic, Key: str, Value: js}},
		Kafka:          []kgo.Opt{seeds},
		SessionTimeout: 6 * time.Second,
		Store:          store.Options{Dir: b.TempDir()},
		Logger:         log,
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			b.Error(err)
		}
	})
	waitCaughtUp(b, kadm.NewClient(cl), e)
	b.Logf("loaded %d records: produced in %v, restored in %v", benchKeys,
		produced.Round(time.Millisecond), (time.Since(start) - produced).Round(time.Millisecond))

	rand.New(rand.NewPCG(1, 2)).Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	h := router.New(router.Options{
		Engine:       e,
		Timeout:      5 * time.Second,
		MaxTimeout:   30 * time.Second,
		DefaultLimit: 100,
		MaxLimit:     1000,
		Logger:       log,
	})
	return &benchNode{e: e, h: h, keys: keys}
}

// waitCaughtUp waits until every partition of the bench topic serves here
// and has applied everything up to the topic's end.
func waitCaughtUp(b *testing.B, adm *kadm.Client, e *engine.Engine) {
	b.Helper()
	ends, err := adm.ListEndOffsets(context.Background(), benchTopic)
	if err != nil {
		b.Fatal(err)
	}
	testutil.WaitFor(b, 2*time.Minute, "the bench topic was not caught up with", func() bool {
		done := 0
		for _, p := range e.Partitions() {
			if end, ok := ends.Lookup(p.Topic, p.Partition); ok && p.State == "serving" && p.Offset+1 >= end.Offset {
				done++
			}
		}
		return done == benchPartitions
	})
}

// BenchmarkLookup looks up a random present key. The "handler" sub-benchmark
// goes through router.Handler.ServeHTTP (routing, serde, partitioning, the
// engine's serving check, Pebble, JSON, metrics); "raw-pebble-get" does only
// the engine.Get underneath it (serving check and Pebble Get) for the same
// keys in the same order, on the same store, so their ratio is the
// handler's overhead. "handler-traced" is "handler" with tracing on and
// every lookup sampled: its spans (the request's and the store read's) go
// to a batch processor whose exporter drops them, so it measures what
// tracing costs the node, not a collector.
func BenchmarkLookup(b *testing.B) {
	n := newBenchNode(b)
	reqs := make([]*http.Request, len(n.keys))
	parts := make([]state.Partition, len(n.keys))
	for i, k := range n.keys {
		reqs[i] = httptest.NewRequest(http.MethodGet, "/v1/stores/s/keys/"+url.PathEscape(k), nil)
		parts[i] = state.Partition{Topic: benchTopic, Partition: serde.Partition([]byte(k), benchPartitions)}
	}
	keys := make([][]byte, len(n.keys))
	for i, k := range n.keys {
		keys[i] = []byte(k)
	}

	var handlerNs, rawNs float64 // per lookup, from the last run of each
	b.Run("handler", func(b *testing.B) {
		serveLoop(b, n.h, reqs)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
		handlerNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("handler-traced", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		h := router.New(router.Options{Engine: n.e, Timeout: 5 * time.Second, MaxTimeout: 30 * time.Second,
			DefaultLimit: 100, MaxLimit: 1000, Logger: slog.New(slog.DiscardHandler), TracerProvider: tp})
		serveLoop(b, h, reqs)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
	b.Run("raw-pebble-get", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			j := i % len(keys)
			r, err := n.e.Get(parts[j], keys[j])
			if err != nil || len(r.Value) != benchValueLen {
				b.Fatalf("get %s: %v (value %d bytes)", keys[j], err, len(r.Value))
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
		rawNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	if handlerNs > 0 && rawNs > 0 {
		b.Logf("handler %.0f ns/lookup, raw-pebble-get %.0f ns/lookup: ratio %.2f", handlerNs, rawNs, handlerNs/rawNs)
	}
}

// BenchmarkRangeScan100 asks for one page of 100 keys from a random start
// key: GET /v1/stores/s/keys?from=...&limit=100 through the handler. The
// engine opens one iterator per partition (12) and merges them.
func BenchmarkRangeScan100(b *testing.B) {
	n := newBenchNode(b)
	reqs := scanRequests(nil)
	// One checked answer: 100 items and a cursor.
	w := httptest.NewRecorder()
	n.h.ServeHTTP(w, reqs[0])
	var page struct {
		Items      []json.RawMessage `json:"items"`
		NextCursor *string           `json:"next_cursor"`
	}
	body, _ := io.ReadAll(w.Body)
	if err := json.Unmarshal(body, &page); err != nil || w.Code != http.StatusOK || len(page.Items) != 100 || page.NextCursor == nil {
		b.Fatalf("scan answered %d, %d items, err %v: %.300s", w.Code, len(page.Items), err, body)
	}

	serveLoop(b, n.h, reqs)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scans/s")
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRangeScan100Transform is BenchmarkRangeScan100 through the
// example project transform (a Go WebAssembly plugin, examples/plugins/
// project): ?t.fields=id keeps one field of each record, so every one of the
// 100 records per page makes one plugin call. Compare with
// BenchmarkRangeScan100 in the same run.
func BenchmarkRangeScan100Transform(b *testing.B) {
	n := newBenchNode(b)
	host, err := plugins.NewHost(plugins.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { host.Close(context.Background()) })
	project, err := host.Load(context.Background(), plugins.Spec{Name: "project", Binary: testplugins.Module(b, "project"), Need: []plugins.Capability{plugins.CapTransform}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(project.Close)
	h := router.New(router.Options{
		Engine: n.e, Timeout: 5 * time.Second, MaxTimeout: 30 * time.Second, DefaultLimit: 100, MaxLimit: 1000,
		Logger:     slog.New(slog.DiscardHandler),
		Transforms: map[string]router.Transform{"s": {Module: project}},
	})
	reqs := scanRequests(url.Values{"t.fields": {"id"}})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, reqs[0])
	var page struct {
		Items []struct {
			Value map[string]any `json:"value"`
		} `json:"items"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != http.StatusOK || len(page.Items) != 100 || len(page.Items[0].Value) != 1 {
		b.Fatalf("scan answered %d, %d items, err %v: %.300s", w.Code, len(page.Items), err, w.Body)
	}
	serveLoop(b, h, reqs)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scans/s")
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "records/s")
}

// scanRequests are 10,000 requests for one page of 100 keys from random
// start keys, with the extra parameters. Start keys are drawn from the first
// 99,000 keys, so every page is full.
func scanRequests(extra url.Values) []*http.Request {
	rng := rand.New(rand.NewPCG(5, 6))
	reqs := make([]*http.Request, 10_000)
	for i := range reqs {
		q := url.Values{"from": {benchKey(rng.IntN(benchKeys - 1000))}, "limit": {"100"}}
		for k, v := range extra {
			q[k] = v
		}
		reqs[i] = httptest.NewRequest(http.MethodGet, "/v1/stores/s/keys?"+q.Encode(), nil)
	}
	return reqs
}

// serveLoop serves the requests in turn through h for b.Loop, failing on any
// answer but 200.
func serveLoop(b *testing.B, h http.Handler, reqs []*http.Request) {
	b.Helper()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, reqs[i%len(reqs)])
		if w.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %s", reqs[i%len(reqs)].URL, w.Code, w.Body)
		}
	}
}
