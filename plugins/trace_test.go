package plugins_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/iqengine/iqengine/internal/wasmgen"
	"github.com/iqengine/iqengine/plugins"
)

// tracedHost is a host whose spans go to the returned recorder, and a
// request's context: a sampled span of the same provider.
func tracedHost(t *testing.T) (*plugins.Host, *tracetest.SpanRecorder, context.Context, trace.Span) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h, _ := newHost(t, plugins.Options{TracerProvider: tp})
	ctx, req := tp.Tracer("test").Start(context.Background(), "request")
	return h, rec, ctx, req
}

// attrs are a span's attributes by key.
func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// Each plugin call made through a serde bound to a request's context is a
// span of that request's trace, named by the ABI operation, with the module
// and the operation as attributes; a transform batch is one span with its
// record count.
func TestPluginCallsAreSpans(t *testing.T) {
	h, rec, ctx, req := tracedHost(t)
	m := load(t, h, "echo", wasmgen.EchoWith(wasmgen.EchoOptions{Partition: true, Transform: true}))
	key := plugins.WithContext(ctx, plugins.KeySerde{M: m})
	value := plugins.WithContext(ctx, plugins.ValueSerde{M: m})
	if _, err := key.FromText("k-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := key.(plugins.KeySerde).Partition([]byte("k-1"), 12); err != nil {
		t.Fatal(err)
	}
	if _, err := key.AppendJSON(nil, []byte(`"k-1"`)); err != nil {
		t.Fatal(err)
	}
	if _, err := value.AppendJSON(nil, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	b, err := m.Begin(ctx, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, err := b.Record(nil, []byte(`"k"`), []byte(`{"a":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	b.End()

	want := []struct{ name, op string }{
		{"plugin iq_key_from_text", "iq_key_from_text"},
		{"plugin iq_partition", "iq_partition"},
		{"plugin iq_key_to_json", "iq_key_to_json"},
		{"plugin iq_value_to_json", "iq_value_to_json"},
		{"plugin transform", "transform"},
	}
	spans := rec.Ended()
	if len(spans) != len(want) {
		t.Fatalf("%d spans, want %d", len(spans), len(want))
	}
	for i, s := range spans {
		a := attrs(s)
		if s.Name() != want[i].name || a["iqengine.plugin.op"].AsString() != want[i].op || a["iqengine.plugin.name"].AsString() != "echo" ||
			a["iqengine.plugin.sha256"].AsString() != m.Hash() {
			t.Errorf("span %d: %s %v; want %s with op %s of module echo", i, s.Name(), a, want[i].name, want[i].op)
		}
		if s.SpanContext().TraceID() != req.SpanContext().TraceID() || s.Parent().SpanID() != req.SpanContext().SpanID() {
			t.Errorf("span %s is not a child of the request's span", s.Name())
		}
		if s.Status().Code != codes.Unset {
			t.Errorf("span %s: status %v, want unset", s.Name(), s.Status())
		}
	}
	if got := attrs(spans[4])["iqengine.plugin.records"].AsInt64(); got != 3 {
		t.Errorf("transform span: %d records, want 3", got)
	}
}

// A fault marks the span failed with its kind; a rejected input is the
// caller's error, so it is noted by kind only.
func TestPluginSpanOutcomes(t *testing.T) {
	h, rec, ctx, _ := tracedHost(t)
	cases := []struct {
		name   string
		bin    []byte
		kind   string
		status codes.Code
	}{
		{"trap", wasmgen.Trap(), "trap", codes.Error},
		{"reject", wasmgen.Reject(), "rejected", codes.Unset},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := load(t, h, c.name, c.bin)
			before := len(rec.Ended())
			if _, err := plugins.WithContext(ctx, plugins.ValueSerde{M: m}).AppendJSON(nil, []byte(`{}`)); err == nil {
				t.Fatal("the call succeeded")
			}
			spans := rec.Ended()[before:]
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			if k := attrs(spans[0])["iqengine.plugin.error_kind"].AsString(); k != c.kind || spans[0].Status().Code != c.status {
				t.Fatalf("span: kind %q, status %v; want %q and %v", k, spans[0].Status(), c.kind, c.status)
			}
		})
	}
}

// Calls record nothing when they belong to no sampled request: a serde
// not bound, a request whose span does not record, a host without a
// TracerProvider. Binding then returns the serde itself.
func TestPluginCallsWithoutTracing(t *testing.T) {
	h, rec, _, _ := tracedHost(t)
	m := load(t, h, "echo", wasmgen.EchoWith(wasmgen.EchoOptions{Transform: true}))
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	ctx, _ := unsampled.Tracer("test").Start(context.Background(), "request")
	plain, _ := newHost(t, plugins.Options{})
	pm := load(t, plain, "echo", wasmgen.Echo())
	_, _, sampled, _ := tracedHost(t) // a recording span of another provider

	for _, c := range []struct {
		name string
		ctx  context.Context
		s    plugins.ValueSerde
	}{
		{"unbound", nil, plugins.ValueSerde{M: m}},
		{"not sampled", ctx, plugins.ValueSerde{M: m}},
		{"no span", context.Background(), plugins.ValueSerde{M: m}},
		{"host without a provider", sampled, plugins.ValueSerde{M: pm}},
	} {
		s := any(c.s)
		if c.ctx != nil {
			s = plugins.WithContext(c.ctx, c.s)
			if s != any(c.s) {
				t.Errorf("%s: WithContext bound the serde", c.name)
			}
		}
		if _, err := s.(plugins.ValueSerde).AppendJSON(nil, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := m.Begin(ctx, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	b.End()
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("%d spans recorded, want none", n)
	}
}
