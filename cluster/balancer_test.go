package cluster

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// simNode is one member of a group run by hand: what its client owns, at
// which generation, and what its store holds (reported at each join).
type simNode struct {
	bal   *Balancer
	owned map[string][]int32
	gen   int32
	held  Positions
}

func newSimNode(id string, cfg Config) *simNode {
	n := &simNode{owned: map[string][]int32{}, gen: -1, held: Positions{}}
	cfg.Positions = func() Positions { return n.held }
	n.bal = NewBalancer(Member{NodeID: id, URL: "http://" + id + ".example:7070"}, cfg)
	return n
}

func (n *simNode) id() string { return n.bal.self.NodeID }

func simNodes(cfg Config, ids ...string) []*simNode {
	var out []*simNode
	for _, id := range ids {
		out = append(out, newSimNode(id, cfg))
	}
	return out
}

// sim runs a group by hand as franz-go and the coordinator run it: the
// members join with what they own and hold, the first one leads, and each
// parses its assignment. It also keeps the end of every partition's log.
type sim struct {
	t      *testing.T
	topics map[string]int32
	ends   map[string][]int64
	// between, when set, runs between the two rounds of a cooperative
	// move, with the first round's table: what the nodes do meanwhile.
	between func(first *Table)
}

func newSim(t *testing.T, topics map[string]int32) *sim {
	s := &sim{t: t, topics: topics, ends: map[string][]int64{}}
	for topic, n := range topics {
		s.ends[topic] = make([]int64, n)
	}
	return s
}

func (s *sim) names() []string { return slices.Sorted(maps.Keys(s.topics)) }

// joinMembers returns the JoinGroup response members of nodes, in the order
// given, as the broker hands them to the leader.
func (s *sim) joinMembers(nodes []*simNode) []kmsg.JoinGroupResponseMember {
	var out []kmsg.JoinGroupResponseMember
	for _, n := range nodes {
		m := kmsg.NewJoinGroupResponseMember()
		id := n.id()
		m.InstanceID = &id
		m.MemberID = id + "-member"
		m.ProtocolMetadata = n.bal.JoinGroupMetadata(s.names(), n.owned, n.gen)
		out = append(out, m)
	}
	return out
}

// balance runs a leader's balance as kgo does.
func balance(t testing.TB, leader kgo.GroupBalancer, members []kmsg.JoinGroupResponseMember, topics map[string]int32) []kmsg.SyncGroupRequestGroupAssignment {
	t.Helper()
	mb, _, err := leader.MemberBalancer(members)
	if err != nil {
		t.Fatalf("MemberBalancer: %v", err)
	}
	into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(topics)
	if err != nil {
		t.Fatalf("BalanceOrError: %v", err)
	}
	return into.IntoSyncAssignment()
}

// round runs one rebalance (nodes[0] leads), feeds each member its
// assignment and checks that every member now holds the same table, which
// agrees with each one's assignment and gives no member a partition both
// as active and as standby. It returns the table and whether a member lost
// a partition it owned, which makes it rejoin for a second round.
func (s *sim) round(nodes ...*simNode) (*Table, bool) {
	t := s.t
	t.Helper()
	out := balance(t, nodes[0].bal, s.joinMembers(nodes), s.topics)
	if len(out) != len(nodes) {
		t.Fatalf("%d assignments for %d members", len(out), len(nodes))
	}
	byMember := map[string]*simNode{}
	for _, n := range nodes {
		byMember[n.id()+"-member"] = n
	}
	var table *Table
	revoked := false
	for _, a := range out {
		n := byMember[a.MemberID]
		if n == nil {
			t.Fatalf("assignment for unknown member %s", a.MemberID)
		}
		got, err := n.bal.ParseSyncAssignment(a.MemberAssignment)
		if err != nil {
			t.Fatalf("%s: ParseSyncAssignment: %v", n.id(), err)
		}
		tb := n.bal.Table()
		if table == nil {
			table = tb
		} else if !reflect.DeepEqual(tb, table) {
			t.Fatalf("%s holds a different table than the others", n.id())
		}
		if !reflect.DeepEqual(normalize(tb.Partitions(n.id())), normalize(got)) {
			t.Fatalf("%s: table says it owns %v, its assignment is %v", n.id(), tb.Partitions(n.id()), got)
		}
		for topic, ps := range n.owned {
			for _, p := range ps {
				if !slices.Contains(got[topic], p) {
					revoked = true
				}
			}
		}
		n.owned, n.gen = normalize(got), tb.Generation()
	}
	checkTable(t, table)
	return table, revoked
}

