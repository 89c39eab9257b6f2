package router

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/cluster"
	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/serde"
)

// The tests of this file move partitions between the nodes of a testCluster
// (a node joins, one leaves, one crashes) while queries run, and check that
// queries keep their promises: answered by some node with the right value,
// 503 only while a partition really has no serving owner, forwarded at most
// once and only to members of the routing table.
//
// They run against the embedded kfake broker, or a real one when
// IQENGINE_TEST_BROKERS is set (see testkafka). The group session timeout
// stays at the harness's 6s in both cases: real Kafka refuses less by default
// (group.min.session.timeout.ms), and franz-go heartbeats every 3s by default
// (the harness does not set a heartbeat interval), so a shorter session would
// expire live members.

// killMargin is how long after the session timeout a crashed node's
// partitions may still be unavailable: the group's rebalance (members learn
// of it at their next heartbeat) plus restoring the partitions on their new
// owners.
const killMargin = 10 * time.Second

// lookupSample is the outcome of one query of the load.
type lookupSample struct {
	phase      int
	node       string // the node asked
	key        string
	partition  int32
	sent, done time.Time
	status     int    // 0: transport error
	err        string // transport error, or what was wrong with the answer
	waitedMs   int64  // Iqengine-Waited-Ms
	problem    string // problem type of a non-200 answer
	correct    bool   // 200 with the produced value
	servedBy   string
}

func (s lookupSample) latency() time.Duration { return s.done.Sub(s.sent) }

// lookupLoad runs clients that look up random existing keys through random
// running nodes over real HTTP, and records every answer. A request whose
// node the test stopped or killed under it is sent again (testutil.Load)
// and kept apart, in resent.
type lookupLoad struct {
	*testutil.Load
	c     *testCluster
	keys  []string
	phase atomic.Int32
	query atomic.Pointer[string] // query string added to every lookup

	mu       sync.Mutex
	samples  []lookupSample
	resent   []lookupSample  // requests re-sent because their node stopped
	draining map[string]bool // nodes the clients no longer pick
	inFlight map[string]int  // node -> requests sent to it and not yet answered
	answered *sync.Cond      // on mu: a request in flight was answered
}

// lookupTag is what a request's answer is judged by.
type lookupTag struct {
	key   string
	phase int
}

func newLookupLoad(c *testCluster) *lookupLoad {
	l := &lookupLoad{c: c, keys: c.keys(), draining: map[string]bool{}, inFlight: map[string]int{}}
	l.answered = sync.NewCond(&l.mu)
	empty := ""
	l.query.Store(&empty)
	l.phase.Store(1)
	l.Load = &testutil.Load{
		Client: &http.Client{
			Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second},
			Timeout:   30 * time.Second,
		},
		Pick: l.pick,
		Next: func(rng *rand.Rand) (string, any) {
			k := l.keys[rng.IntN(len(l.keys))]
			return "/v1/stores/orders/keys/" + k + *l.query.Load(), lookupTag{k, int(l.phase.Load())}
		},
		Answer: func(a testutil.Answer) { l.record(&l.samples, l.judge(a)) },
		Resent: func(a testutil.Answer) { l.record(&l.resent, l.sample(a)) },
	}
	return l
}

// start runs n clients until halt.
func (l *lookupLoad) start(n int) {
	l.Clients = n
	l.Start(context.Background())
}

// halt stops the clients and waits for their last queries.
func (l *lookupLoad) halt() {
	l.Stop()
	l.Client.CloseIdleConnections()
}

// pick chooses a running node that does not drain, and counts the request
// in flight to it until it has its answer.
func (l *lookupLoad) pick(rng *rand.Rand, _ string) (testutil.Target, bool) {
	ids := l.c.ids()
	if len(ids) == 0 {
		return testutil.Target{}, false
	}
	id := ids[rng.IntN(len(ids))]
	n := l.c.node(id)
	if n == nil || !l.acquire(id) {
		return testutil.Target{}, false // stopped or draining since ids()
	}
	return testutil.Target{
		ID: id, Base: n.URL,
		Gone: func() bool { return l.c.node(id) == nil },
		Done: func() { l.release(id) },
	}, true
}

func (l *lookupLoad) sample(a testutil.Answer) lookupSample {
	tag := a.Tag.(lookupTag)
	return lookupSample{phase: tag.phase, node: a.Target, key: tag.key,
		partition: serde.Partition([]byte(tag.key), l.c.partitions), sent: a.Sent, done: a.Done}
}

