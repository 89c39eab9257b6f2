package cluster

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ProtocolName is the group protocol name of Balancer. Every member of an
// application's group must use it; a client that joins under this name
// without iqengine's envelope makes balancing fail.
const ProtocolName = "iqengine-cooperative-sticky-v1"

// innerBalancer is what Balancer wraps: franz-go's cooperative-sticky
// balancer, which is also a kgo.ConsumerBalancerBalance (its Balance step can
// be called on a ConsumerBalancer we build). The assertion fails at start-up
// if a franz-go upgrade changes that, and the tests catch it.
var innerBalancer = kgo.CooperativeStickyBalancer().(interface {
	kgo.GroupBalancer
	kgo.ConsumerBalancerBalance
})

// Balancer is a kgo.GroupBalancer that wraps franz-go's cooperative-sticky
// balancer under its own protocol name (ProtocolName), so the group assigns
// partitions exactly as cooperative-sticky would, and additionally:
//
//   - each member's join metadata carries its Member (node id and URL);
//   - the leader adds the full map partition → owner, plus a generation
//     number, to every member's assignment;
//   - each member, on ParseSyncAssignment, swaps its current Table
//     atomically.
//
// Plug it in with kgo.Balancers(b) as the only balancer, together with
// kgo.InstanceID(nodeID) for static membership.
//
// # Generation
//
// The leader balances through a kgo.ConsumerBalancer, on which the client
// sets the JoinGroup response's generation before balancing; that is the
// table's generation, equal to Kafka's. When no client set it (a balance run
// by hand, as in tests), the generation is the highest generation any member
// reported in its join metadata, plus one. Either way it is a routing
// version that grows from one rebalance to the next while the group lives.
// When the whole group is recreated (every member gone until the group
// expired) Kafka's generations restart, and so do the tables': a member
// always takes the table of its newest assignment, never compares versions.
//
// # Ownership
//
// A partition's owner is the member whose assignment holds it. In the first
// round of a cooperative rebalance the partitions that move are in nobody's
// assignment, so they have no owner in that generation; the second round
// gives them their new owner.
type Balancer struct {
	self     Member
	table    atomic.Pointer[Table]
	onChange atomic.Pointer[func(*Table)]
}

var _ kgo.GroupBalancer = (*Balancer)(nil)

// NewBalancer returns the balancer of the node self.
func NewBalancer(self Member) *Balancer {
	b := &Balancer{self: self}
	b.table.Store(emptyTable)
	return b
}

// Table returns the current routing table. It is never nil: before the first
// assignment it is an empty table (generation -1, no members).
func (b *Balancer) Table() *Table { return b.table.Load() }

// OnChange sets a callback called after each table swap, with the new table.
// It runs in the group management goroutine and must return quickly. Set it
// before the client that uses b starts.
func (b *Balancer) OnChange(fn func(*Table)) {
	if fn == nil {
		b.onChange.Store(nil)
		return
	}
	b.onChange.Store(&fn)
}

// ProtocolName returns ProtocolName.
func (*Balancer) ProtocolName() string { return ProtocolName }

// IsCooperative returns true: the group rebalances cooperatively.
func (*Balancer) IsCooperative() bool { return true }

// JoinGroupMetadata returns cooperative-sticky's join metadata with its
// UserData wrapped in an envelope that adds this node's Member. The output is
// deterministic, so an unchanged node does not make Kafka rebalance.
func (b *Balancer) JoinGroupMetadata(topics []string, current map[string][]int32, generation int32) []byte {
	raw := innerBalancer.JoinGroupMetadata(topics, current, generation)
	var meta kmsg.ConsumerMemberMetadata
	meta.Default()
	if err := meta.ReadFrom(raw); err != nil {
		// Cannot happen: the inner balancer encodes this type. Joining
		// without our envelope makes the leader refuse to balance,
		// which is loud, rather than silently routing nowhere.
		return raw
	}
	meta.UserData = encodeJoin(b.self, meta.UserData)
	return meta.AppendTo(nil)
}

// MemberBalancer unwraps every member's join metadata, restoring what
// cooperative-sticky encoded, and returns the kgo.ConsumerBalancer that
// cooperative-sticky itself would return, except that its balance step also
// adds the routing table to every assignment. Returning a
// *kgo.ConsumerBalancer (rather than a wrapper of one) keeps what the client
// does only for that type: rack-aware balancing, balance info, logging.
//
// A member whose metadata lacks the envelope is an error: the group would
// have partitions that nobody can route to.
func (b *Balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	restored := make([]kmsg.JoinGroupResponseMember, len(members))
	identities := make(map[string]Member, len(members))
	for i, m := range members {
		var meta kmsg.ConsumerMemberMetadata
		meta.Default()
		if err := meta.ReadFrom(m.ProtocolMetadata); err != nil {
			return nil, nil, fmt.Errorf("cluster: member %s: unreadable join metadata: %w", memberName(&m), err)
		}
		self, inner, err := decodeJoin(meta.UserData)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: member %s: %w", memberName(&m), err)
		}
		meta.UserData = inner
		restored[i] = m
		restored[i].ProtocolMetadata = meta.AppendTo(nil)
		if _, dup := identities[m.MemberID]; !dup { // kgo keeps the first of duplicates too
			identities[m.MemberID] = self
		}
	}
	cb, err := kgo.NewConsumerBalancer(&routingBalance{identities: identities}, restored)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: %w", err)
	}
	return cb, cb.MemberTopics(), nil
}

func memberName(m *kmsg.JoinGroupResponseMember) string {
	if m.InstanceID != nil {
		return fmt.Sprintf("%s (instance %s)", m.MemberID, *m.InstanceID)
	}
	return m.MemberID
}