// settle runs rounds until no member loses a partition: one round, or two
// when partitions move cooperatively. A third would be a plan that the
// next round undoes. It returns the tables of the rounds.
func (s *sim) settle(nodes ...*simNode) []*Table {
	s.t.Helper()
	var tables []*Table
	for range 2 {
		tb, revoked := s.round(nodes...)
		tables = append(tables, tb)
		if !revoked {
			return tables
		}
		if s.between != nil {
			s.between(tb)
		}
	}
	s.t.Fatalf("partitions still move after two rounds:\n%s", dump(tables[len(tables)-1]))
	return nil
}

// consume brings every node's store to the end of the log on each
// partition the table makes it consume: active, standby or warm-up. What it
// held before and no longer consumes stays where it was.
func (s *sim) consume(tb *Table, nodes ...*simNode) {
	for _, n := range nodes {
		for topic := range s.topics {
			for p := range s.topics[topic] {
				owner, _ := tb.Owner(topic, p)
				if owner.NodeID != n.id() && !tb.IsStandby(n.id(), topic, p) {
					continue
				}
				if n.held[topic] == nil {
					n.held[topic] = map[int32]Position{}
				}
				end := s.ends[topic][p]
				n.held[topic][p] = Position{Next: end, End: end}
			}
		}
	}
}

// write appends records: by(topic, partition) of them to each partition.
func (s *sim) write(by func(topic string, p int32) int64) {
	for topic, ends := range s.ends {
		for p := range ends {
			ends[p] += by(topic, int32(p))
		}
	}
}

// checkTable checks what any table must satisfy. Two members of one node
// id (a node and its previous incarnation, see Table.Member) may be the
// owner and a standby of a partition; one member may not.
func checkTable(t *testing.T, tb *Table) {
	t.Helper()
	for topic, rs := range tb.routes {
		for p := range rs {
			owner, hasOwner := tb.Owner(topic, int32(p))
			standbys := tb.Standbys(topic, int32(p))
			for _, m := range standbys {
				if hasOwner && m == owner {
					t.Fatalf("%s/%d: %s (%s) is both active and standby", topic, p, m.NodeID, m.URL)
				}
				if !tb.IsStandby(m.NodeID, topic, int32(p)) {
					t.Fatalf("%s/%d: IsStandby(%s) is false", topic, p, m.NodeID)
				}
				if !slices.Contains(tb.StandbyPartitions(m.NodeID)[topic], int32(p)) {
					t.Fatalf("%s/%d: not in StandbyPartitions(%s)", topic, p, m.NodeID)
				}
			}
			if w, ok := tb.WarmingUp(topic, int32(p)); ok && !slices.Contains(standbys, w) {
				t.Fatalf("%s/%d: warm-up %s is not a standby", topic, p, w.NodeID)
			}
		}
	}
}

// dump writes a table as one line per partition, for failure messages.
func dump(tb *Table) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "generation %d\n", tb.Generation())
	for _, topic := range slices.Sorted(maps.Keys(tb.routes)) {
		for p := range tb.routes[topic] {
			owner, _ := tb.Owner(topic, int32(p))
			w, _ := tb.WarmingUp(topic, int32(p))
			var sb []string
			for _, m := range tb.Standbys(topic, int32(p)) {
				sb = append(sb, m.NodeID)
			}
			fmt.Fprintf(&b, "  %s/%d: active %q standbys %v warm-up %q\n", topic, p, owner.NodeID, sb, w.NodeID)
		}
	}
	return b.String()
}

