package cluster

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// joiner is one member's input to a hand-run rebalance.
type joiner struct {
	bal     *Balancer
	current map[string][]int32
	gen     int32
}

func node(id string) *Balancer {
	return NewBalancer(Member{NodeID: id, URL: "http://" + id + ".example:7070"})
}

// joinMembers builds the JoinGroup response members as the broker would hand
// them to the leader: sorted by instance id (our node ids).
func joinMembers(t testing.TB, topics []string, js []joiner, meta func(joiner) []byte) []kmsg.JoinGroupResponseMember {
	t.Helper()
	var out []kmsg.JoinGroupResponseMember
	for _, j := range js {
		m := kmsg.NewJoinGroupResponseMember()
		id := j.bal.self.NodeID
		m.InstanceID = &id
		m.MemberID = id + "-member"
		m.ProtocolMetadata = meta(j)
		out = append(out, m)
	}
	return out
}

func ourMeta(topics []string) func(joiner) []byte {
	return func(j joiner) []byte { return j.bal.JoinGroupMetadata(topics, j.current, j.gen) }
}

func plainMeta(topics []string) func(joiner) []byte {
	return func(j joiner) []byte {
		return kgo.CooperativeStickyBalancer().JoinGroupMetadata(topics, j.current, j.gen)
	}
}

// balance runs a leader's balance as kgo does.
func balance(t testing.TB, leader kgo.GroupBalancer, members []kmsg.JoinGroupResponseMember, topics map[string]int32) []kmsg.SyncGroupRequestGroupAssignment {
	t.Helper()
	mb, _, err := leader.MemberBalancer(members)
	if err != nil {
		t.Fatalf("MemberBalancer: %v", err)
	}
	var into kgo.IntoSyncAssignment
	if mbe, ok := mb.(kgo.GroupMemberBalancerOrError); ok {
		into, err = mbe.BalanceOrError(topics)
		if err != nil {
			t.Fatalf("BalanceOrError: %v", err)
		}
	} else {
		into = mb.Balance(topics)
	}
	return into.IntoSyncAssignment()
}

// round runs one rebalance with our balancers (the first joiner leads),
// feeds each member its assignment, and checks that every member now holds
// the same table, which agrees with each member's assignment. It returns
// each member's parsed assignment and the common table.
//
// With a single topic it also runs plain cooperative-sticky on the same
// input and checks that ours assigns exactly the same. (With several topics
// cooperative-sticky breaks ties in map order, so two runs of it on the same
// input can differ.)
func round(t *testing.T, js []joiner, topics map[string]int32) ([]map[string][]int32, *Table) {
	t.Helper()
	var names []string
	for topic := range topics {
		names = append(names, topic)
	}
	slices.Sort(names)

	ours := balance(t, js[0].bal, joinMembers(t, names, js, ourMeta(names)), topics)
	var plain []kmsg.SyncGroupRequestGroupAssignment
	if len(topics) == 1 {
		plain = balance(t, kgo.CooperativeStickyBalancer(), joinMembers(t, names, js, plainMeta(names)), topics)
		if len(plain) != len(js) {
			t.Fatalf("%d assignments with cooperative-sticky for %d members", len(plain), len(js))
		}
	}
	if len(ours) != len(js) {
		t.Fatalf("%d assignments for %d members", len(ours), len(js))
	}
	var assigned []map[string][]int32
	var table *Table
	for i, j := range js {
		if want := j.bal.self.NodeID + "-member"; ours[i].MemberID != want {
			t.Fatalf("assignment %d is for %s, want %s", i, ours[i].MemberID, want)
		}
		got, err := j.bal.ParseSyncAssignment(ours[i].MemberAssignment)
		if err != nil {
			t.Fatalf("%s: ParseSyncAssignment: %v", j.bal.self.NodeID, err)
		}
		if plain != nil {
			want, err := kgo.ParseConsumerSyncAssignment(plain[i].MemberAssignment)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normalize(got), normalize(want)) {
				t.Errorf("%s: assigned %v, cooperative-sticky assigns %v", j.bal.self.NodeID, got, want)
			}
		}
		assigned = append(assigned, got)
		tb := j.bal.Table()
		if table == nil {
			table = tb
		} else if !reflect.DeepEqual(tb, table) {
			t.Errorf("%s holds a different table than %s", j.bal.self.NodeID, js[0].bal.self.NodeID)
		}
		if !reflect.DeepEqual(normalize(tb.Partitions(j.bal.self.NodeID)), normalize(got)) {
			t.Errorf("%s: table says it owns %v, its assignment is %v", j.bal.self.NodeID, tb.Partitions(j.bal.self.NodeID), got)
		}
	}
	return assigned, table
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

