package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/store"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

func TestValueIsJSONOfTheSize(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, size := range []int{60, 200, 1000} {
		v := Value(r, "k-0000042", 42, size)
		var doc struct {
			ID      string `json:"id"`
			N       int    `json:"n"`
			Payload string `json:"payload"`
		}
		if err := json.Unmarshal(v, &doc); err != nil {
			t.Fatalf("size %d: %v: %s", size, err, v)
		}
		if doc.ID != "k-0000042" || doc.N != 42 || len(v) != size {
			t.Errorf("size %d: %s (%d bytes)", size, v, len(v))
		}
	}
}

func TestProduceWritesEveryKeyWhereJavaWould(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n, parts = 2000, 4
	res, err := Produce(ctx, ProduceOptions{
		Brokers: c.ListenAddrs(), Topic: "b", Partitions: parts, Create: true, Records: n, ValueSize: 120,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != n || len(res.LastKeys) != parts || res.Bytes < n*120 {
		t.Fatalf("%+v", res)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("b"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]bool{}
	last := map[int32]string{}
	for len(seen) < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := string(r.Key)
			if want := serde.Partition(r.Key, parts); r.Partition != want {
				t.Errorf("key %s in partition %d, Java's partitioner says %d", k, r.Partition, want)
			}
			seen[k] = true
			last[r.Partition] = k
			if !strings.HasPrefix(string(r.Value), `{"id":"`+k+`"`) {
				t.Errorf("value of %s: %s", k, r.Value)
			}
		})
	}
	if !seen["k-0000000"] || !seen[fmt.Sprintf("k-%07d", n-1)] {
		t.Error("first or last key missing")
	}
	for p, k := range last {
		if res.LastKeys[p] != k {
			t.Errorf("partition %d: last key %s, reported %s", p, k, res.LastKeys[p])
		}
	}
	// An existing topic with other partitions is refused; with the right
	// count it is used.
	if _, err := Produce(ctx, ProduceOptions{Brokers: c.ListenAddrs(), Topic: "b", Partitions: 3, Create: true, Records: 1}); err == nil ||
		!strings.Contains(err.Error(), "has 4 partitions") {
		t.Errorf("partition mismatch: %v", err)
	}
	if _, err := Produce(ctx, ProduceOptions{Brokers: c.ListenAddrs(), Topic: "b", Partitions: 4, Records: 1}); err != nil {
		t.Errorf("existing topic: %v", err)
	}
}

func TestFloorGetsFromAStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	db, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	const n, parts = 500, 3
	batches := map[int32]*store.Batch{}
	for i := range n {
		k := []byte(fmt.Sprintf("k-%07d", i))
		p := serde.Partition(k, parts)
		b := batches[p]
		if b == nil {
			b = db.NewBatch(state.Partition{Topic: "t", Partition: p})
			batches[p] = b
		}
		if err := b.Set(k, []byte(`{"n":1}`), int64(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range batches {
		if err := b.Commit(store.Checkpoint{Offset: n}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := Floor(context.Background(), FloorOptions{
		Dir: dir, Topic: "t", Partitions: parts, Keys: KeySpace{N: n, Format: DefaultKeyFormat},
		Concurrency: 2, Duration: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != "floor" || res.Requests == 0 || res.OK != res.Requests || res.Latency.P50 <= 0 {
		t.Fatalf("%+v", res)
	}
	// Keys beyond the store count as missing; a wrong topic is an error.
	res, err = Floor(context.Background(), FloorOptions{
		Dir: dir, Topic: "t", Partitions: parts, Keys: KeySpace{N: 2 * n, Format: DefaultKeyFormat},
		Concurrency: 1, Duration: 50 * time.Millisecond,
	})
	if err != nil || res.Errors["missing"] == 0 {
		t.Fatalf("%+v, %v", res, err)
	}
	if _, err := Floor(context.Background(), FloorOptions{Dir: dir, Topic: "other", Partitions: parts, Keys: KeySpace{N: n, Format: DefaultKeyFormat}, Duration: time.Millisecond}); err == nil {
		t.Error("wrong topic accepted")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}