// normalize drops empty topics and sorts partitions.
func normalize(m map[string][]int32) map[string][]int32 {
	out := map[string][]int32{}
	for t, ps := range m {
		if len(ps) > 0 {
			out[t] = slices.Sorted(slices.Values(ps))
		}
	}
	return out
}

// actives returns how many partitions each member owns in tb.
func actives(tb *Table) map[string]int {
	out := map[string]int{}
	for _, m := range tb.Members() {
		out[m.NodeID] += 0 // a member that owns nothing counts too
		for _, ps := range tb.Partitions(m.NodeID) {
			out[m.NodeID] += len(ps)
		}
	}
	return out
}

// spread returns the largest minus the smallest count of actives.
func spread(tb *Table) int {
	counts := slices.Collect(maps.Values(actives(tb)))
	return slices.Max(counts) - slices.Min(counts)
}

// owners counts the owned partitions of every topic, checking each owner.
func owners(t *testing.T, tb *Table, topics map[string]int32) int {
	t.Helper()
	c := 0
	for topic, n := range topics {
		for p := range n {
			m, ok := tb.Owner(topic, p)
			if !ok {
				continue
			}
			c++
			if want := "http://" + m.NodeID + ".example:7070"; m.URL != want {
				t.Errorf("owner of %s/%d is %+v, want URL %s", topic, p, m, want)
			}
			if mm, ok := tb.Member(m.NodeID); !ok || mm != m {
				t.Errorf("owner %+v of %s/%d is not a member of the table", m, topic, p)
			}
		}
	}
	return c
}

func TestBalanceThreeNodes(t *testing.T) {
	topics := map[string]int32{"t": 12}
	s := newSim(t, topics)
	nodes := simNodes(Config{}, "n1", "n2", "n3")
	tb, _ := s.round(nodes...)

	if tb.Generation() != 0 {
		t.Errorf("generation %d, want 0 (max member generation -1, plus 1)", tb.Generation())
	}
	if got := owners(t, tb, topics); got != 12 {
		t.Errorf("%d of 12 partitions have an owner", got)
	}
	want := []Member{nodes[0].bal.self, nodes[1].bal.self, nodes[2].bal.self}
	if !reflect.DeepEqual(tb.Members(), want) {
		t.Errorf("members %v, want %v", tb.Members(), want)
	}
	for _, n := range nodes {
		if len(n.owned["t"]) != 4 {
			t.Errorf("%s got %v, want 4 partitions", n.id(), n.owned)
		}
		if len(tb.StandbyPartitions(n.id())) != 0 {
			t.Errorf("%s holds standbys %v with Standbys 0", n.id(), tb.StandbyPartitions(n.id()))
		}
	}
}

// TestFreshGroupSpreadsEachTopic: nobody holds anything, so the partitions
// are spread evenly, in total and topic by topic.
func TestFreshGroupSpreadsEachTopic(t *testing.T) {
	topics := map[string]int32{"a": 12, "b": 5, "c": 1}
	s := newSim(t, topics)
	tb := s.settle(simNodes(Config{Standbys: 1}, "n1", "n2", "n3")...)[0]
	if got := owners(t, tb, topics); got != 18 {
		t.Fatalf("%d of 18 partitions have an owner", got)
	}
	if spread(tb) > 1 {
		t.Errorf("actives %v", actives(tb))
	}
	for _, topic := range []string{"a", "b"} {
		var counts []int
		for _, m := range tb.Members() {
			counts = append(counts, len(tb.Partitions(m.NodeID)[topic]))
		}
		if slices.Max(counts)-slices.Min(counts) > 1 {
			t.Errorf("topic %s spread %v", topic, counts)
		}
	}
	held := map[string]int{}
	for _, m := range tb.Members() {
		for _, ps := range tb.StandbyPartitions(m.NodeID) {
			held[m.NodeID] += len(ps)
		}
	}
	if c := slices.Collect(maps.Values(held)); slices.Max(c)-slices.Min(c) > 1 {
		t.Errorf("standbys held %v, want an even spread", held)
	}
}

