package router

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

// javaRecord is one line of scripts/java/JavaProducer.java's output: the
// key as text and where Kafka's Java producer put it.
type javaRecord struct {
	n         int // line number, the "n" field of the value
	key       string
	partition int32
	offset    int64
}

// runJavaProducer produces count records with keys of keyType ("string" or
// "long") into topic with Kafka's own Java producer and default partitioner,
// run with Kafka's jars by testkafka.Java, and returns what the producer
// reported.
func runJavaProducer(t *testing.T, brokers []string, topic, keyType string, count int) []javaRecord {
	t.Helper()
	// Tests run in the package directory; the scripts are one level up.
	program := filepath.Join("..", "scripts", "java", "JavaProducer.java")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd, err := testkafka.Java(ctx, program, strings.Join(brokers, ","), topic, keyType, strconv.Itoa(count))
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	var out []javaRecord
	seen := map[string]bool{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 {
			t.Fatalf("JavaProducer line %d is not key<TAB>partition<TAB>offset: %q", len(out)+1, sc.Text())
		}
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		o, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("JavaProducer line %d: bad partition or offset: %q", len(out)+1, sc.Text())
		}
		if seen[f[0]] {
			t.Fatalf("JavaProducer produced key %q twice", f[0])
		}
		seen[f[0]] = true
		out = append(out, javaRecord{n: len(out), key: f[0], partition: int32(p), offset: o})
	}
	if len(out) != count {
		t.Fatalf("JavaProducer reported %d records, want %d\nstderr:\n%s", len(out), count, stderr.String())
	}
	t.Logf("Java producer wrote %d %s keys to %s in %s", count, keyType, topic, time.Since(start).Round(time.Millisecond))
	return out
}

// startJavaNode starts one node of TestJavaProducedKeys: the harness's
// node with this test's stores.
func startJavaNode(t *testing.T, b *testkafka.Broker, group, id string, stores []state.Store) *testNode {
	t.Helper()
	n := startNode(t, b, group, id, stores, 6*time.Second, nodeOptions{})
	t.Cleanup(func() { n.stop(t) })
	return n
}

// waitJavaNodes waits until the nodes agree on one routing table with all
// of them as members and every partition of every topic is owned by one of
// them and holds, at its owner, the number of keys Java put there.
func waitJavaNodes(t *testing.T, nodes []*testNode, partitions int32, want map[string]map[int32]int64, timeout time.Duration) {
	t.Helper()
	byID := map[string]*testNode{}
	for _, n := range nodes {
		byID[n.id] = n
	}
	testutil.WaitForNil(t, timeout, "nodes not settled", func() error {
		gen := nodes[0].bal.Table().Generation()
		for _, n := range nodes {
			tb := n.bal.Table()
			if tb.Generation() != gen || len(tb.Members()) != len(nodes) {
				return fmt.Errorf("%s: generation %d with %d members", n.id, tb.Generation(), len(tb.Members()))
			}
			if !n.e.Ready() {
				return errors.New(n.id + " not ready")
			}
		}
		tb := nodes[0].bal.Table()
		for topic, counts := range want {
			for p := int32(0); p < partitions; p++ {
				o, ok := tb.Owner(topic, p)
				if !ok || byID[o.NodeID] == nil {
					return fmt.Errorf("%s/%d has no running owner", topic, p)
				}
				got, err := byID[o.NodeID].e.Count(context.Background(), state.Partition{Topic: topic, Partition: p})
				if err != nil || got != counts[p] {
					return fmt.Errorf("%s/%d at %s: %d keys (%v), want %d", topic, p, o.NodeID, got, err, counts[p])
				}
			}
		}
		return nil
	})
}

