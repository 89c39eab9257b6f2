package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/testutil"
)

// The pieces of the multi-process failure tests (kill_test.go,
// broker_kill_test.go): a producer that remembers what it wrote, clients
// that query through running nodes, and the checks of their answers.

// nodeConfig writes the configuration the failure tests' serve processes
// share; flags give each its node id, address and data directory. extra is
// more YAML (whole sections).
func nodeConfig(t *testing.T, dir, app string, brokers []string, topic, store string, sessionTimeout time.Duration, extra ...string) string {
	t.Helper()
	return writeFile(t, dir, "iqengine.yaml", strings.Join(extra, "")+"application_id: "+app+"\n"+
		"kafka:\n"+
		"  brokers: ["+strings.Join(brokers, ", ")+"]\n"+
		"  session_timeout: "+sessionTimeout.String()+"\n"+
		"  startup_timeout: 15s\n"+
		"query:\n"+
		"  timeout: 10s\n"+
		"storage:\n"+
		"  cache_size: 8388608\n"+
		"  memtable_size: 4194304\n"+
		"stores:\n"+
		"  - {name: "+store+", topic: "+topic+", key: string, value: json}\n")
}

// newFleet makes n node slots, n1 to nN, each with a free address and a
// data directory under dir; none runs yet.
func newFleet(t *testing.T, dir string, n int) *killFleet {
	t.Helper()
	f := &killFleet{running: map[*killNode]bool{}, epoch: map[*killNode]int{}}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		listen := testutil.FreeAddr(t)
		f.nodes = append(f.nodes, &killNode{id: id, listen: listen, base: "http://" + listen, dataDir: filepath.Join(dir, id)})
	}
	// The fleet outlives the subtests that start its nodes.
	t.Cleanup(func() {
		for _, p := range f.procs {
			p.reap(t)
		}
	})
	return f
}

// start starts n's serve process and marks it running once it answers HTTP.
func (f *killFleet) start(t *testing.T, bin, config string, client *http.Client, n *killNode) {
	t.Helper()
	p, err := launch(bin, n.id, "serve", "--config", config, "--node-id", n.id,
		"--listen", n.listen, "--data-dir", n.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.procs = append(f.procs, p)
	f.mu.Unlock()
	n.p = p
	testutil.WaitFor(t, 20*time.Second, n.id+" answers /healthz", func() bool {
		if p.done() {
			t.Fatalf("%s exited: %v\n%s", n.id, p.err, p.stderr.String())
		}
		status, _, err := testutil.Get(client, n.base+"/healthz")
		return err == nil && status == http.StatusOK
	})
	f.setRunning(n, true)
}

// numberedKeys returns n keys, k-0000 to k-(n-1), in order.
func numberedKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k-%04d", i)
	}
	return keys
}

// failures collects what a test's goroutines found wrong; the test reports
// them at its end.
type failures struct {
	mu   sync.Mutex
	list []string
}

func (f *failures) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.list) < 30 {
		f.list = append(f.list, fmt.Sprintf(format, args...))
	}
}

func (f *failures) report(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.list {
		t.Error(s)
	}
}

// written is one record the producer wrote for a key: seq orders a key's
// records as its partition does (one producer, per-partition order).
type written struct {
	seq       int64
	tombstone bool
	sent      time.Time // before Produce was called
	acked     time.Time // when the broker acknowledged it
}

// writer produces about 1,000 records/s over keys, one in ten a tombstone,
// so keys are deleted and written again, and keeps every acknowledged
// record's history per key. gate pauses it between batches (Lock).
type writer struct {
	cl    *kgo.Client
	topic string
	keys  []string
	fails *failures

	gate                 sync.RWMutex
	produced, tombstones atomic.Int64
	mu                   sync.Mutex
	history              map[string][]written // in seq order: franz-go acknowledges a partition's records in order
	done                 chan struct{}
}

// startWriter produces until ctx ends; wait waits for its last batch.
func startWriter(ctx context.Context, cl *kgo.Client, topic string, keys []string, fails *failures) *writer {
	w := &writer{cl: cl, topic: topic, keys: keys, fails: fails, history: map[string][]written{}, done: make(chan struct{})}
	go w.run(ctx)
	return w
}