// TestJoinersTakeEachTopicsShare: one node holds three topics; two more
// join, caught up (the topics are small). The moves that balance the
// totals also spread each topic: a store's queries reach every node, not
// one node per store.
func TestJoinersTakeEachTopicsShare(t *testing.T) {
	topics := map[string]int32{"orders": 12, "readings": 12, "sensors": 12}
	s := newSim(t, topics)
	cfg := Config{Standbys: 1, AcceptableLag: 10000}
	n1 := simNodes(cfg, "n1")
	tb := s.settle(n1...)[0]
	s.write(func(string, int32) int64 { return 400 })
	s.consume(tb, n1...)
	nodes := append(n1, simNodes(cfg, "n2", "n3")...)
	tables := s.settle(nodes...)
	tb = tables[len(tables)-1]
	if spread(tb) > 1 {
		t.Fatalf("actives %v:\n%s", actives(tb), dump(tb))
	}
	for topic := range topics {
		var counts []int
		for _, m := range tb.Members() {
			counts = append(counts, len(tb.Partitions(m.NodeID)[topic]))
		}
		if slices.Max(counts)-slices.Min(counts) > 1 {
			t.Errorf("topic %s spread %v over the members:\n%s", topic, counts, dump(tb))
		}
	}
}

// TestDeterministic: the same input gives the same assignments, byte for
// byte, whatever the order the members come in and however maps iterate.
func TestDeterministic(t *testing.T) {
	topics := map[string]int32{"a": 20, "b": 7, "c": 3}
	s := newSim(t, topics)
	cfg := Config{Standbys: 1, AcceptableLag: 5}
	nodes := simNodes(cfg, "n1", "n2", "n3")
	s.settle(nodes...)
	s.write(func(_ string, p int32) int64 { return int64(p) * 3 })
	s.consume(nodes[0].bal.Table(), nodes...)
	s.write(func(_ string, p int32) int64 { return int64(p % 4) })
	nodes = append(nodes, newSimNode("n4", cfg))
	nodes[3].held = Positions{"a": {1: {Next: 3, End: 3}, 2: {Next: 6, End: 6}}}

	members := s.joinMembers(nodes)
	want := balance(t, nodes[0].bal, members, topics)
	for i := range 20 {
		shuffled := slices.Clone(members)
		for j := range shuffled { // a fixed permutation per i
			k := (j*7 + i) % len(shuffled)
			shuffled[j], shuffled[k] = shuffled[k], shuffled[j]
		}
		if got := balance(t, nodes[i%4].bal, shuffled, topics); !reflect.DeepEqual(got, want) {
			t.Fatalf("run %d assigns differently", i)
		}
	}
}

func TestOnChange(t *testing.T) {
	n1 := newSimNode("n1", Config{})
	n1.gen = 4
	var seen []int32
	n1.bal.OnChange(func(tb *Table) { seen = append(seen, tb.Generation()) })
	newSim(t, map[string]int32{"t": 2}).round(n1)
	if !reflect.DeepEqual(seen, []int32{5}) {
		t.Errorf("OnChange saw generations %v, want [5]", seen)
	}
}

