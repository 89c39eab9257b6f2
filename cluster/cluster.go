// Package cluster tells every node of an iqengine application which node owns
// which partition, and at which HTTP address that node answers.
//
// Kafka's group coordinator is the only membership and ownership authority:
// there is no gossip and no membership protocol of our own. A Balancer,
// plugged into the consumer group client, rides on the classic group
// protocol: each member's join metadata carries its Member (node id and
// advertised URL), and the group leader adds the full routing table
// (partition → owner, plus a generation) to every member's assignment. Each
// node swaps its Table atomically when it receives an assignment.
//
// The package knows nothing about HTTP handlers, Pebble or serdes: it only
// maps partitions to members.
package cluster

import (
	"cmp"
	"slices"
)

// Member is one node of the application.
type Member struct {
	// NodeID names the node; with static membership it is also the
	// group instance id, so it is unique in the group.
	NodeID string `json:"node_id"`
	// URL is the node's advertised HTTP base URL, e.g.
	// http://10.0.0.3:7070.
	URL string `json:"url"`
}

// compareMembers orders members by node id, then URL.
func compareMembers(a, b Member) int {
	if c := cmp.Compare(a.NodeID, b.NodeID); c != 0 {
		return c
	}
	return cmp.Compare(a.URL, b.URL)
}

// Table is one generation's routing table: who owns which partition. A Table
// is immutable; a Balancer replaces its whole Table on every assignment.
type Table struct {
	generation int32
	// members is sorted by node id, then URL, without duplicates.
	members []Member
	// owners maps topic → partition → index into members, -1 for none.
	owners map[string][]int32
}

var emptyTable = &Table{generation: -1, owners: map[string][]int32{}}

// EmptyTable returns the table a node holds before its first assignment:
// generation -1, no members, no owners.
func EmptyTable() *Table { return emptyTable }

// Generation returns the routing version of the table. It is the Kafka group
// generation the assignment was made for (see Balancer for the exception),
// so it grows with each rebalance while the group lives; it restarts when
// the whole group is recreated.
func (t *Table) Generation() int32 { return t.generation }

// Members returns the members of the group in this generation, sorted by
// node id. Members that own no partition are included.
func (t *Table) Members() []Member { return slices.Clone(t.members) }

// Member returns the member with the given node id, if it belongs to this
// table. Only such members are valid forwarding targets.
//
// Node ids are unique when they are also the group instance ids (static
// membership: Kafka fences a duplicate). Without it, a restarted node can
// meet its previous incarnation in the group; both then appear in Members,
// Member returns the first by URL, and Owner tells each one's partitions
// apart.
func (t *Table) Member(nodeID string) (Member, bool) {
	i, ok := slices.BinarySearchFunc(t.members, nodeID, func(m Member, id string) int {
		return cmp.Compare(m.NodeID, id)
	})
	if !ok {
		return Member{}, false
	}
	return t.members[i], true
}

// Owner returns the member that owns a partition in this generation. It
// returns false when the partition has no owner: it is moving between nodes
// during a cooperative rebalance, or the topic or partition is unknown.
func (t *Table) Owner(topic string, partition int32) (Member, bool) {
	ps := t.owners[topic]
	if partition < 0 || int(partition) >= len(ps) || ps[partition] < 0 {
		return Member{}, false
	}
	return t.members[ps[partition]], true
}

// Partitions returns what a node owns in this generation: topic → sorted
// partitions. Topics where it owns nothing are absent; the map is never nil
// and belongs to the caller.
func (t *Table) Partitions(nodeID string) map[string][]int32 {
	out := map[string][]int32{}
	for topic, ps := range t.owners {
		for p, idx := range ps {
			if idx >= 0 && t.members[idx].NodeID == nodeID {
				out[topic] = append(out[topic], int32(p))
			}
		}
	}
	return out
}
