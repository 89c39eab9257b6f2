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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/testkafka"
)

// killNode is one serve process slot: the same node id, listen address and
// data directory across restarts.
type killNode struct {
	id, listen, base, dataDir string
	p                         *process // the current incarnation
}

// killFleet is the set of nodes and which of them run. A node's epoch grows
// each time it is killed, so that a client can tell a request that failed
// because its node was killed from one that failed on a running node.
type killFleet struct {
	mu      sync.Mutex
	nodes   []*killNode
	running map[*killNode]bool
	epoch   map[*killNode]int
}

// pick returns a random running node other than not, and its epoch.
func (f *killFleet) pick(rng *rand.Rand, not *killNode) (*killNode, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var up []*killNode
	for _, n := range f.nodes {
		if f.running[n] && n != not {
			up = append(up, n)
		}
	}
	if len(up) == 0 {
		return nil, 0
	}
	n := up[rng.IntN(len(up))]
	return n, f.epoch[n]
}

func (f *killFleet) epochOf(n *killNode) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.epoch[n]
}

func (f *killFleet) setRunning(n *killNode, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !up {
		f.epoch[n]++
	}
	f.running[n] = up
}

// clusterNodes returns the nodes as the cluster test's helpers take them.
func (f *killFleet) clusterNodes() []*clusterNode {
	var out []*clusterNode
	for _, n := range f.nodes {
		out = append(out, &clusterNode{process: n.p, id: n.id, base: n.base})
	}
	return out
}

// partState is one partition in a node's /v1/internal/partitions.
type partState struct {
	State               string
	Offset, StartOffset int64
}

// queryEvent is one client request, judged by its status.
type queryEvent struct {
	start, end time.Time
	status     int
	node       string // the node asked
	key        string
	seq        int64  // the "seq" of a 200's value
	detail     string // a 503's problem detail
}

// written is one record the producer wrote for a key: seq orders a key's
// records as its partition does (one producer, per-partition order).
type written struct {
	seq       int64
	tombstone bool
	sent      time.Time // before Produce was called
	acked     time.Time // when the broker acknowledged it
}

// maxStale is how far behind the topic an answer during the kill test may
// be: a partition serves only once it has caught up to the high watermark it
// saw at its assignment, and then applies new records within milliseconds,
// so this is a wide margin that still catches a node answering from lost or
// old state (a node stopped for 10 s that served its old data on return).
const maxStale = 5 * time.Second

