package cluster

import (
	"cmp"
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxWarmups is how many partitions one member may warm up at a time, as
// Kafka Streams' max.warmup.replicas (2) bounds them, but per member: a
// warm-up costs its receiver a restore from the log, and bounding them per
// receiver keeps a new node from restoring a large share of the
// application at once while it serves nothing yet, whatever the cluster's
// size. The price: a node that must warm up k partitions gets them over
// k/2 rebalances (each one cheap: the partitions stay served where they are).
const maxWarmups = 2

// noState is the lag of a member that reports nothing for a partition.
const noState = math.MaxInt64

// joined is one group member as the leader sees it at a balance.
type joined struct {
	member    *kmsg.JoinGroupResponseMember
	meta      *kmsg.ConsumerMemberMetadata // Topics sorted
	id        Member
	positions Positions
}

// subscribes reports whether the member consumes topic.
func (j *joined) subscribes(topic string) bool {
	_, ok := slices.BinarySearch(j.meta.Topics, topic)
	return ok
}

// slot is one partition being planned. Member numbers index planner.members.
type slot struct {
	topic     string
	partition int32
	owner     int  // the current owner, still a member and subscribed; -1
	active    int  // the planned active owner; -1 when nobody subscribes
	free      bool // placed without a current owner (rule 3): moving it costs nothing
	warmup    int  // the member it warms up on; -1
	moving    bool // active is its next owner, cooperatively (set by markMoving)
	standbys  []int
}

// planner computes the leader's plan. Its rules, in order:
//
//  1. lag(m, p) is furthest(p) − m's Next on p, where furthest(p) is the
//     largest Next or End any member reports for p; a member that reports
//     nothing for p has no state: its lag is furthest(p) + 1, the whole
//     log (noState when no member reports anything). m is caught up on p
//     when lag ≤ AcceptableLag: a partition smaller than that moves at
//     once even to a member without state.
//  2. A partition stays with its current owner while that is a member
//     (stickiness).
//  3. A partition without one goes to a caught-up member when there is
//     one (caught-up members are equals: the fewest actives, then the
//     fewest of its topic, then member order), else to the member with the
//     least lag (the most state); in a fresh group that is an even spread.
//  4. Balance: while one member has two actives more than another, move one
//     to the lower if it is caught up on it (of the topic the giver holds
//     most more of than the receiver, so that each topic ends spread too),
//     preferring partitions that move
//     for free (placed by rule 3 in this round: in the second round of a
//     cooperative move, the moving ones, which rule 3 may have put back on
//     their old owner by a few records of lag), then ones it moves
//     cooperatively, from the most loaded member, with the least lag.
//     Otherwise make the receiver the partition's warm-up: it stays where
//     it is, and moves in a later rebalance once the receiver reports
//     itself caught up. At most maxWarmups per member. A warm-up counts as
//     a receiver's active for the balance, so that the balance does not
//     also move another partition there.
//  5. Standbys (pickStandbys): up to n per partition, other than its next
//     active owner and its warm-up, preferring the least lag, then the
//     fewest standbys held, then member order. A partition moving
//     cooperatively keeps its old owner as a standby, and lists its next
//     owner too.
//  6. Everything is decided in member order and partition order (topics by
//     name), never in map order, so the same input gives the same plan.
type planner struct {
	members []*joined // in member order: node id, URL, group member id
	slots   []slot    // by topic name, then partition
	lags    []int64   // slot i, member m: lags[i*len(members)+m]
	// subscribed[i*len(members)+m]: member m consumes slot i's topic.
	subscribed []bool
	actives    []int // per member: actives planned, warm-ups received included
	warmups    []int // per member: warm-ups received
	// topicOf is each slot's topic number (topics in name order), and
	// perTopic[t*len(members)+m] member m's actives of topic t, counted as
	// actives are.
	topicOf       []int
	perTopic      []int
	acceptableLag int64
}

// newPlanner lays out the partitions of topics (name → partition count) and
// everything rule 1 needs, and finds each partition's current owner.
func newPlanner(members []*joined, topics map[string]int32, acceptableLag int64) *planner {
	p := &planner{
		members:       members,
		actives:       make([]int, len(members)),
		warmups:       make([]int, len(members)),
		acceptableLag: acceptableLag,
	}
	names := make([]string, 0, len(topics))
	for topic, n := range topics {
		if n > 0 {
			names = append(names, topic)
		}
	}
	slices.Sort(names)
	first := make(map[string]int, len(names)) // topic → its first slot
	for t, topic := range names {
		first[topic] = len(p.slots)
		for part := range topics[topic] {
			p.slots = append(p.slots, slot{topic: topic, partition: part, owner: -1, active: -1, warmup: -1})
			p.topicOf = append(p.topicOf, t)
		}
	}
	p.perTopic = make([]int, len(names)*len(members))
	nm := len(members)
	p.lags = make([]int64, len(p.slots)*nm)
	p.subscribed = make([]bool, len(p.slots)*nm)
	for i := range p.slots {
		s := &p.slots[i]
		furthest := int64(-1)
		for m, j := range members {
			p.subscribed[i*nm+m] = j.subscribes(s.topic)
			p.lags[i*nm+m] = noState
			if pos, ok := j.positions[s.topic][s.partition]; ok {
				furthest = max(furthest, pos.Next, pos.End)
			}
		}
		for m, j := range members {
			if pos, ok := j.positions[s.topic][s.partition]; ok {
				p.lags[i*nm+m] = furthest - pos.Next
			} else if furthest >= 0 {
				// It must restore the whole log: at most furthest
				// records, plus one so that any state ranks first. A
				// partition smaller than the acceptable lag moves at
				// once, as in Kafka Streams (a member without state
				// lags by the whole log).
				p.lags[i*nm+m] = furthest + 1
			}
		}
	}
	p.findOwners(first, topics)
	return p
}

// findOwners sets each slot's current owner: the member that claims it in
// its OwnedPartitions at the highest generation (a lower claim is stale,
// KIP-792, as kgo's cooperative adjustment sees it), the first in member
// order among equals, provided it still consumes the topic.
func (p *planner) findOwners(first map[string]int, topics map[string]int32) {
	claim := make([]int32, len(p.slots))
	for m, j := range p.members {
		for _, owned := range j.meta.OwnedPartitions {
			base, ok := first[owned.Topic]
			if !ok {
				continue
			}
			for _, part := range owned.Partitions {
				if part < 0 || part >= topics[owned.Topic] {
					continue
				}
				s := &p.slots[base+int(part)]
				if s.owner < 0 || j.meta.Generation > claim[base+int(part)] {
					s.owner, claim[base+int(part)] = m, j.meta.Generation
				}
			}
		}
	}
	for i := range p.slots {
		if s := &p.slots[i]; s.owner >= 0 && !p.subscribed[i*len(p.members)+s.owner] {
			s.owner = -1
		}
	}
}

// lag returns member m's lag on slot i (rule 1).
func (p *planner) lag(i, m int) int64 { return p.lags[i*len(p.members)+m] }

func (p *planner) subscribes(i, m int) bool { return p.subscribed[i*len(p.members)+m] }

func (p *planner) caughtUp(i, m int) bool {
	l := p.lag(i, m)
	return l != noState && l <= p.acceptableLag
}

func (p *planner) setActive(i, m int) {
	p.slots[i].active = m
	p.actives[m]++
	p.perTopic[p.topicOf[i]*len(p.members)+m]++
}

// ofTopic is member m's actives of slot i's topic.
func (p *planner) ofTopic(i, m int) int { return p.perTopic[p.topicOf[i]*len(p.members)+m] }

// place applies rules 2 and 3.
func (p *planner) place() {
	for i := range p.slots {
		if o := p.slots[i].owner; o >= 0 {
			p.setActive(i, o)
		}
	}
	// ofTopic counts actives per member in the topic being placed, the
	// tie-break that spreads each topic, not only the total.
	ofTopic := make([]int, len(p.members))
	for i := range p.slots {
		s := &p.slots[i]
		if i == 0 || s.topic != p.slots[i-1].topic {
			clear(ofTopic)
			for k := i; k < len(p.slots) && p.slots[k].topic == s.topic; k++ {
				if p.slots[k].active >= 0 {
					ofTopic[p.slots[k].active]++
				}
			}
		}
		if s.active >= 0 {
			continue
		}
		// Caught-up members are equals (as in Kafka Streams): the least
		// loaded of them takes the partition, so a node back from a
		// restart within its session gets its partitions back rather
		// than see them go to a standby a few records ahead. Without a
		// caught-up member, the one with the most state takes it.
		rank := func(m int) int64 {
			if p.caughtUp(i, m) {
				return -1
			}
			return p.lag(i, m)
		}
		best := -1
		for m := range p.members {
			if !p.subscribes(i, m) {
				continue
			}
			if best < 0 || cmp.Or(
				cmp.Compare(rank(m), rank(best)),
				cmp.Compare(p.actives[m], p.actives[best]),
				cmp.Compare(ofTopic[m], ofTopic[best]),
			) < 0 {
				best = m
			}
		}
		if best >= 0 {
			p.setActive(i, best)
			s.free = true
			ofTopic[best]++
		}
	}
}

// How a partition gets to an underloaded member (rule 4), best first.
const (
	moveFree        = iota // placed here by rule 3: no one serves it yet
	moveCooperative        // the receiver is caught up: revoke, then assign
	moveWarmup             // the receiver warms it up; it stays put
	noMove
)

// balance applies rule 4.
func (p *planner) balance() {
	receivers := make([]int, len(p.members))
	for m := range receivers {
		receivers[m] = m
	}
	for {
		// The lowest first: a move to it evens the most. Member
		// order breaks ties (SortStableFunc keeps it).
		slices.SortStableFunc(receivers, func(a, b int) int { return cmp.Compare(p.actives[a], p.actives[b]) })
		moved := false
		for _, r := range receivers {
			if i, how := p.bestMove(r); how != noMove {
				p.move(i, r, how)
				moved = true
				break
			}
		}
		if !moved {
			// Balanced, or what is left cannot move (nothing
			// caught up, warm-ups all taken, or topics the
			// receivers do not consume). Each move narrows the
			// spread of actives, so this loop ends.
			return
		}
	}
}

// bestMove returns the partition to move to receiver r and how, or noMove:
// from a member with at least two more actives, the best kind of move, then
// of the topic the giver holds most more of than the receiver (so that each
// topic, not only the total, ends spread: a store's queries go to every
// node), then from the most loaded member, then the receiver's least lag,
// then partition order.
func (p *planner) bestMove(r int) (int, int) {
	best, bestHow := -1, noMove
	for i := range p.slots {
		s := &p.slots[i]
		d := s.active
		if d < 0 || d == r || s.warmup >= 0 || p.actives[d]-p.actives[r] < 2 || !p.subscribes(i, r) {
			continue
		}
		how := p.howToMove(i, r)
		if how == noMove {
			continue
		}
		if best < 0 || cmp.Or(
			cmp.Compare(how, bestHow),
			cmp.Compare(p.ofTopic(best, p.slots[best].active)-p.ofTopic(best, r), p.ofTopic(i, d)-p.ofTopic(i, r)),
			cmp.Compare(p.actives[p.slots[best].active], p.actives[d]),
			cmp.Compare(p.lag(i, r), p.lag(best, r)),
		) < 0 {
			best, bestHow = i, how
		}
	}
	return best, bestHow
}

// howToMove says how slot i could get to member r.
func (p *planner) howToMove(i, r int) int {
	s := &p.slots[i]
	switch {
	case s.free && p.caughtUp(i, r):
		return moveFree
	case p.caughtUp(i, r):
		return moveCooperative
	case p.warmups[r] < maxWarmups:
		return moveWarmup
	}
	return noMove
}

// move moves slot i to member r, or warms it up there: either way it counts
// as r's from now on.
func (p *planner) move(i, r, how int) {
	s := &p.slots[i]
	p.actives[s.active]--
	p.actives[r]++
	p.perTopic[p.topicOf[i]*len(p.members)+s.active]--
	p.perTopic[p.topicOf[i]*len(p.members)+r]++
	if how == moveWarmup {
		s.warmup = r
		p.warmups[r]++
		return
	}
	s.active = r
}

// pickStandbys applies rule 5, with n the configured standbys per partition.
// It runs after markMoving.
func (p *planner) pickStandbys(n int) {
	held := make([]int, len(p.members)) // standbys and warm-ups per member
	for i := range p.slots {
		if w := p.slots[i].warmup; w >= 0 {
			held[w]++
		}
	}
	for i := range p.slots {
		s := &p.slots[i]
		if s.active < 0 {
			continue
		}
		var chosen []int
		if s.moving && s.owner >= 0 && s.owner != s.active {
			// It keeps the data and goes on consuming it, so
			// the partition is served while its next owner
			// takes over.
			chosen = append(chosen, s.owner)
		}
		for len(chosen) < n {
			best := -1
			for m := range p.members {
				if m == s.active || m == s.warmup || !p.subscribes(i, m) || slices.Contains(chosen, m) {
					continue
				}
				if best < 0 || cmp.Or(
					cmp.Compare(p.lag(i, m), p.lag(i, best)),
					cmp.Compare(held[m], held[best]),
				) < 0 {
					best = m
				}
			}
			if best < 0 {
				break // capped by the members that can hold it
			}
			chosen = append(chosen, best)
		}
		for _, m := range chosen {
			held[m]++
		}
		s.standbys = chosen
	}
}

// markMoving marks the partitions that kgo's cooperative adjustment held
// back from their planned owner this round (plan: member id → topic →
// partitions, as adjusted).
func (p *planner) markMoving(plan map[string]map[string][]int32) {
	kept := map[string]map[int32]bool{}
	for _, topics := range plan {
		for topic, ps := range topics {
			if kept[topic] == nil {
				kept[topic] = map[int32]bool{}
			}
			for _, part := range ps {
				kept[topic][part] = true
			}
		}
	}
	for i := range p.slots {
		s := &p.slots[i]
		s.moving = s.active >= 0 && !kept[s.topic][s.partition]
	}
}

// table returns the routing table of the plan.
func (p *planner) table(generation int32, acceptableLag int64) *Table {
	t := &Table{generation: generation, acceptableLag: acceptableLag, routes: map[string][]route{}}
	for _, j := range p.members {
		t.members = append(t.members, j.id)
	}
	slices.SortFunc(t.members, compareMembers)
	t.members = slices.Compact(t.members)
	// index maps a planner member to its table member; two group members
	// with the same identity (a non-static restart) share one.
	index := make([]int32, len(p.members))
	for m, j := range p.members {
		i, _ := slices.BinarySearchFunc(t.members, j.id, compareMembers)
		index[m] = int32(i)
	}
	for i := range p.slots {
		s := &p.slots[i]
		t.routes[s.topic] = append(t.routes[s.topic], p.route(i, index))
	}
	return t
}

// route returns slot i's route, with table member indices.
func (p *planner) route(i int, index []int32) route {
	s := &p.slots[i]
	r := noRoute
	if s.active < 0 {
		return r
	}
	listed := slices.Clone(s.standbys)
	if s.moving {
		// Its next owner already holds it: ask it too.
		listed = append(listed, s.active)
	} else {
		r.owner = index[s.active]
	}
	if s.warmup >= 0 {
		listed = append(listed, s.warmup)
	}
	// Least lag first, then node id (member order is node id order).
	slices.SortFunc(listed, func(a, b int) int {
		return cmp.Or(cmp.Compare(p.lag(i, a), p.lag(i, b)), cmp.Compare(a, b))
	})
	for _, m := range listed {
		if idx := index[m]; idx != r.owner && !slices.Contains(r.standbys, idx) {
			r.standbys = append(r.standbys, idx)
		}
	}
	if s.warmup >= 0 && slices.Contains(r.standbys, index[s.warmup]) {
		r.warmup = index[s.warmup]
	}
	return r
}
