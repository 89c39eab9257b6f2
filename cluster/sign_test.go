package cluster

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const testSecret = "a cluster secret of at least 32 characters"

// TestSignedGroup: with a cluster key, members whose join metadata the key
// does not sign are left out of the assignment and the table, and the honest
// members share every partition as if the others were not there.
func TestSignedGroup(t *testing.T) {
	topics := map[string]int32{"t": 6}
	key := NewKey(testSecret)
	honest := simNodes(Config{Key: key, Standbys: 1}, "n1", "n2")
	attackers := map[string]func() kmsg.JoinGroupResponseMember{
		"unsigned": func() kmsg.JoinGroupResponseMember {
			return joinOf(newSimNode("evil", Config{}), "evil", topics)
		},
		"another secret": func() kmsg.JoinGroupResponseMember {
			return joinOf(newSimNode("evil", Config{Key: NewKey(testSecret + "!")}), "evil", topics)
		},
		"a node's metadata, replayed under another instance id": func() kmsg.JoinGroupResponseMember {
			m := joinOf(honest[1], "evil", topics)
			return m
		},
		"a node's metadata with its tag cut": func() kmsg.JoinGroupResponseMember {
			m := joinOf(honest[1], "evil", topics)
			m.ProtocolMetadata = m.ProtocolMetadata[:len(m.ProtocolMetadata)-4]
			return m
		},
		"a tag over a forged URL": func() kmsg.JoinGroupResponseMember {
			m := kmsg.NewConsumerMemberMetadata()
			m.Version = 3
			m.Topics = []string{"t"}
			body := encodeJoin(Member{NodeID: "evil", URL: "http://attacker.example:80"}, nil)
			m.UserData = append(body, NewKey("guessed "+testSecret).MAC(purposeJoin, body)...)
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID, jm.InstanceID, jm.ProtocolMetadata = "evil-member", ptr("evil"), m.AppendTo(nil)
			return jm
		},
	}
	for name, attacker := range attackers {
		s := newSim(t, topics)
		members := append(s.joinMembers(honest), attacker())
		out := balance(t, honest[0].bal, members, topics)
		var tb *Table
		for _, a := range out {
			if a.MemberID == "evil-member" {
				t.Fatalf("%s: the attacker got an assignment", name)
			}
			n := honest[0]
			if a.MemberID == "n2-member" {
				n = honest[1]
			}
			if _, err := n.bal.ParseSyncAssignment(a.MemberAssignment); err != nil {
				t.Fatalf("%s: %s refused the signed table: %v", name, n.id(), err)
			}
			tb = n.bal.Table()
		}
		if len(out) != 2 {
			t.Fatalf("%s: %d assignments, want the two honest members'", name, len(out))
		}
		ids := []string{}
		for _, m := range tb.Members() {
			ids = append(ids, m.NodeID)
		}
		if !slices.Equal(ids, []string{"n1", "n2"}) {
			t.Errorf("%s: table members %v, want n1 and n2 only", name, ids)
		}
		for p := range int32(6) {
			if o, ok := tb.Owner("t", p); !ok || (o.NodeID != "n1" && o.NodeID != "n2") {
				t.Errorf("%s: partition %d owned by %+v", name, p, o)
			}
		}
	}
}

// TestSignedTable: a member with a cluster key takes only tables the key
// signs, and keeps its current one otherwise.
func TestSignedTable(t *testing.T) {
	topics := map[string]int32{"t": 2}
	s := newSim(t, topics)
	signed := simNodes(Config{Key: NewKey(testSecret)}, "n1")
	s.settle(signed...)
	before := signed[0].bal.Table()
	for name, leader := range map[string]*simNode{
		"unsigned leader":       newSimNode("n1", Config{}),
		"leader of another key": newSimNode("n1", Config{Key: NewKey(testSecret + "?")}),
	} {
		out := balance(t, leader.bal, s.joinMembers([]*simNode{leader}), topics)
		if _, err := signed[0].bal.ParseSyncAssignment(out[0].MemberAssignment); err == nil {
			t.Errorf("%s: its table was taken", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
		if signed[0].bal.Table() != before {
			t.Errorf("%s: the table changed", name)
		}
	}
}

// TestAdvertisedURLs: a member advertising anything but a node's base URL
// is left out, with or without a key.
func TestAdvertisedURLs(t *testing.T) {
	topics := map[string]int32{"t": 2}
	for _, url := range []string{
		"http://169.254.169.254/latest/meta-data/#",
		"http://169.254.169.254/latest/meta-data/",
		"http://user:pw@n2:7070",
		"http://n2:7070?x=1",
		"http://n2:7070#",
		"file:///etc/passwd",
		"gopher://n2:70",
		"n2:7070",
		"",
	} {
		s := newSim(t, topics)
		n1 := newSimNode("n1", Config{})
		evil := NewBalancer(Member{NodeID: "n2", URL: url}, Config{})
		m := kmsg.NewJoinGroupResponseMember()
		m.MemberID, m.InstanceID = "n2-member", ptr("n2")
		m.ProtocolMetadata = evil.JoinGroupMetadata([]string{"t"}, nil, -1)
		out := balance(t, n1.bal, append(s.joinMembers([]*simNode{n1}), m), topics)
		if len(out) != 1 || out[0].MemberID != "n1-member" {
			t.Errorf("%q: the member was balanced", url)
		}
	}
}

func joinOf(n *simNode, instance string, topics map[string]int32) kmsg.JoinGroupResponseMember {
	m := kmsg.NewJoinGroupResponseMember()
	m.MemberID, m.InstanceID = "evil-member", ptr(instance)
	names := []string{}
	for t := range topics {
		names = append(names, t)
	}
	m.ProtocolMetadata = n.bal.JoinGroupMetadata(names, nil, -1)
	return m
}

func ptr(s string) *string { return &s }
