package engine

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/cluster"
	"github.com/iqengine/iqengine/state"
)

// Standby replicas. The consumer group assigns each partition to one node,
// its active owner; the routing table (package cluster) also names standby
// nodes for it. A standby consumes the partition straight from its topic,
// outside the group (direct partition assignment, a client of its own),
// into the same store layout with its own checkpoint: it is exactly as
// durable and as restartable as an active partition, and when the group
// then assigns the partition here, the group consumer resumes from the
// standby's checkpoint, so the hand-over costs only the standby's lag.
//
// The node hands the engine each new routing table (UseTable); the engine
// reports its positions for the balancer's join metadata (Positions).
//
// A partition changes role under applyMu and e.mu together, and each
// consumer applies only to partitions of its own role (apply's parts), so
// one consumer's records are never applied after the other has taken over
// from the checkpoint.

// standbyState is the standby consumer's.
type standbyState struct {
	cl   *kgo.Client
	done chan struct{} // closed when its poll loop has returned
	// want is what the latest routing table wants held here as standbys.
	want atomic.Pointer[standbyWant]
	wake chan struct{} // buffered: a new want to reconcile
	// orphans are partitions whose group session ended here, with the
	// generation of the table held then: they stay as standbys until a
	// newer table says where they go (under e.mu).
	orphans map[state.Partition]int32
	// toRebuild is the standby consumer's list for rebuild (its poll
	// goroutine only).
	toRebuild []*partition
	// rejoinedGen and rejoinedAt are when checkWarmups last rejoined
	// (standbyLoop only).
	rejoinedGen int32
	rejoinedAt  time.Time
}

type standbyWant struct {
	table *cluster.Table
	parts map[state.Partition]bool
}

// UseTable takes a new routing table: the standbys it names for this node
// start (reading the log's bounds first, as an assignment does) and those
// it no longer names stop, in the background. It returns at once, so it can
// be the balancer's OnChange callback.
func (e *Engine) UseTable(t *cluster.Table) {
	w := &standbyWant{table: t, parts: map[state.Partition]bool{}}
	for topic, ps := range t.StandbyPartitions(e.cfg.NodeID) {
		for _, p := range ps {
			w.parts[state.Partition{Topic: topic, Partition: p}] = true
		}
	}
	e.sb.want.Store(w)
	select {
	case e.sb.wake <- struct{}{}:
	default:
	}
}

// Positions reports where this node stands on every partition its store
// holds, active, standby or kept after it moved away, for the group leader
// to prefer the nodes that hold a partition's state. It is the balancer's
// cluster.Config.Positions.
func (e *Engine) Positions() cluster.Positions {
	out := cluster.Positions{}
	add := func(id state.Partition, pos cluster.Position) {
		if out[id.Topic] == nil {
			out[id.Topic] = map[int32]cluster.Position{}
		}
		out[id.Topic][id.Partition] = pos
	}
	e.mu.RLock()
	for p := range e.allParts() {
		if p.Status() != state.Revoked {
			add(p.id, cluster.Position{Next: p.next.Load(), End: p.hwm.Load()})
		}
	}
	e.mu.RUnlock()
	stored, err := e.db.Partitions()
	if err != nil {
		return out
	}
	for _, id := range stored {
		if _, ok := out[id.Topic][id.Partition]; ok {
			continue
		}
		if cp, ok, err := e.db.Checkpoint(id); err == nil && ok {
			add(id, cluster.Position{Next: cp.Offset + 1, End: -1})
		}
	}
	return out
}

// checkWarmups rejoins the group when a partition warming up here to become
// active has come within the table's acceptable lag, so that the leader
// moves it now: the follow-up rebalance of a warm-up (Kafka Streams probes
// on a timer; here the warmed-up node asks). It asks once per generation,
// and again after a while if no rebalance came of it.
func (e *Engine) checkWarmups(now time.Time) {
	w := e.sb.want.Load()
	if w == nil || e.cl == nil || e.leaving.Load() {
		return
	}
	t := w.table
	if gen := t.Generation(); gen == e.sb.rejoinedGen && now.Sub(e.sb.rejoinedAt) < 10*time.Second {
		return
	}
	e.mu.RLock()
	ready := ""
	for id, part := range e.standbys {
		m, warming := t.WarmingUp(id.Topic, id.Partition)
		if warming && m.NodeID == e.cfg.NodeID && part.Status() == state.Serving &&
			part.hwm.Load()-part.next.Load() <= t.AcceptableLag() {
			ready = id.String()
			break
		}
	}
	e.mu.RUnlock()
	if ready == "" {
		return
	}
	e.sb.rejoinedGen, e.sb.rejoinedAt = t.Generation(), now
	e.log.Info("standby warmed up: rejoining the group so it can move here", "partition", ready, "generation", t.Generation())
	e.cl.ForceRebalance()
}

