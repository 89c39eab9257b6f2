package router

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/cluster"
	"github.com/iqengine/iqengine/engine"
	"github.com/iqengine/iqengine/internal/store"
	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

// The engine is what the handler reads in production.
var _ Engine = (*engine.Engine)(nil)

// testCluster runs several nodes of one application in this process, each
// with its own store, balancer and real HTTP server on loopback, against
// the test broker. Its one store, "orders", has string keys and JSON values.
type testCluster struct {
	t              testing.TB
	b              *testkafka.Broker
	group, topic   string
	partitions     int32
	sessionTimeout time.Duration

	mu    sync.Mutex
	nodes map[string]*testNode
	want  map[string]string // key -> value, as produced
}

// testNode is one node: engine, balancer, handler and HTTP server.
type testNode struct {
	id  string
	e   *engine.Engine
	bal *cluster.Balancer
	h   *Handler
	srv *httptest.Server
	URL string
	dir string // the store's
	// intercept, when set, sees every HTTP request first and answers it
	// in the node's place when it returns true: a test makes the node
	// look slow or broken to its peers.
	intercept atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
}

// nodeOptions are what a test changes in one node.
type nodeOptions struct {
	kafka    []kgo.Opt      // added to the engine's Kafka client options
	handler  func(*Options) // changes the handler's options
	standbys int            // standby replicas (the balancer's; 0: none)
	key      *cluster.Key   // the cluster key (balancer and handler; nil: none)
}

// newTestCluster creates the topic and produces keys o-0000.. with JSON
// values. No node runs yet.
func newTestCluster(t testing.TB, partitions int32, keys int) *testCluster {
	c := &testCluster{
		t: t, b: testkafka.Start(t), group: testkafka.Name(t, "app"), topic: testkafka.Name(t, "orders"),
		partitions: partitions, sessionTimeout: 6 * time.Second, nodes: map[string]*testNode{}, want: map[string]string{},
	}
	c.b.CreateTopic(t, c.topic, partitions)
	var rs []*kgo.Record
	for i := 0; i < keys; i++ {
		k := fmt.Sprintf("o-%04d", i)
		v := fmt.Sprintf(`{"id":%q,"n":%d}`, k, i)
		c.want[k] = v
		rs = append(rs, &kgo.Record{Topic: c.topic, Key: []byte(k), Value: []byte(v)})
	}
	testkafka.Produce(t, c.b.Client(t), rs...)
	t.Cleanup(func() {
		for _, id := range c.ids() {
			c.stop(id)
		}
	})
	return c
}

