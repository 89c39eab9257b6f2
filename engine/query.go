package engine

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/engine/store"
)

// Store returns the store with the given name.
func (e *Engine) Store(name string) (StoreSpec, bool) {
	s, ok := e.stores[name]
	return s, ok
}

// Stores returns every store, sorted by name.
func (e *Engine) Stores() []StoreSpec {
	out := make([]StoreSpec, 0, len(e.stores))
	for _, s := range e.stores {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// NodeID is this node's id.
func (e *Engine) NodeID() string { return e.cfg.NodeID }

// PartitionCount returns the number of partitions of topic, as last seen in
// the cluster's metadata.
func (e *Engine) PartitionCount(topic string) (int32, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	n, ok := e.counts[topic]
	if !ok {
		return 0, ErrUnknownTopic
	}
	return n, nil
}

// serving returns p when it serves here, else a *NotServingError.
func (e *Engine) serving(p store.Partition) error {
	e.mu.RLock()
	part := e.parts[p]
	e.mu.RUnlock()
	if part == nil {
		return &NotServingError{Partition: p}
	}
	if s := part.State(); s != Serving {
		return &NotServingError{Partition: p, State: s}
	}
	return nil
}

// Get returns the latest record of key in partition p. It fails with a
// *NotServingError when p does not serve here, and ErrNotFound when the key
// is absent.
func (e *Engine) Get(p store.Partition, key []byte) (store.Record, error) {
	if err := e.serving(p); err != nil {
		return store.Record{}, err
	}
	r, ok, err := e.db.Get(p, key)
	if err != nil {
		return r, err
	}
	if !ok {
		return r, ErrNotFound
	}
	return r, nil
}

// NewIterator iterates the keys k of partition p with lower <= k < upper
// (nil bounds are open), if p serves here.
func (e *Engine) NewIterator(p store.Partition, lower, upper []byte) (*store.Iterator, error) {
	if err := e.serving(p); err != nil {
		return nil, err
	}
	return e.db.NewIterator(p, lower, upper)
}

// Count counts the keys of partition p, if p serves here.
func (e *Engine) Count(p store.Partition) (int64, error) {
	if err := e.serving(p); err != nil {
		return 0, err
	}
	return e.db.Count(p)
}

// PartitionInfo describes one partition assigned to this node.
type PartitionInfo struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	State     string `json:"state"`
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

// Partitions describes every partition assigned to this node, sorted. After
// Stop, it describes where each partition stopped.
func (e *Engine) Partitions() []PartitionInfo {
	if final := e.final.Load(); final != nil {
		return *final
	}
	e.mu.RLock()
	out := make([]PartitionInfo, 0, len(e.parts))
	for _, p := range e.parts {
		next, hwm := p.next.Load(), p.hwm.Load()
		out = append(out, PartitionInfo{
			Topic:         p.id.Topic,
			Partition:     p.id.Partition,
			State:         p.State().String(),
			Offset:        next - 1,
			HighWatermark: hwm,
			Lag:           max(hwm-next, 0),
			StartOffset:   p.startOffset.Load(),
			Applied:       p.applied.Load(),
		})
	}
	e.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// Ready reports whether the node has joined the group, every partition
// assigned to it serves, and it has neither failed nor begun to leave.
func (e *Engine) Ready() bool {
	if !e.joined.Load() || e.leaving.Load() || e.Err() != nil {
		return false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if len(e.pending) > 0 {
		return false
	}
	for _, p := range e.parts {
		if p.State() != Serving {
			return false
		}
	}
	return true
}

// onAssigned marks the first completed join (franz-go calls it after every
// join, even one that assigns nothing) and notes the newly assigned
// partitions as pending until assign has set where each starts, so the
// node is not ready in between.
func (e *Engine) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	e.mu.Lock()
	for t, ps := range assigned {
		for _, p := range ps {
			id := store.Partition{Topic: t, Partition: p}
			if e.parts[id] == nil {
				e.pending[id] = true
			}
		}
	}
	e.mu.Unlock()
	e.joined.Store(true)
}

// Sync makes every applied record durable now (the store also syncs on its
// own at its sync interval).
func (e *Engine) Sync() error { return e.db.Sync() }

// Admin is the engine's admin client of the brokers (valid after Start).
func (e *Engine) Admin() *kadm.Client { return e.adm }
