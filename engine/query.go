package engine

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/state"
)

// Store returns the store with the given name.
func (e *Engine) Store(name string) (state.Store, bool) {
	s, ok := e.stores[name]
	return s, ok
}

// Stores returns every store, sorted by name.
func (e *Engine) Stores() []state.Store {
	out := make([]state.Store, 0, len(e.stores))
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
		return 0, state.ErrUnknownTopic
	}
	return n, nil
}

// serving returns p when it serves here, else a *state.NotServingError.
func (e *Engine) serving(p state.Partition) error {
	e.mu.RLock()
	part := e.parts[p]
	e.mu.RUnlock()
	if part == nil {
		return &state.NotServingError{Partition: p}
	}
	if s := part.Status(); s != state.Serving {
		return &state.NotServingError{Partition: p, Status: s}
	}
	return nil
}

// Get returns the latest record of key in partition p. It fails with a
// *state.NotServingError when p does not serve here, and state.ErrNotFound when the key
// is absent.
func (e *Engine) Get(p state.Partition, key []byte) (state.Record, error) {
	if err := e.serving(p); err != nil {
		return state.Record{}, err
	}
	r, ok, err := e.db.Get(p, key)
	if err != nil {
		return r, err
	}
	if !ok {
		return r, state.ErrNotFound
	}
	return r, nil
}

// NewIterator iterates the keys k of partition p with lower <= k < upper
// (nil bounds are open), if p serves here.
func (e *Engine) NewIterator(p state.Partition, lower, upper []byte) (state.Iterator, error) {
	if err := e.serving(p); err != nil {
		return nil, err
	}
	it, err := e.db.NewIterator(p, lower, upper)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return it, nil
}

// Count counts the keys of partition p, if p serves here.
func (e *Engine) Count(p state.Partition) (int64, error) {
	if err := e.serving(p); err != nil {
		return 0, err
	}
	return e.db.Count(p)
}

// Partitions describes every partition assigned to this node, sorted. After
// Stop, it describes where each partition stopped.
func (e *Engine) Partitions() []state.PartitionInfo {
	if final := e.final.Load(); final != nil {
		return *final
	}
	e.mu.RLock()
	out := make([]state.PartitionInfo, 0, len(e.parts))
	for _, p := range e.parts {
		next, hwm := p.next.Load(), p.hwm.Load()
		out = append(out, state.PartitionInfo{
			Topic:         p.id.Topic,
			Partition:     p.id.Partition,
			State:         p.Status().String(),
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
		if p.Status() != state.Serving {
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
			id := state.Partition{Topic: t, Partition: p}
			if e.parts[id] == nil {
				e.pending[id] = true
			}
		}
	}
	e.mu.Unlock()
	e.joined.Store(true)
}