// judge checks an answer against what was produced.
func (l *lookupLoad) judge(a testutil.Answer) lookupSample {
	s := l.sample(a)
	if a.Err != nil {
		s.err = a.Err.Error()
		return s
	}
	s.status = a.Status
	s.waitedMs, _ = strconv.ParseInt(a.Header.Get(waitedHeader), 10, 64)
	if s.status != http.StatusOK {
		var p problem
		_ = json.Unmarshal(a.Body, &p)
		s.problem = p.Type
		s.err = strings.TrimSpace(string(a.Body))
		return s
	}
	var got struct {
		Key      string          `json:"key"`
		Value    json.RawMessage `json:"value"`
		ServedBy string          `json:"served_by"`
	}
	switch err := json.Unmarshal(a.Body, &got); {
	case err != nil:
		s.err = "200 that is not JSON: " + string(a.Body)
	case got.Key != s.key || string(got.Value) != l.c.want[s.key]:
		s.err = "wrong answer: " + string(a.Body)
	default:
		s.correct = true
		s.servedBy = got.ServedBy
	}
	return s
}

// acquire counts a request to node id in flight, unless id drains.
func (l *lookupLoad) acquire(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.draining[id] {
		return false
	}
	l.inFlight[id]++
	return true
}

func (l *lookupLoad) release(id string) {
	l.mu.Lock()
	l.inFlight[id]--
	l.mu.Unlock()
	l.answered.Broadcast()
}

// drain makes the clients stop picking node id and waits until the requests
// already sent to it are answered, as a load balancer drains a node before
// it is stopped.
func (l *lookupLoad) drain(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.draining[id] = true
	for l.inFlight[id] > 0 {
		l.answered.Wait()
	}
}

func (l *lookupLoad) record(to *[]lookupSample, s lookupSample) {
	l.mu.Lock()
	*to = append(*to, s)
	l.mu.Unlock()
}

// run sets the phase and lets the load run for d.
func (l *lookupLoad) run(phase int, d time.Duration) {
	l.phase.Store(int32(phase))
	time.Sleep(d)
}

// durationPercentile returns the p-th percentile (0 < p <= 1) of sorted ds.
func durationPercentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*p+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// phaseStats logs one phase's latencies, waits and statuses.
func phaseStats(t *testing.T, name string, ss []lookupSample, resent int) {
	t.Helper()
	var lat []time.Duration
	var maxWait int64
	statuses := map[int]int{}
	forwarded := 0
	for _, s := range ss {
		lat = append(lat, s.latency())
		maxWait = max(maxWait, s.waitedMs)
		statuses[s.status]++
		if s.correct && s.servedBy != s.node {
			forwarded++
		}
	}
	slices.Sort(lat)
	var longest time.Duration
	if len(lat) > 0 {
		longest = lat[len(lat)-1]
	}
	t.Logf("%-28s %6d queries: p50 %-10v p99 %-10v max %-10v longest Iqengine-Waited-Ms %5d; 200: %d, 503: %d, other: %d, transport errors: %d; forwarded %d; re-sent (node stopped) %d",
		name, len(ss), durationPercentile(lat, .5).Round(10*time.Microsecond), durationPercentile(lat, .99).Round(10*time.Microsecond), longest.Round(10*time.Microsecond),
		maxWait, statuses[200], statuses[503], len(ss)-statuses[200]-statuses[503]-statuses[0], statuses[0], forwarded, resent)
}

