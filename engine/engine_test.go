package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/iqengine/iqengine/internal/store"
	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

// model is what a topic says: the last value of every key, nil for a
// tombstone.
type model map[string][]byte

// workload writes n records over keys k-0..k-(keys-1): mostly updates, with
// tombstones, so that some keys are deleted and later re-created.
func workload(rng *rand.Rand, m model, n, keys int) []*kgo.Record {
	rs := make([]*kgo.Record, 0, n)
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("k-%d", rng.IntN(keys))
		var v []byte
		if rng.IntN(10) != 0 { // one record in ten is a tombstone
			v = fmt.Appendf(nil, `{"key":%q,"seq":%d,"pad":"%0100d"}`, k, i, i)
		}
		m[k] = v
		rs = append(rs, &kgo.Record{Key: []byte(k), Value: v})
	}
	return rs
}

type node struct {
	t   *testing.T
	e   *Engine
	fs  vfs.FS
	dir string
}

// startNode opens and starts a node. Each of with is a func(*Config),
// which changes the configuration before the engine opens, or a
// func(*Engine), which sets a test hook before it starts.
func startNode(t *testing.T, b *testkafka.Broker, group, topic string, fs vfs.FS, dir string, with ...any) *node {
	t.Helper()
	str, _ := serde.Lookup("string")
	js, _ := serde.Lookup("json")
	cfg := Config{
		ApplicationID:  group,
		NodeID:         "n1",
		Stores:         []state.Store{{Name: "s", Topic: topic, Key: str, Value: js}},
		Kafka:          []kgo.Opt{kgo.SeedBrokers(b.Addrs...)},
		SessionTimeout: 6 * time.Second,
		Store:          store.Options{Dir: dir, FS: fs, CacheSize: 8 << 20, MemTableSize: 4 << 20, SyncInterval: 100 * time.Millisecond},
	}
	for _, f := range with {
		if f, ok := f.(func(*Config)); ok {
			f(&cfg)
		}
	}
	e, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range with {
		if f, ok := f.(func(*Engine)); ok {
			f(e)
		}
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &node{t: t, e: e, fs: fs, dir: dir}
}

func (n *node) stop() {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.e.Stop(ctx); err != nil {
		n.t.Fatalf("stop: %v", err)
	}
}

// waitCaughtUp waits until every partition of topic serves and has applied
// everything up to the topic's current end.
func waitCaughtUp(t *testing.T, b *testkafka.Broker, e *Engine, topic string) {
	t.Helper()
	ends := b.EndOffsets(t, topic)
	testutil.WaitForNil(t, 60*time.Second, "caught up with "+topic, func() error {
		done := 0
		for _, p := range e.Partitions() {
			if p.Topic == topic && p.State == "serving" && p.Offset+1 >= ends[p.Partition] {
				done++
			}
		}
		if done < len(ends) {
			return fmt.Errorf("%d of %d partitions caught up: %+v (ends %v)", done, len(ends), e.Partitions(), ends)
		}
		return nil
	})
}

// waitApplied waits until e has applied at least n records since it
// started.
func waitApplied(t *testing.T, e *Engine, n int64) {
	t.Helper()
	testutil.WaitForNil(t, 60*time.Second, fmt.Sprintf("%d records applied", n), func() error {
		var sum int64
		for _, p := range e.Partitions() {
			sum += p.Applied
		}
		if sum < n {
			return fmt.Errorf("applied %d", sum)
		}
		return nil
	})
}

// checkModel asserts that every key answers the model's last value, and
// that deleted keys are absent.
func checkModel(t *testing.T, e *Engine, topic string, m model) {
	t.Helper()
	n, err := e.PartitionCount(topic)
	if err != nil {
		t.Fatal(err)
	}
	var present, deleted int
	for k, want := range m {
		p := state.Partition{Topic: topic, Partition: serde.Partition([]byte(k), n)}
		r, err := e.Get(p, []byte(k))
		switch {
		case want == nil:
			deleted++
			if !errors.Is(err, state.ErrNotFound) {
				t.Fatalf("deleted key %s: got %q, %v; want state.ErrNotFound", k, r.Value, err)
			}
		case err != nil:
			t.Fatalf("key %s: %v", k, err)
		case !bytes.Equal(r.Value, want):
			t.Fatalf("key %s: got %s, want %s", k, r.Value, want)
		default:
			present++
		}
	}
	// And nothing else is there: the partitions hold exactly the present keys.
	var total int64
	for p := int32(0); p < n; p++ {
		c, err := e.Count(context.Background(), state.Partition{Topic: topic, Partition: p})
		if err != nil {
			t.Fatal(err)
		}
		total += c
	}
	if total != int64(present) {
		t.Fatalf("store holds %d keys, topic has %d live keys", total, present)
	}
	t.Logf("%d keys match the topic (%d live, %d deleted)", len(m), present, deleted)
}

func TestMaterialiseEqualsTopic(t *testing.T) {
	b := testkafka.Start(t)
	topic := testkafka.Name(t, "orders")
	b.CreateTopic(t, topic, 6)
	cl := b.Client(t, kgo.DefaultProduceTopic(topic))
	m := model{}
	rng := rand.New(rand.NewPCG(1, 2))
	// Half before the node starts (restoration), half while it runs.
	testkafka.Produce(t, cl, workload(rng, m, 50_000, 5_000)...)
	n := startNode(t, b, testkafka.Name(t, "app"), topic, nil, t.TempDir())
	defer n.stop()
	testkafka.Produce(t, cl, workload(rng, m, 50_000, 5_000)...)
	waitCaughtUp(t, b, n.e, topic)
	checkModel(t, n.e, topic, m)
	if !n.e.Ready() {
		t.Fatal("caught-up node is not ready")
	}
}

// TestRestartResumesFromStoredOffsets stops a node in the middle of ingest,
// cleanly and then abruptly, and restarts it on the same data: it must read
// again only what its store had not durably recorded.
func TestRestartResumesFromStoredOffsets(t *testing.T) {
	b := testkafka.Start(t)
	topic := testkafka.Name(t, "readings")
	group := testkafka.Name(t, "app")
	b.CreateTopic(t, topic, 6)
	fs := vfs.NewCrashableMem()
	// A producer keeps writing while the nodes run and stop.
	stopProducing := startProducing(t, b.Client(t, kgo.DefaultProduceTopic(topic)), rand.New(rand.NewPCG(3, 4)))

	if !t.Run("a clean stop re-reads nothing", func(t *testing.T) {
		n1 := startNode(t, b, group, topic, fs, "db")
		waitApplied(t, n1.e, 5_000)
		n1.stop()
		last := appliedUpTo(n1.e)
		n2 := startNode(t, b, group, topic, fs, "db")
		defer n2.stop()
		waitApplied(t, n2.e, 1) // assigned and consuming
		if got := reread(t, n2.e, last); got != 0 {
			t.Fatalf("after a clean stop the node re-read %d records, want 0", got)
		}
	}) {
		return
	}

	t.Run("after a crash it resumes from what was durable and catches up", func(t *testing.T) {
		n2 := startNode(t, b, group, topic, fs, "db")
		waitApplied(t, n2.e, 5_000)
		// The crash: the file system loses everything not synced, as at a
		// power cut, between two batches (the applied offsets are exact).
		n2.e.applyMu.Lock()
		last := appliedUpTo(n2.e)
		durable := map[int32]int64{} // synced by the clean stop, before n2 applied anything
		for _, p := range n2.e.Partitions() {
			durable[p.Partition] = p.StartOffset
		}
		crashed := fs.CrashClone(vfs.CrashCloneCfg{})
		n2.e.applyMu.Unlock()
		n2.stop() // what it does now is not seen by the crashed copy

		n3 := startNode(t, b, group, topic, crashed, "db")
		defer n3.stop()
		waitApplied(t, n3.e, 1)
		var applied int64
		for _, o := range last {
			applied += o + 1
		}
		t.Logf("re-read %d of the %d records applied before the crash", reread(t, n3.e, last), applied)
		// Only the tail: what was durable before is never read again.
		for _, p := range n3.e.Partitions() {
			if p.StartOffset < durable[p.Partition] {
				t.Fatalf("partition %d: after the crash the node resumed at %d, before %d, which was durable before the crash", p.Partition, p.StartOffset, durable[p.Partition])
			}
		}
		m := stopProducing()
		waitCaughtUp(t, b, n3.e, topic)
		checkModel(t, n3.e, topic, m)
	})
}

// startProducing writes workload batches to cl's default topic from a
// goroutine until the returned stop is called (or the test ends); stop
// returns the model of everything written.
func startProducing(t *testing.T, cl *kgo.Client, rng *rand.Rand) (stop func() model) {
	m := model{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			// A batch is written whole, stopped or not: the model has it.
			if err := cl.ProduceSync(context.Background(), workload(rng, m, 500, 2_000)...).FirstErr(); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
		}
	}()
	stop = func() model {
		cancel()
		<-done
		return m
	}
	t.Cleanup(func() { stop() })
	return stop
}

