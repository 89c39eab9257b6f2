package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
)

// phase is one disturbance of TestStandbysAnswerThroughFailures: from its
// start until the cluster is whole again.
type phase struct {
	name                 string
	start, end           time.Time
	ok, missing, failed  int
	standby              int           // answers a standby gave
	worstLag             int64         // the largest lag an answer reported
	longestGap, slowest  time.Duration // between two successful answers; one query
	failedVia, failedWhy string
	slowestWhat          string
}

// TestStandbysAnswerThroughFailures runs serve processes with
// standby_replicas: 1 while a producer writes and clients look keys up
// through every running node, and checks that no lookup fails through any
// single failure: a scale-out from two nodes to three, a node killed with
// SIGKILL (and back), and a rolling restart of all three (SIGTERM, start,
// ready, the next). Every 200 and 404 is checked against the key's produced
// history and says which replica answered and how far behind it was. Then
// read-your-writes: a record produced and at once looked up through a node
// that does not own its key, with ?min_offset=, reflects the write, 1,000
// times; and a scan through a third node with the lookup's position token
// reflects it too.
func TestStandbysAnswerThroughFailures(t *testing.T) {
	const (
		partitions     = 12
		numKeys        = 2000
		store          = "orders"
		sessionTimeout = 6 * time.Second
		clients        = 4
		queryTimeout   = "5s"
		rywTimes       = 1000
		rywScans       = 1000
	)
	bin := buildBinary(t) // skips with -short
	testStart := time.Now()
	dir := t.TempDir()
	pb := startProcessBroker(t, bin, dir, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	keys := numberedKeys(numKeys)
	fails := &failures{}
	prodCtx, stopProducing := context.WithCancel(ctx)
	prod := startWriter(prodCtx, pb.cl, pb.topic, keys, fails)

	config := nodeConfig(t, dir, pb.app, pb.brokers, pb.topic, store, sessionTimeout,
		"replication:\n  standby_replicas: 1\n  acceptable_recovery_lag: 100\n")
	transport := &http.Transport{MaxIdleConnsPerHost: 32}
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Timeout: 15 * time.Second, Transport: transport}
	fleet := newFleet(t, dir, 3)
	n1, n2, n3 := fleet.nodes[0], fleet.nodes[1], fleet.nodes[2]
	// Clients reach a node once it is ready, as behind a load balancer
	// that follows /readyz: a node that has not joined yet answers only
	// once its group has formed.
	startReady := func(n *killNode) {
		t.Helper()
		fleet.start(t, bin, config, client, n)
		fleet.setRunning(n, false)
		testutil.WaitFor(t, 60*time.Second, n.id+" ready", func() bool {
			status, _, err := testutil.Get(client, n.base+"/readyz")
			return err == nil && status == http.StatusOK
		})
		fleet.setRunning(n, true)
	}
	nodesOf := func(ns ...*killNode) []*clusterNode {
		var out []*clusterNode
		for _, n := range ns {
			out = append(out, &clusterNode{process: n.p, id: n.id, base: n.base})
		}
		return out
	}
	fleet.start(t, bin, config, client, n1)
	fleet.start(t, bin, config, client, n2)
	formed := waitTable(t, client, nodesOf(n1, n2), partitions, store, 60*time.Second)
	t.Logf("2 processes formed generation %d %s after the test started", formed.Generation, time.Since(testStart).Round(time.Millisecond))
	waitStandbys(t, client, nodesOf(n1, n2), store, 1, 60*time.Second)

	load := startQueries(ctx, clients, fleet, client, store, keys, queryTimeout, fails)
	time.Sleep(2 * time.Second)
	var phases []*phase
	begin := func(name string) *phase {
		p := &phase{name: name, start: time.Now()}
		phases = append(phases, p)
		return p
	}
	whole := func(p *phase, ns ...*killNode) {
		t.Helper()
		waitTable(t, client, nodesOf(ns...), partitions, store, 90*time.Second)
		waitStandbys(t, client, nodesOf(ns...), store, 1, 60*time.Second)
		p.end = time.Now()
		time.Sleep(time.Second) // the load runs on the whole cluster a while
	}

	// Scale-out: n3 joins, warms partitions up as standbys, and only then
	// takes them over.
	p := begin("scale-out 2→3")
	startReady(n3)
	whole(p, n1, n2, n3)
	checkResumed(t, client, n3, pb.topic, "after the scale-out", fails)

	// A node killed: its standbys answer until the group gives them its
	// partitions; then it comes back on its data.
	p = begin("kill -9 n2, and back")
	fleet.setRunning(n2, false)
	if err := n2.p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-n2.p.exited
	transport.CloseIdleConnections()
	waitTable(t, client, nodesOf(n1, n3), partitions, store, sessionTimeout+30*time.Second)
	startReady(n2)
	whole(p, n1, n2, n3)

	// A rolling restart: each node stopped (it leaves the group, so its
	// partitions move to their standbys at once), started on its data, and
	// ready before the next.
	p = begin("rolling restart")
	for _, n := range fleet.nodes {
		fleet.setRunning(n, false)
		n.p.stop(t, 15*time.Second)
		transport.CloseIdleConnections()
		startReady(n)
	}
	whole(p, n1, n2, n3)
	for _, n := range fleet.nodes {
		checkResumed(t, client, n, pb.topic, "after the rolling restart", fails)
	}

	stopProducing()
	prod.wait()
	total := catchUp(t, ctx, pb.cl, pb.adm, client, fleet.clusterNodes(), partitions, store, pb.topic)
	events := load.stop()
	judged := judgeAll(events, prod, 5*time.Second, fails)
	want := readTopic(t, ctx, pb.brokers, pb.topic, endOffsets(t, ctx, pb.adm, pb.topic))
	final := checkEveryKey(t, client, fleet.nodes, store, keys, want, fails)

	// Every answer, in the phase it ended in: none may fail.
	sort.Slice(events, func(i, j int) bool { return events[i].end.Before(events[j].end) })
	var lastOK time.Time
	for _, ev := range events {
		var in *phase
		for _, p := range phases {
			if !ev.end.Before(p.start) && !ev.start.After(p.end) {
				in = p
			}
		}
		good := ev.status == http.StatusOK || ev.status == http.StatusNotFound
		if in != nil {
			if d := ev.end.Sub(ev.start); d > in.slowest {
				in.slowest = d
				in.slowestWhat = fmt.Sprintf("%s via %s from %s: %d (%s, lag %d)", ev.key, ev.node, ev.start.Format("15:04:05.000"), ev.status, ev.replica, ev.lag)
			}
			switch {
			case ev.status == http.StatusOK:
				in.ok++
			case ev.status == http.StatusNotFound:
				in.missing++
			default:
				in.failed++
				in.failedVia, in.failedWhy = ev.node, ev.detail
			}
			if ev.replica == "standby" {
				in.standby++
			}
			in.worstLag = max(in.worstLag, ev.lag)
			if good && !lastOK.IsZero() && ev.end.After(in.start) {
				in.longestGap = max(in.longestGap, ev.end.Sub(lastOK))
			}
		}
		if !good {
			fails.add("%s via %s from %s to %s: %d %s", ev.key, ev.node, ev.start.Format("15:04:05.000"),
				ev.end.Format("15:04:05.000"), ev.status, ev.detail)
		}
		if good {
			lastOK = ev.end
		}
	}

	ryw := readYourWrites(t, ctx, client, fleet, pb.cl, pb.topic, store, rywTimes, rywScans, fails)

	var sum strings.Builder
	fmt.Fprintf(&sum, "broker: %s; %d records produced (%d tombstones) over %d keys in %d partitions; standby_replicas 1\n",
		map[bool]string{true: "real Kafka", false: "iqengine broker (kfake)"}[testkafka.Real()],
		total, prod.tombstones.Load(), numKeys, partitions)
	fmt.Fprintf(&sum, "%-22s %-8s %-7s %-6s %-7s %-9s %-12s %-9s %s\n", "phase", "took", "200", "404", "failed", "standby", "longest gap", "slowest", "worst lag")
	for _, p := range phases {
		fmt.Fprintf(&sum, "%-22s %-8s %-7d %-6d %-7d %-9d %-12s %-9s %d\n", p.name, p.end.Sub(p.start).Round(100*time.Millisecond),
			p.ok, p.missing, p.failed, p.standby, p.longestGap.Round(time.Millisecond), p.slowest.Round(time.Millisecond), p.worstLag)
	}
	for _, p := range phases {
		fmt.Fprintf(&sum, "  %s: %s to %s; slowest %s\n", p.name, p.start.Format("15:04:05.000"), p.end.Format("15:04:05.000"), p.slowestWhat)
	}
	fmt.Fprintf(&sum, "queries: %d, %d re-sent after their node was stopped\n%s\n%s\n%s\n", len(events), load.Interrupted(), judged, final, ryw)
	t.Logf("summary\n%s", sum.String())
	fails.report(t)

	transport.CloseIdleConnections()
	for _, n := range fleet.nodes {
		n.p.stop(t, 15*time.Second)
	}
	t.Logf("the test took %s", time.Since(testStart).Round(time.Millisecond))
}

