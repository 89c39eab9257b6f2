package router

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/cluster"
	"github.com/iqengine/iqengine/internal/testutil"
)

// TestAttackerJoinsTheGroup: three nodes share a cluster secret. Two
// attackers that can join the consumer group (Kafka's ACLs let them) join
// it: one with a forged envelope that claims node n1's id, one unsigned,
// both advertising a listener of their own. Neither gets a partition,
// neither is ever called by a node, and every key keeps answering through
// every node with the value produced; a call to an internal endpoint that
// the attacker forges, or replays after capturing it, is refused with 401.
func TestAttackerJoinsTheGroup(t *testing.T) {
	key := cluster.NewKey("the three nodes' cluster secret, 32+ characters")
	c := newTestCluster(t, 12, 300)
	for _, id := range []string{"n1", "n2", "n3"} {
		c.startWith(id, nodeOptions{key: key, standbys: 1})
	}
	c.waitStable(60 * time.Second)

	var called atomic.Int64
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called.Add(1)
		t.Errorf("a node called the attacker: %s %s", r.Method, r.URL)
	}))
	defer trap.Close()
	var assigned atomic.Int64
	join := func(instance string, b *cluster.Balancer) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.b.Addrs...), kgo.ConsumerGroup(c.group), kgo.ConsumeTopics(c.topic),
			kgo.Balancers(b), kgo.InstanceID(instance), kgo.SessionTimeout(6*time.Second),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
				for _, p := range ps {
					assigned.Add(int64(len(p)))
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			for ctx.Err() == nil {
				cl.PollFetches(ctx)
			}
		})
		t.Cleanup(func() { cancel(); wg.Wait(); cl.Close() })
	}
	forged := cluster.NewKey("a guess at the cluster secret, 32+ characters")
	join("n1-impostor", cluster.NewBalancer(cluster.Member{NodeID: "n1", URL: trap.URL}, cluster.Config{Key: forged}))
	join("evil", cluster.NewBalancer(cluster.Member{NodeID: "evil", URL: trap.URL}, cluster.Config{}))

	// Wait until the group has rebalanced with the attackers in it: the
	// honest nodes' generation moves on, and they settle again.
	gen := c.node("n1").bal.Table().Generation()
	testutil.WaitFor(t, 60*time.Second, "no rebalance after the attackers joined", func() bool {
		return c.node("n1").bal.Table().Generation() > gen && c.stable()
	})
	for _, id := range c.ids() {
		tb := c.node(id).bal.Table()
		for _, m := range tb.Members() {
			if m.URL == trap.URL {
				t.Fatalf("%s's table lists the attacker %+v", id, m)
			}
		}
		if len(tb.Members()) != 3 {
			t.Fatalf("%s's table has %d members", id, len(tb.Members()))
		}
	}
	// Capture one signed call between nodes, to replay it.
	var captured atomic.Pointer[http.Request]
	capture := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get(callSigHeader) != "" {
			captured.CompareAndSwap(nil, r.Clone(context.Background()))
		}
		return false
	}
	for _, id := range c.ids() {
		c.node(id).intercept.Store(&capture)
	}
	for _, id := range c.ids() {
		n := c.node(id)
		for k, v := range c.want {
			a := httpGet(t, n.URL+"/v1/stores/orders/keys/"+k)
			var got struct {
				Value json.RawMessage `json:"value"`
			}
			a.decode(t, &got)
			if a.status != 200 || string(got.Value) != v {
				t.Fatalf("%s via %s: %d %s, want %s", k, id, a.status, a.body, v)
			}
		}
		if got := scanAll(t, n.h, "/v1/stores/orders/keys?limit=50", ""); len(got.keys) != len(c.want) {
			t.Fatalf("scan via %s: %d keys, want %d", id, len(got.keys), len(c.want))
		}
	}
	if n := called.Load(); n != 0 {
		t.Errorf("the attacker's listener was called %d times", n)
	}
	if n := assigned.Load(); n != 0 {
		t.Errorf("the attackers were assigned %d partitions", n)
	}
	// Forged and replayed internal calls.
	r := captured.Load()
	if r == nil {
		t.Fatal("no call between nodes was captured")
	}
	target := c.node("n1").URL + r.RequestURI
	forgedCall, _ := http.NewRequest(http.MethodGet, target, nil)
	replayed, _ := http.NewRequest(http.MethodGet, target, nil)
	replayed.Header = r.Header.Clone()
	for name, req := range map[string]*http.Request{"unsigned": forgedCall, "replayed": replayed} {
		for _, id := range c.ids() {
			u := *req.URL
			u.Host = c.node(id).srv.Listener.Addr().String()
			req := req.Clone(context.Background())
			req.URL, req.Host = &u, u.Host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s internal call to %s: %d, want 401", name, id, resp.StatusCode)
			}
		}
	}
}
