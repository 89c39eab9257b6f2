package engine_test

// Ingest benchmarks: how fast a fresh node restores a topic from offset 0.
// Run them with a fixed count (each op takes seconds):
//
//	go test -run '^$' -bench Ingest -benchtime 3x ./engine/
//
// One op is one whole restore of the topic (1,000,000 records of 100-byte
// values over 12 partitions, produced once per process into an embedded
// kfake broker). The broker runs in this process and shares the CPUs with
// the engine. ns/op is the time from Start until every partition serves and
// has applied everything; records/s is the figure to read.
//
// BenchmarkIngestPollOnly reads the same topic with the same client
// options but discards the records: the broker and franz-go ceiling, with
// no Pebble.

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/engine"
	"github.com/iqengine/iqengine/internal/store"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

const (
	ingestRecords    = 1_000_000
	ingestPartitions = 12
	ingestValueLen   = 100
	ingestTopic      = "ingest"
)

// ingestBroker is the broker and topic shared by the ingest benchmarks of
// one process. Producing takes seconds, so it is done once, by the first
// benchmark that needs it, and lives until the process exits (kfake keeps
// everything in memory: nothing is left on disk).
//
// Its goroutines carry pprof labels, and so do the goroutines they start:
// bench=kfake for the broker, bench=produce for the producer, and the
// benchmarks below label the engine's (bench=ingest) and the bare
// consumer's (bench=poll-only). Pebble relabels its background goroutines
// (pebble=flush, compact, wal-sync), which belong to the engine too. So
//
//	go test -run '^$' -bench 'Ingest$' -benchtime 3x -cpuprofile cpu.out ./engine/
//	go tool pprof -tags engine.test cpu.out
//	go tool pprof -top -cum -tagfocus bench=ingest engine.test cpu.out
//
// splits the CPU between broker, producer, the engine's goroutines and
// Pebble's, and then looks inside the engine's.
var ingestBroker = sync.OnceValues(func() (*ingestFixture, error) {
	defer pprof.SetGoroutineLabels(context.Background())
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("bench", "kfake")))
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second),
		kfake.SeedTopics(ingestPartitions, ingestTopic))
	if err != nil {
		return nil, err
	}
	f := &ingestFixture{seeds: c.ListenAddrs()}

	ctx := pprof.WithLabels(context.Background(), pprof.Labels("bench", "produce"))
	pprof.SetGoroutineLabels(ctx)
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.seeds...), kgo.DefaultProduceTopic(ingestTopic),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	start := time.Now()
	var (
		failed atomic.Pointer[error]
		key    []byte
		rng    = rand.New(rand.NewPCG(7, 8))
	)
	for i := range ingestRecords {
		key = fmt.Appendf(key[:0], "key-%08d", rng.IntN(ingestRecords))
		r := &kgo.Record{Key: append([]byte(nil), key...), Value: ingestValue(key, rng)}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
		if i%100_000 == 0 && failed.Load() != nil {
			break
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, err
	}
	if err := failed.Load(); err != nil {
		return nil, fmt.Errorf("produce: %w", *err)
	}
	f.produced = time.Since(start)
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, ingestTopic)
	if err != nil {
		return nil, err
	}
	f.ends = map[int32]int64{}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { f.ends[o.Partition] = o.Offset; total += o.Offset })
	if total != ingestRecords {
		return nil, fmt.Errorf("topic holds %d records, want %d", total, ingestRecords)
	}
	return f, nil
})

type ingestFixture struct {
	seeds    []string
	ends     map[int32]int64 // high watermark per partition
	produced time.Duration
}

func ingestFixtureFor(b *testing.B) *ingestFixture {
	b.Helper()
	f, err := ingestBroker()
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("topic: %d records of %d-byte values in %d partitions, produced (snappy batches, 5ms linger) in %v = %.0f records/s",
		ingestRecords, ingestValueLen, ingestPartitions, f.produced.Round(time.Millisecond),
		float64(ingestRecords)/f.produced.Seconds())
	return f
}

// ingestValue returns a 100-byte JSON document; the padding is random
// letters, so that compression does not make the topic trivially small.
func ingestValue(key []byte, rng *rand.Rand) []byte {
	v := fmt.Appendf(make([]byte, 0, ingestValueLen), `{"id":%q,"pad":"`, key)
	for len(v) < ingestValueLen-2 {
		v = append(v, byte('a'+rng.IntN(26)))
	}
	return append(v, `"}`...)
}

var groupSeq atomic.Int64

func newGroup() string { return fmt.Sprintf("bench-%d-%d", os.Getpid(), groupSeq.Add(1)) }

