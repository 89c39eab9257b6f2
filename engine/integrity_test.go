package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/store"
	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/state"
)

// seededTopic is a topic of a test, already holding records of workload.
type seededTopic struct {
	b     *testkafka.Broker
	topic string
	group string
	cl    *kgo.Client // produces to topic
	rng   *rand.Rand
	m     model // every key written, with its last value
}

// seedTopic creates a topic of the given partitions and writes n records
// over the given number of keys to it, with a random source seeded by seed.
func seedTopic(t *testing.T, name string, partitions int32, seed uint64, n, keys int) *seededTopic {
	w := &seededTopic{b: testkafka.Start(t), topic: testkafka.Name(t, name), group: testkafka.Name(t, "app"),
		rng: rand.New(rand.NewPCG(seed, seed+1)), m: model{}}
	w.b.CreateTopic(t, w.topic, partitions)
	w.cl = w.b.Client(t, kgo.DefaultProduceTopic(w.topic))
	w.write(t, n, keys)
	return w
}

// write writes n more records over the given number of keys.
func (w *seededTopic) write(t *testing.T, n, keys int) {
	testkafka.Produce(t, w.cl, workload(w.rng, w.m, n, keys)...)
}

// stateModel is the topic as a consumer starting now reads it, over every
// key ever written: keys the log no longer holds must be absent too.
func stateModel(t *testing.T, b *testkafka.Broker, topic string, written model) model {
	m := model{}
	for k := range written {
		m[k] = nil
	}
	for k, v := range b.State(t, topic) {
		m[k] = v
	}
	return m
}