func (w *writer) run(ctx context.Context) {
	defer close(w.done)
	rng := rand.New(rand.NewPCG(1, 2))
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var seq int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		w.gate.RLock()
		for range 5 {
			seq++
			k := w.keys[rng.IntN(len(w.keys))]
			r := &kgo.Record{Topic: w.topic, Key: []byte(k)}
			rec := written{seq: seq, tombstone: rng.IntN(10) == 0, sent: time.Now()}
			if rec.tombstone {
				w.tombstones.Add(1)
			} else {
				r.Value = fmt.Appendf(nil, `{"k":%q,"seq":%d}`, k, seq)
			}
			w.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				if err != nil {
					w.fails.add("produce %s: %v", r.Key, err)
					return
				}
				rec.acked = time.Now()
				w.mu.Lock()
				w.history[k] = append(w.history[k], rec)
				w.mu.Unlock()
			})
			w.produced.Add(1)
		}
		w.gate.RUnlock()
	}
}

func (w *writer) wait() { <-w.done }

func (w *writer) historyOf(k string) []written {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.history[k]
}

// queryEvent is one client request, judged by its status.
type queryEvent struct {
	start, end time.Time
	status     int
	node       string // the node asked
	key        string
	seq        int64  // the "seq" of a 200's value
	detail     string // a 503's problem detail
	replica    string // which replica answered a 200 or 404
	lag        int64  // and how far behind it said it was
}

// queryLoad is clients that look up random keys through random running
// nodes of a fleet, each with ?timeout=, and record every answer (see
// testutil.Load for what happens to a request whose node is killed).
type queryLoad struct {
	*testutil.Load
	mu     sync.Mutex
	events []queryEvent
}

func startQueries(ctx context.Context, clients int, fleet *killFleet, client *http.Client, store string, keys []string, timeout string, fails *failures) *queryLoad {
	q := &queryLoad{}
	q.Load = &testutil.Load{
		Clients: clients,
		Client:  client,
		Pause:   8 * time.Millisecond,
		Seed:    42,
		Pick:    fleet.pick,
		Next: func(rng *rand.Rand) (string, any) {
			k := keys[rng.IntN(len(keys))]
			return "/v1/stores/" + store + "/keys/" + url.PathEscape(k) + "?timeout=" + timeout, k
		},
		Answer: func(a testutil.Answer) {
			if ev, ok := judgeAnswer(a, fails); ok {
				q.mu.Lock()
				q.events = append(q.events, ev)
				q.mu.Unlock()
			}
		},
	}
	q.Start(ctx)
	return q
}

// judgeAnswer checks what one answer says on its own (the right key, a
// known status) and makes it an event for judge; ok is false for an answer
// that is a failure already.
func judgeAnswer(a testutil.Answer, fails *failures) (ev queryEvent, ok bool) {
	k := a.Tag.(string)
	if a.Err != nil {
		fails.add("%s via running %s: %v", k, a.Target, a.Err)
		return ev, false
	}
	ev = queryEvent{start: a.Sent, end: a.Done, status: a.Status, node: a.Target, key: k}
	switch a.Status {
	case http.StatusOK:
		var got struct {
			Key   string `json:"key"`
			Value struct {
				K   string `json:"k"`
				Seq int64  `json:"seq"`
			} `json:"value"`
			Replica string `json:"replica"`
			Lag     int64  `json:"lag"`
		}
		if err := json.Unmarshal(a.Body, &got); err != nil || got.Key != k || got.Value.K != k {
			fails.add("%s via %s: 200 %s", k, a.Target, a.Body)
		}
		if got.Replica != "active" && got.Replica != "standby" || a.Header.Get("Iqengine-Replica") != got.Replica {
			fails.add("%s via %s: 200 without a replica label (header %q): %s", k, a.Target, a.Header.Get("Iqengine-Replica"), a.Body)
		}
		ev.seq, ev.replica, ev.lag = got.Value.Seq, got.Replica, got.Lag
	case http.StatusNotFound:
		if !bytes.Contains(a.Body, []byte("urn:iqengine:problem:key-not-found")) {
			fails.add("%s via %s: 404 %s", k, a.Target, a.Body)
		}
		ev.replica = a.Header.Get("Iqengine-Replica")
		ev.lag, _ = strconv.ParseInt(a.Header.Get("Iqengine-Lag"), 10, 64)
	case http.StatusServiceUnavailable:
		var prob struct {
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(a.Body, &prob)
		ev.detail = prob.Detail
	default:
		fails.add("%s via %s: %d %s", k, a.Target, a.Status, a.Body)
	}
	return ev, true
}

// stop stops the clients and returns every answer they got.
func (q *queryLoad) stop() []queryEvent {
	q.Stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.events)
}

