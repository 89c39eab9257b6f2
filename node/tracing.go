package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/lograte"
)

// WithTracerProvider records the node's spans with tp instead of the
// provider its tracing config would build: a program that embeds the node
// passes its own, a test an in-memory one. The caller owns tp; Close does
// not shut it down.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(o *options) { o.tp = tp } }

// tracerProvider is what the node records spans with: the provider given
// with WithTracerProvider, else the one startTracing builds from the
// config, which the node then owns (own; nil when tracing is off or the
// provider was given).
func (o *options) tracerProvider(ctx context.Context, cfg config.Config, log *slog.Logger) (tp trace.TracerProvider, own *sdktrace.TracerProvider, err error) {
	if o.tp != nil {
		return o.tp, nil, nil
	}
	if own, err = startTracing(ctx, cfg, log); own == nil || err != nil {
		return nil, nil, err
	}
	return own, own, nil
}

// traceFlushWait bounds sending the spans still queued when the node stops.
const traceFlushWait = 5 * time.Second

// startTracing builds the node's TracerProvider from cfg.Tracing: spans go
// in batches to an OTLP/HTTP collector, roots are sampled at the ratio and
// the rest follow their parent, and the resource names the service and the
// node. It returns nil when tracing is off: no endpoint in the config nor
// in the OpenTelemetry environment. Nothing connects until spans are sent.
func startTracing(ctx context.Context, cfg config.Config, log *slog.Logger) (*sdktrace.TracerProvider, error) {
	tc := cfg.Tracing
	var opts []otlptracehttp.Option
	endpoint := tc.OTLPEndpoint
	switch {
	case endpoint != "":
		u, err := url.Parse(tc.OTLPEndpoint) // Validate checked it
		if err != nil {
			return nil, err
		}
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
		opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
	case os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "":
		endpoint = os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	case os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "":
		endpoint = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	default:
		return nil, nil
	}
	// The exporter reads the rest of its settings (headers, TLS files,
	// timeout, compression) from the OTEL_EXPORTER_OTLP_* environment.
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithAttributes(
		semconv.ServiceName(tc.ServiceName), semconv.ServiceInstanceID(cfg.NodeID)))
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(loggedExporter{SpanExporter: exp, log: log, rate: lograte.New(time.Minute)}),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(tc.SampleRatio))),
		sdktrace.WithResource(res),
	)
	log.Info("tracing on", "endpoint", endpoint, "sample_ratio", tc.SampleRatio, "service_name", tc.ServiceName)
	return tp, nil
}

// stopTracing sends the spans still queued and stops the exporter, if the
// node built its own provider. Spans that cannot be sent are lost, which
// does not fail the stop.
func (n *Node) stopTracing() {
	if n.traces == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), traceFlushWait)
	defer cancel()
	if err := n.traces.Shutdown(ctx); err != nil {
		n.log.Warn("sending the last spans failed", "err", err)
	}
}

// loggedExporter logs failed exports on the node's log, once a minute at
// most (a collector that is down fails every batch), where OpenTelemetry
// would write them to standard error through its global error handler.
type loggedExporter struct {
	sdktrace.SpanExporter
	log  *slog.Logger
	rate *lograte.Limiter
}

func (e loggedExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := e.SpanExporter.ExportSpans(ctx, spans); err != nil {
		if held, ok := e.rate.Allow("export"); ok {
			e.log.Warn("sending spans to the collector failed; they are dropped", "err", err, "spans", len(spans), "failures_held_back", held)
		}
	}
	return nil
}
