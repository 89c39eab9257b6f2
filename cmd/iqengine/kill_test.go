package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
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
	procs   []*process // every process started, reaped at the test's end
}

// pick chooses a running node other than not for a request: Gone says
// whether it was stopped or killed since.
func (f *killFleet) pick(rng *rand.Rand, not string) (testutil.Target, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var up []*killNode
	for _, n := range f.nodes {
		if f.running[n] && n.id != not {
			up = append(up, n)
		}
	}
	if len(up) == 0 {
		return testutil.Target{}, false
	}
	n := up[rng.IntN(len(up))]
	epoch := f.epoch[n]
	gone := func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.epoch[n] != epoch
	}
	return testutil.Target{ID: n.id, Base: n.base, Gone: gone}, true
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
	keys := numberedKeys(numKeys)

	fails := &failures{}
	// The producer, with some data before the nodes start, so that they
	// restore something.
	prodCtx, stopProducing := context.WithCancel(ctx)
	prod := startWriter(prodCtx, cl, topic, keys, fails)

	// Without standbys: this test is about a node resuming its own
	// partitions from its own store (TestStandbysAnswerThroughFailures
	// kills nodes with standbys).
	config := nodeConfig(t, dir, app, brokers, topic, store, sessionTimeout, "replication:\n  standby_replicas: 0\n")

	transport := &http.Transport{MaxIdleConnsPerHost: 32}
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Timeout: 15 * time.Second, Transport: transport}

	fleet := newFleet(t, dir, 3)
	start := func(t *testing.T, n *killNode) { t.Helper(); fleet.start(t, bin, config, client, n) }
	kill := func(t *testing.T, n *killNode) {
		t.Helper()
		fleet.setRunning(n, false)
		if err := n.p.cmd.Process.Kill(); err != nil {
			t.Fatalf("kill %s: %v", n.id, err)
		}
		<-n.p.exited
		transport.CloseIdleConnections()
	}
	for _, n := range fleet.nodes {
		start(t, n)
	}
	formed := waitTable(t, client, fleet.clusterNodes(), partitions, store, 60*time.Second)
	t.Logf("3 processes formed generation %d %s after the test started", formed.Generation, time.Since(testStart).Round(time.Millisecond))

	// The clients: random keys through random running nodes.
	load := startQueries(ctx, clients, fleet, client, store, keys, queryTimeout, fails)

	// localParts is a node's /v1/internal/partitions for the topic.
	localParts := func(n *killNode) (map[int32]partState, error) {
		status, body, err := testutil.Get(client, n.base+"/v1/internal/partitions")
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
	waitWhole := func(t *testing.T, within time.Duration) time.Time {
		t.Helper()
		waitTable(t, client, fleet.clusterNodes(), partitions, store, within)
		return time.Now()
	}

	time.Sleep(2 * time.Second) // the load runs a while before the first kill
	var windows []*killWindow

	t.Run("a node killed and restarted on its data resumes where it stopped", func(t *testing.T) {
		for i := range quickKills {
			n := fleet.nodes[i%len(fleet.nodes)]
			var before map[int32]partState
			w := &killWindow{node: n.id}
			func() {
				// Pause the producer and let n apply everything, so that
				// the offsets read before the kill are exactly where n
				// stopped.
				prod.gate.Lock()
				defer prod.gate.Unlock()
				if err := cl.Flush(ctx); err != nil {
					t.Fatalf("flush: %v", err)
				}
				ends := endOffsets(t, ctx, adm, topic)
				testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("kill %d: %s catches up to %v", i+1, n.id, ends), func() bool {
					var err error
					before, err = localParts(n)
					caughtUp := err == nil && len(before) > 0
					for p, in := range before {
						caughtUp = caughtUp && in.State == "serving" && in.Offset+1 == ends[p]
					}
					return caughtUp
				})
				w.kill = time.Now()
				kill(t, n)
			}()
			windows = append(windows, w)

			time.Sleep(time.Second) // down for about a second
			start(t, n)
			// Once its partitions are assigned again, where did it start?
			var after map[int32]partState
			testutil.WaitFor(t, sessionTimeout+10*time.Second, fmt.Sprintf("kill %d: %s gets its partitions %v back", i+1, n.id, slices.Sorted(mapKeys(before))), func() bool {
				var err error
				after, err = localParts(n)
				back := err == nil
				for p := range before {
					_, got := after[p]
					back = back && got
				}
				return back
			})
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
			w.stable = waitWhole(t, 30*time.Second)
			time.Sleep(time.Second) // the load runs on the whole cluster a while
		}
	})

	t.Run("a node down past the session timeout hands its partitions over and takes them back", func(t *testing.T) {
		n := fleet.nodes[quickKills%len(fleet.nodes)]
		w := &killWindow{node: n.id, long: true, kill: time.Now(), reread: -1}
		kill(t, n)
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
		time.Sleep(time.Until(w.kill.Add(longStop))) // the node stays down for longStop
		start(t, n)
		w.stable = waitWhole(t, 40*time.Second)
		time.Sleep(time.Second) // the load runs on the whole cluster a while
	})

	t.Run("every key ends as produced, and every answer was a state its key had", func(t *testing.T) {
		// The end: stop producing, wait until every partition serves everything.
		stopProducing()
		prod.wait()
		total := catchUp(t, ctx, cl, adm, client, fleet.clusterNodes(), partitions, store, topic)
		events := load.stop()
		want := readTopic(t, ctx, brokers, topic, endOffsets(t, ctx, adm, topic))
		final := checkEveryKey(t, client, fleet.nodes, store, keys, want, fails)
		// A partition serves only once it has caught up to the high watermark
		// it saw at its assignment, and then applies new records within
		// milliseconds: 5 s is a wide margin that still catches a node
		// answering from lost or old state (one stopped for 10 s that served
		// its old data on return).
		judged := judgeAll(events, prod, 5*time.Second, fails)

		// Judge the queries of the run: each answer against its key's history,
		// and by the windows they started in.
		counts := map[int]int{}
		for _, ev := range events {
			counts[ev.status]++
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
					fails.add("a 503 via %s for a query from %s to %s, outside every kill window: %s", ev.node,
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
			total, prod.tombstones.Load(), numKeys, partitions)
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
		fmt.Fprintf(&sum, "queries: %d 200, %d 404, %d 503; %d re-sent after their node was killed\n%s\n%s\n",
			counts[http.StatusOK], counts[http.StatusNotFound], counts[http.StatusServiceUnavailable], load.Interrupted(), judged, final)
		t.Logf("summary\n%s", sum.String())
		fails.report(t)
	})
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
