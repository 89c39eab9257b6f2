package plugins

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/iqengine/iqengine/serde"
)

const tracerName = "github.com/iqengine/iqengine/plugins"

// A transform batch is one span, from iq_transform_begin to
// iq_transform_end.
const (
	opTransform   = "transform"
	spanTransform = "plugin transform"
)

// spanNames are the span names of the single calls, made once.
var spanNames = func() (names [nOps]string) {
	for op, name := range opNames {
		names[op] = "plugin " + name
	}
	return names
}()

// WithContext returns s bound to ctx: each plugin call it makes is then a
// span of ctx's trace, with the module's name, hash and the operation as
// attributes. It returns s itself when s is not a plugin's serde, when its
// host records no spans (Options.TracerProvider), or when ctx's span is not
// recording (not sampled), so that binding costs an untraced request
// nothing.
//
// Serdes are values shared by every request of a store, so the binding is
// explicit: a caller binds them where a plugin call belongs to one request
// (a key lookup), and leaves them unbound where one request makes thousands
// of calls (the records of a scan page, which its transform batch, one span
// begun by Module.Begin, and the caller's own span cover).
func WithContext(ctx context.Context, s serde.Serde) serde.Serde {
	switch t := s.(type) {
	case KeySerde:
		if t.M.traced(ctx) {
			t.ctx = ctx
			return t
		}
	case ValueSerde:
		if t.M.traced(ctx) {
			t.ctx = ctx
			return t
		}
	}
	return s
}

// traced reports whether calls made for ctx are spans.
func (m *Module) traced(ctx context.Context) bool {
	return m.h.tracer != nil && ctx != nil && trace.SpanFromContext(ctx).IsRecording()
}

// startSpan starts the span of a call named name (op, for the attribute),
// or returns nil when ctx is nil: an unbound call.
func (m *Module) startSpan(ctx context.Context, name, op string) trace.Span {
	if ctx == nil {
		return nil
	}
	_, span := m.h.tracer.Start(ctx, name, trace.WithAttributes(
		attribute.String("iqengine.plugin.name", m.name), attribute.String("iqengine.plugin.op", op),
		attribute.String("iqengine.plugin.sha256", m.Hash())))
	return span
}

// startCall starts the span of one call of op (nil when unbound).
func (m *Module) startCall(ctx context.Context, op int) trace.Span {
	return m.startSpan(ctx, spanNames[op], opNames[op])
}

// endSpan ends span (when there is one) with the call's outcome, and
// returns err. A rejected input is the caller's error, not the plugin's:
// it is noted by kind without marking the span failed.
func endSpan(span trace.Span, err error) error {
	if span == nil {
		return err
	}
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			span.SetAttributes(attribute.String("iqengine.plugin.error_kind", string(pe.Kind)))
		}
		if pe == nil || !pe.Rejected() {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
	return err
}
