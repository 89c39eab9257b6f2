package router

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/internal/wasmgen"
	"github.com/iqengine/iqengine/plugins"
	"github.com/iqengine/iqengine/serde"
)

// tracerFor is a TracerProvider for node id that records every span into
// exp at once, with the node's id as the service.instance.id of its spans.
func tracerFor(t testing.TB, id string, exp *tracetest.InMemoryExporter) *sdktrace.TracerProvider {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceInstanceID(id))))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// spans are the spans of one trace, recorded by several nodes.
type spans []tracetest.SpanStub

// traceOf returns the spans recorded of the trace of the first span named
// root.
func traceOf(exp *tracetest.InMemoryExporter, root string) spans {
	var id trace.TraceID
	for _, s := range exp.GetSpans() {
		if s.Name == root {
			id = s.SpanContext.TraceID()
			break
		}
	}
	var out spans
	for _, s := range exp.GetSpans() {
		if id.IsValid() && s.SpanContext.TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

// nodeOf is the node that recorded s.
func nodeOf(s tracetest.SpanStub) string {
	v, _ := s.Resource.Set().Value(semconv.ServiceInstanceIDKey)
	return v.AsString()
}

func attrOf(s tracetest.SpanStub, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// find returns the spans named name recorded on node and, when parent is
// valid, children of parent.
func (ss spans) find(name, node string, parent trace.SpanContext) spans {
	var out spans
	for _, s := range ss {
		if s.Name == name && nodeOf(s) == node && (!parent.IsValid() || s.Parent.SpanID() == parent.SpanID()) {
			out = append(out, s)
		}
	}
	return out
}

// one is the one span named name on node under parent, or a failure that
// lists the trace.
func (ss spans) one(t *testing.T, name, node string, parent trace.SpanContext) tracetest.SpanStub {
	t.Helper()
	found := ss.find(name, node, parent)
	if len(found) != 1 {
		t.Fatalf("%d spans %q on %s under %s, want 1; the trace:\n%s", len(found), name, node, parent.SpanID(), ss)
	}
	return found[0]
}

func (ss spans) String() string {
	var b []byte
	for _, s := range ss {
		b = fmt.Appendf(b, "  %s %s %q (%s) parent %s %v\n", nodeOf(s), s.SpanContext.SpanID(), s.Name, s.SpanKind, s.Parent.SpanID(), s.Attributes)
	}
	return string(b)
}

// A query that one node cannot answer alone is one trace across the nodes
// it involves: the node that took it (its request, its own store reads,
// its calls to the owners, W3C trace context going with each call) and
// each owner (the call it took, its store read), every span the child of
// the one that caused it.
func TestTraceSpansNodes(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	c := newTestCluster(t, 4, 40)
	for _, id := range []string{"n1", "n2"} {
		tp := tracerFor(t, id, exp)
		c.startWith(id, nodeOptions{handler: func(o *Options) { o.TracerProvider = tp }})
	}
	c.waitStable(60 * time.Second)
	n1 := c.node("n1")
	table := n1.bal.Table()
	owners := map[int32]string{}
	for p := int32(0); p < c.partitions; p++ {
		o, _ := table.Owner(c.topic, p)
		owners[p] = o.NodeID
	}
	if held := slices.Collect(maps.Values(owners)); !slices.Contains(held, "n1") || !slices.Contains(held, "n2") {
		t.Fatalf("owners %v: each node should own partitions", owners)
	}

	t.Run("a forwarded lookup", func(t *testing.T) {
		exp.Reset()
		var key string
		var part int32
		for _, k := range c.keys() {
			if p := serde.Partition([]byte(k), c.partitions); owners[p] == "n2" {
				key, part = k, p
				break
			}
		}
		// The client traces too: its trace context is the parent of all.
		client := sdktrace.NewTracerProvider()
		ctx, root := client.Tracer("client").Start(context.Background(), "client")
		h := http.Header{}
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
		a := get(n1.h, "/v1/stores/orders/keys/"+key, "traceparent", h.Get("traceparent"))
		if a.status != http.StatusOK || a.header.Get(servedByHeader) != "n2" {
			t.Fatalf("lookup of %s via n1: %d served by %q: %s", key, a.status, a.header.Get(servedByHeader), a.body)
		}
		tr := traceOf(exp, "GET /v1/stores/:store/keys/*key")
		req := tr.one(t, "GET /v1/stores/:store/keys/*key", "n1", root.SpanContext())
		if req.SpanKind != trace.SpanKindServer || attrOf(req, semconv.HTTPRouteKey).AsString() != "/v1/stores/:store/keys/*key" ||
			attrOf(req, semconv.HTTPResponseStatusCodeKey).AsInt64() != 200 || req.SpanContext.TraceID() != root.SpanContext().TraceID() {
			t.Errorf("n1's request span: %+v", req)
		}
		call := tr.one(t, "forward get", "n1", req.SpanContext)
		if call.SpanKind != trace.SpanKindClient || attrOf(call, attrPeer).AsString() != "n2" || attrOf(call, attrPartition).AsInt64() != int64(part) {
			t.Errorf("n1's call to n2: %+v", call)
		}
		owned := tr.one(t, "GET /v1/internal/stores/:store/partitions/:partition/get", "n2", call.SpanContext)
		if owned.SpanKind != trace.SpanKindServer || !owned.Parent.IsRemote() {
			t.Errorf("n2's request span: %+v", owned)
		}
		read := tr.one(t, "store get", "n2", owned.SpanContext)
		if attrOf(read, attrPartition).AsInt64() != int64(part) || attrOf(read, attrTopic).AsString() != c.topic {
			t.Errorf("n2's store read: %+v", read)
		}
		// n1 looked at its own store first (the partition is not there):
		// that is no store read.
		if len(tr) != 4 {
			t.Errorf("%d spans, want these 4:\n%s", len(tr), tr)
		}
	})

	// A scan and a count gather every partition: n1 reads its own, and
	// calls n2 for each of n2's in parallel.
	for _, q := range []struct{ op, target, route string }{
		{"scan", "/v1/stores/orders/keys?limit=100", "GET /v1/stores/:store/keys"},
		{"count", "/v1/stores/orders/count", "GET /v1/stores/:store/count"},
	} {
		t.Run("a gathered "+q.op, func(t *testing.T) {
			exp.Reset()
			if a := get(n1.h, q.target); a.status != http.StatusOK {
				t.Fatalf("%s via n1: %d %s", q.op, a.status, a.body)
			}
			tr := traceOf(exp, q.route)
			req := tr.one(t, q.route, "n1", trace.SpanContext{})
			if req.Parent.IsValid() {
				t.Errorf("n1's request span has a parent: %+v", req)
			}
			read := map[int32]string{} // partition -> node whose store read it
			for _, s := range tr.find("store "+q.op, "n1", req.SpanContext) {
				read[int32(attrOf(s, attrPartition).AsInt64())] = "n1"
			}
			for _, call := range tr.find("forward "+q.op, "n1", req.SpanContext) {
				owned := tr.one(t, "GET /v1/internal/stores/:store/partitions/:partition/"+q.op, "n2", call.SpanContext)
				s := tr.one(t, "store "+q.op, "n2", owned.SpanContext)
				p := int32(attrOf(s, attrPartition).AsInt64())
				if attrOf(call, attrPartition).AsInt64() != int64(p) || attrOf(call, attrPeer).AsString() != "n2" {
					t.Errorf("the call for partition %d: %+v", p, call)
				}
				if _, twice := read[p]; twice {
					t.Errorf("partition %d read twice", p)
				}
				read[p] = "n2"
			}
			if fmt.Sprint(read) != fmt.Sprint(owners) {
				t.Errorf("partitions read in the trace: %v, want each on its owner: %v\n%s", read, owners, tr)
			}
		})
	}
}

// A key lookup's plugin calls are spans of its request: the value serde's
// call and the transform batch. A scan page's records are too many to be a
// span each: its transform batch is the one plugin span, under the page's
// render span.
func TestTracePluginCalls(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := tracerFor(t, "n1", exp)
	host, err := plugins.NewHost(plugins.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Close(context.Background()) })
	echo, err := host.Load(context.Background(), plugins.Spec{Name: "echo", Binary: wasmgen.EchoWith(wasmgen.EchoOptions{Transform: true})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(echo.Close)
	f := newFakeEngine("n1")
	f.addStore(t, "readings", "readings", 2, "string", "json")
	f.stores[0].Value = plugins.ValueSerde{M: echo}
	for i := range 5 {
		f.put(t, "readings", fmt.Sprintf("r-%d", i), fmt.Sprintf(`{"n":%d}`, i), int64(i))
	}
	h := New(Options{Engine: f, Timeout: time.Second, MaxTimeout: time.Second, DefaultLimit: 10, MaxLimit: 10,
		TracerProvider: tp, Transforms: map[string]Transform{"readings": {Module: echo}}})

	if a := get(h, "/v1/stores/readings/keys/r-1"); a.status != http.StatusOK {
		t.Fatalf("lookup: %d %s", a.status, a.body)
	}
	tr := traceOf(exp, "GET /v1/stores/:store/keys/*key")
	req := tr.one(t, "GET /v1/stores/:store/keys/*key", "n1", trace.SpanContext{})
	tr.one(t, "store get", "n1", req.SpanContext)
	value := tr.one(t, "plugin iq_value_to_json", "n1", req.SpanContext)
	batch := tr.one(t, "plugin transform", "n1", req.SpanContext)
	if attrOf(value, "iqengine.plugin.name").AsString() != "echo" || attrOf(batch, "iqengine.plugin.records").AsInt64() != 1 {
		t.Errorf("plugin spans: %+v\n%+v", value, batch)
	}

	exp.Reset()
	if a := get(h, "/v1/stores/readings/keys"); a.status != http.StatusOK {
		t.Fatalf("scan: %d %s", a.status, a.body)
	}
	tr = traceOf(exp, "GET /v1/stores/:store/keys")
	req = tr.one(t, "GET /v1/stores/:store/keys", "n1", trace.SpanContext{})
	render := tr.one(t, "render page", "n1", req.SpanContext)
	batch = tr.one(t, "plugin transform", "n1", render.SpanContext)
	if attrOf(render, attrItems).AsInt64() != 5 || attrOf(batch, "iqengine.plugin.records").AsInt64() != 5 {
		t.Errorf("render %+v\nbatch %+v", render, batch)
	}
	if n := len(tr.find("plugin iq_value_to_json", "n1", trace.SpanContext{})); n != 0 {
		t.Errorf("the scan's records made %d value serde spans, want none:\n%s", n, tr)
	}
	if n := len(tr.find("store scan", "n1", req.SpanContext)); n != 2 {
		t.Errorf("%d store scans, want one per partition (2):\n%s", n, tr)
	}
}

// The health probes, asked every few seconds by load balancers and
// Kubernetes, are not traced; every other endpoint is.
func TestHealthProbesAreNotTraced(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	f := newFakeEngine("n1")
	f.addStore(t, "orders", "orders", 1, "string", "json")
	h := New(Options{Engine: f, Timeout: time.Second, MaxTimeout: time.Second, DefaultLimit: 10, MaxLimit: 10,
		TracerProvider: tracerFor(t, "n1", exp)})
	for _, target := range []string{"/healthz", "/readyz", "/v1/stores"} {
		if a := get(h, target); a.status != http.StatusOK {
			t.Fatalf("%s: %d %s", target, a.status, a.body)
		}
	}
	got := spans(exp.GetSpans())
	if len(got) != 1 || got[0].Name != "GET /v1/stores" {
		t.Fatalf("spans:\n%s want only GET /v1/stores", got)
	}
}

// Without a TracerProvider a handler records nothing, not even through
// OpenTelemetry's global provider, and passes no trace context on: a
// request's traceparent stops at the node.
func TestNoTracingWithoutAProvider(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	global := otel.GetTracerProvider()
	otel.SetTracerProvider(tracerFor(t, "global", exp))
	t.Cleanup(func() { otel.SetTracerProvider(global) })

	c := newTestCluster(t, 2, 20)
	c.start("n1")
	n2 := c.start("n2")
	var mu sync.Mutex
	var sent []string // the traceparent headers of the requests n2 took
	intercept := func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, r.Header.Get("traceparent"))
		return false
	}
	n2.intercept.Store(&intercept)
	c.waitStable(60 * time.Second)
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	testutil.WaitFor(t, 10*time.Second, "a request forwarded to n2", func() bool {
		for _, k := range c.keys() {
			if a := get(c.node("n1").h, "/v1/stores/orders/keys/"+k, "traceparent", tp); a.header.Get(servedByHeader) == "n2" {
				return true
			}
		}
		return false
	})
	mu.Lock()
	defer mu.Unlock()
	if len(sent) == 0 || slices.ContainsFunc(sent, func(h string) bool { return h != "" }) {
		t.Fatalf("n2 took %d requests with traceparent headers %q, want them all empty", len(sent), sent)
	}
	if got := spans(exp.GetSpans()); len(got) != 0 {
		t.Fatalf("%d spans recorded:\n%s", len(got), got)
	}
}