// standbyClient is the consumer of the standby partitions: no group, the
// same isolation, never a reset, markers kept (see Start).
func (e *Engine) standbyClient() (*kgo.Client, error) {
	opts := append([]kgo.Opt{}, e.cfg.Kafka...)
	opts = append(opts,
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.KeepControlRecords(),
	)
	if !e.cfg.ReadUncommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	return kgo.NewClient(opts...)
}

// pollStandby applies what the standby consumer fetches until ctx ends or
// the store fails.
func (e *Engine) pollStandby(ctx context.Context) error {
	return e.consume(ctx, e.sb.cl, e.standbys, &e.sb.toRebuild, false)
}

// standbyLoop starts and stops standbys as the routing table asks, retries
// what could not start (the brokers did not answer) every two seconds, and
// has a warmed-up standby ask for its partition.
func (e *Engine) standbyLoop(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	// Warm-ups are checked often (in memory only): a warm-up that has
	// caught up waits at most this long to ask for its partition.
	warm := time.NewTicker(250 * time.Millisecond)
	defer warm.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.failed:
			return
		case <-warm.C:
			e.checkWarmups(time.Now())
			continue
		case <-e.sb.wake:
		case <-t.C:
		}
		if err := e.reconcileStandbys(ctx); err != nil && ctx.Err() == nil {
			e.fail(err)
			return
		}
		e.refreshStandbyEnds(ctx)
		e.checkWarmups(time.Now())
	}
}

