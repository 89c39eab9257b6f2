// Package cluster tells every node of an iqengine application which node owns
// which partition, which nodes keep a standby copy of it, and at which HTTP
// address each node answers.
//
// Kafka's group coordinator is the only membership and ownership authority:
// there is no gossip and no membership protocol of our own. A Balancer,
// plugged into the consumer group client, rides on the classic group
// protocol: each member's join metadata carries its Member (node id and
// advertised URL) and its Positions (how far its store has got on each
// partition it holds), and the group leader plans the assignment from them
// and adds the full routing table (partition → active owner, standbys,
// warm-up, plus a generation) to every member's assignment. Each node swaps
// its Table atomically when it receives an assignment.
//
// A partition has one active owner, which consumes it in the group, and up
// to Config.Standbys standbys on other nodes, which consume it outside the
// group into their own stores so that it can fail over to a node that is
// caught up. A partition moves to a node that is not caught up only after
// warming up there as a standby first (Table.WarmingUp).
//
// The package knows nothing about HTTP handlers, Pebble or serdes, nor does
// it consume anything: it only maps partitions to members; the engine does
// the consuming and reports positions.
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

// Position is where a member stands on a partition whose data its store holds
// (active, standby, or kept after it moved away).
//
// Only Next decides whether a member is caught up; End helps the leader know
// how far the log goes. A Next below 0 is no position (the partition is left
// out of the join metadata), an End below -1 counts as -1.
type Position struct {
	Next int64 // the offset after the last record applied (stored checkpoint + 1)
	End  int64 // the end of the log this member last saw for it, -1 if unknown
}

// Positions is what a member holds: topic → partition → position.
type Positions map[string]map[int32]Position

// Table is one generation's routing table: who owns which partition and who
// keeps a standby of it. A Table is immutable; a Balancer replaces its whole
// Table on every assignment.
type Table struct {
	generation    int32
	acceptableLag int64
	// members is sorted by node id, then URL, without duplicates.
	members []Member
	// routes maps topic → partition → its route.
	routes map[string][]route
}

// route is where one partition lives. Every index is into Table.members.
type route struct {
	owner int32 // the active owner, -1 for none
	// standbys are the standbys and the warm-up, in the order the router
	// should ask them; never the owner. nil when none.
	standbys []int32
	warmup   int32 // the warm-up (also in standbys), -1 for none
}

var noRoute = route{owner: -1, warmup: -1}

var emptyTable = &Table{generation: -1, routes: map[string][]route{}}

// EmptyTable returns the table a node holds before its first assignment:
// generation -1, no members, no owners, no standbys.
func EmptyTable() *Table { return emptyTable }

// Generation returns the routing version of the table. It is the Kafka group
// generation the assignment was made for (see Balancer for the exception),
// so it grows with each rebalance while the group lives; it restarts when
// the whole group is recreated.
func (t *Table) Generation() int32 { return t.generation }

// AcceptableLag returns the leader's Config.AcceptableLag for this table, so
// that a member warming a partition up knows when to report itself caught up
// (see Table.WarmingUp).
func (t *Table) AcceptableLag() int64 { return t.acceptableLag }

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

// route returns a partition's route; an unknown one has nobody.
func (t *Table) route(topic string, partition int32) route {
	rs := t.routes[topic]
	if partition < 0 || int(partition) >= len(rs) {
		return noRoute
	}
	return rs[partition]
}

// Owner returns the member that owns a partition in this generation. It
// returns false when the partition has no owner: it is moving between nodes
// during a cooperative rebalance (its standbys then include both), or the
// topic or partition is unknown.
func (t *Table) Owner(topic string, partition int32) (Member, bool) {
	r := t.route(topic, partition)
	if r.owner < 0 {
		return Member{}, false
	}
	return t.members[r.owner], true
}

// Partitions returns what a node owns in this generation: topic → sorted
// partitions. Topics where it owns nothing are absent; the map is never nil
// and belongs to the caller.
func (t *Table) Partitions(nodeID string) map[string][]int32 {
	return t.collect(nodeID, func(r route, idx int32) bool { return r.owner == idx })
}

// Standbys returns the standby replicas of a partition in this generation
// (warm-ups included), in the order the router should ask them: least lag
// first as the leader saw it, then node id. Nil when none. The slice belongs
// to the caller.
func (t *Table) Standbys(topic string, partition int32) []Member {
	r := t.route(topic, partition)
	if len(r.standbys) == 0 {
		return nil
	}
	out := make([]Member, len(r.standbys))
	for i, idx := range r.standbys {
		out[i] = t.members[idx]
	}
	return out
}

// IsStandby reports whether nodeID is a standby (or warm-up) of the
// partition.
func (t *Table) IsStandby(nodeID, topic string, partition int32) bool {
	for _, idx := range t.route(topic, partition).standbys {
		if t.members[idx].NodeID == nodeID {
			return true
		}
	}
	return false
}

// StandbyPartitions returns what nodeID holds as a standby or warm-up in this
// generation: topic → sorted partitions. Topics where it holds none are
// absent; the map is never nil and belongs to the caller.
func (t *Table) StandbyPartitions(nodeID string) map[string][]int32 {
	return t.collect(nodeID, func(r route, idx int32) bool { return slices.Contains(r.standbys, idx) })
}

// WarmingUp returns the member a partition is warming up on to become its
// next active owner, if any. That member consumes it as a standby; once it is
// within AcceptableLag of the log's end it should rejoin the group (with its
// new position in the join metadata), and the leader moves the partition.
func (t *Table) WarmingUp(topic string, partition int32) (Member, bool) {
	r := t.route(topic, partition)
	if r.warmup < 0 {
		return Member{}, false
	}
	return t.members[r.warmup], true
}

// collect returns topic → sorted partitions whose route has(route, i) for
// some table member i of that node id.
func (t *Table) collect(nodeID string, has func(r route, idx int32) bool) map[string][]int32 {
	out := map[string][]int32{}
	for i, m := range t.members {
		if m.NodeID != nodeID {
			continue
		}
		for topic, rs := range t.routes {
			for p, r := range rs {
				if has(r, int32(i)) {
					out[topic] = append(out[topic], int32(p))
				}
			}
		}
	}
	for _, ps := range out {
		slices.Sort(ps) // several entries of one node id interleave
	}
	return out
}
