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

func (e *unavailableError) Error() string {
	parts := make([]string, len(e.partitions))
	for i, p := range e.partitions {
		parts[i] = fmt.Sprintf("%s/%d (%s)", p.Topic, p.Partition, p.Reason)
	}
	return "no serving owner before the deadline for partition " + strings.Join(parts, ", ")
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
	last := notServing(err)
	if last == nil {
		return v, 0, err
	}
	if hard := hardErrors(err); hard != nil {
		return v, 0, hard // waiting cannot fix it
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	v, err = retry.DoValue(ctx, backoff(), func(ctx context.Context) (T, error) {
		v, err := f(ctx, deadline)
		if ns := notServing(err); ns != nil {
			if hard := hardErrors(err); hard != nil {
				return v, hard
			}
			last = ns
			return v, retry.RetryableError(err)
		}
		return v, err
	})
	// The first try alone may have taken the whole timeout (a call to the
	// owner waits for it up to the deadline), and then the loop above ends
	// before it tries: its partitions are the answer all the same, never
	// the bare context error.
	if errors.Is(err, context.DeadlineExceeded) {
		err = &unavailableError{partitions: last}
	}
	return v, time.Since(start), err
}

// notServing lists the partitions err says do not serve, or nil.
func notServing(err error) []unavailablePartition {
	if err == nil {
		return nil
	}
	var out []unavailablePartition
	for _, e := range flatten(err) {
		var ns *state.NotServingError
		var we *waitError
		switch {
		case errors.As(e, &ns):
			out = append(out, unavailablePartition{Topic: ns.Partition.Topic, Partition: ns.Partition.Partition, Reason: ns.Status.String()})
		case errors.As(e, &we):
			out = append(out, unavailablePartition{Topic: we.p.Topic, Partition: we.p.Partition, Reason: we.reason})
		}
	}
	return out
}

// hardErrors is what of err is neither a partition that does not serve
// nor one still to wait for (a read that failed, an answer that does not
// decode), or nil: a scan or count with such a partition fails now rather
// than wait for the others and then name only them.
func hardErrors(err error) error {
	var hard []error
	for _, e := range flatten(err) {
		var ns *state.NotServingError
		var we *waitError
		if !errors.As(e, &ns) && !errors.As(e, &we) {
			hard = append(hard, e)
		}
	}
	return errors.Join(hard...)
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
