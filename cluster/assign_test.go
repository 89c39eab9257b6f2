package cluster

import (
	"maps"
	"slices"
	"testing"
)

// The scenarios run a group by hand (see sim) through the failures and
// changes a deployment sees, with data flowing in between, and check where
// each partition goes and which nodes keep standbys of it.

// TestKillOneOfThree: a member disappears from the join (crashed, its
// session expired). Each partition it owned fails over to the member that
// was its standby, which is caught up, never to one without state; every
// partition gets a new standby.
func TestKillOneOfThree(t *testing.T) {
	topics := map[string]int32{"a": 12, "b": 5}
	for victim := range 3 {
		nodes := simNodes(Config{Standbys: 1, AcceptableLag: 100}, "n1", "n2", "n3")
		dead := nodes[victim].id()
		t.Run(dead, func(t *testing.T) {
			s := newSim(t, topics)
			before := s.settle(nodes...)[0]
			s.write(func(_ string, p int32) int64 { return 1000 + int64(p) })
			s.consume(before, nodes...)
			s.write(func(string, int32) int64 { return 20 }) // the victim dies before it reads these

			survivors := slices.Delete(slices.Clone(nodes), victim, victim+1)
			tables := s.settle(survivors...)
			after := tables[len(tables)-1]
			if got := owners(t, after, topics); got != 17 {
				t.Fatalf("%d of 17 partitions have an owner:\n%s", got, dump(after))
			}
			for topic, ps := range before.Partitions(dead) {
				for _, p := range ps {
					// Already in the first round: nothing waits
					// for a cooperative second one.
					owner, ok := tables[0].Owner(topic, p)
					if !ok || !before.IsStandby(owner.NodeID, topic, p) {
						t.Errorf("%s/%d went to %q; its standby was %v", topic, p, owner.NodeID, before.Standbys(topic, p))
					}
					if final, _ := after.Owner(topic, p); final != owner {
						t.Errorf("%s/%d moved on to %s", topic, p, final.NodeID)
					}
				}
			}
			for topic, n := range topics {
				for p := range n {
					owner, _ := after.Owner(topic, p)
					sb := after.Standbys(topic, p)
					if len(sb) != 1 || sb[0] == owner {
						t.Errorf("%s/%d: owner %s, standbys %v; want the other node", topic, p, owner.NodeID, sb)
					}
				}
			}
			if spread(after) > 1 {
				t.Errorf("actives %v", actives(after))
			}
		})
	}
}

// TestScaleOut: a third node joins two that hold everything. It gets no
// active partition at first, only warm-ups (at most maxWarmups at a time);
// each time it reports them caught up, the next rebalance moves them to it
// through the two cooperative rounds, while the old owner keeps serving
// them as a standby; in the end the actives are balanced.
func TestScaleOut(t *testing.T) {
	topics := map[string]int32{"t": 12}
	s := newSim(t, topics)
	cfg := Config{Standbys: 1, AcceptableLag: 10}
	nodes := simNodes(cfg, "n1", "n2")
	tb := s.settle(nodes...)[0]
	s.write(func(_ string, p int32) int64 { return 500 })
	s.consume(tb, nodes...)

	nodes = append(nodes, newSimNode("n3", cfg))
	tables := s.settle(nodes...)
	tb = tables[len(tables)-1]
	if got := tb.Partitions("n3"); len(tables) != 1 || len(got) != 0 {
		t.Fatalf("n3 owns %v without state after %d rounds", got, len(tables))
	}
	warmed := map[int32]bool{}
	for cycle := 0; ; cycle++ {
		warming := tb.StandbyPartitions("n3")["t"]
		n := 0
		for _, p := range warming {
			if w, ok := tb.WarmingUp("t", p); ok {
				if w.NodeID != "n3" {
					t.Fatalf("t/%d warms up on %s", p, w.NodeID)
				}
				warmed[p] = true
				n++
			}
		}
		if n == 0 {
			break
		}
		if n > maxWarmups || cycle > 12/maxWarmups {
			t.Fatalf("cycle %d: %d warm-ups:\n%s", cycle, n, dump(tb))
		}
		// The warm-ups catch up; the log goes on, a little.
		s.consume(tb, nodes...)
		s.write(func(string, int32) int64 { return 3 })
		s.consume(tb, nodes[:2]...)

		tables = s.settle(nodes...)
		if len(tables) != 2 {
			t.Fatalf("cycle %d: %d rounds, want the two of a cooperative move", cycle, len(tables))
		}
		first := tables[0]
		for p := range topics["t"] {
			if _, ok := first.Owner("t", p); ok {
				continue
			}
			// Moving: served by its old owner, and its new one
			// already holds it.
			old, _ := tb.Owner("t", p)
			if !first.IsStandby(old.NodeID, "t", p) || !first.IsStandby("n3", "t", p) {
				t.Errorf("cycle %d: moving t/%d (from %s) has standbys %v", cycle, p, old.NodeID, first.Standbys("t", p))
			}
		}
		tb = tables[1]
		for _, p := range tb.Partitions("n3")["t"] {
			if !warmed[p] {
				t.Errorf("cycle %d: n3 owns t/%d, which it never warmed up", cycle, p)
			}
		}
	}
	if spread(tb) > 1 || len(tb.Partitions("n3")["t"]) != 4 {
		t.Errorf("actives %v:\n%s", actives(tb), dump(tb))
	}
}