// judge checks an answer (a 200 with value seq, or a 404) to a query for a
// key sent at start and answered at end against the key's history. The
// answer must be a state the topic really had: a value the producer wrote
// for the key, or for a 404 a tombstone sent before the answer (or no
// write yet). stale is how long before the query a newer record of the key
// had been acknowledged: 0 for an answer that is up to date; more than
// maxStale is wrong.
func judge(history []written, status int, seq int64, start, end time.Time, maxStale time.Duration) (stale time.Duration, why string) {
	i := -1 // the record the answer reflects; -1: before the key's first record
	switch status {
	case http.StatusOK:
		i = slices.IndexFunc(history, func(w written) bool { return w.seq == seq })
		if i < 0 {
			return 0, fmt.Sprintf("answered seq %d, which the producer never wrote for this key", seq)
		}
		if history[i].tombstone {
			return 0, fmt.Sprintf("answered seq %d, which is a tombstone", seq)
		}
	case http.StatusNotFound:
		for j, w := range history {
			if w.tombstone && w.sent.Before(end) {
				i = j
			}
		}
	}
	if i+1 < len(history) && history[i+1].acked.Before(start) {
		stale = start.Sub(history[i+1].acked)
	}
	if stale > maxStale {
		return stale, fmt.Sprintf("%d answered a state %s older than the query (seq %d was acknowledged then)",
			status, stale.Round(time.Millisecond), history[i+1].seq)
	}
	return stale, ""
}

// judgeAll judges every 200 and 404 of events against w's history, adding
// a failure for each that is wrong, and returns a line that says so.
func judgeAll(events []queryEvent, w *writer, maxStale time.Duration, fails *failures) string {
	var judged, behind int
	var stalest time.Duration
	for _, ev := range events {
		if ev.status != http.StatusOK && ev.status != http.StatusNotFound {
			continue
		}
		judged++
		stale, why := judge(w.historyOf(ev.key), ev.status, ev.seq, ev.start, ev.end, maxStale)
		if stale > 0 {
			behind++
		}
		stalest = max(stalest, stale)
		if why != "" {
			fails.add("during the run, %s via %s from %s to %s: %s", ev.key, ev.node,
				ev.start.Format("15:04:05.000"), ev.end.Format("15:04:05.000"), why)
		}
	}
	return fmt.Sprintf("every 200 and 404 (%d) is a state the key had; %d were behind a record acknowledged before the query was sent, the most by %s (allowed %s)",
		judged, behind, stalest.Round(time.Millisecond), maxStale)
}

// checkEveryKey asks every node for every key and scans through the first
// node, comparing with want (the topic read independently; deleted keys
// are absent from it), and returns a line that says what it checked.
func checkEveryKey(t *testing.T, client *http.Client, nodes []*killNode, store string, keys []string, want map[string]string, fails *failures) string {
	t.Helper()
	var mismatches, checked atomic.Int64
	for _, n := range nodes {
		work := make(chan string)
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range work {
					checked.Add(1)
					status, body, err := testutil.Get(client, n.base+"/v1/stores/"+store+"/keys/"+url.PathEscape(k)+"?timeout=5s")
					v, live := want[k]
					var got struct {
						Key   string          `json:"key"`
						Value json.RawMessage `json:"value"`
					}
					switch {
					case err != nil:
						fails.add("final %s via %s: %v", k, n.id, err)
					case live && status == http.StatusOK:
						if json.Unmarshal(body, &got) != nil || got.Key != k || string(got.Value) != v {
							mismatches.Add(1)
							fails.add("final %s via %s: %s, want value %s", k, n.id, body, v)
						}
					case !live && status == http.StatusNotFound:
					default:
						mismatches.Add(1)
						fails.add("final %s via %s: %d %s, want live=%v %s", k, n.id, status, body, live, v)
					}
				}
			}()
		}
		for _, k := range keys {
			work <- k
		}
		close(work)
		wg.Wait()
	}

	// A full scan through one node: exactly the live keys, in order.
	var live []string
	for k := range want {
		live = append(live, k)
	}
	slices.Sort(live)
	var scanned []string
	for _, it := range scanAll(t, client, nodes[0].base, store, 300) {
		if string(it.Value) != want[it.Key] {
			mismatches.Add(1)
			fails.add("scan: %s = %s, want %s", it.Key, it.Value, want[it.Key])
		}
		scanned = append(scanned, it.Key)
	}
	if !slices.Equal(scanned, live) {
		mismatches.Add(1)
		fails.add("scan via %s: %d keys, want the %d live keys in order", nodes[0].id, len(scanned), len(live))
	}
	return fmt.Sprintf("final: %d keys (%d live) x %d nodes = %d lookups, %d scanned through %s; mismatches %d",
		len(keys), len(live), len(nodes), checked.Load(), len(scanned), nodes[0].id, mismatches.Load())
}