// ParseSyncAssignment unwraps the routing table from an assignment, swaps it
// in, and returns what cooperative-sticky parses from the restored
// assignment. An assignment without a valid envelope is an error and leaves
// the current table in place.
func (b *Balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var a kmsg.ConsumerMemberAssignment
	a.Default()
	if err := a.ReadFrom(assignment); err != nil {
		return nil, fmt.Errorf("cluster: unreadable assignment: %w", err)
	}
	t, inner, err := decodeAssignment(a.UserData)
	if err != nil {
		return nil, fmt.Errorf("cluster: assignment: %w", err)
	}
	a.UserData = inner
	assigned, err := innerBalancer.ParseSyncAssignment(a.AppendTo(nil))
	if err != nil {
		return nil, err
	}
	b.table.Store(t)
	if fn := b.onChange.Load(); fn != nil {
		(*fn)(t)
	}
	return assigned, nil
}

// routingBalance is the balance step of the ConsumerBalancer that
// MemberBalancer returns: cooperative-sticky's, then the routing table.
type routingBalance struct {
	identities map[string]Member // group member id → node
}

// Balance runs cooperative-sticky's balance (including its cooperative
// adjustment) and adds the routing table to every member's assignment.
func (r *routingBalance) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	into := innerBalancer.Balance(cb, topics)
	if into == nil {
		return nil // the inner balancer set an error on cb
	}
	gen := int32(-1)
	if info := cb.Info(); info.LeaderID != "" {
		gen = info.Generation // set by the client: the JoinGroup response's
	} else {
		cb.EachMember(func(_ *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
			gen = max(gen, meta.Generation)
		})
		gen++
	}
	out, err := r.route(into.IntoSyncAssignment(), cb.Members(), topics, gen)
	if err != nil {
		cb.SetError(err)
		return nil
	}
	return syncAssignments(out)
}

// route builds the table from the inner balancer's assignments and returns
// them with the table enveloped into each one's UserData. Every member gets
// an assignment, even if the inner balancer gave it none, so every member
// learns the table.
func (r *routingBalance) route(in []kmsg.SyncGroupRequestGroupAssignment, members []kmsg.JoinGroupResponseMember, topics map[string]int32, gen int32) ([]kmsg.SyncGroupRequestGroupAssignment, error) {
	t := &Table{generation: gen, owners: make(map[string][]int32, len(topics))}
	for _, m := range members {
		id, ok := r.identities[m.MemberID]
		if !ok {
			return nil, fmt.Errorf("cluster: member %s has no identity", memberName(&m))
		}
		t.members = append(t.members, id)
	}
	slices.SortFunc(t.members, compareMembers)
	t.members = slices.Compact(t.members)
	index := func(memberID string) (int32, error) {
		id, ok := r.identities[memberID]
		if !ok {
			return 0, fmt.Errorf("cluster: the balancer assigned partitions to unknown member %s", memberID)
		}
		i, ok := slices.BinarySearchFunc(t.members, id, compareMembers)
		if !ok {
			return 0, fmt.Errorf("cluster: the balancer assigned partitions to %s, not in the group", memberID)
		}
		return int32(i), nil
	}
	for topic, n := range topics {
		t.owners[topic] = slices.Repeat([]int32{-1}, int(max(n, 0)))
	}

	decoded := make([]kmsg.ConsumerMemberAssignment, len(in))
	conflicts := map[string]map[int32]bool{}
	for i := range in {
		a := &decoded[i]
		a.Default()
		if len(in[i].MemberAssignment) > 0 {
			if err := a.ReadFrom(in[i].MemberAssignment); err != nil {
				return nil, fmt.Errorf("cluster: assignment of %s: %w", in[i].MemberID, err)
			}
		}
		owner, err := index(in[i].MemberID)
		if err != nil {
			return nil, err
		}
		for _, at := range a.Topics {
			ps := t.owners[at.Topic]
			for _, p := range at.Partitions {
				if p < 0 {
					return nil, fmt.Errorf("cluster: balancer assigned %s partition %d", at.Topic, p)
				}
				for int(p) >= len(ps) {
					ps = append(ps, -1)
				}
				if ps[p] >= 0 && ps[p] != owner {
					// Two owners: cannot happen with
					// cooperative-sticky; route to neither.
					if conflicts[at.Topic] == nil {
						conflicts[at.Topic] = map[int32]bool{}
					}
					conflicts[at.Topic][p] = true
				}
				ps[p] = owner
			}
			t.owners[at.Topic] = ps
		}
	}
	for topic, ps := range conflicts {
		for p := range ps {
			t.owners[topic][p] = -1
		}
	}

	prefix := encodeTable(t)
	out := make([]kmsg.SyncGroupRequestGroupAssignment, 0, len(members))
	seen := make(map[string]bool, len(in))
	for i := range in {
		a := &decoded[i]
		a.UserData = appendNullableBytes(slices.Clip(prefix), a.UserData)
		s := in[i]
		s.MemberAssignment = a.AppendTo(nil)
		out = append(out, s)
		seen[s.MemberID] = true
	}
	for _, m := range members {
		if seen[m.MemberID] {
			continue
		}
		seen[m.MemberID] = true
		var a kmsg.ConsumerMemberAssignment
		a.Default()
		a.UserData = appendNullableBytes(slices.Clip(prefix), nil)
		s := kmsg.NewSyncGroupRequestGroupAssignment()
		s.MemberID = m.MemberID
		s.MemberAssignment = a.AppendTo(nil)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b kmsg.SyncGroupRequestGroupAssignment) int {
		return strings.Compare(a.MemberID, b.MemberID)
	})
	return out, nil
}

// syncAssignments is a finished plan.
type syncAssignments []kmsg.SyncGroupRequestGroupAssignment

// IntoSyncAssignment returns the plan.
func (s syncAssignments) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment { return s }