func TestJoinGroupMetadata(t *testing.T) {
	held := Positions{
		"a": {0: {Next: 10, End: 12}, 3: {Next: 0, End: -1}},
		"b": {1: {Next: 7, End: -5}, 2: {Next: -1, End: 9}},
		"c": {},
	}
	b := NewBalancer(Member{NodeID: "n1", URL: "http://n1"}, Config{Positions: func() Positions { return held }})
	for _, tc := range []struct {
		name    string
		topics  []string
		current map[string][]int32
		gen     int32
	}{
		{"fresh", []string{"b", "a"}, nil, -1},
		{"owning", []string{"a", "b"}, map[string][]int32{"b": {4, 1}, "a": {0, 2, 3}, "c": nil}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := b.JoinGroupMetadata(tc.topics, tc.current, tc.gen)
			if again := b.JoinGroupMetadata(tc.topics, tc.current, tc.gen); !bytes.Equal(got, again) {
				t.Fatal("JoinGroupMetadata is not deterministic")
			}
			var meta kmsg.ConsumerMemberMetadata
			meta.Default()
			if err := meta.ReadFrom(got); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(meta.Topics, []string{"a", "b"}) || meta.Generation != tc.gen {
				t.Errorf("topics %v generation %d", meta.Topics, meta.Generation)
			}
			owned := map[string][]int32{}
			for _, o := range meta.OwnedPartitions {
				if !slices.IsSorted(o.Partitions) {
					t.Errorf("owned %s %v not sorted", o.Topic, o.Partitions)
				}
				owned[o.Topic] = o.Partitions
			}
			if !reflect.DeepEqual(owned, normalize(tc.current)) {
				t.Errorf("owned %v, want %v", owned, tc.current)
			}
			self, positions, err := decodeJoin(meta.UserData)
			if err != nil {
				t.Fatal(err)
			}
			if self != b.self {
				t.Errorf("envelope carries %+v, want %+v", self, b.self)
			}
			// A Next below 0 is no position, an End below -1 unknown, and
			// a topic without positions is left out.
			want := Positions{
				"a": {0: {Next: 10, End: 12}, 3: {Next: 0, End: -1}},
				"b": {1: {Next: 7, End: -1}},
			}
			if !reflect.DeepEqual(positions, want) {
				t.Errorf("positions %v, want %v", positions, want)
			}
		})
	}
}

