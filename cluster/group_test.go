package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
)

// groupNode is one consumer group client with its balancer, tracking what
// the client was actually assigned.
type groupNode struct {
	self   Member
	bal    *Balancer
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	owned  map[int32]bool
	tables []*Table // every table swapped in, in order
}

func (n *groupNode) assigned() []int32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ps []int32
	for p := range n.owned {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func startNode(t *testing.T, b *testkafka.Broker, group, topic string, partitions int32, id string) *groupNode {
	t.Helper()
	n := &groupNode{
		self:  Member{NodeID: id, URL: "http://" + id + ".test:7070"},
		owned: map[int32]bool{},
		done:  make(chan struct{}),
	}
	// The test writes no records, so every node holds every partition,
	// empty: all are caught up everywhere, and partitions move as soon as
	// the balance wants them to.
	n.bal = NewBalancer(n.self, Config{Standbys: 1, Positions: func() Positions {
		ps := map[int32]Position{}
		for p := range partitions {
			ps[p] = Position{Next: 0, End: 0}
		}
		return Positions{topic: ps}
	}})
	n.bal.OnChange(func(tb *Table) {
		n.mu.Lock()
		n.tables = append(n.tables, tb)
		n.mu.Unlock()
	})
	drop := func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, p := range m[topic] {
			delete(n.owned, p)
		}
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.Addrs...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(n.bal),
		kgo.InstanceID(id),
		kgo.HeartbeatInterval(250*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			n.mu.Lock()
			defer n.mu.Unlock()
			for _, p := range m[topic] {
				n.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(drop),
		kgo.OnPartitionsLost(drop),
	)
	if err != nil {
		t.Fatal(err)
	}
	n.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() {
		defer close(n.done)
		for ctx.Err() == nil {
			if fs := cl.PollFetches(ctx); fs.IsClientClosed() {
				return
			}
		}
	}()
	t.Cleanup(n.stop)
	return n
}

// stop closes the client. With static membership this does not leave the
// group.
func (n *groupNode) stop() {
	n.cancel()
	<-n.done
	n.cl.Close()
}

// agree reports whether the nodes hold the same table, of the client's
// current group generation, whose members are exactly the nodes, which gives
// every partition of the topic an owner and one standby on another node, and
// which matches what each client was actually assigned.
func agree(nodes []*groupNode, topic string, partitions int32) (*Table, error) {
	tb := nodes[0].bal.Table()
	var want []Member
	for _, n := range nodes {
		if got := n.bal.Table(); got.Generation() != tb.Generation() {
			return nil, fmt.Errorf("%s is at generation %d, %s at %d", n.self.NodeID, got.Generation(), nodes[0].self.NodeID, tb.Generation())
		}
		if _, gen := n.cl.GroupMetadata(); gen != tb.Generation() {
			return nil, fmt.Errorf("%s: table generation %d, group generation %d", n.self.NodeID, tb.Generation(), gen)
		}
		want = append(want, n.self)
	}
	slices.SortFunc(want, compareMembers)
	if !slices.Equal(tb.Members(), want) {
		return nil, fmt.Errorf("generation %d: members %v", tb.Generation(), tb.Members())
	}
	for p := range partitions {
		owner, ok := tb.Owner(topic, p)
		if !ok {
			return nil, fmt.Errorf("generation %d: partition %d has no owner", tb.Generation(), p)
		}
		if sb := tb.Standbys(topic, p); len(nodes) > 1 && (len(sb) != 1 || sb[0] == owner) {
			return nil, fmt.Errorf("generation %d: partition %d owned by %s has standbys %v, want one other", tb.Generation(), p, owner.NodeID, sb)
		}
	}
	for _, n := range nodes {
		if !slices.Equal(tb.Partitions(n.self.NodeID)[topic], n.assigned()) {
			return nil, fmt.Errorf("generation %d: %s owns %v in the table, is assigned %v", tb.Generation(), n.self.NodeID, tb.Partitions(n.self.NodeID)[topic], n.assigned())
		}
	}
	return tb, nil
}

// waitAgree waits until the nodes agree (see agree) and returns their
// table.
func waitAgree(t *testing.T, nodes []*groupNode, topic string, partitions int32) *Table {
	t.Helper()
	var tb *Table
	testutil.WaitForNil(t, 20*time.Second, "the nodes agree on a table", func() (err error) {
		tb, err = agree(nodes, topic, partitions)
		return err
	})
	return tb
}

// forgetTables clears what the nodes saw, to look at the tables of the next
// rebalance only.
func forgetTables(nodes []*groupNode) {
	for _, n := range nodes {
		n.mu.Lock()
		n.tables = nil
		n.mu.Unlock()
	}
}

// logTables logs the tables n saw and returns whether one of them left a
// partition without an owner (a cooperative rebalance's revoking round).
func logTables(t *testing.T, n *groupNode, topic string, partitions int32) (revoking bool) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, seen := range n.tables {
		owned := int32(0)
		for p := range partitions {
			if _, ok := seen.Owner(topic, p); ok {
				owned++
			}
		}
		revoking = revoking || owned < partitions
		t.Logf("%s saw generation %d: %d members, %d of %d partitions owned", n.self.NodeID, seen.Generation(), len(seen.Members()), owned, partitions)
	}
	return revoking
}

// TestGroup runs three static members on a broker, then makes one leave
// explicitly and brings it back. The session timeout stays at its 45 s
// default, so nothing here waits for it.
func TestGroup(t *testing.T) {
	const partitions = 12
	b := testkafka.Start(t)
	topic, group := testkafka.Name(t, "t"), testkafka.Name(t, "g")
	b.CreateTopic(t, topic, partitions)
	var nodes []*groupNode
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, startNode(t, b, group, topic, partitions, id))
	}
	var tb *Table // the table the three agree on first

	if !t.Run("members agree on a table that matches their assignments", func(t *testing.T) {
		start := time.Now()
		tb = waitAgree(t, nodes, topic, partitions)
		t.Logf("three nodes agree on generation %d after %v", tb.Generation(), time.Since(start).Round(time.Millisecond))
		for _, n := range nodes {
			if got := len(n.assigned()); got != partitions/3 {
				t.Errorf("%s is assigned %d partitions, want %d", n.self.NodeID, got, partitions/3)
			}
			if m, ok := tb.Member(n.self.NodeID); !ok || m != n.self {
				t.Errorf("Member(%s) = %+v, %v", n.self.NodeID, m, ok)
			}
		}
		for p := range int32(partitions) {
			m, _ := tb.Owner(topic, p)
			if !slices.Contains(nodes[0].bal.Table().Partitions(m.NodeID)[topic], p) || m.URL != "http://"+m.NodeID+".test:7070" {
				t.Errorf("owner of %d: %+v", p, m)
			}
		}
	}) {
		return
	}

	if !t.Run("a member that leaves hands its partitions over at once and the others keep theirs", func(t *testing.T) {
		// Closing a static member does not leave the group, so n3 leaves
		// explicitly by instance id.
		gone := nodes[2]
		nodes = nodes[:2]
		forgetTables(nodes)
		start := time.Now()
		gone.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resps, err := kadm.NewClient(b.Client(t)).LeaveGroup(ctx, kadm.LeaveGroup(group).InstanceIDs(gone.self.NodeID).Reason("test: node stops"))
		if err == nil {
			err = resps.Error()
		}
		if err != nil {
			t.Fatalf("leave group: %v", err)
		}
		tb2 := waitAgree(t, nodes, topic, partitions)
		t.Logf("two nodes agree on generation %d %v after the leave", tb2.Generation(), time.Since(start).Round(time.Millisecond))
		if tb2.Generation() <= tb.Generation() {
			t.Errorf("generation went from %d to %d", tb.Generation(), tb2.Generation())
		}
		for _, n := range nodes {
			logTables(t, n, topic, partitions)
			// Sticky: a survivor keeps what it had.
			for _, p := range tb.Partitions(n.self.NodeID)[topic] {
				if m, _ := tb2.Owner(topic, p); m != n.self {
					t.Errorf("%s lost partition %d", n.self.NodeID, p)
				}
			}
		}
	}) {
		return
	}

	t.Run("a member that comes back gets partitions in a second cooperative round", func(t *testing.T) {
		// The survivors give up partitions in a first round (those have no
		// owner in that generation), n3 gets them in a second.
		forgetTables(nodes)
		start := time.Now()
		nodes = append(nodes, startNode(t, b, group, topic, partitions, "n3"))
		tb3 := waitAgree(t, nodes, topic, partitions)
		t.Logf("three nodes agree again on generation %d %v after n3 restarted", tb3.Generation(), time.Since(start).Round(time.Millisecond))
		revoking := false
		for _, n := range nodes[:2] {
			revoking = logTables(t, n, topic, partitions) || revoking
		}
		if !revoking {
			t.Error("no survivor saw the revoking round's table, where moving partitions have no owner")
		}
		for _, n := range nodes {
			if got := len(n.assigned()); got != partitions/3 {
				t.Errorf("%s is assigned %d partitions, want %d", n.self.NodeID, got, partitions/3)
			}
		}
	})
}
