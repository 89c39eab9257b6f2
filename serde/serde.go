// Package serde turns Kafka record bytes into JSON answers and the text form
// of a key (as written in a URL) into Kafka key bytes, and computes a key's
// partition the way Kafka's Java producer does.
//
// Serdes run at query time only: ingest stores the raw Kafka bytes, so a
// serde never slows materialisation down. This package must not know about
// stores, HTTP or the cluster.
package serde

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Serde converts one record format. Implementations are safe for concurrent
// use.
type Serde interface {
	// Name is the name a store's config uses for this serde.
	Name() string
	// AppendJSON appends the JSON form of the Kafka bytes b to dst. Bytes
	// that are not in the serde's format give an error wrapping ErrInvalid.
	AppendJSON(dst, b []byte) ([]byte, error)
	// FromText turns the text form of a key, as written in a URL path or a
	// range bound, into the Kafka bytes the producer wrote. Text that does
	// not parse gives an error wrapping ErrInvalid that says why.
	FromText(s string) ([]byte, error)
}

// ErrInvalid is wrapped by every error caused by input that is not in a
// serde's format.
var ErrInvalid = errors.New("invalid input")

var builtins = map[string]Serde{}

func register(s Serde) { builtins[s.Name()] = s }

// Lookup returns the built-in serde with the given name.
func Lookup(name string) (Serde, error) {
	if s, ok := builtins[name]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("unknown serde %q (built-in: %s)", name, strings.Join(Names(), ", "))
}

// Names lists the built-in serdes, sorted.
func Names() []string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Partitioner is implemented by key serdes for topics not written with
// Kafka's default partitioner (a WebAssembly plugin exporting iq_partition).
type Partitioner interface {
	// Partition is the partition of the key bytes among partitions.
	Partition(key []byte, partitions int32) (int32, error)
}

// PartitionOf is the partition of key bytes written with key serde s: its
// own partitioner if it has one, else Kafka's default partitioner.
func PartitionOf(s Serde, key []byte, partitions int32) (int32, error) {
	if p, ok := s.(Partitioner); ok {
		return p.Partition(key, partitions)
	}
	return Partition(key, partitions), nil
}