// refreshStandbyEnds asks the brokers where the standbys' logs end, so
// that a standby whose fetches stall (its broker connection is down, or it
// is held back) still knows how far behind it is: its fetches alone would
// leave the end of the log where it last saw it, and its lag at 0.
func (e *Engine) refreshStandbyEnds(ctx context.Context) {
	e.mu.RLock()
	topics := map[string]bool{}
	for id := range e.standbys {
		topics[id.Topic] = true
	}
	e.mu.RUnlock()
	if len(topics) == 0 {
		return
	}
	names := slices.Sorted(maps.Keys(topics))
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	list := e.adm.ListEndOffsets
	if !e.cfg.ReadUncommitted {
		list = e.adm.ListCommittedOffsets // the last stable offsets
	}
	ends, err := list(ctx, names...)
	if err != nil {
		return // asked again at the next tick; the fetches still say
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	for id, part := range e.standbys {
		if o, ok := ends.Lookup(id.Topic, id.Partition); ok && o.Err == nil && o.Offset > part.hwm.Load() {
			part.hwm.Store(o.Offset)
		}
	}
}

// reconcileStandbys makes the standbys held here what the routing table
// wants, plus the orphans no newer table has placed. It fails only when the
// store does.
func (e *Engine) reconcileStandbys(ctx context.Context) error {
	if e.leaving.Load() {
		return nil
	}
	w := e.sb.want.Load()
	if w == nil {
		w = &standbyWant{table: cluster.EmptyTable()}
	}
	gen := w.table.Generation()
	keep := maps.Clone(w.parts)
	if keep == nil {
		keep = map[state.Partition]bool{}
	}
	var add, drop []state.Partition
	e.mu.Lock()
	for p, lostIn := range e.sb.orphans {
		if gen <= lostIn {
			keep[p] = true
		} else if !w.parts[p] {
			delete(e.sb.orphans, p) // a newer table placed it elsewhere
		}
	}
	for p := range keep {
		if e.parts[p] == nil && !e.pending[p] && e.standbys[p] == nil {
			add = append(add, p)
		}
	}
	for p := range e.standbys {
		// One the table makes active here is kept for assign to take over.
		if o, active := w.table.Owner(p.Topic, p.Partition); !keep[p] && (!active || o.NodeID != e.cfg.NodeID) {
			drop = append(drop, p)
		}
	}
	e.mu.Unlock()
	if len(drop) > 0 {
		e.dropStandby(drop)
	}
	if len(add) == 0 {
		return nil
	}
	slices.SortFunc(add, comparePartitions)
	bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lb, err := e.boundsOf(bctx, add)
	if err != nil {
		return nil // asked again at the next tick
	}
	offsets := map[string]map[int32]kgo.Offset{}
	e.applyMu.Lock()
	e.mu.Lock()
	for _, id := range add {
		if e.parts[id] != nil || e.pending[id] || e.standbys[id] != nil {
			continue // assigned here meanwhile
		}
		if cur := e.sb.want.Load(); cur != w && cur != nil && !cur.parts[id] {
			continue // a newer table no longer wants it; the next round decides
		}
		topicID := lb.meta[id.Topic].id
		next, epoch, err := e.resumeAt(id, topicID, lb.start[id], lb.end[id])
		if err != nil {
			e.mu.Unlock()
			e.applyMu.Unlock()
			return err
		}
		part := newPartition(id, topicID, state.Standby)
		part.restart(next, lb.stable[id])
		e.standbys[id] = part
		if offsets[id.Topic] == nil {
			offsets[id.Topic] = map[int32]kgo.Offset{}
		}
		offsets[id.Topic][id.Partition] = kgo.NewOffset().At(next).WithEpoch(epoch)
		e.log.Info("standby started", "partition", id.String(), "state", part.Status().String(),
			"from", next, "to", lb.stable[id])
	}
	e.mu.Unlock()
	e.applyMu.Unlock()
	if len(offsets) > 0 {
		e.sb.cl.AddConsumePartitions(offsets)
	}
	return nil
}

// dropStandby stops the given standbys; their data stays for
// Config.UnservedRetention, like that of a revoked partition.
func (e *Engine) dropStandby(ids []state.Partition) {
	remove := map[string][]int32{}
	now := time.Now()
	e.applyMu.Lock()
	e.mu.Lock()
	for _, id := range ids {
		part := e.standbys[id]
		if part == nil {
			continue
		}
		part.state.Store(int32(state.Revoked))
		delete(e.standbys, id)
		delete(e.sb.orphans, id)
		e.unserved.revoked(id, now)
		remove[id.Topic] = append(remove[id.Topic], id.Partition)
		e.log.Info("standby stopped", "partition", id.String())
	}
	e.mu.Unlock()
	e.applyMu.Unlock()
	e.sb.cl.RemoveConsumePartitions(remove)
}

// takeOverStandbys removes the standbys of parts, which the group has just
// assigned here, and returns which there were. The caller holds applyMu and
// e.mu, and stops their standby consumption (unconsume) once it has
// released them.
func (e *Engine) takeOverStandbys(parts []state.Partition) (took map[state.Partition]bool, unconsume func()) {
	took = map[state.Partition]bool{}
	remove := map[string][]int32{}
	for _, id := range parts {
		delete(e.sb.orphans, id)
		part := e.standbys[id]
		if part == nil {
			continue
		}
		part.state.Store(int32(state.Revoked))
		delete(e.standbys, id)
		e.pending[id] = true // until assign sets where it starts: no standby again meanwhile
		took[id] = true
		remove[id.Topic] = append(remove[id.Topic], id.Partition)
	}
	return took, func() {
		if len(remove) > 0 {
			e.sb.cl.RemoveConsumePartitions(remove)
		}
	}
}

// demote ends the active role of partitions the group took from this node.
// Those the routing table wants here as standbys, and every one whose
// session was lost (orphan), go on as standbys from where they stand;
// the others become unserved.
func (e *Engine) demote(ps map[string][]int32, lost bool) {
	offsets := map[string]map[int32]kgo.Offset{}
	now := time.Now()
	w := e.sb.want.Load()
	e.applyMu.Lock()
	e.mu.Lock()
	for t, parts := range ps {
		for _, p := range parts {
			id := state.Partition{Topic: t, Partition: p}
			delete(e.pending, id)
			part := e.parts[id]
			if part == nil {
				continue
			}
			part.state.Store(int32(state.Revoked))
			delete(e.parts, id)
			wanted := w != nil && w.parts[id]
			cp, stored, err := e.db.Checkpoint(id)
			if (!lost && !wanted) || part.rebuild != "" || err != nil || e.standbys[id] != nil {
				e.unserved.revoked(id, now)
				e.log.Info("partition revoked", "partition", id.String(), "lost", lost)
				continue
			}
			at := kgo.NewOffset().At(part.next.Load()) // nothing applied yet: where it started
			if stored {
				at = kgo.NewOffset().At(cp.Offset + 1).WithEpoch(cp.LeaderEpoch)
			}
			sp := newPartition(id, part.topicID, state.Standby)
			sp.restart(part.next.Load(), part.target.Load())
			sp.hwm.Store(part.hwm.Load())
			e.standbys[id] = sp
			if lost {
				if e.sb.orphans == nil {
					e.sb.orphans = map[state.Partition]int32{}
				}
				gen := int32(-1)
				if w != nil {
					gen = w.table.Generation()
				}
				e.sb.orphans[id] = gen
			}
			if offsets[t] == nil {
				offsets[t] = map[int32]kgo.Offset{}
			}
			offsets[t][p] = at
			e.log.Info("partition revoked; kept here as a standby", "partition", id.String(), "lost", lost, "from", part.next.Load())
		}
	}
	e.mu.Unlock()
	e.applyMu.Unlock()
	if len(offsets) > 0 {
		e.sb.cl.AddConsumePartitions(offsets)
	}
}

// held reports whether p is consumed here, or about to be. The caller holds
// e.mu.
func (e *Engine) held(p state.Partition) bool {
	return e.parts[p] != nil || e.pending[p] || e.standbys[p] != nil
}