// BenchmarkIngest restores the whole topic into a fresh store, once per op:
// from Start (group join included) until every partition serves and has
// applied everything up to the high watermark. The store uses the node's
// default options (64 MiB memtable, 128 MiB cache, WAL without fsync).
func BenchmarkIngest(b *testing.B) {
	f := ingestFixtureFor(b)
	str, _ := serde.Lookup("string")
	js, _ := serde.Lookup("json")
	var joined, restored time.Duration
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		dir, err := os.MkdirTemp(b.TempDir(), "ingest")
		if err != nil {
			b.Fatal(err)
		}
		pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("bench", "ingest")))
		e, err := engine.Open(engine.Config{
			ApplicationID:  newGroup(),
			NodeID:         "n1",
			Stores:         []state.Store{{Name: "s", Topic: ingestTopic, Key: str, Value: js}},
			Kafka:          []kgo.Opt{kgo.SeedBrokers(f.seeds...)},
			SessionTimeout: 6 * time.Second,
			Store:          store.Options{Dir: dir},
			Logger:         slog.New(slog.DiscardHandler),
		})
		pprof.SetGoroutineLabels(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		// The engine's goroutines (franz-go's, the poll loop, Pebble's)
		// are started here and inherit the label; waiting is unlabelled.
		pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("bench", "ingest")))
		err = e.Start(context.Background())
		pprof.SetGoroutineLabels(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		j := waitIngested(b, e, f.ends)
		b.StopTimer()
		took := time.Since(start)
		joined += j
		restored += took - j
		b.Logf("run: %v (join %v) = %.0f records/s", took.Round(time.Millisecond), j.Round(time.Millisecond), ingestRecords/took.Seconds())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := e.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportIngest(b, joined, restored)
}

// waitIngested waits until every partition serves and has applied up to
// ends, and returns how long the group join took (until the first
// partition was assigned), measured from now. It polls every 2ms rather
// than through testutil.WaitFor: when it returns is the measurement, and
// WaitFor's 20ms polls would add up to 20ms to every op and to the join.
func waitIngested(b *testing.B, e *engine.Engine, ends map[int32]int64) (joined time.Duration) {
	b.Helper()
	start := time.Now()
	for deadline := start.Add(5 * time.Minute); ; {
		ps := e.Partitions()
		if joined == 0 && len(ps) > 0 {
			joined = time.Since(start)
		}
		done := 0
		for _, p := range ps {
			if p.State == "serving" && p.Offset+1 >= ends[p.Partition] {
				done++
			}
		}
		if done == len(ends) {
			return joined
		}
		if err := e.Err(); err != nil {
			b.Fatal(err)
		}
		if time.Now().After(deadline) {
			b.Fatalf("not caught up after 5m: %+v", ps)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func reportIngest(b *testing.B, joined, restored time.Duration) {
	n := float64(b.N) * ingestRecords
	b.ReportMetric(n/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(n/restored.Seconds(), "records/s-after-join")
	b.ReportMetric(float64(joined.Milliseconds())/float64(b.N), "join-ms/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
}

// BenchmarkIngestPollOnly reads the same topic as BenchmarkIngest with the
// engine's consumer options (a fresh group, cooperative-sticky, blocking
// rebalances on poll, 500ms fetch max wait, polls of up to 10,000 records)
// and discards every record: what the broker and franz-go can deliver on
// this machine, with no Pebble.
func BenchmarkIngestPollOnly(b *testing.B) {
	f := ingestFixtureFor(b)
	var joined, restored time.Duration
	b.ReportAllocs()
	for b.Loop() {
		var firstAssign atomic.Int64
		start := time.Now()
		pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("bench", "poll-only")))
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(f.seeds...),
			kgo.ConsumerGroup(newGroup()),
			kgo.ConsumeTopics(ingestTopic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.SessionTimeout(6*time.Second),
			kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.BlockRebalanceOnPoll(),
			kgo.FetchMaxWait(500*time.Millisecond),
			kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
				firstAssign.CompareAndSwap(0, int64(time.Since(start)))
			}),
		)
		if err != nil {
			b.Fatal(err)
		}
		next := map[int32]int64{}
		caught := 0
		for caught < len(f.ends) {
			fetches := cl.PollRecords(context.Background(), 10000)
			for _, fe := range fetches.Errors() {
				b.Fatalf("fetch %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
			}
			fetches.EachPartition(func(p kgo.FetchTopicPartition) {
				if len(p.Records) == 0 {
					return
				}
				before := next[p.Partition]
				next[p.Partition] = p.Records[len(p.Records)-1].Offset + 1
				if before < f.ends[p.Partition] && next[p.Partition] >= f.ends[p.Partition] {
					caught++
				}
			})
			cl.AllowRebalance()
		}
		elapsed := time.Since(start)
		pprof.SetGoroutineLabels(context.Background())
		j := time.Duration(firstAssign.Load())
		joined += j
		restored += elapsed - j
		b.Logf("run: %v (join %v) = %.0f records/s", elapsed.Round(time.Millisecond), j.Round(time.Millisecond), ingestRecords/elapsed.Seconds())
		b.StopTimer()
		cl.Close()
		b.StartTimer()
	}
	reportIngest(b, joined, restored)
}
