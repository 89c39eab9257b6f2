package plugins

import (
	"context"
	"fmt"

	"github.com/iqengine/iqengine/serde"
)

// KeySerde is a module used as a store's key serde: key bytes → JSON,
// URL text → key bytes, and the module's partitioner when it exports one.
type KeySerde struct {
	M   *Module
	ctx context.Context // set by WithContext: each call is a span of its trace
}

// Name is "wasm:" and the module's name.
func (s KeySerde) Name() string { return "wasm:" + s.M.Name() }

// AppendJSON implements serde.Serde.
func (s KeySerde) AppendJSON(dst, b []byte) ([]byte, error) {
	span := s.M.startCall(s.ctx, opKeyToJSON)
	out, err := s.M.KeyToJSON(dst, b)
	return out, endSpan(span, err)
}

// FromText implements serde.Serde. A key the plugin rejects wraps
// serde.ErrInvalid as well as ErrRejected.
func (s KeySerde) FromText(text string) ([]byte, error) {
	span := s.M.startCall(s.ctx, opKeyFromText)
	b, err := s.M.KeyFromText(nil, text)
	if endSpan(span, err) != nil {
		if e, ok := err.(*Error); ok && e.Rejected() {
			return nil, fmt.Errorf("%w: %w", serde.ErrInvalid, err)
		}
		return nil, err
	}
	return b, nil
}

// Partition implements serde.Partitioner with the module's iq_partition,
// or Kafka's default partitioner when the module has none.
func (s KeySerde) Partition(key []byte, partitions int32) (int32, error) {
	if !s.M.Info().Has(CapPartition) {
		return serde.Partition(key, partitions), nil
	}
	span := s.M.startCall(s.ctx, opPartition)
	p, err := s.M.Partition(key, partitions)
	return p, endSpan(span, err)
}

// ValueSerde is a module used as a store's value serde.
type ValueSerde struct {
	M   *Module
	ctx context.Context // set by WithContext: each call is a span of its trace
}

// Name is "wasm:" and the module's name.
func (s ValueSerde) Name() string { return "wasm:" + s.M.Name() }

// AppendJSON implements serde.Serde.
func (s ValueSerde) AppendJSON(dst, b []byte) ([]byte, error) {
	span := s.M.startCall(s.ctx, opValueToJSON)
	out, err := s.M.ValueToJSON(dst, b)
	return out, endSpan(span, err)
}

// FromText implements serde.Serde: values have no text form.
func (s ValueSerde) FromText(string) ([]byte, error) {
	return nil, fmt.Errorf("%w: %s is a value serde; it has no text form", serde.ErrInvalid, s.Name())
}
