package testutil

import "runtime"

// Allocated is how many heap bytes f allocates, for a fuzz target's bound
// on what a decoder may allocate for its input. Allocations by other
// goroutines meanwhile count too, so compare it only with a bound that has
// some KiB to spare. It stops the world twice (runtime.ReadMemStats, tens
// of microseconds): runtime/metrics would be cheaper, but it counts small
// allocations a span at a time, when a span is refilled or flushed, so
// allocations from before f can land in its count.
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
