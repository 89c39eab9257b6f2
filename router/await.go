package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sethvargo/go-retry"

	"github.com/iqengine/iqengine/state"
)

// backoff is the retry schedule while a partition does not serve: quick
// first retries (a restore that is nearly done), then capped, jittered waits
// so that many waiting queries do not retry in lockstep.
func backoff() retry.Backoff {
	b := retry.NewExponential(5 * time.Millisecond)
	b = retry.WithCappedDuration(250*time.Millisecond, b)
	return retry.WithJitterPercent(20, b)
}

// unavailableError says that partitions had no serving owner before the
// deadline.
type unavailableError struct {
	partitions []unavailablePartition
}

// behind reports whether every partition waited for had a replica that
// could have answered but had not applied as far as the query wants
// (position-not-reached), rather than none that could answer at all.
func (e *unavailableError) behind() bool {
	type id struct {
		topic string
		p     int32
	}
	behind := map[id]bool{}
	for _, p := range e.partitions {
		behind[id{p.Topic, p.Partition}] = behind[id{p.Topic, p.Partition}] || p.behind
	}
	for _, b := range behind {
		if !b {
			return false
		}
	}
	return len(behind) > 0
}

func (e *unavailableError) Error() string {
	return "no serving owner before the deadline for partition " + e.reasons()
}

// reasons lists the partitions with why each was waited for.
func (e *unavailableError) reasons() string {
	parts := make([]string, len(e.partitions))
	for i, p := range e.partitions {
		parts[i] = fmt.Sprintf("%s/%d (%s)", p.Topic, p.Partition, p.Reason)
	}
	return strings.Join(parts, ", ")
}

// await calls f until it succeeds, fails with an error that waiting cannot
// cure, or the timeout passes. Only a partition without a serving owner is
// retried (*state.NotServingError, *waitError): restoring, moving, or its
// owner unreachable. When the deadline ends the wait, the error is an
// *unavailableError naming the partitions of the last try. It returns how
// long it waited. f gets the deadline, which calls to other nodes enforce
// and pass on.
func await[T any](ctx context.Context, timeout time.Duration, f func(ctx context.Context, deadline time.Time) (T, error)) (T, time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	// The common case serves at once: no timer or backoff to set up.
	v, err := f(ctx, deadline)
	last, hard := classify(err)
	if last == nil || hard != nil {
		return v, 0, hard // nil, the answer; or what waiting cannot fix
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	// A failure that ends the retries still answers with what f gave
	// (which replica said a key is not there): DoValue drops it.
	var lastV T
	v, err = retry.DoValue(ctx, backoff(), func(ctx context.Context) (T, error) {
		v, err := f(ctx, deadline)
		lastV = v
		ns, hard := classify(err)
		if ns == nil || hard != nil {
			return v, hard
		}
		last = keepEarlier(ns, last)
		return v, retry.RetryableError(err)
	})
	// The first try alone may have taken the whole timeout (a call to the
	// owner waits for it up to the deadline), and then the loop above ends
	// before it tries: its partitions are the answer all the same, never
	// the bare context error.
	if errors.Is(err, context.DeadlineExceeded) {
		err = &unavailableError{partitions: last}
	}
	if err != nil {
		v = lastV
	}
	return v, time.Since(start), err
}

// classify splits err into the partitions it says do not serve (yet), to
// wait for, and the rest (a read that failed, an answer that does not
// decode, a key not found), which waiting cannot fix: a scan or count with
// such a partition fails now rather than wait for the others and then name
// only them. hard is err itself when nothing in it is to wait for.
func classify(err error) (waiting []unavailablePartition, hard error) {
	if err == nil {
		return nil, nil
	}
	var others []error
	for _, e := range flatten(err) {
		var ns *state.NotServingError
		var we *waitError
		var le *lateError
		var be *behindError
		switch {
		case errors.As(e, &be):
			waiting = append(waiting, unavailablePartition{Topic: be.p.Topic, Partition: be.p.Partition, Reason: be.reason(), behind: true})
		case errors.As(e, &ns):
			waiting = append(waiting, unavailablePartition{Topic: ns.Partition.Topic, Partition: ns.Partition.Partition, Reason: ns.Status.String()})
		case errors.As(e, &le):
			waiting = append(waiting, unavailablePartition{Topic: le.p.Topic, Partition: le.p.Partition, Reason: le.reason, late: true})
		case errors.As(e, &we):
			waiting = append(waiting, unavailablePartition{Topic: we.p.Topic, Partition: we.p.Partition, Reason: we.reason})
		default:
			others = append(others, e)
		}
	}
	if waiting == nil {
		return nil, err
	}
	return waiting, errors.Join(others...)
}

// keepEarlier is what a retry says does not serve, given what the attempt
// before it said: a partition the retry ran out of time to ask (late) is
// named only if the attempt before named it too, with that attempt's
// reason. A retry that starts just before the deadline would otherwise
// name every partition it had no time to ask, serving or not.
func keepEarlier(now, before []unavailablePartition) []unavailablePartition {
	if before == nil {
		return now
	}
	out := make([]unavailablePartition, 0, len(now))
	for _, u := range now {
		if !u.late {
			out = append(out, u)
			continue
		}
		for _, b := range before {
			if b.Topic == u.Topic && b.Partition == u.Partition {
				out = append(out, b)
				break
			}
		}
	}
	if len(out) == 0 {
		return before
	}
	return out
}

// flatten unpacks errors.Join trees, so a scan can report every partition
// that did not serve.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
