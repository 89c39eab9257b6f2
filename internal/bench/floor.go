package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/iqengine/iqengine/internal/store"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

// FloorOptions configures Floor: point gets straight on a stopped node's
// Pebble store, with the same keys, distribution and concurrency as a load
// run, and no HTTP, routing or serde. It is the floor under a lookup.
type FloorOptions struct {
	// Dir is the node's data_dir. The node must be stopped.
	Dir string
	// Topic and Partitions locate the keys: key k is in partition
	// murmur2(k) mod Partitions of Topic, as the node stores it.
	Topic      string
	Partitions int32
	Keys       KeySpace
	Dist       Distribution
	ZipfS      float64
	// Concurrency, Warmup and Duration as for Load (defaults 16, 0, 10s).
	Concurrency      int
	Warmup, Duration time.Duration
	// CacheSize is Pebble's block cache in bytes (default the node's, 128 MiB).
	CacheSize int64
	Seed      int64
	// Metrics, when set, receives Pebble's metrics (levels, files, cache
	// hit rates) after the run.
	Metrics io.Writer
}

// Floor runs point gets on the store and reports them as a LoadResult of
// kind "floor" (a key that is missing counts as a "missing" error).
func Floor(ctx context.Context, o FloorOptions) (*LoadResult, error) {
	if o.Dir == "" || o.Topic == "" || o.Partitions < 1 {
		return nil, errors.New("floor: data dir, topic and partitions are required")
	}
	if err := o.Keys.Validate(); err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Dist == "" {
		o.Dist = Uniform
	}
	db, err := store.Open(store.Options{Dir: o.Dir, CacheSize: o.CacheSize})
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	defer db.Close()
	fk := compileKey(o.Keys.Format)
	// The first key must be there: a wrong topic or directory is an error,
	// not a run of misses.
	k0 := []byte(o.Keys.Key(0))
	if _, ok, err := db.Get(state.Partition{Topic: o.Topic, Partition: serde.Partition(k0, o.Partitions)}, k0); err != nil || !ok {
		return nil, fmt.Errorf("floor: key %q of topic %s is not in %s (err %v)", k0, o.Topic, o.Dir, err)
	}

	type result struct {
		requests, ok, missing, failed int64
	}
	hists := make([]*hdrhistogram.Histogram, o.Concurrency)
	results := make([]result, o.Concurrency)
	start := time.Now()
	measure := start.Add(o.Warmup)
	end := measure.Add(o.Duration)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for i := range o.Concurrency {
		ch, err := newChooser(o.Seed+int64(i), o.Keys.N, o.Dist, o.ZipfS)
		if err != nil {
			return nil, fmt.Errorf("floor: %w", err)
		}
		h := newHistogram()
		hists[i] = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			var key []byte
			r := &results[i]
			for ctx.Err() == nil {
				now := time.Now()
				if !now.Before(end) {
					return
				}
				n := ch.next()
				if fk.ok {
					key = fk.appendKey(key[:0], n)
				} else {
					key = append(key[:0], o.Keys.Key(n)...)
				}
				p := state.Partition{Topic: o.Topic, Partition: serde.Partition(key, o.Partitions)}
				t0 := time.Now()
				_, ok, err := db.Get(p, key)
				lat := time.Since(t0)
				if t0.Before(measure) {
					continue
				}
				r.requests++
				record(h, lat)
				switch {
				case err != nil:
					r.failed++
					errOnce.Do(func() { firstErr = err })
				case !ok:
					r.missing++
				default:
					r.ok++
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if firstErr != nil {
		return nil, fmt.Errorf("floor: %w", firstErr)
	}
	elapsed := time.Since(measure)
	if o.Metrics != nil {
		fmt.Fprintf(o.Metrics, "%s\n", db.Metrics())
	}
	res := &LoadResult{
		Kind: "floor", Mode: Lookup, Targets: []string{o.Dir}, Store: o.Topic, Keys: o.Keys.N,
		Dist: o.Dist, Concurrency: o.Concurrency, Warmup: o.Warmup.Seconds(), Seconds: elapsed.Seconds(),
		Errors: map[string]int64{},
	}
	if o.Dist == Zipf {
		res.ZipfS = o.ZipfS
	}
	h := newHistogram()
	for i, r := range results {
		h.Merge(hists[i])
		res.Requests += r.requests
		res.OK += r.ok
		if r.missing > 0 {
			res.Errors["missing"] += r.missing
		}
	}
	res.Latency = summarize(h)
	res.Throughput = float64(res.Requests) / elapsed.Seconds()
	res.OKThroughput = float64(res.OK) / elapsed.Seconds()
	return res, nil
}