// TestQueriesSurviveRebalances runs three nodes under a steady load of
// lookups over real HTTP, then a node joins, one leaves gracefully, and one
// crashes. Joins and graceful leaves cost no failed query: a query waits
// while its partition moves. A crash makes the dead node's partitions
// unavailable until the group's session timeout expires it and they restore
// elsewhere: queries for them may answer 503 only in that window, every
// other query is answered, and after the cluster is stable again all are.
func TestQueriesSurviveRebalances(t *testing.T) {
	const (
		steady   = 3 * time.Second // load of the steady phase
		settle   = 2 * time.Second // load after each change is stable
		clients  = 8
		killWait = "1s" // per-query timeout while the killed node's partitions have no owner
	)
	c := newTestCluster(t, 12, 1000)
	for _, id := range []string{"n1", "n2", "n3"} {
		c.start(id)
	}
	c.waitStable(60 * time.Second)
	t0 := time.Now()
	l := newLookupLoad(c)
	l.start(clients)
	defer l.halt()

	// 1: steady state.
	l.run(1, steady)

	// 2: n4 joins; partitions move to it in a cooperative rebalance.
	l.phase.Store(2)
	c.start("n4")
	c.waitStable(60 * time.Second)
	t.Logf("phase 2: n4 joined, stable after %v", time.Since(t0).Round(time.Millisecond))
	l.run(2, settle)

	// 3: n2 stops gracefully: it leaves the group explicitly (a static
	// member too), so its partitions move at once. The clients drain it
	// first, as the iqengine binary does: its stop shuts the HTTP server
	// down, which waits for the requests in flight, before the engine
	// leaves the group. The harness's c.stop stops the engine first while
	// the server still takes requests, and a lookup that reaches n2 after
	// its partitions were revoked waits its whole timeout on n2's routing
	// table, which no longer changes once n2 left the group ("assigned to
	// n2, not started yet"), then answers 503. Other nodes keep forwarding
	// to n2 while it leaves.
	l.phase.Store(3)
	stopAt := time.Now()
	l.drain("n2")
	c.stop("n2")
	c.waitStable(60 * time.Second)
	t.Logf("phase 3: n2 stopped, stable %v after the stop", time.Since(stopAt).Round(time.Millisecond))
	l.run(3, settle)

	// 4: n3 crashes. Its partitions stay assigned to it until the session
	// timeout; short query timeouts make the 503s surface.
	dead := map[int32]bool{}
	for _, p := range c.node("n1").bal.Table().Partitions("n3")[c.topic] {
		dead[p] = true
	}
	if len(dead) == 0 {
		t.Fatal("n3 owns no partition before the kill")
	}
	q := "?timeout=" + killWait
	l.query.Store(&q)
	killAt := time.Now()
	l.phase.Store(4)
	c.kill("n3")
	c.waitStable(c.sessionTimeout + 40*time.Second)
	stableAt := time.Now()
	t.Logf("phase 4: n3 killed (partitions %v), stable %v after the kill", slices.Sorted(maps.Keys(dead)), stableAt.Sub(killAt).Round(time.Millisecond))

	// 5: stable again after the crash.
	l.run(5, settle)
	l.halt()

	l.mu.Lock()
	samples := slices.Clone(l.samples)
	resent := map[int]int{}
	for _, s := range l.resent {
		if s.phase < 4 && s.done.After(killAt) {
			s.phase = 4 // re-sent because n3 died
		}
		resent[s.phase]++
	}
	l.mu.Unlock()

	// A query of phase 3 still in flight when n3 died (sent with the
	// default 10s timeout) is judged by the rules of the crash: its
	// partition may have lost its owner under it. It is reported apart.
	const atKill = 34
	byPhase := map[int][]lookupSample{}
	for _, s := range samples {
		if s.phase < 4 && s.done.After(killAt) {
			s.phase = atKill
		}
		byPhase[s.phase] = append(byPhase[s.phase], s)
	}
	names := map[int]string{
		1: "1 steady (n1-n3)", 2: "2 n4 joins", 3: "3 n2 stops gracefully", atKill: "3 in flight at the kill",
		4: "4 n3 killed (timeout " + killWait + ")", 5: "5 stable after the kill",
	}
	for _, p := range []int{1, 2, 3, atKill, 4, 5} {
		phaseStats(t, names[p], byPhase[p], resent[p])
	}

	// Phases 1-3 and 5: every query answered 200 with the right value.
	failures := 0
	for _, p := range []int{1, 2, 3, 5} {
		if len(byPhase[p]) == 0 {
			t.Errorf("phase %q ran no query", names[p])
		}
		for _, s := range byPhase[p] {
			if !s.correct {
				failures++
				if failures <= 20 {
					t.Errorf("phase %q: %s via %s (partition %d), sent %v after start, took %v: status %d: %s",
						names[p], s.key, s.node, s.partition, s.sent.Sub(t0).Round(time.Millisecond), s.latency().Round(time.Millisecond), s.status, s.err)
				}
			}
		}
	}

	// Phase 4: 503 partition-unavailable only for the dead node's
	// partitions, and only until the session timeout plus the margin.
	windowEnd := killAt.Add(c.sessionTimeout + killMargin)
	var n200, n503 int
	var first503, last503, firstOK time.Time
	for _, s := range slices.Concat(byPhase[atKill], byPhase[4]) {
		switch {
		case s.correct:
			n200++
			// The first answer for a dead partition from its new owner
			// (not from n3 in its last milliseconds).
			if dead[s.partition] && s.sent.After(killAt) && s.servedBy != "n3" && (firstOK.IsZero() || s.done.Before(firstOK)) {
				firstOK = s.done
			}
			continue
		case s.status == http.StatusServiceUnavailable && dead[s.partition] && s.problem == problemTypePrefix+probUnavailable && !s.done.After(windowEnd):
			n503++
			if first503.IsZero() || s.done.Before(first503) {
				first503 = s.done
			}
			if s.done.After(last503) {
				last503 = s.done
			}
			continue
		}
		failures++
		if failures <= 20 {
			t.Errorf("phase %q: %s via %s (partition %d, dead: %v), answered %v after the kill, took %v: status %d: %s",
				names[s.phase], s.key, s.node, s.partition, dead[s.partition], s.done.Sub(killAt).Round(time.Millisecond), s.latency().Round(time.Millisecond), s.status, s.err)
		}
	}
	if failures > 20 {
		t.Errorf("... %d failed queries in all", failures)
	}
	if n503 > 0 {
		// A 503 says its partition had no serving owner for the whole
		// query timeout before it; the first 200 from a new owner
		// bounds the window from above.
		t.Logf("kill of n3 (session timeout %v): %d answers 200, %d answers 503 (%s); 503s for its partitions answered from %v to %v after the kill, first 200 for them from a new owner %v after the kill; cluster stable %v after the kill",
			c.sessionTimeout, n200, n503, problemTypePrefix+probUnavailable, first503.Sub(killAt).Round(time.Millisecond), last503.Sub(killAt).Round(time.Millisecond),
			firstOK.Sub(killAt).Round(time.Millisecond), stableAt.Sub(killAt).Round(time.Millisecond))
	} else {
		t.Logf("kill of n3 (session timeout %v): %d answers 200, no 503; first 200 for its partitions from a new owner %v after the kill", c.sessionTimeout, n200, firstOK.Sub(killAt).Round(time.Millisecond))
	}
	if firstOK.IsZero() {
		t.Error("no query for the dead node's partitions was answered after the kill")
	}
	t.Logf("whole load: %v", time.Since(t0).Round(time.Millisecond))
}

