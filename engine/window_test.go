package engine

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/state"
)

// windowKey is a window store changelog's key: [key][start][seq 0].
func windowKey(key string, start int64) []byte {
	b := binary.BigEndian.AppendUint64([]byte(key), uint64(start))
	return binary.BigEndian.AppendUint32(b, 0)
}

// A window store's topic moves each partition's stream time to the greatest
// window start written (tombstones included, as Kafka Streams counts them),
// keeps it across a restart, and skips a key too short for the schema,
// counting it, without failing or stopping the partition. A store that was a
// key-value store's is rebuilt when it becomes a window store's, since its
// stream time was never kept.
func TestWindowStoreStreamTime(t *testing.T) {
	b := testkafka.Start(t)
	topic := testkafka.Name(t, "windows")
	group := testkafka.Name(t, "app")
	b.CreateTopic(t, topic, 1)
	cl := b.Client(t, kgo.DefaultProduceTopic(topic))
	produce := func(recs ...*kgo.Record) {
		t.Helper()
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	fs := vfs.NewMem()
	p := state.Partition{Topic: topic, Partition: 0}
	asWindow := func(c *Config) {
		c.Stores[0].Kind = state.WindowKind
		c.Stores[0].Window = state.Window{Size: time.Hour, Retention: 3 * time.Hour}
	}
	var reg *prometheus.Registry
	withRegistry := func(c *Config) { reg = prometheus.NewRegistry(); c.Registerer = reg }

	// First as a key-value store: the same records, no stream time.
	produce(&kgo.Record{Key: windowKey("a", 7_200_000), Value: []byte(`1`)})
	n := startNode(t, b, group, topic, fs, "db")
	waitCaughtUp(t, b, n.e, topic)
	if _, ok, _ := n.e.db.StreamTime(p); ok {
		t.Fatal("a key-value store's topic got a stream time")
	}
	n.stop()

	// Now as a window store's: rebuilt from the log start.
	produce(
		&kgo.Record{Key: windowKey("b", 10_800_000), Value: nil}, // a tombstone moves stream time too
		&kgo.Record{Key: []byte("short"), Value: []byte(`1`)},    // 5 bytes: malformed
		&kgo.Record{Key: windowKey("c", 3_600_000), Value: []byte(`2`)},
	)
	n = startNode(t, b, group, topic, fs, "db", asWindow, withRegistry)
	waitCaughtUp(t, b, n.e, topic)
	if st, err := n.e.StreamTime(p); err != nil || st != 10_800_000 {
		t.Fatalf("stream time %d, %v; want 10800000, the tombstone's window start", st, err)
	}
	info := n.e.Partitions()[0]
	if info.StartOffset != 0 || info.MalformedKeys != 1 {
		t.Fatalf("partition %+v: want it rebuilt from offset 0, with one malformed key", info)
	}
	if got := testutil.ToFloat64(n.e.m.malformed.WithLabelValues(topic)); got != 1 {
		t.Fatalf("iqengine_records_malformed_key_total = %v, want 1", got)
	}
	if _, err := n.e.Get(p, []byte("short")); err != state.ErrNotFound {
		t.Fatalf("the malformed key was stored: %v", err)
	}
	if r, err := n.e.Get(p, windowKey("c", 3_600_000)); err != nil || string(r.Value) != "2" {
		t.Fatalf("window c: %+v %v", r, err)
	}
	n.stop()

	// A restart keeps the stream time: an older window does not lower it.
	produce(&kgo.Record{Key: windowKey("d", 0), Value: []byte(`3`)})
	n = startNode(t, b, group, topic, fs, "db", asWindow)
	defer n.stop()
	waitCaughtUp(t, b, n.e, topic)
	if st, err := n.e.StreamTime(p); err != nil || st != 10_800_000 {
		t.Fatalf("after a restart: stream time %d, %v; want 10800000", st, err)
	}
	if info := n.e.Partitions()[0]; info.StartOffset == 0 {
		t.Fatalf("the restart re-read the partition: %+v", info)
	}
}
