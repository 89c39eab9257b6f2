package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/iqengine/iqengine/cluster"
	"github.com/iqengine/iqengine/state"
)

// partitionRead is one kind of read of a partition (a key's record, a page
// of a scan, a count): local reads it from this node's engine, remote asks
// another node's replica of it, op names it in spans. Implementations are
// small structs passed by value: closures would cost every lookup
// allocations.
type partitionRead[T any] interface {
	op() string
	local(p state.Partition) (T, error)
	remote(ctx context.Context, deadline time.Time, m cluster.Member, p state.Partition, c replicaCall) (T, served, error)
}

// want is what a query accepts of the replica that answers it.
type want struct {
	// activeOnly refuses standbys (?replica=active, or query.replica).
	activeOnly bool
	// maxLag is the most offsets the replica may be behind the end of the
	// log it last saw (?max_lag=); below 0, any.
	maxLag int64
	// minNext is, by partition, the position the replica must have reached
	// (?min_offset=, ?position=): every offset below it applied.
	minNext map[int32]int64
}

// accepts reports whether a replica of partition p may answer.
func (w *want) accepts(p int32, r state.Replica) bool {
	return (!w.activeOnly || r.Kind == state.Active) && (w.maxLag < 0 || r.Lag <= w.maxLag) && r.Next >= w.minNext[p]
}

// replicaCall is what a call to another node's replica asks of it.
type replicaCall struct {
	activeOnly bool
	maxLag     int64
	minNext    int64
	// wait lets the replica wait (up to the caller's deadline) while the
	// partition restores or has not reached minNext; without it the
	// replica answers at once, so the caller can ask another.
	wait bool
}

func (w *want) call(p int32, wait bool) replicaCall {
	return replicaCall{activeOnly: w.activeOnly, maxLag: w.maxLag, minNext: w.minNext[p], wait: wait}
}

// served says which replica answered a partition's read.
type served struct {
	node string
	kind state.ReplicaKind
	// lag is the replica's lag when it answered, and upto its position
	// token for this partition: everything the read saw lies below it.
	lag, upto int64
}

// behindError says that a replica has not applied far enough for the
// query: below its ?min_offset= or ?position=, or more than ?max_lag=
// behind. Queries retry it until their deadline, then answer
// position-not-reached.
type behindError struct {
	p        state.Partition
	node     string
	have     int64 // the replica's position (or lag, when lag is true)
	wantNext int64
	lag      bool
	wantLag  int64
}

func (e *behindError) Error() string {
	if e.lag {
		return fmt.Sprintf("partition %s: the replica on %s is %d records behind (max_lag %d)", e.p, e.node, e.have, e.wantLag)
	}
	return fmt.Sprintf("partition %s: the replica on %s has applied up to offset %d, the query wants %d", e.p, e.node, e.have-1, e.wantNext-1)
}

// reason is the partition's line in a 503.
func (e *behindError) reason() string {
	if e.lag {
		return fmt.Sprintf("%d records behind on %s, max_lag %d", e.have, e.node, e.wantLag)
	}
	return fmt.Sprintf("applied up to offset %d on %s, the query wants %d", e.have-1, e.node, e.wantNext-1)
}

// readLocal reads p here, when the replica here may answer, and says so.
func readLocal[T any, R partitionRead[T]](ctx context.Context, h *Handler, rd R, p state.Partition, rep state.Replica) (T, served, error) {
	start := h.tr.now()
	v, err := rd.local(p)
	h.tr.storeRead(ctx, rd.op(), p, start, err)
	s := served{node: h.e.NodeID(), kind: rep.Kind, lag: rep.Lag, upto: rep.Upto}
	if after, aerr := h.e.Replica(p); aerr == nil {
		s.upto = max(after.Upto, rep.Upto) // taken after the read: bounds what it saw
	}
	return v, s, err
}

