package cluster

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// sampleTable has every kind of route: owned with standbys and a warm-up,
// moving (no owner, two standbys), owned alone; and an empty topic.
func sampleTable() *Table {
	return &Table{generation: 7, acceptableLag: 10_000,
		members: []Member{{"a", "http://a"}, {"b", "http://b"}, {"c", "http://c"}},
		routes: map[string][]route{
			"t": {
				{owner: 1, standbys: []int32{2, 0}, warmup: 0},
				{owner: -1, standbys: []int32{0, 1}, warmup: -1},
				{owner: 0, warmup: -1},
			},
			"u": {},
		}}
}

var samplePositions = Positions{
	"t": {0: {Next: 0, End: -1}, 2: {Next: 5, End: 3}, 7: {Next: math.MaxInt64, End: math.MaxInt64}},
	"u": {math.MaxInt32: {Next: 1 << 40, End: -1}},
}

func TestEnvelopeRoundTrip(t *testing.T) {
	self := Member{"n1", "http://n1:7070"}
	for _, positions := range []Positions{nil, samplePositions} {
		data := encodeJoin(self, positions)
		m, got, err := decodeJoin(data)
		if err != nil || m != self || !reflect.DeepEqual(got, positions) {
			t.Errorf("join: %+v %v %v, want %+v %v", m, got, err, self, positions)
		}
	}
	for _, tb := range []*Table{sampleTable(), {generation: math.MinInt32, routes: map[string][]route{}}} {
		got, err := decodeAssignment(encodeTable(tb))
		if err != nil || !reflect.DeepEqual(got, tb) {
			t.Errorf("assignment: %+v %v, want %+v", got, err, tb)
		}
	}
}

// validAssignment returns a real assignment of n1 in a two-node group with
// a standby per partition.
func validAssignment(t testing.TB) []byte {
	t.Helper()
	topics := map[string]int32{"t": 6, "u": 3}
	s := &sim{topics: topics}
	nodes := simNodes(Config{Standbys: 1}, "n1", "n2")
	return balance(t, nodes[0].bal, s.joinMembers(nodes), topics)[0].MemberAssignment
}