// TestJavaProducedKeys: data produced by Kafka's own Java producer with
// StringSerializer and LongSerializer keys and the default partitioner is
// found, key by key, through every node. It proves that serde.Partition and
// the string and int64 serdes match Java: Java's chosen partition must equal
// ours for every key, and a lookup routed by our computation must find the
// record Java wrote.
//
// It needs a real broker and a JVM. The README's plain `go test ./...` has
// neither, so it skips there; CI runs it through `make kafka-test`, which
// starts a real broker and sets IQENGINE_TEST_BROKERS (Java is installed
// for that broker anyway).
func TestJavaProducedKeys(t *testing.T) {
	if !testkafka.Real() {
		t.Skip("needs a real Kafka broker and Java: run `make kafka-test` (or set " + testkafka.EnvBrokers + ")")
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("needs java on PATH to run Kafka's Java producer (scripts/java/JavaProducer.java)")
	}
	const (
		partitions = 12
		stringKeys = 500
		longKeys   = 500
	)
	b := testkafka.Start(t)
	strTopic, longTopic := testkafka.Name(t, "jstr"), testkafka.Name(t, "jlong")
	b.CreateTopic(t, strTopic, partitions)
	b.CreateTopic(t, longTopic, partitions)

	str, _ := serde.Lookup("string")
	i64, _ := serde.Lookup("int64")
	js, _ := serde.Lookup("json")
	type suite struct {
		store, topic, keyType string
		key                   serde.Serde
		recs                  []javaRecord
		// keyBytes is what Java's serializer wrote for the key text,
		// computed independently of our serde.
		keyBytes func(t *testing.T, text string) []byte
		// keyPath is the key as written in a URL path.
		keyPath func(text string) string
	}
	suites := []*suite{
		{store: "jstr", topic: strTopic, keyType: "string", key: str,
			recs:     runJavaProducer(t, b.Addrs, strTopic, "string", stringKeys),
			keyBytes: func(_ *testing.T, s string) []byte { return []byte(s) }, // StringSerializer: UTF-8
			keyPath:  url.PathEscape},
		{store: "jlong", topic: longTopic, keyType: "long", key: i64,
			recs: runJavaProducer(t, b.Addrs, longTopic, "long", longKeys),
			keyBytes: func(t *testing.T, s string) []byte { // LongSerializer: 8 bytes big-endian
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					t.Fatalf("Java long key %q: %v", s, err)
				}
				return binary.BigEndian.AppendUint64(nil, uint64(n))
			},
			keyPath: func(s string) string { return s }}, // decimal text
	}

	// Java's partition for every key, against ours.
	want := map[string]map[int32]int64{}
	var specs []state.Store
	for _, s := range suites {
		counts := map[int32]int64{}
		used := map[int32]bool{}
		for _, r := range s.recs {
			kb, err := s.key.FromText(r.key)
			if err != nil {
				t.Fatalf("%s key %q: %v", s.keyType, r.key, err)
			}
			if jb := s.keyBytes(t, r.key); !bytes.Equal(kb, jb) {
				t.Errorf("%s key %q: our serde writes %x, Java's serializer %x", s.keyType, r.key, kb, jb)
			}
			if p := serde.Partition(kb, partitions); p != r.partition {
				t.Errorf("%s key %q: Java's default partitioner chose partition %d, serde.Partition %d", s.keyType, r.key, r.partition, p)
			}
			counts[r.partition]++
			used[r.partition] = true
		}
		if len(used) != partitions {
			t.Errorf("%s keys landed on only %d of %d partitions", s.keyType, len(used), partitions)
		}
		want[s.topic] = counts
		specs = append(specs, state.Store{Name: s.store, Topic: s.topic, Key: s.key, Value: js})
		t.Logf("%d %s keys: Java's partition = serde.Partition for every key (per partition: %v)", len(s.recs), s.keyType, sortedCounts(counts))
	}
	if t.Failed() {
		t.FailNow()
	}

	// Three nodes; every key through every node.
	group := testkafka.Name(t, "japp")
	var nodes []*testNode
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, startJavaNode(t, b, group, id, specs))
	}
	waitJavaNodes(t, nodes, partitions, want, 90*time.Second)
	start := time.Now()
	forwarded := 0
	for _, n := range nodes {
		for _, s := range suites {
			for _, r := range s.recs {
				u := n.srv.URL + "/v1/stores/" + s.store + "/keys/" + s.keyPath(r.key)
				a := httpGet(t, u)
				var got struct {
					Key       json.RawMessage `json:"key"`
					Value     json.RawMessage `json:"value"`
					Partition int32           `json:"partition"`
					Offset    int64           `json:"offset"`
					ServedBy  string          `json:"served_by"`
				}
				if a.status != http.StatusOK || json.Unmarshal(a.body, &got) != nil {
					t.Fatalf("%s key %q via %s (GET %s): %d %s", s.keyType, r.key, n.id, u, a.status, a.body)
				}
				var value struct {
					Key string `json:"key"`
					N   *int   `json:"n"`
				}
				if err := json.Unmarshal(got.Value, &value); err != nil || value.Key != r.key || value.N == nil || *value.N != r.n {
					t.Fatalf("%s key %q via %s: value %s, want Java's {\"key\":%q,\"n\":%d}", s.keyType, r.key, n.id, got.Value, r.key, r.n)
				}
				if got.Partition != r.partition || got.Offset != r.offset {
					t.Fatalf("%s key %q via %s: partition %d offset %d, Java reported partition %d offset %d",
						s.keyType, r.key, n.id, got.Partition, got.Offset, r.partition, r.offset)
				}
				if k := keyText(got.Key); k != r.key {
					t.Fatalf("%s key %q via %s: answer's key is %s", s.keyType, r.key, n.id, got.Key)
				}
				if got.ServedBy != n.id {
					forwarded++
				}
			}
		}
	}
	if forwarded == 0 {
		t.Fatal("no lookup was forwarded: the nodes did not split the partitions")
	}
	t.Logf("%d string keys and %d long keys found through each of %d nodes (%d lookups, %d forwarded, in %s)",
		len(suites[0].recs), len(suites[1].recs), len(nodes),
		len(nodes)*(len(suites[0].recs)+len(suites[1].recs)), forwarded, time.Since(start).Round(time.Millisecond))
}

func sortedCounts(m map[int32]int64) []int64 {
	ps := make([]int, 0, len(m))
	for p := range m {
		ps = append(ps, int(p))
	}
	sort.Ints(ps)
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = m[int32(p)]
	}
	return out
}