// judge checks an answer (a 200 with value seq, or a 404) to a query for a
// key sent at start and answered at end against the key's history. The
// answer must be a state the topic really had: a value the producer wrote
// for the key, or for a 404 a tombstone sent before the answer (or no
// write yet). stale is how long before the query a newer record of the key
// had been acknowledged: 0 for an answer that is up to date.
func judge(history []written, status int, seq int64, start, end time.Time) (stale time.Duration, why string) {
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

// killWindow is the time from one kill until the cluster is whole again.
type killWindow struct {
	node            string
	long            bool // stopped for longer than the session timeout
	kill, stable    time.Time
	reread          int64         // records re-read at the restart, -1 if not measured
	rereadByPart    string        // partition:records
	longest         time.Duration // from the kill to the end of its last 503
	slowest         time.Duration // the longest query that overlapped the window
	ok, missing, na int
	naVia           map[string]int // 503s by the node asked
	naDetail        string         // one 503's detail
}

// TestKillAndRestartLosesNothing kills serve processes with SIGKILL while a
// producer writes and clients query, restarts them on the same data
// directories, and then checks every key through every node against the
// topic read independently: nothing is lost, and a restart within the
// session timeout re-reads only what was not yet synced.
func TestKillAndRestartLosesNothing(t *testing.T) {
	const (
		partitions     = 12
		numKeys        = 2000
		store          = "orders"
		quickKills     = 5
		sessionTimeout = 6 * time.Second
		longStop       = 10 * time.Second
		clients        = 6
		queryTimeout   = "2s"
	)
	bin := buildBinary(t) // skips with -short
	testStart := time.Now()
	dir := t.TempDir()

	pb := startProcessBroker(t, bin, dir, partitions)
	brokers, topic, app, cl, adm := pb.brokers, pb.topic, pb.app, pb.cl, pb.adm
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	keys := make([]string, numKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("k-%04d", i)
	}

	// Failures found by goroutines; the test fails on any at the end.
	var failMu sync.Mutex
	var failures []string
	failf := func(format string, args ...any) {
		failMu.Lock()
		defer failMu.Unlock()
		if len(failures) < 30 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}

	// The producer: ~1000 records/s over the keys, 10% tombstones, so keys
	// are deleted and written again. gate pauses it (Lock) between batches.
	var gate sync.RWMutex
	var produced, tombstones atomic.Int64
	var histMu sync.Mutex
	history := map[string][]written{} // in seq order: franz-go acknowledges a partition's records in order
	prodCtx, stopProducing := context.WithCancel(ctx)
	prodDone := make(chan struct{})
	produce := func(ctx context.Context) {
		defer close(prodDone)
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
			gate.RLock()
			for range 5 {
				seq++
				k := keys[rng.IntN(numKeys)]
				r := &kgo.Record{Topic: topic, Key: []byte(k)}
				w := written{seq: seq, tombstone: rng.IntN(10) == 0, sent: time.Now()}
				if w.tombstone {
					tombstones.Add(1)
				} else {
					r.Value = fmt.Appendf(nil, `{"k":%q,"seq":%d}`, k, seq)
				}
				cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
					if err != nil {
						failf("produce %s: %v", r.Key, err)
						return
					}
					w.acked = time.Now()
					histMu.Lock()
					history[k] = append(history[k], w)
					histMu.Unlock()
				})
				produced.Add(1)
			}
			gate.RUnlock()
		}
	}
	// Some data before the nodes start, so that they restore something.
	go produce(prodCtx)

	config := writeFile(t, dir, "iqengine.yaml", "application_id: "+app+"\n"+
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

	transport := &http.Transport{MaxIdleConnsPerHost: 32}
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Timeout: 15 * time.Second, Transport: transport}

	fleet := &killFleet{running: map[*killNode]bool{}, epoch: map[*killNode]int{}}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		listen := freeAddr(t)
		fleet.nodes = append(fleet.nodes, &killNode{id: id, listen: listen, base: "http://" + listen, dataDir: filepath.Join(dir, id)})
	}
	// start starts n's process and marks it running once it answers HTTP.
	start := func(n *killNode) {
		t.Helper()
		n.p = startProcess(t, bin, n.id, "serve", "--config", config, "--node-id", n.id,
			"--listen", n.listen, "--data-dir", n.dataDir)
		deadline := time.Now().Add(20 * time.Second)
		for {
			if n.p.done() {
				t.Fatalf("%s exited: %v\n%s", n.id, n.p.err, n.p.stderr.String())
			}
			if status, _, err := get(client, n.base+"/healthz"); err == nil && status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not answer /healthz within 20s", n.id)
			}
			time.Sleep(20 * time.Millisecond)
		}
		fleet.setRunning(n, true)
	}
	kill := func(n *killNode) {
		t.Helper()
		fleet.setRunning(n, false)
		if err := n.p.cmd.Process.Kill(); err != nil {
			t.Fatalf("kill %s: %v", n.id, err)
		}
		<-n.p.exited
		transport.CloseIdleConnections()
	}
	for _, n := range fleet.nodes {
		start(n)
	}
	formed := waitTable(t, client, fleet.clusterNodes(), partitions, store, 60*time.Second)
	t.Logf("3 processes formed generation %d %s after the test started", formed.Generation, time.Since(testStart).Round(time.Millisecond))

	// The clients: random keys through random running nodes.
	var evMu sync.Mutex
	var events []queryEvent
	var interrupted atomic.Int64
	clientCtx, stopClients := context.WithCancel(ctx)
	var clientsDone sync.WaitGroup
	for c := range clients {
		clientsDone.Add(1)
		go func() {
			defer clientsDone.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 42))
			for clientCtx.Err() == nil {
				k := keys[rng.IntN(numKeys)]
				var not *killNode
				for clientCtx.Err() == nil {
					n, ep := fleet.pick(rng, not)
					if n == nil {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					began := time.Now()
					status, body, err := get(client, n.base+"/v1/stores/"+store+"/keys/"+url.PathEscape(k)+"?timeout="+queryTimeout)
					ended := time.Now()
					if err != nil {
						if fleet.epochOf(n) != ep {
							// Its node was killed under it: send it elsewhere.
							interrupted.Add(1)
							not = n
							continue
						}
						failf("%s via running %s: %v", k, n.id, err)
						break
					}
					ev := queryEvent{start: began, end: ended, status: status, node: n.id, key: k}
					switch status {
					case http.StatusOK:
						var got struct {
							Key   string `json:"key"`
							Value struct {
								K   string `json:"k"`
								Seq int64  `json:"seq"`
							} `json:"value"`
						}
						if err := json.Unmarshal(body, &got); err != nil || got.Key != k || got.Value.K != k {
							failf("%s via %s: 200 %s", k, n.id, body)
						}
						ev.seq = got.Value.Seq
					case http.StatusNotFound:
						if !bytes.Contains(body, []byte("urn:iqengine:problem:key-not-found")) {
							failf("%s via %s: 404 %s", k, n.id, body)
						}
					case http.StatusServiceUnavailable:
					default:
						failf("%s via %s: %d %s", k, n.id, status, body)
					}
					if status == http.StatusServiceUnavailable {
						var prob struct {
							Detail string `json:"detail"`
						}
						_ = json.Unmarshal(body, &prob)
						ev.detail = prob.Detail
					}
					evMu.Lock()
					events = append(events, ev)
					evMu.Unlock()
					break
				}
				time.Sleep(time.Duration(2+rng.IntN(6)) * time.Millisecond)
			}
		}()
	}

	// endOffsets pauses nothing; it lists the topic's end offsets.
	endOffsets := func() map[int32]int64 {
		t.Helper()
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil || ends.Error() != nil {
			t.Fatalf("list end offsets: %v %v", err, ends.Error())
		}
		out := map[int32]int64{}
		ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		return out
	}
	// localParts is a node's /v1/internal/partitions for the topic.
	localParts := func(n *killNode) (map[int32]partState, error) {
		status, body, err := get(client, n.base+"/v1/internal/partitions")
		if err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("%s /v1/internal/partitions: %d %v %s", n.id, status, err, body)
		}
		var infos []struct {
			Topic       string `json:"topic"`
			Partition   int32  `json:"partition"`
			State       string `json:"state"`
			Offset      int64  `json:"offset"`
			StartOffset int64  `json:"start_offset"`
		}
		if err := json.Unmarshal(body, &infos); err != nil {
			return nil, fmt.Errorf("%s /v1/internal/partitions: %v %s", n.id, err, body)
		}
		out := map[int32]partState{}
		for _, in := range infos {
			if in.Topic == topic {
				out[in.Partition] = partState{in.State, in.Offset, in.StartOffset}
			}
		}
		return out, nil
	}
	waitWhole := func(within time.Duration) time.Time {
		t.Helper()
		waitTable(t, client, fleet.clusterNodes(), partitions, store, within)
		return time.Now()
	}

	time.Sleep(2 * time.Second) // queries and production before the first kill
	var windows []*killWindow

	// Five kills, each restarted on the same data directory after ~1s.
	for i := range quickKills {
		n := fleet.nodes[i%len(fleet.nodes)]
		// Pause the producer and let n apply everything, so that the offsets
		// read before the kill are exactly where n stopped.
		gate.Lock()
		if err := cl.Flush(ctx); err != nil {
			gate.Unlock()
			t.Fatalf("flush: %v", err)
		}
		ends := endOffsets()
		var before map[int32]partState
		var err error
		deadline := time.Now().Add(10 * time.Second)
		for {
			before, err = localParts(n)
			caughtUp := err == nil && len(before) > 0
			for p, in := range before {
				if in.State != "serving" || in.Offset+1 != ends[p] {
					caughtUp = false
				}
			}
			if caughtUp {
				break
			}
			if time.Now().After(deadline) {
				gate.Unlock()
				t.Fatalf("kill %d: %s did not catch up within 10s: %v %v, ends %v", i+1, n.id, err, before, ends)
			}
			time.Sleep(10 * time.Millisecond)
		}
		w := &killWindow{node: n.id, kill: time.Now()}
		kill(n)
		gate.Unlock()
		windows = append(windows, w)

		time.Sleep(time.Second)
		start(n)
		// Once its partitions are assigned again, where did it start?
		var after map[int32]partState
		deadline = time.Now().Add(sessionTimeout + 10*time.Second)
		for {
			after, err = localParts(n)
			back := err == nil
			for p := range before {
				if _, ok := after[p]; !ok {
					back = false
				}
			}
			if back {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: %s did not get its partitions %v back within %s of its restart: %v %v",
					i+1, n.id, slices.Sorted(mapKeys(before)), sessionTimeout+10*time.Second, err, after)
			}
			time.Sleep(20 * time.Millisecond)
		}
		var parts []string
		for _, p := range slices.Sorted(mapKeys(before)) {
			b, a := before[p], after[p]
			if a.StartOffset > b.Offset+1 {
				t.Errorf("kill %d: %s partition %d: applied up to %d before the kill, restarted at %d: records skipped",
					i+1, n.id, p, b.Offset, a.StartOffset)
			}
			re := b.Offset + 1 - a.StartOffset
			w.reread += re
			parts = append(parts, fmt.Sprintf("%d:%d", p, re))
		}
		w.rereadByPart = strings.Join(parts, " ")
		if len(after) != len(before) {
			t.Logf("kill %d: %s had partitions %v, after the restart %v", i+1, n.id,
				slices.Sorted(mapKeys(before)), slices.Sorted(mapKeys(after)))
		}
		w.stable = waitWhole(30 * time.Second)
		time.Sleep(time.Second)
	}

	// One node down for longer than the session timeout: the group moves its
	// partitions to the other two, and back when it returns.
	{
		n := fleet.nodes[quickKills%len(fleet.nodes)]
		w := &killWindow{node: n.id, long: true, kill: time.Now(), reread: -1}
		kill(n)
		windows = append(windows, w)
		var rest []*clusterNode
		for _, c := range fleet.clusterNodes() {
			if c.id != n.id {
				rest = append(rest, c)
			}
		}
		moved := waitTable(t, client, rest, partitions, store, sessionTimeout+20*time.Second)
		t.Logf("%s killed: %s and %s formed generation %d %s later", n.id, rest[0].id, rest[1].id,
			moved.Generation, time.Since(w.kill).Round(time.Millisecond))
		time.Sleep(time.Until(w.kill.Add(longStop)))
		start(n)
		w.stable = waitWhole(40 * time.Second)
		time.Sleep(time.Second)
	}

	// The end: stop producing, wait until every partition serves everything.
	stopProducing()
	<-prodDone
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	ends := endOffsets()
	var total int64
	for _, o := range ends {
		total += o
	}
	caughtUp := time.Now()
	var lastErr error
	for {
		lastErr = allServing(client, fleet.clusterNodes(), partitions, store, topic, ends)
		if lastErr == nil {
			break
		}
		if time.Since(caughtUp) > 60*time.Second {
			t.Fatalf("the cluster did not catch up within 60s: %v", lastErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("every partition serves all %d records on every node's view, %s after the producer stopped",
		total, time.Since(caughtUp).Round(time.Millisecond))
	stopClients()
	clientsDone.Wait()

	// What the topic says, read with a plain consumer.
	want := readTopic(t, ctx, brokers, topic, ends)

	// Every key through every node; deleted keys are 404.
	var mismatches atomic.Int64
	var checked atomic.Int64
	for _, n := range fleet.nodes {
		work := make(chan string)
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range work {
					checked.Add(1)
					status, body, err := get(client, n.base+"/v1/stores/"+store+"/keys/"+url.PathEscape(k)+"?timeout=5s")
					v, live := want[k]
					var got struct {
						Key   string          `json:"key"`
						Value json.RawMessage `json:"value"`
					}
					switch {
					case err != nil:
						failf("final %s via %s: %v", k, n.id, err)
					case live && status == http.StatusOK:
						if json.Unmarshal(body, &got) != nil || got.Key != k || string(got.Value) != v {
							mismatches.Add(1)
							failf("final %s via %s: %s, want value %s", k, n.id, body, v)
						}
					case !live && status == http.StatusNotFound:
					default:
						mismatches.Add(1)
						failf("final %s via %s: %d %s, want live=%v %s", k, n.id, status, body, live, v)
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
	for _, it := range scanAll(t, client, fleet.nodes[0].base, store, 300) {
		if string(it.Value) != want[it.Key] {
			mismatches.Add(1)
			failf("scan: %s = %s, want %s", it.Key, it.Value, want[it.Key])
		}
		scanned = append(scanned, it.Key)
	}
	if !slices.Equal(scanned, live) {
		mismatches.Add(1)
		failf("scan via %s: %d keys, want the %d live keys in order", fleet.nodes[0].id, len(scanned), len(live))
	}

	// Judge the queries of the run: each answer against its key's history,
	// and by the windows they started in.
	counts := map[int]int{}
	var judged, behind int
	var stalest time.Duration
	for _, ev := range events {
		counts[ev.status]++
		if ev.status == http.StatusOK || ev.status == http.StatusNotFound {
			judged++
			histMu.Lock()
			h := history[ev.key]
			histMu.Unlock()
			stale, why := judge(h, ev.status, ev.seq, ev.start, ev.end)
			if stale > 0 {
				behind++
			}
			stalest = max(stalest, stale)
			if why != "" {
				mismatches.Add(1)
				failf("during the run, %s via %s from %s to %s: %s", ev.key, ev.node,
					ev.start.Format("15:04:05.000"), ev.end.Format("15:04:05.000"), why)
			}
		}
		var in *killWindow
		for _, w := range windows {
			// A query overlapping the window: one asked just before the
			// kill may wait on the killed node.
			if !ev.end.Before(w.kill) && !ev.start.After(w.stable) {
				in = w
			}
		}
		if in == nil {
			if ev.status == http.StatusServiceUnavailable {
				failf("a 503 via %s for a query from %s to %s, outside every kill window: %s", ev.node,
					ev.start.Format("15:04:05.000"), ev.end.Format("15:04:05.000"), ev.detail)
			}
			continue
		}
		in.slowest = max(in.slowest, ev.end.Sub(ev.start))
		switch ev.status {
		case http.StatusOK:
			in.ok++
		case http.StatusNotFound:
			in.missing++
		case http.StatusServiceUnavailable:
			in.na++
			in.longest = max(in.longest, ev.end.Sub(in.kill))
			if in.naVia == nil {
				in.naVia = map[string]int{}
				in.naDetail = ev.detail
			}
			in.naVia[ev.node]++
		}
	}

	var sum strings.Builder
	fmt.Fprintf(&sum, "broker: %s; %d records produced (%d tombstones) over %d keys in %d partitions\n",
		map[bool]string{true: "real Kafka", false: "iqengine broker (kfake)"}[testkafka.Real()],
		total, tombstones.Load(), numKeys, partitions)
	fmt.Fprintf(&sum, "%-5s %-5s %-6s %-8s %-12s %-8s %-8s %-6s %-5s %s\n", "kill", "node", "down", "re-read", "unavailable", "slowest", "200", "404", "503", "503s by node asked")
	for i, w := range windows {
		down, re := "~1s", fmt.Sprint(w.reread)
		if w.long {
			down, re = longStop.String(), "-"
		}
		fmt.Fprintf(&sum, "%-5d %-5s %-6s %-8s %-12s %-8s %-8d %-6d %-5d %v\n", i+1, w.node, down, re,
			w.longest.Round(10*time.Millisecond), w.slowest.Round(10*time.Millisecond), w.ok, w.missing, w.na, w.naVia)
	}
	for i, w := range windows {
		if !w.long {
			fmt.Fprintf(&sum, "  kill %d re-read by partition: %s\n", i+1, w.rereadByPart)
		}
		if w.naDetail != "" {
			fmt.Fprintf(&sum, "  kill %d, a 503: %s\n", i+1, w.naDetail)
		}
	}
	fmt.Fprintf(&sum, "queries: %d 200, %d 404, %d 503; %d re-sent after their node was killed\n",
		counts[http.StatusOK], counts[http.StatusNotFound], counts[http.StatusServiceUnavailable], interrupted.Load())
	fmt.Fprintf(&sum, "every 200 and 404 (%d) is a state the key had; %d were behind a record acknowledged before the query was sent, the most by %s (allowed %s)\n",
		judged, behind, stalest.Round(time.Millisecond), maxStale)
	fmt.Fprintf(&sum, "final: %d keys (%d live) x %d nodes = %d lookups, %d scanned through %s; mismatches %d\n",
		numKeys, len(live), len(fleet.nodes), checked.Load(), len(scanned), fleet.nodes[0].id, mismatches.Load())
	t.Logf("summary\n%s", sum.String())

	for _, f := range failures {
		t.Error(f)
	}
	// Connections the test opened but never used would hold up the
	// servers' graceful shutdown for 5s.
	transport.CloseIdleConnections()
	for _, n := range fleet.nodes {
		took := n.p.stop(t, 15*time.Second)
		t.Logf("%s exited 0 %s after SIGTERM", n.id, took.Round(time.Millisecond))
	}
	t.Logf("the test took %s", time.Since(testStart).Round(time.Millisecond))
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// allServing reports nil when every node answers /readyz, the routing table
// agrees, and every node's /v1/metadata/partitions shows every partition of
// topic serving, with lag 0, at the end offset ends[p].
func allServing(client *http.Client, nodes []*clusterNode, partitions int32, store, topic string, ends map[int32]int64) error {
	if _, err := tableAgreed(client, nodes, partitions, store); err != nil {
		return err
	}
	for _, n := range nodes {
		status, body, err := get(client, n.base+"/v1/metadata/partitions")
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