// owned counts the owned partitions of a topic and checks each owner's URL.
func owned(t *testing.T, tb *Table, topic string, n int32) int {
	t.Helper()
	c := 0
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
	return c
}

func TestBalanceThreeNodes(t *testing.T) {
	n1, n2, n3 := node("n1"), node("n2"), node("n3")
	js := []joiner{{n1, nil, -1}, {n2, nil, -1}, {n3, nil, -1}}
	assigned, tb := round(t, js, map[string]int32{"t": 12})

	if tb.Generation() != 0 {
		t.Errorf("generation %d, want 0 (max member generation -1, plus 1)", tb.Generation())
	}
	if got := owned(t, tb, "t", 12); got != 12 {
		t.Errorf("%d of 12 partitions have an owner", got)
	}
	want := []Member{n1.self, n2.self, n3.self}
	if !reflect.DeepEqual(tb.Members(), want) {
		t.Errorf("members %v, want %v", tb.Members(), want)
	}
	for i, a := range assigned {
		if len(a["t"]) != 4 {
			t.Errorf("%s got %v, want 4 partitions", js[i].bal.self.NodeID, a)
		}
		for _, p := range a["t"] {
			if m, _ := tb.Owner("t", p); m != js[i].bal.self {
				t.Errorf("t/%d: owner %+v, assigned to %s", p, m, js[i].bal.self.NodeID)
			}
		}
	}
}

// TestCooperativeRounds checks a fourth node joining: the first round moves
// partitions away (they have no owner in that generation), the second gives
// them to the new node.
func TestCooperativeRounds(t *testing.T) {
	for _, topics := range []map[string]int32{
		{"a": 12},
		{"a": 12, "b": 5},
	} {
		t.Run(fmt.Sprint(topics), func(t *testing.T) {
			total := 0
			for _, n := range topics {
				total += int(n)
			}
			ownedAll := func(tb *Table) int {
				c := 0
				for topic, n := range topics {
					c += owned(t, tb, topic, n)
				}
				return c
			}
			n1, n2, n3, n4 := node("n1"), node("n2"), node("n3"), node("n4")
			js := []joiner{{n1, nil, -1}, {n2, nil, -1}, {n3, nil, -1}}
			a1, t1 := round(t, js, topics)
			if ownedAll(t1) != total {
				t.Fatal("first assignment leaves partitions without owner")
			}

			// n4 joins; the others report what they own at generation 1.
			js = []joiner{{n1, a1[0], 1}, {n2, a1[1], 1}, {n3, a1[2], 1}, {n4, nil, -1}}
			a2, t2 := round(t, js, topics)
			if t2.Generation() != 2 {
				t.Errorf("generation %d, want 2", t2.Generation())
			}
			if len(t2.Partitions("n4")) != 0 {
				t.Errorf("n4 owns %v in the revoking round", t2.Partitions("n4"))
			}
			for i := range 3 {
				for topic, ps := range a2[i] {
					for _, p := range ps {
						if !slices.Contains(a1[i][topic], p) {
							t.Errorf("%s gains %s/%d in the revoking round", js[i].bal.self.NodeID, topic, p)
						}
					}
				}
			}
			moving := total - ownedAll(t2)
			if moving == 0 {
				t.Error("no partition is moving in the revoking round")
			}
			if len(t2.Members()) != 4 {
				t.Errorf("members %v, want 4 (n4 is a member that owns nothing yet)", t2.Members())
			}

			js = []joiner{{n1, a2[0], 2}, {n2, a2[1], 2}, {n3, a2[2], 2}, {n4, a2[3], 2}}
			_, t3 := round(t, js, topics)
			if got := ownedAll(t3); got != total {
				t.Errorf("%d of %d partitions have an owner after the second round", got, total)
			}
			n := 0
			for _, ps := range t3.Partitions("n4") {
				n += len(ps)
			}
			if n != moving {
				t.Errorf("n4 owns %d partitions, %d were moving", n, moving)
			}
		})
	}
}

