package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ProtocolName is the group protocol name of Balancer. Every member of an
// application's group must use it, and run the same iqengine version: a
// client that joins under this name without iqengine's envelope, or with
// another version's, makes balancing fail with an error that says so.
const ProtocolName = "iqengine-cooperative-sticky-v1"

// Config configures a Balancer. Every member should use the same Standbys and
// AcceptableLag; the leader's are the ones applied.
type Config struct {
	// Standbys is the number of standby replicas per partition (0: none).
	// Capped by the number of other members. A negative value counts as 0.
	Standbys int
	// AcceptableLag is acceptable_recovery_lag: a member whose position on a
	// partition is at most this many records behind the furthest position any
	// member reports is caught up, and a partition may become active there at
	// once. A partition that must move to a member that is not caught up
	// (scale-out, balance) stays where it is and warms up there as a standby
	// first. 0 (the zero value): only a member at the furthest position is
	// caught up; a negative value counts as 0. Kafka Streams' default is
	// 10,000.
	AcceptableLag int64
	// Positions, when set, is called at each join for what this node holds;
	// its answer goes into the join metadata. nil: nothing, and then no
	// member is ever caught up anywhere: a partition moves only when its
	// owner leaves, never to balance. It runs in the group management
	// goroutine and must return quickly.
	Positions func() Positions
	// Key, when set (NewKey of the cluster secret), signs this node's join
	// metadata and, when it leads, the routing table; and the leader
	// refuses members whose metadata it does not sign, members refuse
	// tables it does not sign. nil: no signatures, and no checks.
	Key *Key
	// Logger receives one warning per member left out of a balance (default
	// slog.Default()).
	Logger *slog.Logger
}

// Balancer is a kgo.GroupBalancer that assigns each partition one active
// owner and up to Config.Standbys standbys, and tells every member the whole
// assignment:
//
//   - each member's join metadata carries its Member (node id and URL) and
//     its Positions;
//   - the leader plans the assignment (see planner for the rules: sticky,
//     failover to the caught-up, balance only to the caught-up, warm-ups
//     otherwise) and adds the whole table to every member's assignment;
//   - each member, on ParseSyncAssignment, swaps its current Table
//     atomically.
//
// Plug it in with kgo.Balancers(b) as the only balancer, together with
// kgo.InstanceID(nodeID) for static membership.
//
// Positions change as a node consumes, so its join metadata does too, and
// Kafka rebalances when a member rejoins with changed metadata: a static
// member that restarts within the session timeout rejoins through a
// rebalance rather than silently getting its old assignment back, and its
// partitions go where the leader's rules put them (where the lag is least:
// a standby that kept consuming them, and back to the restarted node where
// it is caught up).
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
// A partition's owner is the member whose assignment holds it. The group is
// cooperative: in the first round of a move the partition is in nobody's
// assignment, so it has no owner in that generation, and both its old and
// its new owner are listed as its standbys (the old one keeps serving it
// from its store); the second round gives it its new owner.
type Balancer struct {
	self     Member
	cfg      Config
	table    atomic.Pointer[Table]
	onChange atomic.Pointer[func(*Table)]
}

var _ kgo.GroupBalancer = (*Balancer)(nil)

// NewBalancer returns the balancer of the node self.
func NewBalancer(self Member, cfg Config) *Balancer {
	cfg.Standbys = max(cfg.Standbys, 0)
	cfg.AcceptableLag = max(cfg.AcceptableLag, 0)
	b := &Balancer{self: self, cfg: cfg}
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

// JoinGroupMetadata returns the consumer protocol's join metadata (topics,
// the partitions owned now and their generation, which the leader needs for
// stickiness and the cooperative protocol) with the envelope of this node's
// Member and Positions as its UserData. The output is deterministic (sorted),
// so only a change makes Kafka rebalance.
func (b *Balancer) JoinGroupMetadata(topics []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3 // with OwnedPartitions and Generation, as cooperative-sticky
	meta.Topics = slices.Sorted(slices.Values(topics))
	meta.Generation = generation
	for _, topic := range slices.Sorted(maps.Keys(current)) {
		if len(current[topic]) == 0 {
			continue
		}
		owned := kmsg.NewConsumerMemberMetadataOwnedPartition()
		owned.Topic = topic
		owned.Partitions = slices.Sorted(slices.Values(current[topic]))
		meta.OwnedPartitions = append(meta.OwnedPartitions, owned)
	}
	var positions Positions
	if b.cfg.Positions != nil {
		positions = b.cfg.Positions()
	}
	meta.UserData = b.cfg.Key.seal(encodeJoin(b.self, positions), purposeJoin)
	return meta.AppendTo(nil)
}

// MemberBalancer reads every member's envelope and returns a
// kgo.ConsumerBalancer whose balance step is the leader's plan. Returning a
// *kgo.ConsumerBalancer (rather than a wrapper of one) keeps what the client
// does only for that type: balance info, logging.
//
// A member whose metadata lacks the envelope, carries another version's,
// advertises a URL that is not a node's base URL, or (with a Key) is not
// signed with the cluster's key, is left out with a warning: it gets no
// partitions, is not in the routing table (so no node ever calls it), and
// the honest members are balanced as if it were not there. Only when no
// member is left is balancing an error.
func (b *Balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	joins := make(map[string]joinInfo, len(members))
	kept := make([]kmsg.JoinGroupResponseMember, 0, len(members))
	var refused []error
	for i := range members {
		m := &members[i]
		info, err := b.readJoin(m)
		if err != nil {
			err = fmt.Errorf("cluster: member %s left out of the group's assignment: %w", memberName(m), err)
			b.logger().Warn(err.Error())
			refused = append(refused, err)
			continue
		}
		if _, dup := joins[m.MemberID]; !dup { // kgo keeps the first of duplicates too
			joins[m.MemberID] = info
		}
		kept = append(kept, *m)
	}
	if len(kept) == 0 {
		return nil, nil, errors.Join(refused...)
	}
	cb, err := kgo.NewConsumerBalancer(&routingBalance{joins: joins, cfg: b.cfg}, kept)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: %w", err)
	}
	return cb, cb.MemberTopics(), nil
}