// waitStandbys waits until every node's routing table names want standbys
// for every partition of store, each serving on its node, and no partition
// is warming up to move.
func waitStandbys(t *testing.T, client *http.Client, nodes []*clusterNode, store string, want int, within time.Duration) {
	t.Helper()
	testutil.WaitForNil(t, within, fmt.Sprintf("%d serving standbys per partition", want), func() error {
		for _, n := range nodes {
			status, body, err := testutil.Get(client, n.base+"/v1/metadata/partitions")
			if err != nil || status != http.StatusOK {
				return fmt.Errorf("%s /v1/metadata/partitions: %d %v", n.id, status, err)
			}
			var v struct {
				Partitions []struct {
					Partition int32  `json:"partition"`
					WarmUp    string `json:"warm_up"`
					Standbys  []struct {
						Node  string `json:"node_id"`
						State string `json:"state"`
					} `json:"standbys"`
				} `json:"partitions"`
			}
			if err := json.Unmarshal(body, &v); err != nil {
				return err
			}
			for _, p := range v.Partitions {
				serving := 0
				for _, s := range p.Standbys {
					if s.State == "serving" {
						serving++
					}
				}
				if serving < want {
					return fmt.Errorf("%s: partition %d has standbys %+v", n.id, p.Partition, p.Standbys)
				}
				if p.WarmUp != "" {
					return fmt.Errorf("%s: partition %d is warming up on %s", n.id, p.Partition, p.WarmUp)
				}
			}
		}
		return nil
	})
}