func TestJoinGroupMetadata(t *testing.T) {
	b := node("n1")
	for _, tc := range []struct {
		name    string
		topics  []string
		current map[string][]int32
		gen     int32
	}{
		{"fresh", []string{"a", "b"}, nil, -1},
		{"owning", []string{"a", "b"}, map[string][]int32{"b": {1, 4}, "a": {0, 2, 3}}, 7},
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
			self, inner, err := decodeJoin(meta.UserData)
			if err != nil {
				t.Fatal(err)
			}
			if self != b.self {
				t.Errorf("envelope carries %+v, want %+v", self, b.self)
			}
			meta.UserData = inner
			want := kgo.CooperativeStickyBalancer().JoinGroupMetadata(tc.topics, tc.current, tc.gen)
			if !bytes.Equal(meta.AppendTo(nil), want) {
				t.Error("unwrapped metadata differs from cooperative-sticky's")
			}
		})
	}
}

func TestTable(t *testing.T) {
	e := NewBalancer(Member{NodeID: "x"}).Table()
	if e == nil || e.Generation() != -1 || len(e.Members()) != 0 || len(e.Partitions("x")) != 0 {
		t.Fatalf("empty table: %+v", e)
	}
	if _, ok := e.Owner("t", 0); ok {
		t.Error("empty table has an owner")
	}
	a, b := Member{"a", "http://a"}, Member{"b", "http://b"}
	tb := &Table{generation: 3, members: []Member{a, b}, owners: map[string][]int32{"t": {1, -1, 0, 1}}}
	for _, tc := range []struct {
		topic string
		p     int32
		want  Member
		ok    bool
	}{
		{"t", 0, b, true},
		{"t", 1, Member{}, false},
		{"t", 2, a, true},
		{"t", 4, Member{}, false},
		{"t", -1, Member{}, false},
		{"u", 0, Member{}, false},
	} {
		if m, ok := tb.Owner(tc.topic, tc.p); m != tc.want || ok != tc.ok {
			t.Errorf("Owner(%s, %d) = %+v, %v; want %+v, %v", tc.topic, tc.p, m, ok, tc.want, tc.ok)
		}
	}
	if got := tb.Partitions("b"); !reflect.DeepEqual(got, map[string][]int32{"t": {0, 3}}) {
		t.Errorf("Partitions(b) = %v", got)
	}
	if m, ok := tb.Member("b"); !ok || m != b {
		t.Errorf("Member(b) = %+v, %v", m, ok)
	}
	if _, ok := tb.Member("c"); ok {
		t.Error("Member(c) found")
	}
	ms := tb.Members()
	ms[0].URL = "changed"
	if tb.members[0].URL != "http://a" {
		t.Error("Members shares the table's slice")
	}
}

func TestOnChange(t *testing.T) {
	n1 := node("n1")
	var seen []int32
	n1.OnChange(func(tb *Table) { seen = append(seen, tb.Generation()) })
	round(t, []joiner{{n1, nil, 4}}, map[string]int32{"t": 2})
	if !reflect.DeepEqual(seen, []int32{5}) {
		t.Errorf("OnChange saw generations %v, want [5]", seen)
	}
}

// TestForeignMember: a member that joined under our protocol name without
// our envelope makes balancing fail.
func TestForeignMember(t *testing.T) {
	n1, n2 := node("n1"), node("n2")
	topics := []string{"t"}
	members := joinMembers(t, topics, []joiner{{n1, nil, -1}}, ourMeta(topics))
	members = append(members, joinMembers(t, topics, []joiner{{n2, nil, -1}}, plainMeta(topics))...)
	if _, _, err := n1.MemberBalancer(members); err == nil {
		t.Fatal("a member without envelope was balanced")
	}
}

// validAssignment returns a real assignment of n1 in a two-node group.
func validAssignment(t testing.TB) []byte {
	t.Helper()
	n1, n2 := node("n1"), node("n2")
	topics := []string{"t", "u"}
	members := joinMembers(t, topics, []joiner{{n1, nil, -1}, {n2, nil, -1}}, ourMeta(topics))
	return balance(t, n1, members, map[string]int32{"t": 6, "u": 3})[0].MemberAssignment
}

