// Package partition gives a plugin the partitioner capability: importing it
// exports `iq_partition` from the module, and Handle registers the Go
// function that implements it. Without it the host uses Kafka's default
// partitioner (murmur2 of the key bytes); export it when the topic's
// producers partition some other way.
//
//	func init() {
//		partition.Handle(func(key []byte, partitions int32) (int32, error) {
//			if len(key) < 2 {
//				return 0, iq.Reject("key too short")
//			}
//			site := int32(key[0])<<8 | int32(key[1])
//			return site % partitions, nil
//		})
//	}
//
// The key slice views the host's input buffer: it is valid only during the
// call. partitions is the topic's partition count; the SDK fails the call
// without calling the function when it is not positive, and fails it when
// the function returns a partition outside [0, partitions). Return
// iq.Reject(...) for a key this plugin does not accept.
package partition

import (
	"errors"
	"fmt"

	"github.com/iqengine/iqengine/sdk/go/internal/abi"
	_ "github.com/iqengine/iqengine/sdk/go/iq" // the core exports
)

func init() { abi.Partition = call }

var handler func([]byte, int32) (int32, error)

// Handle registers f as the module's `iq_partition`. Call it from an init
// function (a c-shared Go module never runs main); a later call replaces f.
func Handle(f func(key []byte, partitions int32) (int32, error)) { handler = f }

func call(key []byte, partitions int32) (int32, error) {
	if handler == nil {
		return 0, abi.NoHandler("iq_partition", "partition")
	}
	if partitions <= 0 {
		return 0, errors.New("iq_partition: partitions must be positive")
	}
	p, err := handler(key, partitions)
	if err != nil {
		return 0, err
	}
	if p < 0 || p >= partitions {
		return 0, fmt.Errorf("iq_partition: the handler returned partition %d, outside [0, %d)", p, partitions)
	}
	return p, nil
}
