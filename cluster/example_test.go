package cluster_test

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/iqengine/iqengine/cluster"
)

// Every node's Balancer learns the whole routing table from its own
// assignment, so any node can tell which node owns a key's partition and
// forward a query there. Here the group protocol is run by hand, as
// franz-go runs it for a real group: the leader balances the members' join
// metadata, and each member parses what the coordinator hands it.
func ExampleTable() {
	a := cluster.NewBalancer(cluster.Member{NodeID: "node-a", URL: "http://10.0.0.1:7070"})
	b := cluster.NewBalancer(cluster.Member{NodeID: "node-b", URL: "http://10.0.0.2:7070"})
	topics := map[string]int32{"orders": 4}

	var members []kmsg.JoinGroupResponseMember
	for _, bal := range []*cluster.Balancer{a, b} {
		m := kmsg.NewJoinGroupResponseMember()
		m.MemberID = fmt.Sprintf("member-%d", len(members))
		m.ProtocolMetadata = bal.JoinGroupMetadata([]string{"orders"}, nil, -1)
		members = append(members, m)
	}
	leader, _, err := a.MemberBalancer(members)
	if err != nil {
		panic(err)
	}
	plan := leader.(kgo.GroupMemberBalancerOrError)
	into, err := plan.BalanceOrError(topics)
	if err != nil {
		panic(err)
	}
	byMember := map[string]*cluster.Balancer{"member-0": a, "member-1": b}
	for _, assignment := range into.IntoSyncAssignment() {
		if _, err := byMember[assignment.MemberID].ParseSyncAssignment(assignment.MemberAssignment); err != nil {
			panic(err)
		}
	}

	// Node b answers for a partition it does not own by asking its owner.
	t := b.Table()
	for p := int32(0); p < topics["orders"]; p++ {
		owner, _ := t.Owner("orders", p)
		fmt.Printf("orders/%d: %s at %s\n", p, owner.NodeID, owner.URL)
	}
	fmt.Println("node-a owns", t.Partitions("node-a"))
	// Output:
	// orders/0: node-a at http://10.0.0.1:7070
	// orders/1: node-b at http://10.0.0.2:7070
	// orders/2: node-b at http://10.0.0.2:7070
	// orders/3: node-a at http://10.0.0.1:7070
	// node-a owns map[orders:[0 3]]
}