func TestGarbage(t *testing.T) {
	valid := validAssignment(t)
	var a kmsg.ConsumerMemberAssignment
	a.Default()
	if err := a.ReadFrom(valid); err != nil {
		t.Fatal(err)
	}
	env := a.UserData
	withUserData := func(ud []byte) []byte {
		c := a
		c.UserData = ud
		return c.AppendTo(nil)
	}
	cases := map[string][]byte{
		"nil":         nil,
		"junk":        []byte("not an assignment at all"),
		"no envelope": withUserData(nil),
		"other data":  withUserData([]byte("userdata")),
		"version 2":   withUserData(append([]byte("IQA\x02"), env[4:]...)),
		"trailing":    withUserData(append(slices.Clone(env), 0)),
		// Generation 0, one member "a"/"", one topic "t" of one
		// partition owned by member 2 (of 1), nil inner data.
		"owner out of range": withUserData([]byte("IQA\x01\x00\x01\x01a\x00\x01\x01t\x01\x02\x00")),
		"members unsorted":   withUserData([]byte("IQA\x01\x00\x02\x01b\x00\x01a\x00\x00\x00")),
		"huge count":         withUserData([]byte("IQA\x01\x00\xff\xff\xff\xff\x0f")),
		"overlong varint":    withUserData([]byte("IQA\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")),
		"generation range":   withUserData(binary.AppendVarint([]byte("IQA\x01"), 1<<40)),
	}
	for i := len(assignMagic); i < len(env); i++ {
		cases[fmt.Sprintf("envelope cut at %d", i)] = withUserData(env[:i])
	}
	for i := range len(valid) {
		cases[fmt.Sprintf("assignment cut at %d", i)] = valid[:i]
	}
	for name, data := range cases {
		b := node("n1")
		if _, err := b.ParseSyncAssignment(data); err == nil {
			t.Errorf("%s: no error", name)
		}
		if b.Table() != emptyTable {
			t.Errorf("%s: table swapped", name)
		}
	}
	if _, err := node("n1").ParseSyncAssignment(valid); err != nil {
		t.Fatalf("valid assignment: %v", err)
	}
}

func TestGarbageJoin(t *testing.T) {
	n1, n2 := node("n1"), node("n2")
	topics := []string{"t"}
	good := n2.JoinGroupMetadata(topics, map[string][]int32{"t": {1}}, 3)
	var meta kmsg.ConsumerMemberMetadata
	meta.Default()
	if err := meta.ReadFrom(good); err != nil {
		t.Fatal(err)
	}
	env := meta.UserData
	var cases [][]byte
	for i := range len(env) {
		m := meta
		m.UserData = env[:i]
		cases = append(cases, m.AppendTo(nil))
	}
	m := meta
	m.UserData = append(slices.Clone(env), 1)
	cases = append(cases, m.AppendTo(nil), nil, []byte{0, 3, 0xff})
	for i, md := range cases {
		members := joinMembers(t, topics, []joiner{{n1, nil, -1}}, ourMeta(topics))
		foreign := kmsg.NewJoinGroupResponseMember()
		foreign.MemberID = "x"
		foreign.ProtocolMetadata = md
		members = append(members, foreign)
		if _, _, err := n1.MemberBalancer(members); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
}

func FuzzDecode(f *testing.F) {
	valid := validAssignment(f)
	var a kmsg.ConsumerMemberAssignment
	a.Default()
	_ = a.ReadFrom(valid)
	f.Add(valid)
	f.Add(a.UserData)
	f.Add(encodeJoin(Member{"n1", "http://n1"}, []byte{1, 2}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, inner, err := decodeJoin(data); err == nil {
			if m2, inner2, err := decodeJoin(encodeJoin(m, inner)); err != nil || m2 != m || !bytes.Equal(inner2, inner) {
				t.Fatalf("join envelope does not round-trip: %v", err)
			}
		}
		if tb, inner, err := decodeAssignment(data); err == nil {
			tb2, inner2, err := decodeAssignment(appendNullableBytes(encodeTable(tb), inner))
			if err != nil || !reflect.DeepEqual(tb, tb2) || !bytes.Equal(inner, inner2) {
				t.Fatalf("assignment envelope does not round-trip: %v", err)
			}
		}
		_, _ = node("n1").ParseSyncAssignment(data)
		members := []kmsg.JoinGroupResponseMember{{MemberID: "m", ProtocolMetadata: data}}
		_, _, _ = node("n1").MemberBalancer(members)
	})
}