// TestScanPagesWhilePartitionsMove pages through a full scan, 25 keys at a
// time, through one node while a node joins and another leaves between
// pages: the cursor names no node, so every key comes exactly once, in order.
func TestScanPagesWhilePartitionsMove(t *testing.T) {
	c := newTestCluster(t, 12, 1000)
	for _, id := range []string{"n1", "n2", "n3"} {
		c.start(id)
	}
	c.waitStable(60 * time.Second)
	n1 := c.node("n1")
	gen := func() int32 { return n1.bal.Table().Generation() }
	startGen := gen()

	// waitGen waits for n1's routing table to change, so the next pages
	// are asked while partitions move.
	waitGen := func(from int32) {
		testutil.WaitFor(t, 20*time.Second, "n1's routing table did not change", func() bool { return gen() != from })
	}

	var stopping sync.WaitGroup
	defer stopping.Wait()
	var keys []string
	cursor := ""
	gens := map[int32]bool{}
	waitedPages, maxWaited := 0, int64(0)
	for page := 0; ; page++ {
		switch page {
		case 8:
			// n4 joins: the first round of the cooperative rebalance
			// takes partitions from n1-n3, the second gives them to n4,
			// which restores them.
			g := gen()
			c.start("n4")
			waitGen(g)
		case 20:
			// n2 leaves while we page.
			g := gen()
			stopping.Add(1)
			go func() {
				defer stopping.Done()
				c.stop("n2")
			}()
			waitGen(g)
		}
		gens[gen()] = true
		a := httpGet(t, fmt.Sprintf("%s/v1/stores/orders/keys?limit=25&cursor=%s", n1.URL, cursor))
		if a.status != http.StatusOK {
			t.Fatalf("page %d: %d %s", page, a.status, a.body)
		}
		var p scanPage
		a.decode(t, &p)
		if w, _ := strconv.ParseInt(a.header.Get(waitedHeader), 10, 64); w > 0 {
			waitedPages++
			maxWaited = max(maxWaited, w)
		}
		for _, it := range p.Items {
			keys = append(keys, it.Key)
		}
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
		if page >= 8 {
			time.Sleep(50 * time.Millisecond) // let the moves overlap the pages
		}
	}
	stopping.Wait()
	t.Logf("%d keys in pages of 25 through n1 over routing generations %v (from %d); %d pages waited, the longest %dms",
		len(keys), slices.Sorted(maps.Keys(gens)), startGen, waitedPages, maxWaited)
	want := c.keys()
	seen := map[string]int{}
	for _, k := range keys {
		seen[k]++
	}
	for _, k := range want {
		if seen[k] != 1 {
			t.Errorf("key %s returned %d times", k, seen[k])
		}
	}
	if !slices.IsSorted(keys) {
		t.Error("keys out of order")
	}
	if len(keys) != len(want) {
		t.Errorf("%d keys, want %d", len(keys), len(want))
	}
	if len(gens) < 3 {
		t.Errorf("the pages saw routing generations %v: the partitions did not move during the scan", slices.Sorted(maps.Keys(gens)))
	}
	c.waitStable(60 * time.Second)
	if _, ok := c.node("n1").bal.Table().Member("n4"); !ok {
		t.Error("n4 is not a member at the end")
	}
}