// keys returns the produced keys in order.
func (c *testCluster) keys() []string {
	out := make([]string, 0, len(c.want))
	for k := range c.want {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (c *testCluster) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id := range c.nodes {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (c *testCluster) node(id string) *testNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// start starts a node: its HTTP server first (its URL goes into the group
// metadata), then its engine with a static instance id.
func (c *testCluster) start(id string) *testNode {
	c.t.Helper()
	return c.startWith(id, nodeOptions{})
}

// startWith starts a node with options of its own.
func (c *testCluster) startWith(id string, o nodeOptions) *testNode {
	c.t.Helper()
	str, _ := serde.Lookup("string")
	js, _ := serde.Lookup("json")
	n := startNode(c.t, c.b, c.group, id, []state.Store{{Name: "orders", Topic: c.topic, Key: str, Value: js}}, c.sessionTimeout, o)
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	return n
}

// startNode starts one node of group on b with the given stores: its HTTP
// server first (its URL goes into the group metadata), then its engine with
// a static instance id, then its handler. The caller stops it.
func startNode(t testing.TB, b *testkafka.Broker, group, id string, stores []state.Store, sessionTimeout time.Duration, o nodeOptions) *testNode {
	t.Helper()
	var handler atomic.Pointer[Handler]
	n := &testNode{id: id}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := n.intercept.Load(); f != nil && (*f)(w, r) {
			return
		}
		if h := handler.Load(); h != nil {
			h.ServeHTTP(w, r)
			return
		}
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}))
	n.URL = n.srv.URL
	n.dir = t.TempDir()
	var eng atomic.Pointer[engine.Engine]
	n.bal = cluster.NewBalancer(cluster.Member{NodeID: id, URL: n.srv.URL}, cluster.Config{
		Standbys: o.standbys, AcceptableLag: 10000, Key: o.key,
		Positions: func() cluster.Positions {
			if e := eng.Load(); e != nil {
				return e.Positions()
			}
			return nil
		},
	})
	e, err := engine.Open(engine.Config{
		ApplicationID:  group,
		NodeID:         id,
		InstanceID:     id,
		Balancer:       n.bal,
		Stores:         stores,
		Kafka:          append([]kgo.Opt{kgo.SeedBrokers(b.Addrs...)}, o.kafka...),
		SessionTimeout: sessionTimeout,
		Store:          store.Options{Dir: n.dir, CacheSize: 8 << 20, MemTableSize: 4 << 20},
	})
	if err != nil {
		n.srv.Close()
		t.Fatal(err)
	}
	n.e = e
	eng.Store(e)
	n.bal.OnChange(e.UseTable)
	if err := e.Start(context.Background()); err != nil {
		n.srv.Close()
		_ = e.Close()
		t.Fatal(err)
	}
	adm := kadm.NewClient(b.Client(t))
	ho := Options{
		Engine: e, Routing: n.bal, Timeout: 10 * time.Second, MaxTimeout: 60 * time.Second, DefaultLimit: 100, MaxLimit: 1000,
		Refresh:    func(ctx context.Context) error { return n.bal.Refresh(ctx, adm, group) },
		ClusterKey: o.key,
	}
	if o.handler != nil {
		o.handler(&ho)
	}
	n.h = New(ho)
	handler.Store(n.h)
	return n
}

// stop stops a node gracefully: it leaves the group explicitly, so its
// partitions move at once.
func (c *testCluster) stop(id string) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if n == nil {
		return
	}
	n.stop(c.t)
}

// stop stops the node as the binary does: stop taking requests, then leave
// the group.
func (n *testNode) stop(t testing.TB) {
	n.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.e.Stop(ctx); err != nil {
		t.Logf("stop %s: %v", n.id, err)
	}
}

// kill stops a node as a crash would: no leave, connections cut. The group
// keeps its partitions until the session timeout.
func (c *testCluster) kill(id string) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if n == nil {
		return
	}
	n.srv.CloseClientConnections()
	n.srv.Close()
	_ = n.e.Close()
}

// waitStable waits until the running nodes agree on one routing table whose
// members are exactly the running nodes, every partition has an owner and
// none is warming up to move, and every owner serves its partitions.
func (c *testCluster) waitStable(timeout time.Duration) {
	c.t.Helper()
	testutil.WaitFor(c.t, timeout, fmt.Sprintf("cluster %v not stable", c.ids()), c.stable)
}

func (c *testCluster) stable() bool {
	ids := c.ids()
	if len(ids) == 0 {
		return false
	}
	gen := c.node(ids[0]).bal.Table().Generation()
	for _, id := range ids {
		n := c.node(id)
		t := n.bal.Table()
		if t.Generation() != gen || len(t.Members()) != len(ids) {
			return false
		}
		if _, ok := t.Member(id); !ok || !n.e.Ready() {
			return false
		}
	}
	t := c.node(ids[0]).bal.Table()
	for p := int32(0); p < c.partitions; p++ {
		o, ok := t.Owner(c.topic, p)
		if !ok {
			return false
		}
		if _, warming := t.WarmingUp(c.topic, p); warming {
			return false // it is still to move: the cluster is not balanced yet
		}
		owner := c.node(o.NodeID)
		if owner == nil {
			return false
		}
		if _, err := owner.e.Count(context.Background(), state.Partition{Topic: c.topic, Partition: p}); err != nil {
			return false
		}
	}
	return true
}