// readJoin reads and checks one member's join metadata.
func (b *Balancer) readJoin(m *kmsg.JoinGroupResponseMember) (joinInfo, error) {
	var meta kmsg.ConsumerMemberMetadata
	meta.Default()
	if err := meta.ReadFrom(m.ProtocolMetadata); err != nil {
		return joinInfo{}, fmt.Errorf("unreadable join metadata: %w", err)
	}
	body, err := b.cfg.Key.open(meta.UserData, purposeJoin)
	if err != nil {
		return joinInfo{}, fmt.Errorf("its join metadata %w", err)
	}
	self, positions, err := decodeJoin(body)
	if err != nil {
		return joinInfo{}, err
	}
	if b.cfg.Key != nil && (m.InstanceID == nil || *m.InstanceID != self.NodeID) {
		return joinInfo{}, errInstance
	}
	return joinInfo{self, positions}, nil
}

func (b *Balancer) logger() *slog.Logger {
	if b.cfg.Logger != nil {
		return b.cfg.Logger
	}
	return slog.Default()
}

func memberName(m *kmsg.JoinGroupResponseMember) string {
	if m.InstanceID != nil {
		return fmt.Sprintf("%s (instance %s)", m.MemberID, *m.InstanceID)
	}
	return m.MemberID
}

// ParseSyncAssignment unwraps the routing table from an assignment, swaps it
// in, and returns the partitions assigned to this member. An assignment
// without a valid envelope is an error and leaves the current table in
// place.
func (b *Balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var a kmsg.ConsumerMemberAssignment
	a.Default()
	if err := a.ReadFrom(assignment); err != nil {
		return nil, fmt.Errorf("cluster: unreadable assignment: %w", err)
	}
	body, err := b.cfg.Key.open(a.UserData, purposeTable)
	if err != nil {
		return nil, fmt.Errorf("cluster: the leader's assignment %w", err)
	}
	t, err := decodeAssignment(body)
	if err != nil {
		return nil, fmt.Errorf("cluster: assignment: %w", err)
	}
	assigned := make(map[string][]int32, len(a.Topics))
	for _, at := range a.Topics {
		assigned[at.Topic] = at.Partitions
	}
	b.table.Store(t)
	if fn := b.onChange.Load(); fn != nil {
		(*fn)(t)
	}
	return assigned, nil
}

// joinInfo is what a member's envelope says.
type joinInfo struct {
	self      Member
	positions Positions
}

// routingBalance is the balance step of the ConsumerBalancer that
// MemberBalancer returns.
type routingBalance struct {
	joins map[string]joinInfo // group member id → its envelope
	cfg   Config              // the leader's
}

// Balance plans the group (see planner), lets kgo hold back the partitions
// that move cooperatively, and adds the routing table to every member's
// assignment.
func (r *routingBalance) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	members, err := r.joined(cb)
	if err != nil {
		cb.SetError(err)
		return nil
	}
	p := newPlanner(members, topics, r.cfg.AcceptableLag)
	p.place()
	p.balance()

	plan := cb.NewPlan()
	for i := range p.slots {
		if s := &p.slots[i]; s.active >= 0 {
			plan.AddPartition(members[s.active].member, s.topic, s.partition)
		}
	}
	// kgo removes from this round what migrates between members: the old
	// owner revokes it and rejoins, and the next round, which runs this
	// plan again, gives it to the new one.
	plan.AdjustCooperative(cb)
	p.markMoving(plan.AsMemberIDMap())
	p.pickStandbys(r.cfg.Standbys)

	t := p.table(generation(cb), r.cfg.AcceptableLag)
	envelope := r.cfg.Key.seal(encodeTable(t), purposeTable)
	out := plan.IntoSyncAssignment() // every member, sorted by member id
	for i := range out {
		var a kmsg.ConsumerMemberAssignment
		a.Default()
		if err := a.ReadFrom(out[i].MemberAssignment); err != nil { // cannot happen: kgo just encoded it
			cb.SetError(fmt.Errorf("cluster: assignment of %s: %w", out[i].MemberID, err))
			return nil
		}
		a.UserData = envelope
		out[i].MemberAssignment = a.AppendTo(nil)
	}
	return syncAssignments(out)
}

// joined returns the members in member order, each with its envelope.
func (r *routingBalance) joined(cb *kgo.ConsumerBalancer) ([]*joined, error) {
	var out []*joined
	var err error
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		info, ok := r.joins[m.MemberID]
		if !ok {
			err = fmt.Errorf("cluster: member %s has no identity", memberName(m))
			return
		}
		out = append(out, &joined{member: m, meta: meta, id: info.self, positions: info.positions})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *joined) int {
		return cmp.Or(compareMembers(a.id, b.id), cmp.Compare(a.member.MemberID, b.member.MemberID))
	})
	return out, nil
}

// generation returns the table's generation (see Balancer).
func generation(cb *kgo.ConsumerBalancer) int32 {
	if info := cb.Info(); info.LeaderID != "" {
		return info.Generation // set by the client: the JoinGroup response's
	}
	gen := int32(-1)
	cb.EachMember(func(_ *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		gen = max(gen, meta.Generation)
	})
	return gen + 1
}

// syncAssignments is a finished plan.
type syncAssignments []kmsg.SyncGroupRequestGroupAssignment

// IntoSyncAssignment returns the plan.
func (s syncAssignments) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment { return s }