// TestGarbage: an assignment that is not exactly what a leader of this
// version writes is refused, and leaves the table in place.
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
	// ab is the start of an envelope of generation 0, acceptable lag 0,
	// members a and b, one topic t of one partition; each case ends it.
	ab := "IQA\x02\x00\x00\x02\x01a\x08http://a\x01b\x08http://b\x01\x01t\x01"
	cases := map[string][]byte{
		"nil":         nil,
		"junk":        []byte("not an assignment at all"),
		"no envelope": withUserData(nil),
		"other data":  withUserData([]byte("userdata")),
		"version 1":   withUserData(append([]byte("IQA\x01"), env[4:]...)),
		"version 3":   withUserData(append([]byte("IQA\x03"), env[4:]...)),
		"trailing":    withUserData(append(slices.Clone(env), 0)),

		"owner out of range":   withUserData([]byte(ab + "\x03\x00\x00")),
		"standby is owner":     withUserData([]byte(ab + "\x01\x01\x00\x00")),
		"standby twice":        withUserData([]byte(ab + "\x00\x02\x01\x01\x00")),
		"standby out of range": withUserData([]byte(ab + "\x00\x01\x02\x00")),
		"standbys beyond":      withUserData([]byte(ab + "\x00\x03\x00\x01\x00\x00")),
		"warm-up out of range": withUserData([]byte(ab + "\x01\x01\x01\x02")),
		"not shortest varint":  withUserData([]byte(ab + "\x81\x00\x00\x00")),
		"members unsorted":     withUserData([]byte("IQA\x02\x00\x00\x02\x01b\x08http://b\x01a\x08http://a\x00")),
		"members twice":        withUserData([]byte("IQA\x02\x00\x00\x02\x01a\x08http://a\x01a\x08http://a\x00")),
		"topics unsorted":      withUserData([]byte("IQA\x02\x00\x00\x00\x02\x01u\x00\x01t\x00")),
		"huge count":           withUserData([]byte("IQA\x02\x00\x00\xff\xff\xff\xff\x0f")),
		"overlong varint":      withUserData([]byte("IQA\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")),
		"generation range":     withUserData(binary.AppendVarint([]byte("IQA\x02"), 1<<40)),
		"acceptable lag range": withUserData(binary.AppendUvarint([]byte("IQA\x02\x00"), 1<<63)),
	}
	if _, err := decodeAssignment([]byte(ab + "\x01\x01\x01\x01")); err != nil {
		t.Fatalf("the cases' valid base: %v", err) // owner a, standby b warming up
	}
	for i := len(assignMagic); i < len(env); i++ {
		cases[fmt.Sprintf("envelope cut at %d", i)] = withUserData(env[:i])
	}
	for i := range len(valid) {
		cases[fmt.Sprintf("assignment cut at %d", i)] = valid[:i]
	}
	for name, data := range cases {
		b := NewBalancer(Member{NodeID: "n1"}, Config{})
		_, err := b.ParseSyncAssignment(data)
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		if b.Table() != emptyTable {
			t.Errorf("%s: table swapped", name)
		}
		if testing.Verbose() && len(data) < 40 {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, err := NewBalancer(Member{NodeID: "n1"}, Config{}).ParseSyncAssignment(valid); err != nil {
		t.Fatalf("valid assignment: %v", err)
	}
}

// TestGarbageJoin: a member whose join envelope is not exactly what a node
// of this version writes makes balancing fail.
func TestGarbageJoin(t *testing.T) {
	s := &sim{topics: map[string]int32{"t": 1}}
	n1, n2 := newSimNode("n1", Config{}), newSimNode("n2", Config{})
	n2.held = samplePositions
	good := s.joinMembers([]*simNode{n2})[0].ProtocolMetadata
	var meta kmsg.ConsumerMemberMetadata
	meta.Default()
	if err := meta.ReadFrom(good); err != nil {
		t.Fatal(err)
	}
	with := func(ud []byte) []byte {
		m := meta
		m.UserData = ud
		return m.AppendTo(nil)
	}
	env := meta.UserData
	// n is the start of an envelope of node "n", URL "http://n", up to its topic
	// count; each case ends it.
	n := "IQJ\x02\x01n\x08http://n"
	cases := map[string][]byte{
		"nil":                  nil,
		"not metadata":         {0, 3, 0xff},
		"trailing":             with(append(slices.Clone(env), 1)),
		"version 1":            with(append([]byte("IQJ\x01"), env[4:]...)),
		"topics unsorted":      with([]byte(n + "\x02\x01u\x01\x00\x00\x00\x01t\x01\x00\x00\x00")),
		"topic without any":    with([]byte(n + "\x01\x01t\x00")),
		"partitions unsorted":  with([]byte(n + "\x01\x01t\x02\x01\x00\x00\x00\x00\x00")),
		"partition twice":      with([]byte(n + "\x01\x01t\x02\x01\x00\x00\x01\x00\x00")),
		"partition range":      with(binary.AppendUvarint([]byte(n+"\x01\x01t\x01"), math.MaxInt32+1)),
		"next range":           with(binary.AppendUvarint([]byte(n+"\x01\x01t\x01\x00"), 1<<63)),
		"end below -1":         with([]byte(n + "\x01\x01t\x01\x00\x00\x03")),
		"end beyond":           with(binary.AppendVarint(binary.AppendUvarint([]byte(n+"\x01\x01t\x01\x00"), 10), math.MaxInt64-9)),
		"not shortest varint":  with([]byte(n + "\x01\x01t\x01\x80\x00\x00\x00")),
		"huge topic count":     with([]byte(n + "\xff\xff\xff\xff\x0f")),
		"huge partition count": with([]byte(n + "\x01\x01t\xff\xff\x03")),
	}
	if _, _, err := decodeJoin([]byte(n + "\x01\x01t\x01\x00\x00\x01")); err != nil {
		t.Fatalf("the cases' valid base: %v", err) // t/0 at next 0, end −1 (end − next is zigzag 1)
	}
	for i := range len(env) {
		cases[fmt.Sprintf("cut at %d", i)] = with(env[:i])
	}
	for name, md := range cases {
		foreign := kmsg.NewJoinGroupResponseMember()
		foreign.MemberID = "x"
		foreign.ProtocolMetadata = md
		_, err := n1.bal.readJoin(&foreign)
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if testing.Verbose() && len(md) < 60 {
			t.Logf("%s: %v", name, err)
		}
	}
}

// FuzzDecodeJoin: decoding another member's join envelope never panics,
// and what decodes encodes back to the same bytes (one encoding per value:
// the decoder is exactly as strict as the encoder).
func FuzzDecodeJoin(f *testing.F) {
	f.Add(encodeJoin(Member{"n1", "http://n1"}, nil))
	f.Add(encodeJoin(Member{"n1", "http://n1"}, samplePositions))
	f.Add([]byte("IQJ\x02\x01n\x08http://n\x01\x01t\x01\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, positions, err := decodeJoin(data)
		if err != nil {
			return
		}
		if again := encodeJoin(m, positions); !bytes.Equal(again, data) {
			t.Fatalf("decoded %+v %v, which encodes to %q, not %q", m, positions, again, data)
		}
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Topics = []string{"t"}
		meta.UserData = data
		members := []kmsg.JoinGroupResponseMember{{MemberID: "m", ProtocolMetadata: meta.AppendTo(nil)}}
		bal := NewBalancer(Member{NodeID: "n1"}, Config{Standbys: 1})
		balance(t, bal, members, map[string]int32{"t": 3})
	})
}

// FuzzDecodeAssignment: decoding an assignment's table never panics, what
// decodes encodes back to the same bytes, and the decoded table answers
// every question without panicking.
func FuzzDecodeAssignment(f *testing.F) {
	valid := validAssignment(f)
	var a kmsg.ConsumerMemberAssignment
	a.Default()
	if err := a.ReadFrom(valid); err != nil {
		f.Fatal(err)
	}
	f.Add(a.UserData)
	f.Add(encodeTable(sampleTable()))
	f.Add([]byte("IQA\x02\x00\x00\x02\x01a\x08http://a\x01b\x08http://b\x01\x01t\x01\x01\x01\x01\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := decodeAssignment(data)
		if err != nil {
			return
		}
		if again := encodeTable(tb); !bytes.Equal(again, data) {
			t.Fatalf("decoded %+v, which encodes to %q, not %q", tb, again, data)
		}
		for topic, rs := range tb.routes {
			for p := range len(rs) + 1 {
				tb.Owner(topic, int32(p))
				tb.Standbys(topic, int32(p))
				tb.WarmingUp(topic, int32(p))
			}
		}
		for _, m := range tb.Members() {
			tb.Partitions(m.NodeID)
			tb.StandbyPartitions(m.NodeID)
		}
		checkTable(t, tb)
		a.UserData = data
		if _, err := NewBalancer(Member{NodeID: "n1"}, Config{}).ParseSyncAssignment(a.AppendTo(nil)); err != nil {
			t.Fatalf("a table that decodes is refused in an assignment: %v", err)
		}
	})
}
