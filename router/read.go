package router

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/iqengine/iqengine/cluster"
	"github.com/iqengine/iqengine/state"
)

// partitionRead is one kind of read of a partition (a key's record, a page
// of a scan, a count): local reads it from this node's engine, remote asks
// the partition's owner, op names it in spans. Implementations are small
// structs passed by value: closures would cost every lookup allocations.
type partitionRead[T any] interface {
	op() string
	local(p state.Partition) (T, error)
	remote(ctx context.Context, deadline time.Time, owner cluster.Member, p state.Partition) (T, error)
}

// readHere reads p locally. When p serves on another node, remote is true
// and owner is the node to ask instead; otherwise v and err are the answer:
// the local read's, or route's *waitError or *notOwnerError. hops is the
// request's hop count: a forwarded request is not forwarded again.
func readHere[T any, R partitionRead[T]](ctx context.Context, h *Handler, hops int, rd R, p state.Partition) (v T, owner cluster.Member, remote bool, err error) {
	start := h.tr.now()
	v, err = rd.local(p)
	owner, local, rerr := h.route(p, err, hops)
	switch {
	case local:
		h.tr.storeRead(ctx, rd.op(), p, start, err)
		return v, owner, false, err
	case rerr != nil:
		var zero T
		return zero, owner, false, rerr
	}
	return v, owner, true, nil
}

// readPartition reads p here or from its owner, and returns who served it.
func readPartition[T any, R partitionRead[T]](ctx context.Context, deadline time.Time, h *Handler, hops int, rd R, p state.Partition) (T, string, error) {
	v, owner, remote, err := readHere(ctx, h, hops, rd, p)
	if !remote {
		return v, h.e.NodeID(), err
	}
	v, err = rd.remote(ctx, deadline, owner, p)
	return v, owner.NodeID, err
}

// gatherPartitions reads partitions 0 to n-1 of topic: those that serve
// here one after the other, the others from their owners in parallel. It
// returns every partition's answer (the zero T where it failed) and the
// joined errors of the partitions that failed, so that the caller can wait
// for them and name them.
func gatherPartitions[T any, R partitionRead[T]](ctx context.Context, deadline time.Time, h *Handler, hops int, rd R, topic string, n int32) ([]T, error) {
	vals := make([]T, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := int32(0); i < n; i++ {
		p := state.Partition{Topic: topic, Partition: i}
		v, owner, remote, err := readHere(ctx, h, hops, rd, p)
		if !remote {
			vals[i], errs[i] = v, err
			continue
		}
		wg.Go(func() {
			vals[i], errs[i] = rd.remote(ctx, deadline, owner, p)
		})
	}
	wg.Wait()
	return vals, errors.Join(errs...)
}
