package router

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/iqengine/iqengine/cluster"
	"github.com/iqengine/iqengine/state"
)

const tracerName = "github.com/iqengine/iqengine/router"

// Attributes of the router's spans, beside the HTTP ones of semconv.
const (
	attrNode      = attribute.Key("iqengine.node_id")
	attrPeer      = attribute.Key("iqengine.peer.node_id")
	attrTopic     = attribute.Key("iqengine.topic")
	attrPartition = attribute.Key("iqengine.partition")
	attrItems     = attribute.Key("iqengine.items")
)

// tracing is the handler's tracer and propagator (Options.TracerProvider).
// A request is a server span named by its route, which continues the trace
// context the request carries (W3C traceparent: a peer's call, or a
// client's own trace). A call to another node is a client span whose
// context goes with the call, so the owner's spans join the caller's
// trace; a read of this node's store is a span of its own. Plugin calls are
// the plugin host's spans (plugins.WithContext).
//
// A nil *tracing is tracing off: every method is then a nil check, so an
// untraced request starts no span, reads no clock and allocates nothing
// more.
type tracing struct {
	t    trace.Tracer
	prop propagation.TextMapPropagator
	node string
}

func newTracing(o Options) *tracing {
	if o.TracerProvider == nil {
		return nil
	}
	prop := o.Propagator
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	return &tracing{t: o.TracerProvider.Tracer(tracerName), prop: prop, node: o.Engine.NodeID()}
}

// routeTracing is the tracing of one GET endpoint, whose route names its
// requests' spans.
type routeTracing struct {
	*tracing
	route, name string
}

// route is the tracing of the GET endpoint at path, named endpoint: nil
// when tracing is off, and for the health probes, which load balancers and
// Kubernetes ask every few seconds: they would be most of the traces, and
// tell nothing.
func (tr *tracing) route(path, endpoint string) *routeTracing {
	if tr == nil || endpoint == "healthz" || endpoint == "readyz" {
		return nil
	}
	return &routeTracing{tracing: tr, route: path, name: http.MethodGet + " " + path}
}

// startRequest starts the server span of a request and returns the request
// with the span in its context.
func (rt *routeTracing) startRequest(r *http.Request) (*http.Request, trace.Span) {
	ctx := rt.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := rt.t.Start(ctx, rt.name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		semconv.HTTPRequestMethodKey.String(r.Method), semconv.HTTPRoute(rt.route), semconv.URLPath(r.URL.Path), attrNode.String(rt.node)))
	return r.WithContext(ctx), span
}

// endRequest ends a request's span with its status: a 5xx is a failed
// request, a 4xx the client's mistake.
func endRequest(span trace.Span, status int) {
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// startCall starts the client span of a call to peer (op: "get", "scan",
// "count", "partitions") and puts its trace context in req's headers, so
// that the peer's spans are its children. Nil when tracing is off.
func (tr *tracing) startCall(ctx context.Context, req *http.Request, peer cluster.Member, op string, p *state.Partition) trace.Span {
	if tr == nil {
		return nil
	}
	attrs := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(req.Method), semconv.ServerAddress(req.URL.Hostname()),
		semconv.URLPath(req.URL.Path), attrPeer.String(peer.NodeID),
	}
	if p != nil {
		attrs = append(attrs, attrTopic.String(p.Topic), attrPartition.Int(int(p.Partition)))
	}
	ctx, span := tr.t.Start(ctx, "forward "+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	tr.prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
	return span
}

// endCall ends a call's span (when there is one) with the peer's status,
// or err when there was no answer.
func endCall(span trace.Span, status int, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}

// now is when a store read starts: the zero time when tracing is off, so
// that an untraced read does not read the clock.
func (tr *tracing) now() time.Time {
	if tr == nil {
		return time.Time{}
	}
	return time.Now()
}

// storeRead records a read of partition p in this node's store (op: "get",
// "scan" opens an iterator, "count"), which began at start, as a span of
// ctx's trace. It is recorded once the read has ended, and only for a
// partition that serves here: the read that finds a partition served
// elsewhere, before a call to its owner, is no store read.
func (tr *tracing) storeRead(ctx context.Context, op string, p state.Partition, start time.Time, err error) {
	if tr == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return
	}
	_, span := tr.t.Start(ctx, "store "+op, trace.WithTimestamp(start), trace.WithAttributes(
		semconv.DBOperationName(op), attrTopic.String(p.Topic), attrPartition.Int(int(p.Partition))))
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// startRender starts the span of rendering a scan page, the parent of its
// transform batch: the serde calls of its records are too many to be a
// span each. When tracing is off it returns ctx and a nil span.
func (tr *tracing) startRender(ctx context.Context) (context.Context, trace.Span) {
	if tr == nil {
		return ctx, nil
	}
	return tr.t.Start(ctx, "render page")
}

// endRender ends a render span with the number of items kept.
func endRender(span trace.Span, items int, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(attrItems.Int(items))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
