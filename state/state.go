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
	// Kind says what the topic's keys are: plain keys (KeyValue, the
	// zero value), or a Kafka Streams window or session store's keys, an
	// inner key with times after it (see window.go). Key is the inner
	// key's serde.
	Kind Kind
	// Window is the window and session stores' key schema and retention.
	Window Window
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

// ReplicaKind says how a node holds a partition: as its active owner (the
// consumer group assigned it here) or as a standby replica (consumed from the
// same topic outside the group, so another node can fail without a restore).
type ReplicaKind uint8

const (
	Active ReplicaKind = iota + 1
	Standby
)

func (k ReplicaKind) String() string {
	switch k {
	case Active:
		return "active"
	case Standby:
		return "standby"
	}
	return "none"
}

// Replica is a partition as one node holds it, for a read to judge: which
// kind of replica, and how far it has applied the log.
type Replica struct {
	Kind ReplicaKind
	// Next is the replica's position: the offset after the last record (or
	// transaction marker) it applied. A record at offset O is visible once
	// Next > O.
	Next int64
	// Upto bounds Next from above for a read that starts now: every record
	// such a read can see lies below it. A position token taken after a read
	// uses it, so a later read that waits for the token sees at least as
	// much (Next, the lower bound, is what a read waits for).
	Upto int64
	// Lag is how many offsets the replica is behind the end of the log it
	// last saw (the last stable offset when reading committed).
	Lag int64
}

// PartitionInfo describes one partition held by a node.
type PartitionInfo struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Replica is "active" or "standby" (a ReplicaKind's String).
	Replica string `json:"replica"`
	State   string `json:"state"` // a Status's String
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
	// MalformedKeys counts the records skipped since the assignment because
	// their key is too short for the window or session store's key schema
	// (absent for other topics, and while none was).
	MalformedKeys int64 `json:"malformed_keys,omitempty"`
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