func TestTable(t *testing.T) {
	e := NewBalancer(Member{NodeID: "x"}, Config{}).Table()
	if e == nil || e.Generation() != -1 || len(e.Members()) != 0 || len(e.Partitions("x")) != 0 || len(e.StandbyPartitions("x")) != 0 {
		t.Fatalf("empty table: %+v", e)
	}
	if _, ok := e.Owner("t", 0); ok {
		t.Error("empty table has an owner")
	}
	if e.Standbys("t", 0) != nil {
		t.Error("empty table has standbys")
	}
	a, b, c := Member{"a", "http://a"}, Member{"b", "http://b"}, Member{"c", "http://c"}
	tb := &Table{generation: 3, acceptableLag: 9, members: []Member{a, b, c}, routes: map[string][]route{"t": {
		{owner: 1, standbys: []int32{2, 0}, warmup: 0},
		{owner: -1, standbys: []int32{0, 1}, warmup: -1}, // moving
		{owner: 0, warmup: -1},
		{owner: 1, standbys: []int32{0}, warmup: -1},
	}}}
	for _, tc := range []struct {
		topic    string
		p        int32
		owner    Member
		ok       bool
		standbys []Member
		warmup   Member
	}{
		{"t", 0, b, true, []Member{c, a}, a},
		{"t", 1, Member{}, false, []Member{a, b}, Member{}},
		{"t", 2, a, true, nil, Member{}},
		{"t", 3, b, true, []Member{a}, Member{}},
		{"t", 4, Member{}, false, nil, Member{}},
		{"t", -1, Member{}, false, nil, Member{}},
		{"u", 0, Member{}, false, nil, Member{}},
	} {
		if m, ok := tb.Owner(tc.topic, tc.p); m != tc.owner || ok != tc.ok {
			t.Errorf("Owner(%s, %d) = %+v, %v; want %+v, %v", tc.topic, tc.p, m, ok, tc.owner, tc.ok)
		}
		if got := tb.Standbys(tc.topic, tc.p); !reflect.DeepEqual(got, tc.standbys) {
			t.Errorf("Standbys(%s, %d) = %v, want %v", tc.topic, tc.p, got, tc.standbys)
		}
		if w, ok := tb.WarmingUp(tc.topic, tc.p); w != tc.warmup || ok != (tc.warmup != Member{}) {
			t.Errorf("WarmingUp(%s, %d) = %+v, %v", tc.topic, tc.p, w, ok)
		}
		for _, m := range []Member{a, b, c} {
			if got, want := tb.IsStandby(m.NodeID, tc.topic, tc.p), slices.Contains(tc.standbys, m); got != want {
				t.Errorf("IsStandby(%s, %s, %d) = %v", m.NodeID, tc.topic, tc.p, got)
			}
		}
	}
	if got := tb.Partitions("b"); !reflect.DeepEqual(got, map[string][]int32{"t": {0, 3}}) {
		t.Errorf("Partitions(b) = %v", got)
	}
	if got := tb.StandbyPartitions("a"); !reflect.DeepEqual(got, map[string][]int32{"t": {0, 1, 3}}) {
		t.Errorf("StandbyPartitions(a) = %v", got)
	}
	if got := tb.StandbyPartitions("x"); got == nil || len(got) != 0 {
		t.Errorf("StandbyPartitions(x) = %#v, want an empty map", got)
	}
	if tb.AcceptableLag() != 9 {
		t.Errorf("AcceptableLag() = %d", tb.AcceptableLag())
	}
	if m, ok := tb.Member("b"); !ok || m != b {
		t.Errorf("Member(b) = %+v, %v", m, ok)
	}
	if _, ok := tb.Member("x"); ok {
		t.Error("Member(x) found")
	}
	ms := tb.Members()
	ms[0].URL = "changed"
	sb := tb.Standbys("t", 0)
	sb[0].URL = "changed"
	if tb.members[0].URL != "http://a" || tb.members[2].URL != "http://c" {
		t.Error("Members or Standbys share the table's slice")
	}
}

// TestForeignMember: a member that joined under our protocol name without
// our envelope, or with another version's, is left out: the honest members
// are balanced as if it were not there, and it is in no table.
func TestForeignMember(t *testing.T) {
	s := newSim(t, map[string]int32{"t": 1})
	n1 := newSimNode("n1", Config{})
	for name, meta := range map[string][]byte{
		"cooperative-sticky": kgo.CooperativeStickyBalancer().JoinGroupMetadata([]string{"t"}, nil, -1),
		"iqengine version 1": func() []byte {
			m := kmsg.NewConsumerMemberMetadata()
			m.Topics = []string{"t"}
			m.UserData = append([]byte("IQJ\x01"), 2, 'n', '2', 0, 0)
			return m.AppendTo(nil)
		}(),
	} {
		members := s.joinMembers([]*simNode{n1})
		foreign := kmsg.NewJoinGroupResponseMember()
		foreign.MemberID = "n2-member"
		foreign.ProtocolMetadata = meta
		out := balance(t, n1.bal, append(members, foreign), map[string]int32{"t": 1})
		if len(out) != 1 || out[0].MemberID == "n2-member" {
			t.Errorf("%s: assignments for %d members, want n1's only", name, len(out))
		}
	}
	// Only foreign members: nothing to balance, which is an error.
	foreign := kmsg.NewJoinGroupResponseMember()
	foreign.MemberID = "x"
	foreign.ProtocolMetadata = kgo.CooperativeStickyBalancer().JoinGroupMetadata([]string{"t"}, nil, -1)
	if _, _, err := n1.bal.MemberBalancer([]kmsg.JoinGroupResponseMember{foreign}); err == nil {
		t.Error("a group of foreign members only was balanced")
	}
}
