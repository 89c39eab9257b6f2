// Package testkafka gives tests a Kafka broker: the real one named by
// IQENGINE_TEST_BROKERS (a comma-separated bootstrap list), or else an
// embedded kfake cluster private to the test.
//
// Tests must not assume they are alone on the broker: they create topics
// and groups with unique names (see Name) and delete their topics at the end.
//
// It also runs the real broker: a Cluster is Apache Kafka's KRaft nodes as
// Java processes on 127.0.0.1 (StartCluster; the kafka command under cmd/
// wraps it for make and CI), which a test may crash and restart node by
// node (Running). Java runs Kafka's tools and the tests' Java programs. Of
// Kafka only the jars come from elsewhere: scripts/kafka.sh fetches them.
package testkafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnvBrokers names the environment variable that points tests at a real
// broker.
const EnvBrokers = "IQENGINE_TEST_BROKERS"

// Broker is a broker a test can use.
type Broker struct {
	Addrs []string
	// Fake is the embedded cluster, nil on a real broker.
	Fake *kfake.Cluster
	adm  *kadm.Client
}

// Real reports whether the tests run against a real broker.
func Real() bool { return os.Getenv(EnvBrokers) != "" }

// Start returns the broker for t, closing what it started at t's end.
// Extra kfake options apply only to the embedded broker.
func Start(t testing.TB, opts ...kfake.Opt) *Broker {
	t.Helper()
	b := &Broker{}
	if env := os.Getenv(EnvBrokers); env != "" {
		b.Addrs = strings.Split(env, ",")
	} else {
		opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second)}, opts...)
		c, err := kfake.NewCluster(opts...)
		if err != nil {
			t.Fatalf("kfake: %v", err)
		}
		t.Cleanup(c.Close)
		b.Fake, b.Addrs = c, c.ListenAddrs()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	b.adm = kadm.NewClient(cl)
	return b
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Name returns a name unique to this test run, for a topic or a group.
func Name(t testing.TB, prefix string) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	n := prefix + "-" + unsafe.ReplaceAllString(t.Name(), "_") + "-" + hex.EncodeToString(r[:])
	if len(n) > 200 {
		n = n[len(n)-200:]
	}
	return n
}

// Client returns a plain client of the broker, closed at t's end.
func (b *Broker) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addrs...), kgo.ProducerLinger(5 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates a topic and deletes it at t's end. A topic of the same
// name that is still being deleted is waited for. Its replication factor is
// the broker's default: 1 on one broker, 3 on a Cluster of three.
func (b *Broker) CreateTopic(t testing.TB, name string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		resp, err := b.adm.CreateTopic(ctx, partitions, -1, nil, name)
		if err == nil {
			err = resp.Err
		}
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.TopicAlreadyExists) || ctx.Err() != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Wait until the topic's metadata shows every partition with a leader.
	for {
		md, err := b.adm.ListTopics(ctx, name)
		if err == nil {
			if d, ok := md[name]; ok && d.Err == nil && len(d.Partitions) == int(partitions) {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("topic %s never appeared: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() { _, _ = b.adm.DeleteTopics(context.Background(), name) })
}

// DeleteTopic deletes a topic and waits until it is gone.
func (b *Broker) DeleteTopic(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := b.adm.DeleteTopics(ctx, name); err != nil {
		t.Fatalf("delete topic %s: %v", name, err)
	}
	for {
		md, err := b.adm.ListTopics(ctx, name)
		if err == nil {
			if d, ok := md[name]; !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("topic %s not deleted: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// EndOffsets returns the high watermark of every partition of topic.
func (b *Broker) EndOffsets(t testing.TB, topic string) map[int32]int64 {
	t.Helper()
	offs, err := b.adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// Produce writes records synchronously, failing t on any error.
func Produce(t testing.TB, cl *kgo.Client, rs ...*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// DeleteRecords moves the log start of each partition of topic up to the
// given offset, as retention would.
func (b *Broker) DeleteRecords(t testing.TB, topic string, before map[int32]int64) {
	t.Helper()
	o := kadm.Offsets{}
	for p, at := range before {
		o.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
	}
	resp, err := b.adm.DeleteRecords(context.Background(), o)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete records of %s: %v", topic, err)
	}
}

// State reads topic from its log start to its current end, committed
// records only, and returns the last value of every key it holds (nil for
// a tombstone): what a consumer starting now can know of the topic.
func (b *Broker) State(t testing.TB, topic string) map[string][]byte {
	t.Helper()
	ends := b.EndOffsets(t, topic)
	cl := b.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords())
	out := map[string][]byte{}
	pos := map[int32]int64{} // what has been read: from the log start
	starts, err := b.adm.ListStartOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	starts.Each(func(o kadm.ListedOffset) { pos[o.Partition] = o.Offset })
	done := func() bool {
		for p, end := range ends {
			if pos[p] < end {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: not at the end %v after 60s (at %v)", topic, ends, pos)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("reading %s: %v", topic, err) })
		fs.EachPartition(func(f kgo.FetchTopicPartition) {
			if f.LastStableOffset >= 0 && f.LastStableOffset >= ends[f.Partition] {
				pos[f.Partition] = max(pos[f.Partition], ends[f.Partition])
			}
			for _, r := range f.Records {
				pos[f.Partition] = max(pos[f.Partition], r.Offset+1)
				if r.Attrs.IsControl() || r.Key == nil || r.Offset >= ends[f.Partition] {
					continue
				}
				out[string(r.Key)] = r.Value
			}
		})
	}
	return out
}
