package cluster

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"

	"github.com/iqengine/iqengine/internal/nodeurl"
)

// The envelopes travel in the UserData of the consumer protocol's join
// metadata and assignment. Both are binary; integers are varints
// (encoding/binary) in their shortest form, and a string is a uvarint length
// and its bytes.
//
// Join envelope (kmsg.ConsumerMemberMetadata.UserData):
//
//	magic "IQJ\x02"
//	string  node id
//	string  URL
//	uvarint topic count, then per topic (strictly increasing by name):
//	        string name, uvarint partition count (at least 1), then per
//	        partition (strictly increasing): uvarint partition,
//	        uvarint next, varint end − next (end ≥ -1)
//
// Assignment envelope (kmsg.ConsumerMemberAssignment.UserData):
//
//	magic "IQA\x02"
//	varint  generation (int32)
//	uvarint acceptable lag
//	uvarint member count, then per member: string node id, string URL
//	        (strictly increasing by node id, then URL)
//	uvarint topic count, then per topic (strictly increasing by name):
//	        string name, uvarint partition count, then per partition:
//	        uvarint owner: 0 for none, i+1 for members[i]
//	        uvarint standby count, then each standby's member index
//	                (distinct, not the owner; in the router's order)
//	        uvarint warm-up: 0 for none, j+1 for the j-th standby
//
// Nothing may follow, and the decoders accept exactly what the encoders
// write, so decoding and encoding again gives the same bytes. Other members'
// metadata is untrusted input: every count is bounded by the bytes left.
//
// The last byte of a magic is the format version. Every node of a group must
// run the same one (iqengine is pre-1.0: no version reads another's): a
// member of another version makes the leader's balance fail with an error
// naming the versions, and a member refuses an assignment of another
// version, as for a client that is not iqengine at all.
//
// Sizes: a partition costs 4 bytes in the table with one standby (a
// 1,000-partition topic over three nodes about 4 KB, plus the members'
// names and URLs; TestAssignmentSize logs it), and about 6 to 12 bytes in
// the join metadata of each member that holds it.
var (
	joinMagic   = []byte("IQJ\x02")
	assignMagic = []byte("IQA\x02")
)

// errNoEnvelope says that a UserData does not carry our envelope at all: the
// peer is not an iqengine node.
var errNoEnvelope = errors.New("no iqengine envelope (a client that does not run iqengine's balancer uses its protocol name?)")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// validPosition reports whether a position goes into the join metadata,
// and returns it with an End below -1 counted as unknown.
func validPosition(p int32, pos Position) (Position, bool) {
	if p < 0 || pos.Next < 0 {
		return Position{}, false
	}
	pos.End = max(pos.End, -1)
	return pos, true
}

// encodeJoin returns the join envelope of self holding positions. Invalid
// positions (see Position) and topics left without one are left out.
func encodeJoin(self Member, positions Positions) []byte {
	b := slices.Clone(joinMagic)
	b = appendString(b, self.NodeID)
	b = appendString(b, self.URL)
	type entry struct {
		p   int32
		pos Position
	}
	var topics []string
	held := map[string][]entry{}
	for topic, ps := range positions {
		var es []entry
		for p, pos := range ps {
			if pos, ok := validPosition(p, pos); ok {
				es = append(es, entry{p, pos})
			}
		}
		if len(es) > 0 {
			slices.SortFunc(es, func(a, b entry) int { return cmp.Compare(a.p, b.p) })
			topics = append(topics, topic)
			held[topic] = es
		}
	}
	slices.Sort(topics)
	b = binary.AppendUvarint(b, uint64(len(topics)))
	for _, topic := range topics {
		b = appendString(b, topic)
		es := held[topic]
		b = binary.AppendUvarint(b, uint64(len(es)))
		for _, e := range es {
			b = binary.AppendUvarint(b, uint64(e.p))
			b = binary.AppendUvarint(b, uint64(e.pos.Next))
			// In range: end − next is in [-1 − MaxInt64, MaxInt64].
			b = binary.AppendVarint(b, e.pos.End-e.pos.Next)
		}
	}
	return b
}

