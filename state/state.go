// Package state is the vocabulary of materialised state that the engine,
// which keeps it, and the HTTP layer, which reads it, share: stores,
// partitions, records, a partition's status on a node, and the errors a
// read ends in. It knows nothing of Pebble, Kafka or HTTP, so code that
// reads state can be tested against a fake.
package state

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/iqengine/iqengine/serde"
)

// Store is one queryable store: a topic and how to read its records.
type Store struct {
	Name  string
	Topic string
	Key   serde.Serde
	Value serde.Serde
}

// Partition names one topic partition.
type Partition struct {
	Topic     string
	Partition int32
}

func (p Partition) String() string { return fmt.Sprintf("%s/%d", p.Topic, p.Partition) }

// Record is one key's latest state.
type Record struct {
	Key       []byte
	Value     []byte
	Offset    int64
	Timestamp int64 // Unix milliseconds
}

// Iterator walks one partition's records in key order. Key and Value of a
// record it returns are valid until the next call to Next or Close. Every
// iterator must be closed: the store waits for open iterators when it
// closes.
type Iterator interface {
	// Next moves to the next record and returns it; ok is false at the end
	// or on error (see Err).
	Next() (r Record, ok bool)
	// Err is the first error the iterator met.
	Err() error
	// Close releases the iterator. Later calls do nothing.
	Close() error
}

// Status is the status of one partition on one node.
type Status int32

const (
	// Restoring: assigned, catching up with the end of the log seen at
	// assignment. Queries wait.
	Restoring Status = iota + 1
	// Serving: caught up; queries are answered.
	Serving
	// Revoked: no longer assigned to this node. The data stays, so a sticky
	// return restores only what it missed.
	Revoked
)

func (s Status) String() string {
	switch s {
	case Restoring:
		return "restoring"
	case Serving:
		return "serving"
	case Revoked:
		return "revoked"
	}
	return "unassigned"
}

// PartitionInfo describes one partition assigned to a node.
type PartitionInfo struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	State     string `json:"state"` // a Status's String
	// Offset is the offset of the last applied record, -1 for none.
	Offset int64 `json:"offset"`
	// HighWatermark is the end of the log as last fetched: the high
	// watermark, or the last stable offset when reading committed.
	HighWatermark int64 `json:"high_watermark"`
	// Lag is the number of records not yet applied.
	Lag int64 `json:"lag"`
	// StartOffset is where consumption started when the partition was
	// assigned: the stored offset + 1, or the log start.
	StartOffset int64 `json:"start_offset"`
	// Applied counts records applied since the assignment.
	Applied int64 `json:"applied"`
}

// Errors a read can end in. Callers tell them apart with errors.Is/As.
var (
	// ErrNotFound: the partition serves, and the key is absent.
	ErrNotFound = errors.New("key not found")
	// ErrUnknownTopic: the topic is not materialised here.
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrClosed: the store is closing or closed (the node is stopping).
	ErrClosed = errors.New("store closed")
)

// NotServingError says that a partition cannot answer here now: it is
// restoring, or not assigned to this node.
type NotServingError struct {
	Partition Partition
	Status    Status // 0 when not assigned here
}

func (e *NotServingError) Error() string {
	return fmt.Sprintf("partition %s is %s on this node", e.Partition, e.Status)
}

// PrefixEnd is the smallest key greater than every key with prefix p, or
// nil when there is none (p is empty or all 0xff): the exclusive upper bound
// of a prefix scan.
func PrefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
