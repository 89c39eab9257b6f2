package cluster_test

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/iqengine/iqengine/cluster"
)

// Every node's Balancer learns the whole routing table from its own
// assignment, so any node can tell which node owns a key's partition, and
// which nodes keep a standby copy of it, and forward a query there. Here the
// group protocol is run by hand, as franz-go runs it for a real group: the
// leader balances the members' join metadata, and each member parses what
// the coordinator hands it.
func ExampleTable() {
	// Each node reports, at every join, how far its store has got on the
	// partitions it holds; a fresh node holds nothing.
	cfg := cluster.Config{Standbys: 1, AcceptableLag: 10_000}
	nodes := []*cluster.Balancer{
		cluster.NewBalancer(cluster.Member{NodeID: "node-a", URL: "http://10.0.0.1:7070"}, cfg),
		cluster.NewBalancer(cluster.Member{NodeID: "node-b", URL: "http://10.0.0.2:7070"}, cfg),
		cluster.NewBalancer(cluster.Member{NodeID: "node-c", URL: "http://10.0.0.3:7070"}, cfg),
	}
	topics := map[string]int32{"orders": 6}

	var members []kmsg.JoinGroupResponseMember
	byMember := map[string]*cluster.Balancer{}
	for i, bal := range nodes {
		m := kmsg.NewJoinGroupResponseMember()
		m.MemberID = fmt.Sprintf("member-%d", i)
		m.ProtocolMetadata = bal.JoinGroupMetadata([]string{"orders"}, nil, -1)
		members = append(members, m)
		byMember[m.MemberID] = bal
	}
	leader, _, err := nodes[0].MemberBalancer(members)
	if err != nil {
		panic(err)
	}
	into, err := leader.(kgo.GroupMemberBalancerOrError).BalanceOrError(topics)
	if err != nil {
		panic(err)
	}
	for _, assignment := range into.IntoSyncAssignment() {
		if _, err := byMember[assignment.MemberID].ParseSyncAssignment(assignment.MemberAssignment); err != nil {
			panic(err)
		}
	}

	// Node b answers for a partition it does not own by asking its owner,
	// or, when the owner cannot answer, a standby.
	t := nodes[1].Table()
	for p := range topics["orders"] {
		owner, _ := t.Owner("orders", p)
		fmt.Printf("orders/%d: %s at %s, standby %s\n", p, owner.NodeID, owner.URL, t.Standbys("orders", p)[0].NodeID)
	}
	fmt.Println("node-a owns", t.Partitions("node-a"), "and keeps standbys of", t.StandbyPartitions("node-a"))
	// Output:
	// orders/0: node-a at http://10.0.0.1:7070, standby node-b
	// orders/1: node-b at http://10.0.0.2:7070, standby node-a
	// orders/2: node-c at http://10.0.0.3:7070, standby node-a
	// orders/3: node-a at http://10.0.0.1:7070, standby node-c
	// orders/4: node-b at http://10.0.0.2:7070, standby node-c
	// orders/5: node-c at http://10.0.0.3:7070, standby node-b
	// node-a owns map[orders:[0 3]] and keeps standbys of map[orders:[1 2]]
}