// decodeJoin returns the member and the positions of a join envelope. The
// positions are nil when it holds none.
func decodeJoin(data []byte) (Member, Positions, error) {
	r, err := newReader(data, joinMagic)
	if err != nil {
		return Member{}, nil, err
	}
	m := Member{NodeID: r.string(), URL: r.string()}
	if r.err == nil {
		if err := nodeurl.Check(m.URL); err != nil {
			r.fail("member %s advertises %v", strconv.Quote(m.NodeID), err)
		}
	}
	positions := r.positions()
	if err := r.end(); err != nil {
		return Member{}, nil, fmt.Errorf("join envelope: %w", err)
	}
	return m, positions, nil
}

// encodeTable returns the assignment envelope of t.
func encodeTable(t *Table) []byte {
	b := slices.Clone(assignMagic)
	b = binary.AppendVarint(b, int64(t.generation))
	b = binary.AppendUvarint(b, uint64(t.acceptableLag))
	b = binary.AppendUvarint(b, uint64(len(t.members)))
	for _, m := range t.members {
		b = appendString(b, m.NodeID)
		b = appendString(b, m.URL)
	}
	topics := slices.Sorted(maps.Keys(t.routes))
	b = binary.AppendUvarint(b, uint64(len(topics)))
	for _, topic := range topics {
		b = appendString(b, topic)
		rs := t.routes[topic]
		b = binary.AppendUvarint(b, uint64(len(rs)))
		for _, r := range rs {
			b = binary.AppendUvarint(b, uint64(r.owner+1))
			b = binary.AppendUvarint(b, uint64(len(r.standbys)))
			warmup := 0
			for j, idx := range r.standbys {
				b = binary.AppendUvarint(b, uint64(idx))
				if idx == r.warmup {
					warmup = j + 1
				}
			}
			b = binary.AppendUvarint(b, uint64(warmup))
		}
	}
	return b
}

// decodeAssignment returns the table of an assignment envelope.
func decodeAssignment(data []byte) (*Table, error) {
	r, err := newReader(data, assignMagic)
	if err != nil {
		return nil, err
	}
	t := r.table()
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("assignment envelope: %w", err)
	}
	return t, nil
}

// reader decodes an envelope. The first error sticks: later reads return
// zero values, and end reports it.
type reader struct {
	b   []byte
	err error
}

func newReader(data, magic []byte) (*reader, error) {
	if len(data) < len(magic) || string(data[:len(magic)-1]) != string(magic[:len(magic)-1]) {
		return nil, errNoEnvelope
	}
	if v := data[len(magic)-1]; v != magic[len(magic)-1] {
		return nil, fmt.Errorf("iqengine envelope version %d, this node understands %d only (every node of a group must run the same iqengine version)", v, magic[len(magic)-1])
	}
	return &reader{b: data[len(magic):]}, nil
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("truncated or overlong varint")
		return 0
	}
	if n != len(binary.AppendUvarint(nil, v)) {
		r.fail("varint not in its shortest form")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("truncated or overlong varint")
		return 0
	}
	if n != len(binary.AppendVarint(nil, v)) {
		r.fail("varint not in its shortest form")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// upTo reads a uvarint that must not exceed limit; what names it in the
// error (a format and its arguments, formatted only on failure).
func (r *reader) upTo(limit uint64, what string, args ...any) uint64 {
	v := r.uvarint()
	if r.err == nil && v > limit {
		r.fail("%s %d out of range (at most %d)", fmt.Sprintf(what, args...), v, limit)
		return 0
	}
	return v
}

// count reads a length or element count. Every element takes at least one
// byte, so a count beyond the remaining bytes is corrupt; this bounds every
// allocation by the input size.
func (r *reader) count(what string) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.fail("%s %d exceeds the %d bytes left", what, n, len(r.b))
		return 0
	}
	return int(n)
}

func (r *reader) take(n int) []byte {
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) string() string {
	n := r.count("string length")
	if r.err != nil {
		return ""
	}
	return string(r.take(n))
}

// sortedTopic reads the next topic name of a strictly increasing list.
func (r *reader) sortedTopic(i int, prev string) string {
	topic := r.string()
	if r.err == nil && i > 0 && topic <= prev {
		r.fail("topics not strictly sorted at %q", topic)
	}
	return topic
}