// appliedUpTo returns the last offset e applied in each partition.
func appliedUpTo(e *Engine) map[int32]int64 {
	out := map[int32]int64{}
	for _, p := range e.Partitions() {
		out[p.Partition] = p.Offset
	}
	return out
}

// reread returns how many records e read again that were applied up to last
// before it restarted, failing t if it skipped any.
func reread(t *testing.T, e *Engine, last map[int32]int64) (n int64) {
	t.Helper()
	for _, p := range e.Partitions() {
		if p.StartOffset > last[p.Partition]+1 {
			t.Fatalf("partition %d skipped records: resumed at %d after applying up to %d", p.Partition, p.StartOffset, last[p.Partition])
		}
		n += last[p.Partition] + 1 - p.StartOffset
	}
	return n
}

// TestRecreatedTopicIsRebuilt deletes and recreates a topic while the node is
// down: the new topic has a new id (and here more records than the old one,
// so only the id tells them apart), and the node must wipe and rebuild.
func TestRecreatedTopicIsRebuilt(t *testing.T) {
	b := testkafka.Start(t)
	topic := testkafka.Name(t, "inventory")
	group := testkafka.Name(t, "app")
	dir := t.TempDir()
	b.CreateTopic(t, topic, 3)
	cl := b.Client(t, kgo.DefaultProduceTopic(topic))
	rng := rand.New(rand.NewPCG(5, 6))
	old := model{}
	testkafka.Produce(t, cl, workload(rng, old, 3_000, 500)...)
	n := startNode(t, b, group, topic, nil, dir)
	waitCaughtUp(t, b, n.e, topic)
	checkModel(t, n.e, topic, old)
	n.stop()

	b.DeleteTopic(t, topic)
	b.CreateTopic(t, topic, 3)
	cl = b.Client(t, kgo.DefaultProduceTopic(topic)) // the old one caches the old topic id
	written := model{}
	rs := workload(rng, written, 6_000, 300)
	for _, r := range rs {
		r.Key = append([]byte("new-"), r.Key...)
	}
	fresh := model{}
	for k, v := range written {
		fresh["new-"+k] = v
	}
	testkafka.Produce(t, cl, rs...)

	n = startNode(t, b, group, topic, nil, dir)
	defer n.stop()
	waitCaughtUp(t, b, n.e, topic)
	checkModel(t, n.e, topic, fresh) // no key of the old topic is left
	for _, p := range n.e.Partitions() {
		if p.StartOffset != 0 {
			t.Fatalf("partition %d resumed at %d; want a rebuild from 0", p.Partition, p.StartOffset)
		}
	}
}