// Records of aborted transactions never reach the store, and a partition
// whose log ends in a commit or abort marker (an offset with no record)
// finishes restoring.
func TestOnlyCommittedRecordsAreApplied(t *testing.T) {
	b := testkafka.Start(t)
	topic := testkafka.Name(t, "txn")
	b.CreateTopic(t, topic, 3)
	cl := b.Client(t, kgo.DefaultProduceTopic(topic), kgo.TransactionalID(testkafka.Name(t, "tx")))
	ctx := context.Background()
	written := model{}
	rng := rand.New(rand.NewPCG(7, 8))
	txn := func(commit bool, rs []*kgo.Record) {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		testkafka.Produce(t, cl, rs...)
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	batch := func(i int, aborted bool) []*kgo.Record {
		var rs []*kgo.Record
		for j := 0; j < 50; j++ {
			k := fmt.Sprintf("k-%d", rng.IntN(200))
			v := fmt.Appendf(nil, `{"txn":%d,"aborted":%t}`, i, aborted)
			if !aborted && rng.IntN(8) == 0 {
				v = nil
			}
			written[k] = nil
			rs = append(rs, &kgo.Record{Key: []byte(k), Value: v})
		}
		return rs
	}
	for i := range 30 {
		aborted := i%3 == 1
		txn(!aborted, batch(i, aborted))
	}
	n := startNode(t, b, testkafka.Name(t, "app"), topic, nil, t.TempDir())
	defer n.stop()
	// The last transaction was committed: every log ends in a marker.
	waitCaughtUp(t, b, n.e, topic)
	checkModel(t, n.e, topic, stateModel(t, b, topic, written))

	// An aborted transaction at the end, while the node runs: its records
	// are skipped and its marker counted.
	txn(false, batch(99, true))
	waitCaughtUp(t, b, n.e, topic)
	checkModel(t, n.e, topic, stateModel(t, b, topic, written))
	if !n.e.Ready() {
		t.Fatal("caught up, but not ready")
	}
}

// When retention (here DeleteRecords) moves the log start past a node that
// is behind, over records that delete and overwrite keys it holds, the node
// must not jump the gap: it wipes the partition and restores it from the new
// log start, and then holds exactly what the topic holds. The same across a
// restart: a node that stopped before the gap resumes into it.
func TestLogStartPassingANodeRebuilds(t *testing.T) {
	w := seedTopic(t, "retained", 3, 9, 3_000, 400)
	b, topic, group := w.b, w.topic, w.group

	hold, held := make(chan struct{}), make(chan struct{}, 1)
	var holding atomic.Bool
	dir := t.TempDir()
	n := startNode(t, b, group, topic, nil, dir, func(e *Engine) {
		e.holdApply = func() {
			if holding.CompareAndSwap(true, false) {
				held <- struct{}{}
				<-hold
			}
		}
	})
	waitCaughtUp(t, b, n.e, topic)

	// Hold the node at its next poll. Its client then buffers one more
	// fetch (a few records, below) and fetches nothing else until the
	// node polls again; meanwhile deletes and overwrites of the keys it
	// holds are written, then deleted from the log.
	holding.Store(true)
	w.write(t, 30, 400)
	<-held
	w.write(t, 30, 400)
	// Once a fetch is buffered, the client fetches nothing more until the
	// node polls: the records below are not fetched before they are deleted.
	testutil.WaitFor(t, 30*time.Second, "the held node's client buffers a fetch", func() bool { return n.e.cl.BufferedFetchRecords() > 0 })
	w.write(t, 3_000, 400)
	b.DeleteRecords(t, topic, b.EndOffsets(t, topic))
	w.write(t, 300, 400)
	close(hold)
	waitCaughtUp(t, b, n.e, topic)
	checkModel(t, n.e, topic, stateModel(t, b, topic, w.m))
	if got := promtest.ToFloat64(n.e.m.rebuilds.WithLabelValues(topic)); got != 3 {
		t.Fatalf("%v partitions rebuilt, want all 3", got)
	} else {
		t.Logf("%v partitions rebuilt from the log start", got)
	}
	n.stop()

	// Across a restart: stopped, the log moves on past its checkpoints.
	w.write(t, 2_000, 400)
	b.DeleteRecords(t, topic, b.EndOffsets(t, topic))
	w.write(t, 300, 400)
	n = startNode(t, b, group, topic, nil, dir)
	defer n.stop()
	waitCaughtUp(t, b, n.e, topic)
	checkModel(t, n.e, topic, stateModel(t, b, topic, w.m))
}

// Broker answers with errors, or without the topic or its id, at
// assignment must never wipe a partition: the engine asks again until the
// brokers say something sure.
func TestMetadataErrorsNeverWipe(t *testing.T) {
	w := seedTopic(t, "kept", 3, 11, 2_000, 300)
	b, topic, group, m := w.b, w.topic, w.group, w.m
	dir := t.TempDir()
	n := startNode(t, b, group, topic, nil, dir)
	waitCaughtUp(t, b, n.e, topic)
	n.stop()
	stored := map[int32]int64{}
	for _, p := range n.e.Partitions() {
		stored[p.Partition] = p.Offset
	}

	// Each answer at assignment is broken a different way, then one is whole.
	faults := []func(*logBounds){
		func(lb *logBounds) { delete(lb.meta, topic) },
		func(lb *logBounds) {
			d := lb.meta[topic]
			d.id, d.err = [16]byte{}, kerr.LeaderNotAvailable
			lb.meta[topic] = d
		},
		func(lb *logBounds) {
			d := lb.meta[topic]
			d.id = [16]byte{}
			lb.meta[topic] = d
		},
		func(lb *logBounds) {
			lb.failed[state.Partition{Topic: topic, Partition: 1}] = "start offset: NOT_LEADER_OR_FOLLOWER"
		},
	}
	calls := 0
	n = startNode(t, b, group, topic, nil, dir, func(e *Engine) {
		e.brokerAnswers = func(lb *logBounds) {
			if calls < len(faults) {
				faults[calls](lb)
			}
			calls++
		}
	})
	defer n.stop()
	waitCaughtUp(t, b, n.e, topic)
	if calls <= len(faults) {
		t.Fatalf("the engine asked %d times; %d answers were broken", calls, len(faults))
	}
	if w := promtest.ToFloat64(n.e.m.wipes.WithLabelValues(topic)); w != 0 {
		t.Fatalf("%v partitions wiped on broken answers", w)
	}
	for _, p := range n.e.Partitions() {
		if p.StartOffset != stored[p.Partition]+1 {
			t.Fatalf("partition %d resumed at %d, want %d (after its checkpoint)", p.Partition, p.StartOffset, stored[p.Partition]+1)
		}
	}
	checkModel(t, n.e, topic, m)
}

// A log truncated below what a node applied (an unclean leader election: the
// new leader never had the last records of the old one's epoch, and the log
// has grown back past them since) is caught from the leader epoch stored
// with the checkpoint, and the partition is rebuilt: records that no longer
// exist must not be served. The embedded broker can move leadership (which
// starts a new epoch) on demand; a single real broker cannot.
func TestTruncatedLogIsRebuilt(t *testing.T) {
	if testkafka.Real() {
		t.Skip("needs a leadership change on demand: the embedded broker's")
	}
	w := seedTopic(t, "truncated", 3, 15, 600, 100)
	dir := t.TempDir()
	n := startNode(t, w.b, w.group, w.topic, nil, dir)
	waitCaughtUp(t, w.b, n.e, w.topic)
	n.stop()

	// A new leader, a new epoch, and the log grows past where the node was.
	w.b.Fake.ShufflePartitionLeaders()
	w.write(t, 600, 100)

	// The node applied records of the old epoch that the new leader never
	// had: ghosts in its store, and a checkpoint past the old epoch's end.
	db, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 3; p++ {
		id := state.Partition{Topic: w.topic, Partition: p}
		cp, ok, err := db.Checkpoint(id)
		if err != nil || !ok {
			t.Fatalf("checkpoint of %s: %v %v", id, ok, err)
		}
		b := db.NewBatch(id)
		for i := range 10 {
			if err := b.Set(fmt.Appendf(nil, "ghost-%d-%d", p, i), []byte(`"lost"`), cp.Offset+1+int64(i), 0); err != nil {
				t.Fatal(err)
			}
		}
		cp.Offset += 10
		if err := b.Commit(cp); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	n = startNode(t, w.b, w.group, w.topic, nil, dir)
	defer n.stop()
	waitCaughtUp(t, w.b, n.e, w.topic)
	checkModel(t, n.e, w.topic, stateModel(t, w.b, w.topic, w.m))
	if got := promtest.ToFloat64(n.e.m.rebuilds.WithLabelValues(w.topic)); got != 3 {
		t.Fatalf("%v partitions rebuilt, want 3", got)
	}
}

// On a topic whose records retention deletes, a key whose last record has
// left the log expires, so a node that has held the partition all along
// answers what a node restoring it from the log start would.
func TestRetentionExpiresKeys(t *testing.T) {
	w := seedTopic(t, "expiring", 3, 17, 2_000, 300)
	n := startNode(t, w.b, w.group, w.topic, nil, t.TempDir(), func(c *Config) { c.ExpireInterval = 100 * time.Millisecond })
	defer n.stop()
	waitCaughtUp(t, w.b, n.e, w.topic)
	if !slices.Contains(n.e.retained, w.topic) {
		t.Fatalf("topic %s not seen as deleting records by retention", w.topic)
	}

	// A third of the keys are written again; then retention deletes the
	// older records, so the other keys are no longer in the log.
	cut := w.b.EndOffsets(t, w.topic)
	w.write(t, 600, 100)
	w.b.DeleteRecords(t, w.topic, cut)
	want := stateModel(t, w.b, w.topic, w.m)
	live := 0
	for _, v := range want {
		if v != nil {
			live++
		}
	}
	waitCaughtUp(t, w.b, n.e, w.topic)
	testutil.WaitForNil(t, 30*time.Second, fmt.Sprintf("the node holds the %d keys the log has", live), func() error {
		var held int64
		for p := range int32(3) {
			c, err := n.e.Count(context.Background(), state.Partition{Topic: w.topic, Partition: p})
			if err != nil {
				t.Fatal(err)
			}
			held += c
		}
		if held != int64(live) {
			return fmt.Errorf("it holds %d", held)
		}
		return nil
	})
	checkModel(t, n.e, w.topic, want)
	t.Logf("%v keys expired", promtest.ToFloat64(n.e.m.expired.WithLabelValues(w.topic)))
}
