package engine

import (
	"context"
	"iter"
	"sort"
	"time"

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

// readable returns nil when p can be read here: an active partition that
// serves, or a standby that has caught up once (its lag is the reader's to
// judge, see Replica). Otherwise a *state.NotServingError.
func (e *Engine) readable(p state.Partition) error {
	_, err := e.servingReplica(p)
	return err
}

// replicaOf is p as held here in either role, or nil.
func (e *Engine) replicaOf(p state.Partition) *partition {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if part := e.parts[p]; part != nil {
		return part
	}
	return e.standbys[p]
}

// servingReplica is p as held here when it may be read, else a
// *state.NotServingError.
func (e *Engine) servingReplica(p state.Partition) (*partition, error) {
	part := e.replicaOf(p)
	if part == nil {
		return nil, &state.NotServingError{Partition: p}
	}
	if s := part.Status(); s != state.Serving {
		return nil, &state.NotServingError{Partition: p, Status: s}
	}
	return part, nil
}

// Replica says how p is held here, for a read to judge: as its active owner
// or as a standby, at which position and lag. It fails with a
// *state.NotServingError when p cannot be read here: Status Restoring while
// it restores (as an active partition or a new standby), 0 when it is not
// held here.
func (e *Engine) Replica(p state.Partition) (state.Replica, error) {
	part, err := e.servingReplica(p)
	if err != nil {
		return state.Replica{}, err
	}
	next := part.next.Load()
	return state.Replica{Kind: part.kind, Next: next, Upto: part.upto.Load(), Lag: max(part.hwm.Load()-next, 0)}, nil
}

// WaitApplied waits until p, held here in either role, has applied every
// offset below next, and returns nil; or returns ctx's error when ctx ends
// first. A partition not held here is waited for too: it may be assigned
// here in a moment (the caller bounds the wait with ctx).
func (e *Engine) WaitApplied(ctx context.Context, p state.Partition, next int64) error {
	for {
		part := e.replicaOf(p)
		var progress <-chan struct{}
		if part != nil {
			progress = *part.progress.Load()
			if part.next.Load() >= next && part.Status() == state.Serving {
				return nil
			}
		}
		// A partition that changes role, or is not held yet, is looked up
		// again every 50ms.
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-progress:
		case <-t.C:
		}
		t.Stop()
	}
}

// Get returns the latest record of key in partition p. It fails with a
// *state.NotServingError when p does not serve here, and state.ErrNotFound when the key
// is absent.
func (e *Engine) Get(p state.Partition, key []byte) (state.Record, error) {
	if err := e.readable(p); err != nil {
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
	if err := e.readable(p); err != nil {
		return nil, err
	}
	it, err := e.db.NewIterator(p, lower, upper)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return it, nil
}

// NewReverseIterator is NewIterator in descending key order.
func (e *Engine) NewReverseIterator(p state.Partition, lower, upper []byte) (state.Iterator, error) {
	if err := e.readable(p); err != nil {
		return nil, err
	}
	it, err := e.db.NewReverseIterator(p, lower, upper)
	if err != nil {
		return nil, err
	}
	return it, nil
}

// StreamTime is the stream time of partition p of a window or session
// store's topic, if p serves here: the greatest window start or session end
// it has applied, state.NoStreamTime before any.
func (e *Engine) StreamTime(p state.Partition) (int64, error) {
	if err := e.readable(p); err != nil {
		return 0, err
	}
	st, _, err := e.streamTime(p)
	return st, err
}

// streamTime reads p's stream time from the store; ok is false when it
// holds none.
func (e *Engine) streamTime(p state.Partition) (int64, bool, error) {
	st, ok, err := e.db.StreamTime(p)
	if !ok {
		st = state.NoStreamTime
	}
	return st, ok, err
}

// Count counts the keys of partition p, if p serves here. It walks the
// partition, and stops with ctx's error when ctx ends.
func (e *Engine) Count(ctx context.Context, p state.Partition) (int64, error) {
	if err := e.readable(p); err != nil {
		return 0, err
	}
	return e.db.Count(ctx, p)
}

// Partitions describes every partition held here, active or standby,
// sorted. After Stop, it describes where each partition stopped.
func (e *Engine) Partitions() []state.PartitionInfo {
	if final := e.final.Load(); final != nil {
		return *final
	}
	e.mu.RLock()
	out := make([]state.PartitionInfo, 0, len(e.parts)+len(e.standbys))
	for p := range e.allParts() {
		next, hwm := p.next.Load(), p.hwm.Load()
		out = append(out, state.PartitionInfo{
			Topic:         p.id.Topic,
			Partition:     p.id.Partition,
			Replica:       p.kind.String(),
			State:         p.Status().String(),
			Offset:        next - 1,
			HighWatermark: hwm,
			Lag:           max(hwm-next, 0),
			StartOffset:   p.startOffset.Load(),
			Applied:       p.applied.Load(),
			MalformedKeys: p.malformed.Load(),
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

// allParts yields the active partitions, then the standbys. The caller
// holds e.mu.
func (e *Engine) allParts() iter.Seq[*partition] {
	return func(yield func(*partition) bool) {
		for _, m := range []map[state.Partition]*partition{e.parts, e.standbys} {
			for _, p := range m {
				if !yield(p) {
					return
				}
			}
		}
	}
}
