package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iqengine/iqengine/internal/store"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

// openOnly opens an engine over an in-memory store with a registry, without
// starting it: its store is written and swept directly.
func openOnly(t *testing.T, memTable int64) (*Engine, *prometheus.Registry) {
	t.Helper()
	str, _ := serde.Lookup("string")
	reg := prometheus.NewRegistry()
	e, err := Open(Config{
		ApplicationID: "app",
		Stores:        []state.Store{{Name: "s", Topic: "t", Key: str, Value: str}},
		Store:         store.Options{Dir: "db", FS: vfs.NewMem(), CacheSize: 1 << 20, MemTableSize: memTable},
		Registerer:    reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e, reg
}

// write writes n random (incompressible) values of size bytes to p.
func write(t *testing.T, e *Engine, p state.Partition, n, size int, rng *rand.Rand) {
	t.Helper()
	v := make([]byte, size)
	for i := 0; i < n; i++ {
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		b := e.db.NewBatch(p)
		if err := b.Set([]byte("k-"+strconv.Itoa(i)), v, int64(i), 0); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(store.Checkpoint{Offset: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// The store's Pebble metrics move as it is written and read: flushes add
// level-0 files, more writes start compactions, reads go through the block
// cache, and the disk fills.
func TestStoreMetrics(t *testing.T) {
	e, reg := openOnly(t, 256<<10)
	m := func(name string) float64 { return testutil.Metric(t, reg, name) }
	for _, name := range []string{"iqengine_store_l0_files", "iqengine_store_compactions_total", "iqengine_store_compacted_bytes_total",
		"iqengine_store_block_cache_hits_total", "iqengine_store_block_cache_misses_total"} {
		if v := m(name); v != 0 {
			t.Errorf("%s = %v in an empty store", name, v)
		}
	}
	empty := m("iqengine_store_disk_usage_bytes")
	p := state.Partition{Topic: "t", Partition: 0}
	rng := rand.New(rand.NewPCG(1, 2))

	// A memtable and a bit: one flush, one level-0 file (two may be
	// compacted at once).
	write(t, e, p, 300, 1000, rng)
	testutil.WaitFor(t, 10*time.Second, "no level-0 file after a memtable was written", func() bool { return m("iqengine_store_l0_files") == 1 })
	if d := m("iqengine_store_disk_usage_bytes"); d < empty+250_000 {
		t.Errorf("disk usage %v bytes after 300 kB were written to an empty store (%v bytes)", d, empty)
	}
	for i := 0; i < 100; i++ {
		if _, _, err := e.db.Get(p, []byte("k-"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	hits, misses := m("iqengine_store_block_cache_hits_total"), m("iqengine_store_block_cache_misses_total")
	if misses == 0 || hits == 0 {
		t.Errorf("100 reads of flushed keys: %v cache hits, %v misses; want both", hits, misses)
	}

	// Many more: level 0 fills and compactions run.
	write(t, e, p, 4000, 1000, rng)
	testutil.WaitFor(t, 30*time.Second, "no compaction after 16 memtables were written", func() bool {
		return m("iqengine_store_compactions_total") > 0 && m("iqengine_store_compacted_bytes_total") > 0
	})
}

// TestUnservedSweep follows partitions the store holds through revocations,
// returns and sweeps on a made-up clock, with a retention of an hour: a
// partition's data is wiped once it has gone unserved for the retention,
// counted from its last revocation, and never while it is assigned; data
// of a topic no longer configured goes the same way.
func TestUnservedSweep(t *testing.T) {
	e, reg := openOnly(t, 4<<20)
	e.cfg.UnservedRetention = time.Hour
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(3, 4))
	parts := map[string]state.Partition{
		"t/0": {Topic: "t", Partition: 0}, "t/1": {Topic: "t", Partition: 1}, "t/2": {Topic: "t", Partition: 2},
		"gone/0": {Topic: "gone", Partition: 0}, // no store reads topic gone
	}
	for _, p := range parts {
		write(t, e, p, 10, 100, rng)
	}
	assign := func(id string) {
		e.mu.Lock()
		e.parts[parts[id]] = &partition{id: parts[id]}
		e.mu.Unlock()
	}
	revoke := func(id string, at time.Time) {
		e.mu.Lock()
		delete(e.parts, parts[id])
		e.unserved.revoked(parts[id], at)
		e.mu.Unlock()
	}
	assign("t/0")
	assign("t/1")
	steps := []struct {
		at   time.Duration // after t0
		do   string        // sweep, join, assign or revoke
		id   string
		held []string // unserved partitions held after the step
		gone []string // partitions wiped so far
	}{
		{0, "sweep", "", nil, nil}, // before the first join: nothing is known
		{0, "join", "", nil, nil},
		{0, "sweep", "", []string{"gone/0", "t/2"}, nil},
		{10 * time.Minute, "revoke", "t/1", []string{"gone/0", "t/1", "t/2"}, nil},
		{30 * time.Minute, "assign", "t/1", []string{"gone/0", "t/2"}, nil},
		{30 * time.Minute, "sweep", "", []string{"gone/0", "t/2"}, nil},
		{40 * time.Minute, "revoke", "t/1", []string{"gone/0", "t/1", "t/2"}, nil},
		{59 * time.Minute, "sweep", "", []string{"gone/0", "t/1", "t/2"}, nil},
		{60 * time.Minute, "sweep", "", []string{"t/1"}, []string{"gone/0", "t/2"}},
		{70 * time.Minute, "revoke", "t/0", []string{"t/0", "t/1"}, []string{"gone/0", "t/2"}},
		{99 * time.Minute, "sweep", "", []string{"t/0", "t/1"}, []string{"gone/0", "t/2"}},
		{100 * time.Minute, "sweep", "", []string{"t/0"}, []string{"gone/0", "t/1", "t/2"}},
		{130 * time.Minute, "sweep", "", nil, []string{"gone/0", "t/0", "t/1", "t/2"}},
	}
	for _, s := range steps {
		name := fmt.Sprintf("%v %s %s", s.at, s.do, s.id)
		now := t0.Add(s.at)
		switch s.do {
		case "sweep":
			if err := e.sweepUnserved(now); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		case "join":
			e.joined.Store(true)
		case "assign":
			assign(s.id)
		case "revoke":
			revoke(s.id, now)
		}
		var held []string
		for _, p := range e.unservedPartitions() {
			held = append(held, p.String())
		}
		slices.Sort(held)
		var gone []string
		for id, p := range parts {
			if _, ok, err := e.db.Checkpoint(p); err != nil {
				t.Fatal(err)
			} else if !ok {
				gone = append(gone, id)
			}
		}
		slices.Sort(gone)
		if !slices.Equal(held, s.held) || !slices.Equal(gone, s.gone) {
			t.Fatalf("after %s: unserved %v, wiped %v; want %v, %v", name, held, gone, s.held, s.gone)
		}
		wiped := testutil.Metric(t, reg, "iqengine_unserved_partitions_wiped_total")
		counted := testutil.Metric(t, reg, "iqengine_unserved_partitions")
		if int(wiped) != len(s.gone) || int(counted) != len(s.held) {
			t.Fatalf("after %s: metrics say %v unserved and %v wiped", name, counted, wiped)
		}
	}

	// With no retention, data waits for its partition forever.
	e.cfg.UnservedRetention = 0
	write(t, e, parts["t/2"], 10, 100, rng)
	for _, at := range []time.Duration{time.Hour, 1000 * time.Hour} {
		if err := e.sweepUnserved(t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := e.db.Checkpoint(parts["t/2"]); !ok {
		t.Fatal("wiped with no retention")
	}
}

// A partition restoring, held before its first records are applied, is
// stale by the time since its assignment, growing; once it has applied
// the log it is 0. The consumer client's kprom metrics count the records
// it fetched.
func TestStalenessAndKafkaMetrics(t *testing.T) {
	w := seedTopic(t, "stale", 1, 5, 2_000, 500)
	reg := prometheus.NewRegistry()
	staleness := func() float64 {
		return testutil.Metric(t, reg, "iqengine_partition_staleness_seconds", "topic", w.topic, "partition", "0")
	}
	fetched := func() float64 { return testutil.Metric(t, reg, "iqengine_kafka_fetch_records_total", "topic", w.topic) }
	hold, held := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	first.Store(true)
	n := startNode(t, w.b, w.group, w.topic, nil, t.TempDir(),
		func(c *Config) { c.Registerer = reg },
		func(e *Engine) {
			e.holdApply = func() {
				if first.CompareAndSwap(true, false) {
					close(held)
					<-hold
				}
			}
		})
	defer n.stop()
	<-held
	testutil.WaitFor(t, 10*time.Second, "the held partition's staleness does not pass 200ms", func() bool { return staleness() >= 0.2 })
	if f := fetched(); f == 0 {
		t.Error("kafka metrics: no record fetched, with a fetch held")
	}
	close(hold)
	waitCaughtUp(t, w.b, n.e, w.topic)
	if s := staleness(); s != 0 {
		t.Errorf("staleness %v s once caught up", s)
	}
	before := fetched()
	w.write(t, 100, 500)
	waitCaughtUp(t, w.b, n.e, w.topic)
	if after := fetched(); after < before+100 {
		t.Errorf("kafka metrics: %v records fetched before 100 more were written, %v after", before, after)
	}
	for _, name := range []string{"iqengine_kafka_connects_total", "iqengine_kafka_read_bytes_total"} {
		if v := testutil.Metric(t, reg, name); v == 0 {
			t.Errorf("%s = 0", name)
		}
	}
}

// A partition that a second node takes from the first is held on the
// first, its disk counted, until storage.unserved_retention has passed;
// then it is wiped and counted, while the partition the first node kept is
// untouched.
func TestRevokedPartitionIsWipedAfterRetention(t *testing.T) {
	const retention = 3 * time.Second
	w := seedTopic(t, "unserved", 2, 9, 30_000, 30_000)
	reg := prometheus.NewRegistry()
	metric := func(name string) float64 { return testutil.Metric(t, reg, name, "topic", w.topic) }
	n1 := startNode(t, w.b, w.group, w.topic, nil, t.TempDir(), func(c *Config) {
		c.Registerer = reg
		c.UnservedRetention = retention
		c.Store.MemTableSize = 1 << 20 // most of the data is in tables, where its size can be estimated
	})
	defer n1.stop()
	waitCaughtUp(t, w.b, n1.e, w.topic)
	if u := metric("iqengine_unserved_partitions"); u != 0 {
		t.Fatalf("%v unserved partitions before any moved", u)
	}

	n2 := startNode(t, w.b, w.group, w.topic, nil, t.TempDir(), func(c *Config) { c.NodeID = "n2" })
	defer n2.stop()
	var kept, moved state.Partition
	testutil.WaitFor(t, 60*time.Second, "n1 did not give a partition to n2", func() bool {
		ps := n1.e.Partitions()
		if len(ps) != 1 {
			return false
		}
		kept = state.Partition{Topic: w.topic, Partition: ps[0].Partition}
		moved = state.Partition{Topic: w.topic, Partition: 1 - ps[0].Partition}
		return true
	})
	if u, b := metric("iqengine_unserved_partitions"), metric("iqengine_unserved_bytes"); u != 1 || b == 0 {
		t.Fatalf("right after the move: %v unserved partitions of %v bytes, want 1 of more than 0", u, b)
	}
	if _, ok, _ := n1.e.db.Checkpoint(moved); !ok {
		t.Fatalf("%s was wiped at once", moved)
	}
	testutil.WaitFor(t, 10*retention, "the moved partition was not wiped", func() bool {
		return metric("iqengine_unserved_partitions_wiped_total") == 1
	})
	if u, b := metric("iqengine_unserved_partitions"), metric("iqengine_unserved_bytes"); u != 0 || b != 0 {
		t.Errorf("after the wipe: %v unserved partitions of %v bytes", u, b)
	}
	if _, ok, _ := n1.e.db.Checkpoint(moved); ok {
		t.Errorf("%s still has a checkpoint", moved)
	}
	if c, err := n1.e.db.Count(context.Background(), moved); err != nil || c != 0 {
		t.Errorf("%s still holds %d keys (%v)", moved, c, err)
	}
	if c, err := n1.e.Count(context.Background(), kept); err != nil || c == 0 {
		t.Errorf("the partition n1 kept, %s: %d keys, %v", kept, c, err)
	}
}

// Staleness counts from the last time the partition had applied all of the
// log it had seen, or from its assignment when it has not since.
func TestStaleness(t *testing.T) {
	p := newPartition(state.Partition{Topic: "t"}, [16]byte{}, state.Active)
	p.restart(0, 100) // assigned, 100 records to restore
	assigned := time.Now()
	if s := p.staleness(assigned.Add(5 * time.Second)); s < 5*time.Second || s > 6*time.Second {
		t.Errorf("restoring for 5s: staleness %v", s)
	}
	p.next.Store(100)
	p.noteProgress()
	caughtUp := time.Now()
	if s := p.staleness(caughtUp.Add(time.Hour)); s != 0 {
		t.Errorf("caught up: staleness %v", s)
	}
	p.hwm.Store(150) // a fetch saw 50 more records
	if s := p.staleness(caughtUp.Add(2 * time.Second)); s < 2*time.Second-time.Millisecond || s > 3*time.Second {
		t.Errorf("2s behind since it caught up: staleness %v", s)
	}
	p.next.Store(120)
	p.noteProgress() // not caught up: the time stays
	if s := p.staleness(caughtUp.Add(2 * time.Second)); s < 2*time.Second-time.Millisecond {
		t.Errorf("still behind: staleness %v", s)
	}
}