// metricRequests sums iqengine_http_requests_total of an endpoint over every
// status, from a node's /metrics.
func metricRequests(t *testing.T, n *testNode, endpoint string) float64 {
	t.Helper()
	resp, err := http.Get(n.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	prefix := `iqengine_http_requests_total{endpoint="` + endpoint + `",`
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sum
}

// internalCalls counts the internal requests every running node received.
func internalCalls(t *testing.T, c *testCluster) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, id := range c.ids() {
		n := c.node(id)
		for _, ep := range []string{"internal-get", "internal-scan", "internal-count"} {
			out[id+" "+ep] = metricRequests(t, n, ep)
		}
	}
	return out
}

// doRequest sends a request and reads the answer.
func doRequest(t *testing.T, client *http.Client, req *http.Request) answer {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, body}
}

// forwarding is the fixture of TestForwardingIsBoundedAndSafe: three nodes
// over 12 partitions, a trap server that no node may ever call, and a key
// that is the trap's address.
type forwarding struct {
	c       *testCluster
	n1      *testNode
	table   *cluster.Table // n1's
	trap    *httptest.Server
	trapKey string
	// away is a key of partition awayP, which n1 does not own and owner
	// does; home is a key of a partition n1 owns.
	away, home string
	awayP      int32
	owner      *testNode
	client     *http.Client // follows no redirect

	trapped []string // requests the trap received
	mu      sync.Mutex
}

func newForwarding(t *testing.T) *forwarding {
	f := &forwarding{}
	f.trap = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.trapped = append(f.trapped, r.Method+" "+r.URL.String())
		f.mu.Unlock()
		http.Error(w, "trapped", http.StatusTeapot)
	}))
	t.Cleanup(f.trap.Close)
	c := newTestCluster(t, 12, 300)
	f.c = c
	// A key that is an address of the trap: only data.
	f.trapKey = f.trap.URL + "/steal"
	c.want[f.trapKey] = `{"trap":true}`
	testkafka.Produce(t, c.b.Client(t), &kgo.Record{Topic: c.topic, Key: []byte(f.trapKey), Value: []byte(c.want[f.trapKey])})
	for _, id := range []string{"n1", "n2", "n3"} {
		c.start(id)
	}
	c.waitStable(60 * time.Second)
	f.n1 = c.node("n1")
	f.table = f.n1.bal.Table()
	for _, k := range c.keys() {
		o, ok := f.table.Owner(c.topic, serde.Partition([]byte(k), c.partitions))
		if !ok {
			t.Fatalf("no owner for %s in a stable cluster", k)
		}
		switch {
		case o.NodeID != "n1" && f.away == "":
			f.away, f.owner = k, c.node(o.NodeID)
		case o.NodeID == "n1" && f.home == "":
			f.home = k
		}
	}
	if f.away == "" || f.home == "" {
		t.Fatal("n1 owns all or none of the partitions")
	}
	f.awayP = serde.Partition([]byte(f.away), c.partitions)
	f.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(f.client.CloseIdleConnections)
	return f
}