// TestRollingRestart: a node stops cleanly and comes back with its store.
// Meanwhile its partitions are served by their caught-up standbys; when it
// returns it gets actives back only on the partitions it is caught up on
// (it missed few records there), and warms the others up.
func TestRollingRestart(t *testing.T) {
	topics := map[string]int32{"t": 12}
	s := newSim(t, topics)
	cfg := Config{Standbys: 1, AcceptableLag: 10}
	nodes := simNodes(cfg, "n1", "n2", "n3")
	before := s.settle(nodes...)[0]
	s.write(func(_ string, p int32) int64 { return 100 })
	s.consume(before, nodes...)

	away := s.settle(nodes[:2]...)
	during := away[len(away)-1]
	for _, p := range before.Partitions("n3")["t"] {
		owner, ok := away[0].Owner("t", p)
		if !ok || !before.IsStandby(owner.NodeID, "t", p) {
			t.Errorf("t/%d went to %q; its standby was %v", p, owner.NodeID, before.Standbys("t", p))
		}
	}
	// While n3 restarts, two of the partitions it holds get a few records
	// (it stays caught up on them), all others many: fewer than its share
	// of four.
	held := slices.Sorted(maps.Keys(nodes[2].held["t"]))
	caughtUp := map[int32]bool{held[0]: true, held[1]: true}
	s.write(func(_ string, p int32) int64 {
		if caughtUp[p] {
			return 5
		}
		return 50
	})
	s.consume(during, nodes[:2]...)

	// It rejoins owning nothing: a new process.
	nodes[2].owned, nodes[2].gen = map[string][]int32{}, -1
	back := s.settle(nodes...)
	after := back[len(back)-1]
	got := after.Partitions("n3")["t"]
	if len(got) == 0 {
		t.Fatalf("n3 got nothing back:\n%s", dump(after))
	}
	for _, p := range got {
		if !caughtUp[p] {
			t.Errorf("n3 got t/%d back, where it is %d behind", p, s.ends["t"][p]-nodes[2].held["t"][p].Next)
		}
	}
	var warming []int32
	for p := range topics["t"] {
		if w, ok := after.WarmingUp("t", p); ok && w.NodeID == "n3" {
			warming = append(warming, p)
		}
	}
	// Warm-ups on what it held first (least lag).
	if len(got) != 2 || len(warming) != maxWarmups {
		t.Errorf("n3 owns %v and warms up %v; want the two it is caught up on, and %d warm-ups:\n%s", got, warming, maxWarmups, dump(after))
	}
	for _, p := range warming {
		if _, ok := nodes[2].held["t"][p]; !ok {
			t.Errorf("n3 warms up t/%d, which it does not hold, while it holds others", p)
		}
	}
}