// checkResumed checks that every partition n serves as its active owner
// began from stored state (a standby's, or its own), not from the log
// start: none waited for a full restore.
func checkResumed(t *testing.T, client *http.Client, n *killNode, topic, when string, fails *failures) {
	t.Helper()
	status, body, err := testutil.Get(client, n.base+"/v1/internal/partitions")
	if err != nil || status != http.StatusOK {
		t.Fatalf("%s /v1/internal/partitions: %d %v", n.id, status, err)
	}
	var infos []struct {
		Topic       string `json:"topic"`
		Partition   int32  `json:"partition"`
		Replica     string `json:"replica"`
		StartOffset int64  `json:"start_offset"`
	}
	if err := json.Unmarshal(body, &infos); err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, in := range infos {
		if in.Topic != topic || in.Replica != "active" {
			continue
		}
		active++
		if in.StartOffset == 0 {
			fails.add("%s: %s partition %d restored from the log start as the active owner", when, n.id, in.Partition)
		}
	}
	if active == 0 {
		fails.add("%s: %s owns no partition", when, n.id)
	}
}

// readYourWrites produces records of keys the load does not ask for and
// looks each up at once through a node that does not own it, with the
// record's offset as ?min_offset=; then, rywScans times, scans a key
// through a third node with the position token of such a lookup. Every
// answer must reflect the write. It returns a line with the extra wait.
func readYourWrites(t *testing.T, ctx context.Context, client *http.Client, fleet *killFleet, cl *kgo.Client, topic, store string, times, scans int, fails *failures) string {
	t.Helper()
	owners := map[string]string{} // key → owner node id
	ownerOf := func(k string) string {
		if o, ok := owners[k]; ok {
			return o
		}
		status, body, err := testutil.Get(client, fleet.nodes[0].base+"/v1/metadata/stores/"+store+"/keys/"+url.PathEscape(k))
		var md struct {
			Owner *struct {
				NodeID string `json:"node_id"`
			} `json:"owner"`
		}
		if err != nil || status != http.StatusOK || json.Unmarshal(body, &md) != nil || md.Owner == nil {
			t.Fatalf("where %s lives: %d %v %s", k, status, err, body)
		}
		owners[k] = md.Owner.NodeID
		return md.Owner.NodeID
	}
	other := func(not ...string) *killNode {
		for _, n := range fleet.nodes {
			if !slices.Contains(not, n.id) {
				return n
			}
		}
		return nil
	}
	type lookedUp struct {
		took     time.Duration
		waited   int64
		position string
		node     string
	}
	lookup := func(n *killNode, k string, seq int64, q string) (lookedUp, bool) {
		start := time.Now()
		resp, err := client.Get(n.base + "/v1/stores/" + store + "/keys/" + url.PathEscape(k) + "?timeout=5s&" + q)
		if err != nil {
			fails.add("read-your-writes: %s via %s: %v", k, n.id, err)
			return lookedUp{}, false
		}
		defer resp.Body.Close()
		var got struct {
			Value struct {
				Seq int64 `json:"seq"`
			} `json:"value"`
			Position string `json:"position"`
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		took := time.Since(start)
		if err != nil || resp.StatusCode != http.StatusOK || got.Value.Seq != seq {
			fails.add("read-your-writes: %s (seq %d) via %s with %s: %d seq %d %v", k, seq, n.id, q, resp.StatusCode, got.Value.Seq, err)
			return lookedUp{}, false
		}
		waited, _ := strconv.ParseInt(resp.Header.Get("Iqengine-Waited-Ms"), 10, 64)
		return lookedUp{took: took, waited: waited, position: got.Position, node: n.id}, true
	}
	var tooks []time.Duration
	var waitedSome int
	for i := range times {
		k := fmt.Sprintf("w-%04d", i%200)
		seq := int64(1_000_000 + i)
		owner := ownerOf(k)
		r := &kgo.Record{Topic: topic, Key: []byte(k), Value: fmt.Appendf(nil, `{"k":%q,"seq":%d}`, k, seq)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", k, err)
		}
		got, ok := lookup(other(owner), k, seq, "min_offset="+strconv.FormatInt(r.Offset, 10))
		if !ok {
			continue
		}
		tooks = append(tooks, got.took)
		if got.waited > 0 {
			waitedSome++
		}
		if i >= scans {
			continue
		}
		// The same write through a scan on a third node, with the
		// lookup's position token.
		third := other(owner, got.node)
		q := "/v1/stores/" + store + "/keys?prefix=" + url.QueryEscape(k) + "&timeout=5s&position=" + url.QueryEscape(got.position)
		status, body, err := testutil.Get(client, third.base+q)
		var page struct {
			Items []struct {
				Key   string `json:"key"`
				Value struct {
					Seq int64 `json:"seq"`
				} `json:"value"`
			} `json:"items"`
		}
		if err != nil || status != http.StatusOK || json.Unmarshal(body, &page) != nil || len(page.Items) != 1 || page.Items[0].Value.Seq != seq {
			fails.add("read-your-writes by scan: %s (seq %d) via %s: %d %v %.200s", k, seq, third.id, status, err, body)
		}
	}
	slices.Sort(tooks)
	if len(tooks) == 0 {
		return "read-your-writes: no answer"
	}
	q := func(f float64) time.Duration { return tooks[int(f*float64(len(tooks)-1))].Round(10 * time.Microsecond) }
	return fmt.Sprintf("read-your-writes: %d writes looked up at once through a node that does not own the key, with min_offset: every answer had the write; lookup p50 %s, p99 %s, max %s; %d waited for the write (the rest found it applied); %d scans through a third node with the lookup's position token had it too",
		len(tooks), q(0.5), q(0.99), tooks[len(tooks)-1].Round(10*time.Microsecond), waitedSome, min(times, scans))
}