// A node is not ready between joining the group and registering the
// partitions it was assigned: when Ready first says true, every partition
// of the topic is there and serving.
func TestNotReadyBeforeAssignedPartitionsRegister(t *testing.T) {
	b := testkafka.Start(t)
	topic := testkafka.Name(t, "ready")
	const partitions = 6
	b.CreateTopic(t, topic, partitions)
	e := openStringStore(t, b, topic)
	// The gap: the group has assigned the partitions (the node joined) and
	// the engine is asking the brokers where each starts, before it
	// registers them.
	var asked, readyInGap atomic.Int32
	e.brokerAnswers = func(*logBounds) {
		asked.Add(1)
		if e.Ready() {
			readyInGap.Add(1)
		}
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	}()
	testutil.WaitFor(t, 30*time.Second, "ready", e.Ready)
	ps := e.Partitions()
	if asked.Load() == 0 || readyInGap.Load() != 0 {
		t.Fatalf("asked the brokers %d times, ready while asking %d times; want ready never before the partitions register", asked.Load(), readyInGap.Load())
	}
	if len(ps) != partitions {
		t.Fatalf("ready with %d of %d partitions registered", len(ps), partitions)
	}
	for _, p := range ps {
		if p.State != state.Serving.String() {
			t.Fatalf("ready with %v", p)
		}
	}
}