// readPartition reads p from one of its replicas: here when this node is
// its active owner; else its active owner; else, unless the query wants the
// active only, a standby (this node's first). A replica that cannot answer
// (unreachable, restoring, behind what the query wants, not holding the
// partition) makes it ask the next at once; when none answers, the errors
// are what await waits on. hops is the request's hop count: a forwarded
// request is answered from here or not at all.
func readPartition[T any, R partitionRead[T]](ctx context.Context, deadline time.Time, h *Handler, hops int, rd R, p state.Partition, w *want) (T, served, error) {
	var zero T
	self := h.e.NodeID()
	rep, lerr := h.e.Replica(p)
	if lerr == nil && rep.Kind == state.Active && !w.accepts(p.Partition, rep) {
		// The active owner is here but behind what the query wants: wait
		// for it here, within the deadline.
		if m := w.minNext[p.Partition]; m > rep.Next {
			wctx, cancel := context.WithDeadline(ctx, deadline)
			_ = h.e.WaitApplied(wctx, p, m)
			cancel()
			rep, lerr = h.e.Replica(p)
		}
	}
	// gone: the replica here went away under the read (the partition
	// moved, or the node is stopping and closed its store).
	gone := false
	if lerr == nil && w.accepts(p.Partition, rep) && (rep.Kind == state.Active || hops > 0) {
		v, s, err := readLocal(ctx, h, rd, p, rep)
		if !errors.Is(err, state.ErrClosed) && !isNotServing(err) {
			return v, s, err
		}
		gone = true
	}
	if hops > 0 {
		if gone {
			return zero, served{}, &notOwnerError{p, h.table().Generation()}
		}
		return zero, served{}, h.notHere(p, rep, lerr, w)
	}
	t := h.table()
	owner, hasOwner := t.Owner(p.Topic, p.Partition)
	var standbys []cluster.Member
	if !w.activeOnly {
		for _, m := range t.Standbys(p.Topic, p.Partition) {
			if m.NodeID != self && (!hasOwner || m.NodeID != owner.NodeID) {
				standbys = append(standbys, m)
			}
		}
	}
	localStandby := !gone && lerr == nil && rep.Kind == state.Standby && w.accepts(p.Partition, rep)
	var errs []error
	if hasOwner && owner.NodeID != self {
		// The active owner may wait (while it restores, or for a
		// position) only when nobody else could answer instead, or when
		// the query waits for a position, which the active owner reaches
		// first.
		wait := (len(standbys) == 0 && !localStandby) || w.minNext[p.Partition] > 0
		v, s, err := rd.remote(ctx, deadline, owner, p, w.call(p.Partition, wait))
		if !failover(err) {
			return v, s, err
		}
		errs = append(errs, err)
	}
	if localStandby {
		v, s, err := readLocal(ctx, h, rd, p, rep)
		if !errors.Is(err, state.ErrClosed) && !isNotServing(err) {
			h.m.failover(len(errs) > 0)
			return v, s, err
		}
		gone = true
	}
	for _, m := range standbys {
		if !time.Now().Before(deadline) {
			break // spent waiting here for a position: nobody else is asked
		}
		v, s, err := rd.remote(ctx, deadline, m, p, w.call(p.Partition, false))
		if !failover(err) {
			h.m.failover(len(errs) > 0)
			return v, s, err
		}
		errs = append(errs, err)
	}
	switch {
	case lerr == nil && !gone && !w.accepts(p.Partition, rep):
		errs = append(errs, behindHere(self, p, rep, w))
	case isRestoring(lerr):
		errs = append(errs, &waitError{p, "restoring on " + self})
	case !hasOwner && len(errs) == 0:
		h.refreshSoon()
		errs = append(errs, &waitError{p, "no owner (moving between nodes)"})
	case hasOwner && owner.NodeID == self:
		h.refreshSoon() // or this node lost its membership and its table is stale
		errs = append(errs, &waitError{p, "assigned to " + self + ", not started yet"})
	}
	if len(errs) == 0 {
		errs = append(errs, &waitError{p, "no replica answered"})
	}
	return zero, served{}, errors.Join(errs...)
}

// notHere is the error of a forwarded read that this node cannot answer.
func (h *Handler) notHere(p state.Partition, rep state.Replica, lerr error, w *want) error {
	switch {
	case lerr == nil:
		return behindHere(h.e.NodeID(), p, rep, w)
	case isRestoring(lerr):
		return &waitError{p, "restoring on " + h.e.NodeID()}
	}
	return &notOwnerError{p, h.table().Generation()}
}

// behindHere says why the replica here does not answer the query.
func behindHere(node string, p state.Partition, rep state.Replica, w *want) error {
	if w.activeOnly && rep.Kind != state.Active {
		return &waitError{p, "only a standby on " + node + " (the query wants the active replica)"}
	}
	if m := w.minNext[p.Partition]; rep.Next < m {
		return &behindError{p: p, node: node, have: rep.Next, wantNext: m}
	}
	return &behindError{p: p, node: node, have: rep.Lag, lag: true, wantLag: w.maxLag}
}

// failover reports whether a replica's error lets the read ask another
// replica: it could not answer now (as opposed to an answer, or a failure
// another replica would repeat).
func failover(err error) bool {
	if err == nil {
		return false
	}
	waiting, hard := classify(err)
	return waiting != nil && hard == nil
}

func isNotServing(err error) bool {
	var ns *state.NotServingError
	return errors.As(err, &ns)
}

func isRestoring(err error) bool {
	var ns *state.NotServingError
	return errors.As(err, &ns) && ns.Status == state.Restoring
}

// gatherPartitions reads partitions 0 to n-1 of topic: those whose active
// owner is this node one after the other, the others from a replica in
// parallel. It returns every partition's answer (the zero T where it
// failed), which replica answered each, and the joined errors of the
// partitions that failed, so that the caller can wait for them and name
// them.
func gatherPartitions[T any, R partitionRead[T]](ctx context.Context, deadline time.Time, h *Handler, hops int, rd R, topic string, n int32, w *want) ([]T, []served, error) {
	vals := make([]T, n)
	by := make([]served, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := int32(0); i < n; i++ {
		p := state.Partition{Topic: topic, Partition: i}
		if rep, err := h.e.Replica(p); err == nil && rep.Kind == state.Active && w.accepts(i, rep) {
			vals[i], by[i], errs[i] = readLocal(ctx, h, rd, p, rep)
			if !errors.Is(errs[i], state.ErrClosed) && !isNotServing(errs[i]) {
				continue
			}
		}
		wg.Go(func() {
			vals[i], by[i], errs[i] = readPartition(ctx, deadline, h, hops, rd, p, w)
		})
	}
	wg.Wait()
	return vals, by, errors.Join(errs...)
}