// lookup is a request for key through the node at nodeURL.
func (f *forwarding) lookup(t *testing.T, nodeURL, key string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, nodeURL+"/v1/stores/orders/keys/"+key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// wantValue checks that a is the answer for key with its produced value.
func (f *forwarding) wantValue(t *testing.T, what string, a answer, key string) {
	t.Helper()
	var got struct {
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	if a.status != http.StatusOK {
		t.Errorf("%s: %d %s", what, a.status, a.body)
		return
	}
	a.decode(t, &got)
	if got.Key != key || string(got.Value) != f.c.want[key] {
		t.Errorf("%s: wrong answer %s", what, a.body)
	}
}

// wantKind checks that a is a problem of kind with status.
func wantKind(t *testing.T, what string, a answer, status int, kind string) {
	t.Helper()
	var p problem
	if a.status != status {
		t.Errorf("%s: %d %s, want %d %s", what, a.status, a.body, status, kind)
		return
	}
	a.decode(t, &p)
	if p.Type != problemTypePrefix+kind {
		t.Errorf("%s: problem type %q, want %q", what, p.Type, problemTypePrefix+kind)
	}
}

// TestForwardingIsBoundedAndSafe checks that a node forwards a request at
// most once (a request that says it was forwarded is answered 421, not
// forwarded again, and the internal endpoints never forward nor wait for a
// partition that is not theirs), and only ever to the advertised URL of a
// member of its routing table: nothing in a request (headers, Host,
// query parameters, the key, an absolute request URI) makes it call an
// address of the client's choosing.
func TestForwardingIsBoundedAndSafe(t *testing.T) {
	f := newForwarding(t)
	c, n1, away, home, awayP, owner, client, trap := f.c, f.n1, f.away, f.home, f.awayP, f.owner, f.client, f.trap
	trapHost := strings.TrimPrefix(trap.URL, "http://")

	t.Run("a lookup through a non-owner is one internal get on the owner", func(t *testing.T) {
		before := metricRequests(t, owner, "internal-get")
		f.wantValue(t, "plain lookup", doRequest(t, client, f.lookup(t, n1.URL, away)), away)
		if after := metricRequests(t, owner, "internal-get"); after != before+1 {
			t.Fatalf("a forwarded lookup made %v internal gets on the owner %s, want 1", after-before, owner.id)
		}
	})

	t.Run("a lookup already forwarded once is answered 421 at once, not forwarded", func(t *testing.T) {
		calls := internalCalls(t, c)
		req := f.lookup(t, n1.URL, away)
		req.Header.Set(hopsHeader, "1")
		start := time.Now()
		a := doRequest(t, client, req)
		took := time.Since(start)
		wantKind(t, "lookup with "+hopsHeader+": 1 on a non-owner", a, http.StatusMisdirectedRequest, probNotOwner)
		if g := a.header.Get(generationHeader); g != strconv.Itoa(int(f.table.Generation())) {
			t.Errorf("421 with %s %q, want %d", generationHeader, g, f.table.Generation())
		}
		if took > 2*time.Second {
			t.Errorf("421 after %v: it waited", took)
		}
		if now := internalCalls(t, c); !maps.Equal(now, calls) {
			t.Errorf("a lookup with %s: 1 was forwarded: internal calls %v, before %v", hopsHeader, now, calls)
		}
	})

	t.Run("a lookup already forwarded once is answered by the owner", func(t *testing.T) {
		req := f.lookup(t, n1.URL, home)
		req.Header.Set(hopsHeader, "1")
		f.wantValue(t, "lookup with "+hopsHeader+": 1 on the owner", doRequest(t, client, req), home)
	})

	key := base64.RawURLEncoding.EncodeToString([]byte(away))
	t.Run("internal endpoints of a non-owner answer 421 at once and call nobody", func(t *testing.T) {
		calls := internalCalls(t, c)
		for _, path := range []string{
			fmt.Sprintf("/v1/internal/stores/orders/partitions/%d/get?key=%s", awayP, key),
			fmt.Sprintf("/v1/internal/stores/orders/partitions/%d/get?key=%s&timeout=30s", awayP, key),
			fmt.Sprintf("/v1/internal/stores/orders/partitions/%d/scan?limit=10", awayP),
			fmt.Sprintf("/v1/internal/stores/orders/partitions/%d/count?timeout=30s", awayP),
		} {
			start := time.Now()
			a := httpGet(t, n1.URL+path)
			took := time.Since(start)
			wantKind(t, path+" on a non-owner", a, http.StatusMisdirectedRequest, probNotOwner)
			if took > 2*time.Second {
				t.Errorf("%s: 421 after %v: it waited", path, took)
			}
		}
		n1Self := []string{"n1 internal-get", "n1 internal-scan", "n1 internal-count"}
		now := internalCalls(t, c)
		for k := range now {
			if !slices.Contains(n1Self, k) && now[k] != calls[k] {
				t.Errorf("internal calls on a non-owner reached %s: %v -> %v", k, calls[k], now[k])
			}
		}
	})

	t.Run("the owner answers its partition's internal get", func(t *testing.T) {
		a := httpGet(t, fmt.Sprintf("%s/v1/internal/stores/orders/partitions/%d/get?key=%s", owner.URL, awayP, key))
		if a.status != http.StatusOK || a.header.Get("Content-Type") != recordsType {
			t.Errorf("internal get on the owner: %d %s", a.status, a.body)
		}
	})

	// Spoofing: no header, Host, query parameter, key or request URI
	// makes a node call the trap.
	spoofs := []struct {
		name   string
		header map[string]string
		host   string // Host override
		query  string
		status int
		kind   string // problem type of a non-200
	}{
		{name: "X-Forwarded-Host", header: map[string]string{"X-Forwarded-Host": trapHost, "X-Forwarded-Proto": "http", "X-Forwarded-Server": trapHost, "X-Forwarded-For": "127.0.0.1"}, status: 200},
		{name: "Forwarded", header: map[string]string{"Forwarded": "for=127.0.0.1;host=" + trapHost + ";proto=http"}, status: 200},
		{name: "Host", host: trapHost, status: 200},
		{name: "Iqengine-Owner", header: map[string]string{"Iqengine-Owner": trap.URL, "Iqengine-Owner-Url": trap.URL, "Iqengine-Node": trap.URL}, status: 200},
		{name: "internal headers", header: map[string]string{partitionHeader: "0", generationHeader: "999999", servedByHeader: trap.URL, "Referer": trap.URL, "Origin": trap.URL}, status: 200},
		{name: "X-Original-URL", header: map[string]string{"X-Original-URL": trap.URL + "/v1/stores/orders/keys/" + away, "X-Rewrite-URL": trap.URL}, status: 200},
		{name: "owner=", query: "owner=" + url.QueryEscape(trap.URL), status: 400, kind: probBadParameter},
		{name: "url=", query: "url=" + url.QueryEscape(trap.URL), status: 400, kind: probBadParameter},
		{name: "node=", query: "node=" + url.QueryEscape(trap.URL), status: 400, kind: probBadParameter},
		{name: "node= with timeout", query: "timeout=1s&node=" + url.QueryEscape(trapHost), status: 400, kind: probBadParameter},
	}
	for _, s := range spoofs {
		t.Run("spoofed "+s.name, func(t *testing.T) {
			// send asks n1 for path with the smuggling attempt s applied.
			send := func(path string) answer {
				if s.query != "" {
					if strings.Contains(path, "?") {
						path += "&" + s.query
					} else {
						path += "?" + s.query
					}
				}
				req, err := http.NewRequest(http.MethodGet, n1.URL+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				for h, v := range s.header {
					req.Header.Set(h, v)
				}
				if s.host != "" {
					req.Host = s.host
				}
				return doRequest(t, client, req)
			}
			for _, k := range []string{away, home} {
				a := send("/v1/stores/orders/keys/" + k)
				what := "lookup of " + k
				if s.status == 200 {
					f.wantValue(t, what, a, k)
				} else {
					wantKind(t, what, a, s.status, s.kind)
				}
			}
			// The same on a scan and a count, which ask every owner.
			a := send("/v1/stores/orders/keys?limit=1000")
			if s.status == 200 {
				var p scanPage
				a.decode(t, &p)
				if a.status != 200 || len(p.Items) != len(c.want) {
					t.Errorf("scan: %d, %d items", a.status, len(p.Items))
				}
			} else {
				wantKind(t, "scan", a, s.status, s.kind)
			}
			a = send("/v1/stores/orders/count")
			if s.status == 200 {
				var cnt struct{ Count int }
				a.decode(t, &cnt)
				if a.status != http.StatusOK || cnt.Count != len(c.want) {
					t.Errorf("count: %d %s", a.status, a.body)
				}
			} else {
				wantKind(t, "count", a, s.status, s.kind)
			}
		})
	}

	t.Run("the trap's URL as the key is only a key, through every node", func(t *testing.T) {
		for _, id := range c.ids() {
			n := c.node(id)
			f.wantValue(t, "the trap's URL as the key via "+id, doRequest(t, client, f.lookup(t, n.URL, f.trapKey)), f.trapKey)
			f.wantValue(t, "the trap's URL escaped as the key via "+id, doRequest(t, client, f.lookup(t, n.URL, url.PathEscape(f.trapKey))), f.trapKey)
		}
	})

	t.Run("an absolute-form request URI naming the trap is answered by the node", func(t *testing.T) {
		// The node taken for a proxy.
		proxyURL, _ := url.Parse(n1.URL)
		proxied := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
		defer proxied.CloseIdleConnections()
		f.wantValue(t, "absolute-form request URI naming the trap", doRequest(t, proxied, f.lookup(t, trap.URL, away)), away)
	})

	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.trapped) != 0 {
		t.Fatalf("the trap received %d requests: %v", len(f.trapped), f.trapped)
	}
}

// TestNoOwnerAnswers503 crashes one of two nodes: its partitions stay
// assigned to the dead static member until the session timeout, so they
// have no serving owner. A lookup of one of them through the live node
// answers 503 at its deadline, naming the partition, and a scan names
// exactly the dead node's partitions.
func TestNoOwnerAnswers503(t *testing.T) {
	c := newTestCluster(t, 12, 400)
	c.start("n1")
	c.start("n2")
	c.waitStable(60 * time.Second)
	n1 := c.node("n1")
	dead := n1.bal.Table().Partitions("n2")[c.topic]
	if len(dead) == 0 || len(dead) == int(c.partitions) {
		t.Fatalf("n2 owns partitions %v", dead)
	}
	var deadKey, liveKey string
	for _, k := range c.keys() {
		if slices.Contains(dead, serde.Partition([]byte(k), c.partitions)) {
			if deadKey == "" {
				deadKey = k
			}
		} else if liveKey == "" {
			liveKey = k
		}
	}
	deadP := serde.Partition([]byte(deadKey), c.partitions)

	c.kill("n2")
	killAt := time.Now()

	a := httpGet(t, n1.URL+"/v1/stores/orders/keys/"+deadKey+"?timeout=300ms")
	var p problem
	a.decode(t, &p)
	if a.status != http.StatusServiceUnavailable || p.Type != problemTypePrefix+probUnavailable {
		t.Fatalf("lookup in a dead partition: %d %s", a.status, a.body)
	}
	if a.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if len(p.Partitions) != 1 || p.Partitions[0].Topic != c.topic || p.Partitions[0].Partition != deadP {
		t.Errorf("503 names partitions %+v, want %s/%d", p.Partitions, c.topic, deadP)
	}
	if w, _ := strconv.Atoi(a.header.Get(waitedHeader)); w < 300 {
		t.Errorf("503 after waiting %dms, before the 300ms deadline", w)
	}
	t.Logf("lookup: %d after %sms: %s", a.status, a.header.Get(waitedHeader), strings.TrimSpace(string(a.body)))

	// A live partition still answers.
	a = httpGet(t, n1.URL+"/v1/stores/orders/keys/"+liveKey+"?timeout=300ms")
	if a.status != http.StatusOK {
		t.Errorf("lookup in a live partition: %d %s", a.status, a.body)
	}

	// A scan and a count name exactly the dead node's partitions.
	for _, path := range []string{"/v1/stores/orders/keys?timeout=300ms", "/v1/stores/orders/count?timeout=300ms"} {
		a = httpGet(t, n1.URL+path)
		var p problem
		a.decode(t, &p)
		if a.status != http.StatusServiceUnavailable || p.Type != problemTypePrefix+probUnavailable || a.header.Get("Retry-After") == "" {
			t.Errorf("%s: %d %v %s", path, a.status, a.header, a.body)
			continue
		}
		var got []int32
		for _, up := range p.Partitions {
			if up.Topic != c.topic {
				t.Errorf("%s: 503 names topic %q", path, up.Topic)
			}
			got = append(got, up.Partition)
		}
		slices.Sort(got)
		if !slices.Equal(got, dead) {
			t.Errorf("%s: 503 names partitions %v, want the dead node's %v", path, got, dead)
		}
	}
	if since := time.Since(killAt); since >= c.sessionTimeout {
		t.Fatalf("the checks took %v, past the session timeout %v: the group may have moved the partitions", since, c.sessionTimeout)
	}
}