// endOffsets lists topic's end offsets.
func endOffsets(t *testing.T, ctx context.Context, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("list end offsets: %v %v", err, ends.Error())
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// catchUp, once the producer stopped, flushes it and waits until every
// partition serves everything it wrote on every node's view; it returns
// how many records the topic holds.
func catchUp(t *testing.T, ctx context.Context, cl *kgo.Client, adm *kadm.Client, client *http.Client, nodes []*clusterNode, partitions int32, store, topic string) int64 {
	t.Helper()
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	ends := endOffsets(t, ctx, adm, topic)
	var total int64
	for _, o := range ends {
		total += o
	}
	start := time.Now()
	testutil.WaitForNil(t, 60*time.Second, "the cluster catches up", func() error {
		return allServing(client, nodes, partitions, store, topic, ends)
	})
	t.Logf("every partition serves all %d records on every node's view, %s after the producer stopped",
		total, time.Since(start).Round(time.Millisecond))
	return total
}

// allServing reports nil when every node answers /readyz, the routing table
// agrees, and every node's /v1/metadata/partitions shows every partition of
// topic serving, with lag 0, at the end offset ends[p].
func allServing(client *http.Client, nodes []*clusterNode, partitions int32, store, topic string, ends map[int32]int64) error {
	if _, err := tableAgreed(client, nodes, partitions, store); err != nil {
		return err
	}
	for _, n := range nodes {
		status, body, err := testutil.Get(client, n.base+"/v1/metadata/partitions")
		var v struct {
			Partitions []struct {
				Topic     string `json:"topic"`
				Partition int32  `json:"partition"`
				Owner     string `json:"owner"`
				State     string `json:"state"`
				Offset    int64  `json:"offset"`
				Lag       int64  `json:"lag"`
				Error     string `json:"error"`
			} `json:"partitions"`
		}
		if err == nil && status == http.StatusOK {
			err = json.Unmarshal(body, &v)
		}
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("%s /v1/metadata/partitions: %d %v %s", n.id, status, err, body)
		}
		seen := 0
		for _, p := range v.Partitions {
			if p.Topic != topic {
				continue
			}
			seen++
			if p.Owner == "" || p.State != "serving" || p.Lag != 0 || p.Offset+1 != ends[p.Partition] || p.Error != "" {
				return fmt.Errorf("%s: partition %d: owner %q state %q offset %d lag %d %s, end offset %d",
					n.id, p.Partition, p.Owner, p.State, p.Offset, p.Lag, p.Error, ends[p.Partition])
			}
		}
		if seen != int(partitions) {
			return fmt.Errorf("%s /v1/metadata/partitions lists %d partitions of %s", n.id, seen, topic)
		}
	}
	_, err := tableAgreed(client, nodes, partitions, store)
	return err
}

// readTopic reads topic from the start up to ends with a plain consumer (no
// group) and returns each key's latest value; deleted keys are absent.
func readTopic(t *testing.T, ctx context.Context, brokers []string, topic string, ends map[int32]int64) map[string]string {
	t.Helper()
	offsets := map[int32]kgo.Offset{}
	left := map[int32]int64{}
	for p, end := range ends {
		offsets[p] = kgo.NewOffset().AtStart()
		if end > 0 {
			left[p] = end
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	latest := map[string][]byte{}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: still %v records to go", topic, left)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("reading %s partition %d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; !ok || r.Offset >= end {
				return
			}
			latest[string(r.Key)] = r.Value
			if r.Offset+1 >= left[r.Partition] {
				delete(left, r.Partition)
			}
		})
	}
	want := map[string]string{}
	for k, v := range latest {
		if v != nil {
			want[k] = string(v)
		}
	}
	return want
}
