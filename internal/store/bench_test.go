package store_test

// Benchmarks of the raw store, the floor under every query and every apply.
// Run them with
//
//	go test -run '^$' -bench . ./engine/store/
//
// They open real Pebble databases in b.TempDir() with the options the node
// uses by default (128 MiB cache, 64 MiB memtable).

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/iqengine/iqengine/internal/store"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

const (
	benchKeys       = 100_000
	benchPartitions = 12
	benchValueLen   = 100
)

// benchValue is a benchValueLen-byte JSON document for key.
func benchValue(key []byte) []byte { return testutil.JSONValue(key, benchValueLen) }

func benchKey(i int) []byte { return fmt.Appendf(nil, "key-%08d", i) }

// openBench opens a store in dir with the node's default options (zero
// fields).
func openBench(b *testing.B, dir string) *store.DB {
	b.Helper()
	db, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	return db
}

type benchEntry struct {
	p   state.Partition
	key []byte
}

// loadBench writes benchKeys keys, spread over the partitions by the
// producer's partitioner, in batches of 1,000 per partition as the engine
// applies them, and returns them in a random order fixed by the seed.
func loadBench(b *testing.B, db *store.DB) []benchEntry {
	b.Helper()
	entries := make([]benchEntry, benchKeys)
	batches := map[int32]*store.Batch{}
	offsets := map[int32]int64{}
	ts := time.Now().UnixMilli()
	for i := range entries {
		k := benchKey(i)
		p := state.Partition{Topic: "bench", Partition: serde.Partition(k, benchPartitions)}
		entries[i] = benchEntry{p, k}
		bt := batches[p.Partition]
		if bt == nil {
			bt = db.NewBatch(p)
			batches[p.Partition] = bt
		}
		if err := bt.Set(k, benchValue(k), offsets[p.Partition], ts); err != nil {
			b.Fatal(err)
		}
		offsets[p.Partition]++
		if bt.Len() == 1000 {
			if err := bt.Commit(store.Checkpoint{Offset: offsets[p.Partition] - 1}); err != nil {
				b.Fatal(err)
			}
			delete(batches, p.Partition)
		}
	}
	for part, bt := range batches {
		if err := bt.Commit(store.Checkpoint{Offset: offsets[part] - 1}); err != nil {
			b.Fatal(err)
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
	return entries
}

// BenchmarkPebbleGet is a point lookup of a random present key among
// 100,000 keys with 100-byte values, spread over 12 partitions: the cost of
// store.DB.Get alone, with no engine, serde or HTTP.
//
//   - after-restore: the store as a restore leaves it. 13 MB of writes stay
//     in Pebble's memtables (the first memtables are small and are not
//     flushed until their total reaches MemTableSize, 64 MiB), so a Get
//     probes a stack of memtables. The engine benchmarks in router see this
//     state.
//   - after-reopen: the same data after Close and Open, which flushes it to
//     one sstable; the block cache is warmed before timing.
func BenchmarkPebbleGet(b *testing.B) {
	dir := b.TempDir()
	db := openBench(b, dir)
	entries := loadBench(b, db)
	b.Run("after-restore", func(b *testing.B) { benchGet(b, db, entries) })
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	db = openBench(b, dir)
	defer func() {
		if err := db.Close(); err != nil {
			b.Error(err)
		}
	}()
	b.Run("after-reopen", func(b *testing.B) { benchGet(b, db, entries) })
}

func benchGet(b *testing.B, db *store.DB, entries []benchEntry) {
	// Warm the block cache, as a serving node's would be.
	for _, e := range entries {
		if _, ok, err := db.Get(e.p, e.key); !ok || err != nil {
			b.Fatalf("warm-up get %s: ok=%v err=%v", e.key, ok, err)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e := entries[i%len(entries)]
		r, ok, err := db.Get(e.p, e.key)
		if !ok || err != nil || len(r.Value) != benchValueLen {
			b.Fatalf("get %s: ok=%v err=%v len=%d", e.key, ok, err, len(r.Value))
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}

// BenchmarkApply is the store half of ingest: batches of Set of 100-byte
// values, committed with their checkpoint, as the engine commits one
// fetched partition. One op is one batch; records/s counts records. Keys
// are random (16 hex digits), as a hash-partitioned topic delivers them,
// and successive batches go to 12 partitions in turn, as the engine's
// batches do.
//
// The primary figure is batch=1000. batch=100 and batch=10000 show the
// per-batch cost. batch=1000-one-partition sends every batch to the same
// partition: each batch's keys then spread over the whole memtable rather
// than one partition's twelfth of it, and the memtable inserts miss the CPU
// caches more. batch=1000-sorted sorts each batch's keys before the Sets
// (the sort is timed), which is what an apply loop that sorted its records
// would gain.
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{1000, 100, 10000} {
		b.Run("batch="+strconv.Itoa(size), func(b *testing.B) { benchApply(b, size, benchPartitions, false) })
	}
	b.Run("batch=1000-one-partition", func(b *testing.B) { benchApply(b, 1000, 1, false) })
	b.Run("batch=1000-sorted", func(b *testing.B) { benchApply(b, 1000, benchPartitions, true) })
}

func benchApply(b *testing.B, size int, partitions int32, sorted bool) {
	db := openBench(b, b.TempDir())
	defer func() {
		if err := db.Close(); err != nil {
			b.Error(err)
		}
	}()
	p := state.Partition{Topic: "bench"}
	offsets := make([]int64, partitions)
	rng := rand.New(rand.NewPCG(3, 4))
	keys := make([][]byte, size)
	for i := range keys {
		keys[i] = make([]byte, 0, 16)
	}
	value := benchValue([]byte("key-00000000"))
	ts := time.Now().UnixMilli()
	b.ReportAllocs()
	b.SetBytes(int64(size * benchValueLen))
	for b.Loop() {
		for i := range keys {
			keys[i] = strconv.AppendUint(keys[i][:0], rng.Uint64()|1<<63, 16)
		}
		if sorted {
			slices.SortFunc(keys, bytes.Compare)
		}
		p.Partition = (p.Partition + 1) % partitions
		bt := db.NewBatch(p)
		for _, k := range keys {
			if err := bt.Set(k, value, offsets[p.Partition], ts); err != nil {
				b.Fatal(err)
			}
			offsets[p.Partition]++
		}
		if err := bt.Commit(store.Checkpoint{Offset: offsets[p.Partition] - 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/record")
}