// TestReturningNodeSettles: a node comes back to a group where every node
// holds every partition (Standbys 2 of 3), a few records behind everywhere,
// so it is caught up on all of them. It takes its share in one cooperative
// move. Between the two rounds it catches up on everything but the moving
// partitions, which get new records: in the second round they are best
// placed by lag on their old owners, and still go to it, rather than others
// that it now lags less on but that would need another move.
func TestReturningNodeSettles(t *testing.T) {
	topics := map[string]int32{"t": 12, "u": 4}
	s := newSim(t, topics)
	cfg := Config{Standbys: 2, AcceptableLag: 10}
	nodes := simNodes(cfg, "n1", "n2", "n3")
	tb := s.settle(nodes...)[0]
	s.write(func(string, int32) int64 { return 100 })
	s.consume(tb, nodes...)
	away := s.settle(nodes[:2]...)
	s.write(func(string, int32) int64 { return 5 })
	s.consume(away[len(away)-1], nodes[:2]...)

	nodes[2].owned, nodes[2].gen = map[string][]int32{}, -1
	s.between = func(first *Table) {
		s.consume(first, nodes[2])
		s.write(func(topic string, p int32) int64 {
			if _, ok := first.Owner(topic, p); !ok {
				return 3
			}
			return 0
		})
		s.consume(first, nodes[:2]...)
	}
	back := s.settle(nodes...) // fails on a third round
	after := back[len(back)-1]
	if len(back) != 2 || spread(after) > 1 {
		t.Errorf("%d rounds, actives %v:\n%s", len(back), actives(after), dump(after))
	}
}

// TestStandbysCount: Standbys 0 lists none (but during a cooperative move
// the old and the new owner, which both hold the partition); more than the
// other members is capped at the other members.
func TestStandbysCount(t *testing.T) {
	topics := map[string]int32{"t": 9}
	t.Run("none", func(t *testing.T) {
		s := newSim(t, topics)
		nodes := simNodes(Config{AcceptableLag: 10}, "n1", "n2")
		tb := s.settle(nodes...)[0]
		s.write(func(string, int32) int64 { return 50 })
		s.consume(tb, nodes...)
		for _, n := range nodes {
			if sb := tb.StandbyPartitions(n.id()); len(sb) != 0 {
				t.Errorf("%s holds standbys %v", n.id(), sb)
			}
		}
		// n3 joins with a store that holds everything (a restore from a
		// backup): the partitions it takes move at once.
		n3 := newSimNode("n3", Config{AcceptableLag: 10})
		n3.held = Positions{"t": {}}
		for p := range topics["t"] {
			n3.held["t"][p] = Position{Next: s.ends["t"][p], End: s.ends["t"][p]}
		}
		tables := s.settle(append(nodes, n3)...)
		if len(tables) != 2 {
			t.Fatalf("%d rounds, want two", len(tables))
		}
		for p := range topics["t"] {
			sb := tables[0].Standbys("t", p)
			if _, ok := tables[0].Owner("t", p); ok && sb != nil {
				t.Errorf("t/%d has standbys %v", p, sb)
			}
			if _, ok := tables[0].Owner("t", p); !ok {
				old, _ := tb.Owner("t", p)
				if len(sb) != 2 || !slices.Contains(sb, old) || !tables[0].IsStandby("n3", "t", p) {
					t.Errorf("moving t/%d from %s has standbys %v", p, old.NodeID, sb)
				}
			}
			if sb := tables[1].Standbys("t", p); sb != nil {
				t.Errorf("t/%d has standbys %v after the move", p, sb)
			}
		}
		if got := actives(tables[1]); got["n3"] != 3 {
			t.Errorf("actives %v", got)
		}
	})
	t.Run("capped", func(t *testing.T) {
		s := newSim(t, topics)
		tb := s.settle(simNodes(Config{Standbys: 5}, "n1", "n2", "n3")...)[0]
		for p := range topics["t"] {
			if sb := tb.Standbys("t", p); len(sb) != 2 {
				t.Errorf("t/%d has standbys %v, want the two other nodes", p, sb)
			}
		}
	})
}

