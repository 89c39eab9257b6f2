package plugins

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/iqengine/iqengine/serde/registry"
)

// Statuses of iq.schema (sdk/ABI.md, The schema registry).
const (
	// schemaUnknown: the registry has no schema with this id (or the id
	// is not positive, so no registry could have it).
	schemaUnknown = -1
	// schemaUnavailable: the registry could not be reached, or did not
	// answer in the time the call had left, and the schema is not cached.
	schemaUnavailable = -2
)

// Schema types of iq.schema's result, in its high 32 bits.
var schemaTypes = map[string]uint64{"AVRO": 1, "PROTOBUF": 2, "JSON": 3}

// instanceKey is the context key of the instance a call runs on.
type instanceKey struct{}

// schema is iq.schema(id i32, ptr i32, cap i32) -> i64: the schema
// registry's schema with the global id, through the node's client and its
// cache. The text is written at [ptr, ptr+cap) when it fits; the result is
// its type (AVRO 1, PROTOBUF 2, JSON 3) << 32 | its length either way, so a
// plugin whose buffer was short asks again with a bigger one. A buffer
// outside the plugin's memory is a fault; an unknown id or a registry that
// cannot answer in time is a status the plugin handles.
//
// The registry is waited for at most half the time the call has left
// (plugins.timeout, less what the call or its batch has used), so that the
// plugin still has time to answer with its own error rather than be
// stopped by the watchdog: a registry outage never holds a call past its
// deadline.
func (h *Host) schema(ctx context.Context, mod api.Module, stack []uint64) {
	id, ptr, capacity := int32(stack[0]), uint32(stack[1]), uint32(stack[2])
	mem := mod.Memory()
	if uint64(ptr)+uint64(capacity) > uint64(mem.Size()) {
		panic(fmt.Sprintf("%s: the buffer [%d, %d) is outside memory of %d bytes", SchemaImport, ptr, uint64(ptr)+uint64(capacity), mem.Size()))
	}
	if id <= 0 {
		stack[0] = api.EncodeI64(schemaUnknown)
		return
	}
	wait := h.opts.Timeout / 2
	if in, ok := ctx.Value(instanceKey{}).(*instance); ok {
		left := int64(h.opts.Timeout) - in.spent.Load()
		if start := in.busySince.Load(); start != 0 {
			left -= nanotime() - start
		}
		wait = time.Duration(left / 2)
	}
	if wait <= 0 {
		if in, ok := ctx.Value(instanceKey{}).(*instance); ok {
			in.registryDown = true
		}
		stack[0] = api.EncodeI64(schemaUnavailable)
		return
	}
	rctx, cancel := context.WithTimeout(context.Background(), wait)
	s, err := h.opts.Registry.SchemaByID(rctx, int(id))
	cancel()
	switch {
	case errors.Is(err, registry.ErrUnknownSchema):
		stack[0] = api.EncodeI64(schemaUnknown)
		return
	case err != nil:
		if in, ok := ctx.Value(instanceKey{}).(*instance); ok {
			in.registryDown = true
		}
		stack[0] = api.EncodeI64(schemaUnavailable)
		return
	}
	typ, ok := schemaTypes[s.Type]
	if !ok || uint64(len(s.Text)) >= 1<<31 {
		// The client knows no other types; a text past 2 GiB could not
		// be written to a plugin's memory anyway.
		stack[0] = api.EncodeI64(schemaUnavailable)
		return
	}
	if uint32(len(s.Text)) <= capacity {
		mem.WriteString(ptr, s.Text)
	}
	stack[0] = typ<<32 | uint64(len(s.Text))
}
