package plugins

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// KeyToJSON appends the JSON the plugin makes of key bytes to dst.
func (m *Module) KeyToJSON(dst, key []byte) ([]byte, error) {
	return m.toJSON(opKeyToJSON, dst, key)
}

// ValueToJSON appends the JSON the plugin makes of value bytes to dst.
func (m *Module) ValueToJSON(dst, value []byte) ([]byte, error) {
	return m.toJSON(opValueToJSON, dst, value)
}

// KeyFromText appends the key bytes of a key's text form to dst.
func (m *Module) KeyFromText(dst []byte, text string) ([]byte, error) {
	return m.bytesOp(opKeyFromText, dst, []byte(text), false)
}

func (m *Module) toJSON(op int, dst, input []byte) ([]byte, error) {
	return m.bytesOp(op, dst, input, true)
}

func (m *Module) bytesOp(op int, dst, input []byte, isJSON bool) ([]byte, error) {
	om := &m.metrics.ops[op]
	om.calls.Inc()
	v := m.acquire()
	defer v.release()
	in, err := v.get()
	if err != nil {
		return dst, err
	}
	defer v.put(in)
	in.spent.Store(0)
	defer om.observe(in)
	if in.fns[op] == nil {
		return dst, &Error{Plugin: m.name, Op: opNames[op], Kind: KindBadResult, Msg: "the module does not export " + opNames[op]}
	}
	r, err := in.callIn(op, input)
	if err != nil {
		return dst, in.count(err)
	}
	out, _, err := in.region(op, r, false)
	if err != nil {
		return dst, err
	}
	if isJSON && !(json.Valid(out) && utf8.Valid(out)) {
		in.broken = true
		return dst, in.fault(KindBadOutput, opNames[op], fmt.Sprintf("output is not valid UTF-8 JSON: %.64q", out))
	}
	return append(dst, out...), nil
}

// Partition is the partition the plugin computes for key bytes.
func (m *Module) Partition(key []byte, partitions int32) (int32, error) {
	om := &m.metrics.ops[opPartition]
	om.calls.Inc()
	v := m.acquire()
	defer v.release()
	in, err := v.get()
	if err != nil {
		return 0, err
	}
	defer v.put(in)
	in.spent.Store(0)
	defer om.observe(in)
	if in.fns[opPartition] == nil {
		return 0, &Error{Plugin: m.name, Op: opNames[opPartition], Kind: KindBadResult, Msg: "the module does not export iq_partition"}
	}
	if err := in.input(opPartition, key, nil, nil); err != nil {
		return 0, in.count(err)
	}
	in.stack[2] = uint64(uint32(partitions))
	if err := in.invoke(opPartition); err != nil {
		return 0, in.count(err)
	}
	p := int32(in.stack[0])
	switch {
	case p == statusReject || p == statusFail:
		return 0, in.status(opPartition, int64(p))
	case p < 0 || p >= partitions:
		in.broken = true
		return 0, in.fault(KindBadResult, opNames[opPartition], fmt.Sprintf("partition %d is outside [0, %d)", p, partitions))
	}
	return p, nil
}

// Batch is one transform batch (sdk/ABI.md, Transforms): Begin, Record for
// each record, then End, on one instance, within one deadline of plugin
// time. A Batch is not safe for concurrent use.
type Batch struct {
	m   *Module
	v   *version
	in  *instance
	err error
	// span is the batch's span when its host traces ctx (nil otherwise),
	// and records the number of Record calls, for it.
	span    trace.Span
	records int
}

// Begin starts a transform batch with its parameters, a JSON object of
// strings. The caller must End it. The batch is one call in the metrics,
// timed at End, and one span of ctx's trace when the host traces (see
// WithContext).
func (m *Module) Begin(ctx context.Context, params []byte) (*Batch, error) {
	m.metrics.ops[opBegin].calls.Inc()
	var span trace.Span
	if m.traced(ctx) {
		span = m.startSpan(ctx, spanTransform, opTransform)
	}
	v := m.acquire()
	in, err := v.get()
	if err != nil {
		v.release()
		return nil, endSpan(span, err)
	}
	in.spent.Store(0)
	b := &Batch{m: m, v: v, in: in, span: span}
	if in.fns[opBegin] == nil {
		b.err = &Error{Plugin: m.name, Op: opNames[opBegin], Kind: KindBadResult, Msg: "the module is not a transform"}
		b.End()
		return nil, b.err
	}
	r, err := in.callIn(opBegin, params)
	if err == nil {
		if st := int32(r); st == statusReject || st == statusFail {
			err = in.status(opBegin, int64(st))
		} else if st != 0 {
			in.broken = true
			err = in.fault(KindBadResult, opNames[opBegin], fmt.Sprintf("unknown status %d", st))
		}
	} else {
		err = in.count(err)
	}
	if err != nil {
		b.err = err
		b.End()
		return nil, err
	}
	return b, nil
}

// Record maps one record: it appends the value JSON to answer to dst, or
// reports keep == false when the transform filters the record out. dst may
// share memory with keyJSON and valueJSON: they are copied into the plugin
// before anything is written to dst.
func (b *Batch) Record(dst, keyJSON, valueJSON []byte) (out []byte, keep bool, err error) {
	if b.err != nil {
		return dst, false, b.err
	}
	in := b.in
	b.records++
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(keyJSON)))
	if err := in.input(opRecord, n[:], keyJSON, valueJSON); err != nil {
		b.err = in.count(err)
		return dst, false, b.err
	}
	if err := in.invoke(opRecord); err != nil {
		b.err = in.count(err)
		return dst, false, b.err
	}
	res, skip, err := in.region(opRecord, in.stack[0], true)
	if err != nil {
		if in.broken {
			b.err = err
		}
		return dst, false, err
	}
	if skip {
		return dst, false, nil
	}
	if !(json.Valid(res) && utf8.Valid(res)) {
		in.broken = true
		b.err = in.fault(KindBadOutput, opNames[opRecord], fmt.Sprintf("output is not valid UTF-8 JSON: %.64q", res))
		return dst, false, b.err
	}
	return append(dst, res...), true, nil
}

// End ends the batch and returns the instance to the pool.
func (b *Batch) End() {
	if b.in == nil {
		return
	}
	in := b.in
	if !in.broken && in.fns[opEnd] != nil && b.err == nil {
		if err := in.invoke(opEnd); err != nil {
			in.count(err)
		}
	}
	b.m.metrics.ops[opBegin].observe(in)
	if b.span != nil {
		b.span.SetAttributes(attribute.Int("iqengine.plugin.records", b.records),
			attribute.Int64("iqengine.plugin.time_us", in.spent.Load()/1000))
		endSpan(b.span, b.err)
	}
	b.in = nil
	b.v.put(in)
	b.v.release()
}
