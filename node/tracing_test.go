package node

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/lograte"
	"github.com/iqengine/iqengine/internal/testutil"
)

// collector is an OTLP/HTTP trace collector that keeps what it is sent.
type collector struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.ResourceSpans
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if r.URL.Path != "/v1/traces" || err != nil {
			t.Errorf("collector: %s %s: %v", r.Method, r.URL.Path, err)
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.spans = append(c.spans, req.ResourceSpans...)
		c.mu.Unlock()
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

// received is what the collector was sent: each span's name, and the
// resource attributes and trace ids of them all.
func (c *collector) received() (names []string, resource map[string]string, traces map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	resource, traces = map[string]string{}, map[string]bool{}
	for _, rs := range c.spans {
		for _, kv := range rs.GetResource().GetAttributes() {
			resource[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				names = append(names, s.GetName())
				traces[string(s.GetTraceId())] = true
			}
		}
	}
	return names, resource, traces
}

// A node with tracing.otlp_endpoint sends its spans to that collector,
// named for the service and the node; Close sends those still queued (the
// batches would otherwise wait up to 5s).
func TestNodeSendsSpansToTheCollector(t *testing.T) {
	col := newCollector(t)
	n, _, _ := inProcessNode(t, vfs.NewMem(), func(c *config.Config) {
		c.Tracing.OTLPEndpoint = col.URL
		c.Tracing.ServiceName = "orders-api"
	})
	if n.traces == nil {
		t.Fatal("the node built no TracerProvider")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	names, resource, _ := col.received()
	if !strings.Contains(strings.Join(names, ","), "GET /v1/stores/:store/keys/*key") || !strings.Contains(strings.Join(names, ","), "store get") {
		t.Errorf("the collector got spans %q, want the lookups' request and store spans", names)
	}
	if resource["service.name"] != "orders-api" || resource["service.instance.id"] != "n1" {
		t.Errorf("resource %v, want service.name orders-api and service.instance.id n1", resource)
	}
}

// The standard OTEL_EXPORTER_OTLP_ENDPOINT turns tracing on too. Requests
// are sampled at tracing.sample_ratio (here 0: none) unless they come with
// a trace context, whose decision they follow: a trace is whole or absent.
func TestNodeTracingFromTheEnvironmentFollowsParents(t *testing.T) {
	col := newCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL)
	n, base, _ := inProcessNode(t, vfs.NewMem(), func(c *config.Config) { c.Tracing.SampleRatio = 0 })
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/stores/orders/keys/k1", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	names, _, traces := col.received()
	id, _ := hex.DecodeString(traceID)
	if len(names) == 0 || len(traces) != 1 || !traces[string(id)] {
		t.Fatalf("the collector got spans %q of %d traces, want only those of trace %s", names, len(traces), traceID)
	}
}

// A provider given with WithTracerProvider records the node's spans, even
// with an endpoint in the config, and stays the caller's: Close does not
// shut it down.
func TestNodeWithTracerProvider(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	col := newCollector(t)
	n, _, _ := inProcessNode(t, vfs.NewMem(), func(c *config.Config) { c.Tracing.OTLPEndpoint = col.URL }, WithTracerProvider(tp))
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if names, _, _ := col.received(); n.traces != nil || len(names) != 0 {
		t.Fatalf("the node built a provider of its own (%v) and sent %q", n.traces, names)
	}
	var lookups int
	for _, s := range exp.GetSpans() {
		if s.Name == "GET /v1/stores/:store/keys/*key" {
			lookups++
		}
	}
	if lookups == 0 {
		t.Fatalf("no lookup span in the given provider: %d spans", len(exp.GetSpans()))
	}
	_, span := tp.Tracer("test").Start(context.Background(), "after close")
	span.End()
	if got := exp.GetSpans(); got[len(got)-1].Name != "after close" {
		t.Fatal("the given provider records nothing once the node has closed")
	}
}

// Without an endpoint, in the config or the environment, tracing is off:
// the node builds no provider, so nothing is exported.
func TestNodeTracingOff(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tp, err := startTracing(context.Background(), config.Default(), slog.New(slog.DiscardHandler))
	if err != nil || tp != nil {
		t.Fatalf("startTracing = %v, %v; want no provider", tp, err)
	}
}

type failingExporter struct{ sdktrace.SpanExporter }

func (failingExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error {
	return errors.New("connection refused")
}

// A collector that is down fails every batch: the node logs it on its own
// log, once per minute at most.
func TestFailedExportsAreLoggedOnce(t *testing.T) {
	logs := &testutil.Buffer{}
	e := loggedExporter{SpanExporter: failingExporter{}, log: slog.New(slog.NewTextHandler(logs, nil)), rate: lograte.New(time.Minute)}
	for range 3 {
		if err := e.ExportSpans(context.Background(), nil); err != nil {
			t.Fatalf("ExportSpans returned %v; the log has it", err)
		}
	}
	if got := strings.Count(logs.String(), "sending spans to the collector failed"); got != 1 || !strings.Contains(logs.String(), "connection refused") {
		t.Fatalf("logged %d times, want once with the error:\n%s", got, logs)
	}
}