// A topic created just after the node starts (as a broker of a cluster may
// learn of a new topic a moment after it was created) is waited for, within
// topicWait; one that never comes fails Start with a clear error.
func TestStartWaitsBrieflyForATopic(t *testing.T) {
	b := testkafka.Start(t)
	late := testkafka.Name(t, "late")
	// The topic is created once Start has been told it does not exist:
	// after the first metadata answer to the node's clients.
	told := make(chan struct{})
	var once sync.Once
	e := openStringStore(t, b, late, kgo.WithHooks(metadataAnswered(func() { once.Do(func() { close(told) }) })))
	started := make(chan error, 1)
	go func() { started <- e.Start(context.Background()) }()
	select {
	case <-told:
	case err := <-started:
		t.Fatalf("Start returned before asking for the topic: %v", err)
	}
	b.CreateTopic(t, late, 3)
	if err := <-started; err != nil {
		t.Fatalf("a topic created while Start waits for it: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	e = openStringStore(t, b, testkafka.Name(t, "never"))
	start := time.Now()
	err := e.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("a topic that never exists: %v", err)
	}
	if took := time.Since(start); took < topicWait {
		t.Errorf("gave up on the topic after %v, before topicWait %v", took, topicWait)
	}
	t.Logf("missing topic: %v after %v", err, time.Since(start).Round(time.Millisecond))
}

// metadataAnswered is a client hook that calls itself after every metadata
// answer the client reads.
type metadataAnswered func()

func (f metadataAnswered) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, _ kgo.BrokerE2E) {
	if key == int16(kmsg.Metadata) {
		f()
	}
}

// openStringStore opens (does not start) a node with one store of string
// keys and values on topic; opts are added to its Kafka client options.
func openStringStore(t *testing.T, b *testkafka.Broker, topic string, opts ...kgo.Opt) *Engine {
	t.Helper()
	str, _ := serde.Lookup("string")
	e, err := Open(Config{
		ApplicationID:  testkafka.Name(t, "app"),
		NodeID:         "n1",
		Stores:         []state.Store{{Name: "s", Topic: topic, Key: str, Value: str}},
		Kafka:          append([]kgo.Opt{kgo.SeedBrokers(b.Addrs...)}, opts...),
		SessionTimeout: 6 * time.Second,
		Store:          store.Options{Dir: t.TempDir(), CacheSize: 8 << 20, MemTableSize: 4 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}
