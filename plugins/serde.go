package plugins

import (
	"fmt"

	"github.com/iqengine/iqengine/serde"
)

// KeySerde is a module used as a store's key serde: key bytes → JSON,
// URL text → key bytes, and the module's partitioner when it exports one.
type KeySerde struct{ M *Module }

// Name is "wasm:" and the module's name.
func (s KeySerde) Name() string { return "wasm:" + s.M.Name() }

// AppendJSON implements serde.Serde.
func (s KeySerde) AppendJSON(dst, b []byte) ([]byte, error) { return s.M.KeyToJSON(dst, b) }

// FromText implements serde.Serde. A key the plugin rejects wraps
// serde.ErrInvalid as well as ErrRejected.
func (s KeySerde) FromText(text string) ([]byte, error) {
	b, err := s.M.KeyFromText(nil, text)
	if err != nil {
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
	return s.M.Partition(key, partitions)
}

// ValueSerde is a module used as a store's value serde.
type ValueSerde struct{ M *Module }

// Name is "wasm:" and the module's name.
func (s ValueSerde) Name() string { return "wasm:" + s.M.Name() }

// AppendJSON implements serde.Serde.
func (s ValueSerde) AppendJSON(dst, b []byte) ([]byte, error) { return s.M.ValueToJSON(dst, b) }

// FromText implements serde.Serde: values have no text form.
func (s ValueSerde) FromText(string) ([]byte, error) {
	return nil, fmt.Errorf("%w: %s is a value serde; it has no text form", serde.ErrInvalid, s.Name())
}