// TestStandbysPreferState: a standby stays where the partition's data
// already is, rather than on a new node that holds fewer standbys, and the
// router asks the least lagging first.
func TestStandbysPreferState(t *testing.T) {
	topics := map[string]int32{"t": 8}
	s := newSim(t, topics)
	cfg := Config{Standbys: 2, AcceptableLag: 10}
	nodes := simNodes(cfg, "n1", "n2", "n3", "n4")
	tb := s.settle(nodes...)[0]
	s.write(func(string, int32) int64 { return 100 })
	s.consume(tb, nodes...)
	// n4 falls behind on everything it keeps a standby of.
	for p, pos := range nodes[3].held["t"] {
		if owner, _ := tb.Owner("t", p); owner.NodeID != "n4" {
			nodes[3].held["t"][p] = Position{Next: pos.Next - 40, End: pos.End}
		}
	}
	again := s.settle(append(nodes, newSimNode("n5", cfg))...)[0]
	lagging := 0
	for p := range topics["t"] {
		owner, _ := tb.Owner("t", p)
		if now, _ := again.Owner("t", p); now != owner {
			t.Errorf("t/%d moved from %s to %s", p, owner.NodeID, now.NodeID)
		}
		var got []Member // the standbys, without a warm-up
		for _, m := range again.Standbys("t", p) {
			if w, _ := again.WarmingUp("t", p); m != w {
				got = append(got, m)
			}
		}
		if want := tb.Standbys("t", p); !sameMembers(got, want) {
			t.Errorf("t/%d: standbys %v, were %v: a standby moved away from its data", p, got, want)
		}
		if i := slices.IndexFunc(got, func(m Member) bool { return m.NodeID == "n4" }); i >= 0 {
			lagging++
			if i != len(got)-1 {
				t.Errorf("t/%d: standbys %v: lagging n4 is not asked last", p, got)
			}
		}
	}
	if lagging == 0 {
		t.Fatal("n4 is a standby of nothing: the test checks no order")
	}
}

func sameMembers(a, b []Member) bool {
	sort := func(ms []Member) []Member { return slices.SortedFunc(slices.Values(ms), compareMembers) }
	return slices.Equal(sort(a), sort(b))
}

// TestAssignmentSize: the table travels in every member's assignment, so the
// SyncGroup request carries it once per member. For three members, 1,000
// partitions and one standby it stays far below Kafka's limits.
func TestAssignmentSize(t *testing.T) {
	topics := map[string]int32{"orders": 1000}
	s := newSim(t, topics)
	nodes := simNodes(Config{Standbys: 1, AcceptableLag: 10_000}, "iqengine-0", "iqengine-1", "iqengine-2")
	tb := s.settle(nodes...)[0]
	s.write(func(_ string, p int32) int64 { return 1_000_000 + int64(p)*977 })
	s.consume(tb, nodes...)

	out := balance(t, nodes[0].bal, s.joinMembers(nodes), topics)
	total := 0
	for _, a := range out {
		total += len(a.MemberAssignment)
	}
	join := len(nodes[0].bal.JoinGroupMetadata([]string{"orders"}, nodes[0].owned, nodes[0].gen))
	t.Logf("3 members × 1,000 partitions, 1 standby: assignments %d bytes in all (%d each, the table %d), join metadata %d bytes",
		total, len(out[0].MemberAssignment), len(encodeTable(nodes[0].bal.Table())), join)
	if total >= 64<<10 {
		t.Errorf("assignments take %d bytes, want < 64 KiB", total)
	}
}

// BenchmarkBalance measures the leader's balance of a scale-out from 9 to
// 10 members on 10,000 partitions with one standby, at its most expensive:
// the new member is caught up on everything (restored from a backup), so
// about 1,000 partitions move.
func BenchmarkBalance(b *testing.B) {
	topics := map[string]int32{"a": 6000, "b": 4000}
	s := &sim{topics: topics}
	cfg := Config{Standbys: 1, AcceptableLag: 10_000}
	var nodes []*simNode
	for i := range 10 {
		nodes = append(nodes, newSimNode(string(rune('a'+i)), cfg))
	}
	for _, topic := range slices.Sorted(maps.Keys(topics)) {
		for p := range topics[topic] {
			n := nodes[int(p)%9]
			n.owned[topic] = append(n.owned[topic], p)
			for _, h := range []*simNode{n, nodes[(int(p)+1)%9], nodes[9]} {
				if h.held[topic] == nil {
					h.held[topic] = map[int32]Position{}
				}
				h.held[topic][p] = Position{Next: 1000, End: 1000}
			}
		}
	}
	members := s.joinMembers(nodes)
	b.ResetTimer()
	for range b.N {
		balance(b, nodes[0].bal, members, topics)
	}
}