func (r *reader) positions() Positions {
	nt := r.count("topic count")
	if r.err != nil || nt == 0 {
		return nil
	}
	out := make(Positions, nt)
	prev := ""
	for i := 0; i < nt && r.err == nil; i++ {
		topic := r.sortedTopic(i, prev)
		prev = topic
		np := r.count("partition count")
		if r.err == nil && np == 0 {
			r.fail("topic %q without partitions", topic)
		}
		if r.err != nil {
			break
		}
		ps := make(map[int32]Position, np)
		last := int64(-1)
		for j := 0; j < np && r.err == nil; j++ {
			p := int64(r.upTo(math.MaxInt32, "topic %q: partition", topic))
			next := int64(r.upTo(math.MaxInt64, "topic %q partition %d: next offset", topic, p))
			d := r.varint()
			if r.err != nil {
				break
			}
			if p <= last {
				r.fail("topic %q: partitions not strictly sorted at %d", topic, p)
			}
			// end = next + d must be in [-1, MaxInt64]; next ≥ 0 keeps
			// both bounds free of overflow.
			if d < -1-next || d > math.MaxInt64-next {
				r.fail("topic %q partition %d: end out of range", topic, p)
			}
			last = p
			ps[int32(p)] = Position{Next: next, End: next + d}
		}
		out[topic] = ps
	}
	return out
}

func (r *reader) table() *Table {
	t := &Table{routes: map[string][]route{}}
	gen := r.varint()
	if gen < math.MinInt32 || gen > math.MaxInt32 {
		r.fail("generation %d out of range", gen)
	}
	t.generation = int32(gen)
	t.acceptableLag = int64(r.upTo(math.MaxInt64, "acceptable lag"))
	nm := r.count("member count")
	if r.err != nil {
		return nil
	}
	if nm > 0 {
		t.members = make([]Member, 0, nm)
	}
	for i := 0; i < nm && r.err == nil; i++ {
		m := Member{NodeID: r.string(), URL: r.string()}
		if i > 0 && compareMembers(t.members[i-1], m) >= 0 {
			r.fail("members not strictly sorted at %d", i)
		}
		if err := nodeurl.Check(m.URL); r.err == nil && err != nil {
			r.fail("member %s advertises %v", strconv.Quote(m.NodeID), err)
		}
		t.members = append(t.members, m)
	}
	nt := r.count("topic count")
	prev := ""
	for i := 0; i < nt && r.err == nil; i++ {
		topic := r.sortedTopic(i, prev)
		prev = topic
		np := r.count("partition count")
		if np > math.MaxInt32 {
			r.fail("partition count %d out of range", np)
		}
		if r.err != nil {
			break
		}
		rs := make([]route, np)
		for p := range rs {
			rs[p] = r.route(topic, p, len(t.members))
		}
		t.routes[topic] = rs
	}
	if r.err != nil {
		return nil
	}
	return t
}

// route reads one partition's route in a table of nm members.
func (r *reader) route(topic string, p, nm int) route {
	rt := noRoute
	rt.owner = int32(r.upTo(uint64(nm), "topic %q partition %d: owner", topic, p)) - 1
	ns := r.count("standby count")
	if r.err == nil && ns > nm {
		r.fail("topic %q partition %d: %d standbys of %d members", topic, p, ns, nm)
	}
	if r.err != nil {
		return noRoute
	}
	if ns > 0 {
		rt.standbys = make([]int32, 0, ns)
	}
	for range ns {
		idx := int32(r.upTo(uint64(nm-1), "topic %q partition %d: standby", topic, p))
		if r.err != nil {
			return noRoute
		}
		if idx == rt.owner || slices.Contains(rt.standbys, idx) {
			r.fail("topic %q partition %d: member %d is the owner or twice a standby", topic, p, idx)
			return noRoute
		}
		rt.standbys = append(rt.standbys, idx)
	}
	if w := r.upTo(uint64(ns), "topic %q partition %d: warm-up", topic, p); w > 0 {
		rt.warmup = rt.standbys[w-1]
	}
	if r.err != nil {
		return noRoute
	}
	return rt
}

func (r *reader) end() error {
	if r.err == nil && len(r.b) > 0 {
		r.fail("%d unexpected trailing bytes", len(r.b))
	}
	return r.err
}
