package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// The envelopes travel in the UserData of the consumer protocol's join
// metadata and assignment, around the inner balancer's own UserData. Both
// are binary; integers are varints (encoding/binary), a string is a uvarint
// length and its bytes, and nullable bytes are a uvarint of length+1 (0 for
// nil) and the bytes.
//
// Join envelope (kmsg.ConsumerMemberMetadata.UserData):
//
//	magic "IQJ\x01"
//	string  node id
//	string  URL
//	nullable bytes  the inner balancer's UserData
//
// Assignment envelope (kmsg.ConsumerMemberAssignment.UserData):
//
//	magic "IQA\x01"
//	varint  generation (int32)
//	uvarint member count, then per member: string node id, string URL
//	        (strictly increasing by node id, then URL)
//	uvarint topic count, then per topic (strictly increasing by name):
//	        string name, uvarint partition count, then per partition a
//	        uvarint owner: 0 for none, i+1 for members[i]
//	nullable bytes  the inner balancer's UserData
//
// Nothing may follow. The last byte of a magic is the format version. A
// 100-partition topic over three nodes costs about 100 bytes plus the
// members' names and URLs.
var (
	joinMagic   = []byte("IQJ\x01")
	assignMagic = []byte("IQA\x01")
)

// errNoEnvelope says that a UserData does not carry our envelope at all: the
// peer is not an iqengine node (or runs an incompatible version).
var errNoEnvelope = errors.New("no iqengine envelope (a client that does not run iqengine's balancer uses its protocol name?)")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendNullableBytes(b, p []byte) []byte {
	if p == nil {
		return binary.AppendUvarint(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(p))+1)
	return append(b, p...)
}

// encodeJoin returns the join envelope of self around inner.
func encodeJoin(self Member, inner []byte) []byte {
	b := slices.Clone(joinMagic)
	b = appendString(b, self.NodeID)
	b = appendString(b, self.URL)
	return appendNullableBytes(b, inner)
}

// decodeJoin returns the member and the inner UserData of a join envelope.
func decodeJoin(data []byte) (Member, []byte, error) {
	r, err := newReader(data, joinMagic)
	if err != nil {
		return Member{}, nil, err
	}
	m := Member{NodeID: r.string(), URL: r.string()}
	inner := r.nullableBytes()
	if err := r.end(); err != nil {
		return Member{}, nil, fmt.Errorf("join envelope: %w", err)
	}
	return m, inner, nil
}

// encodeTable returns the assignment envelope of t without its final inner
// UserData, which differs per member: append it with appendNullableBytes.
func encodeTable(t *Table) []byte {
	b := slices.Clone(assignMagic)
	b = binary.AppendVarint(b, int64(t.generation))
	b = binary.AppendUvarint(b, uint64(len(t.members)))
	for _, m := range t.members {
		b = appendString(b, m.NodeID)
		b = appendString(b, m.URL)
	}
	topics := make([]string, 0, len(t.owners))
	for topic := range t.owners {
		topics = append(topics, topic)
	}
	slices.Sort(topics)
	b = binary.AppendUvarint(b, uint64(len(topics)))
	for _, topic := range topics {
		b = appendString(b, topic)
		ps := t.owners[topic]
		b = binary.AppendUvarint(b, uint64(len(ps)))
		for _, idx := range ps {
			b = binary.AppendUvarint(b, uint64(idx+1))
		}
	}
	return b
}

// decodeAssignment returns the table and the inner UserData of an assignment
// envelope.
func decodeAssignment(data []byte) (*Table, []byte, error) {
	r, err := newReader(data, assignMagic)
	if err != nil {
		return nil, nil, err
	}
	t, inner := r.table()
	if err := r.end(); err != nil {
		return nil, nil, fmt.Errorf("assignment envelope: %w", err)
	}
	return t, inner, nil
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
		return nil, fmt.Errorf("iqengine envelope version %d, this node understands %d", v, magic[len(magic)-1])
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
	r.b = r.b[n:]
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

func (r *reader) nullableBytes() []byte {
	n := r.uvarint()
	if r.err != nil || n == 0 {
		return nil
	}
	n--
	if n > uint64(len(r.b)) {
		r.fail("bytes length %d exceeds the %d bytes left", n, len(r.b))
		return nil
	}
	return slices.Clip(slices.Clone(r.take(int(n))))
}

func (r *reader) table() (*Table, []byte) {
	t := &Table{owners: map[string][]int32{}}
	gen := r.varint()
	if gen < math.MinInt32 || gen > math.MaxInt32 {
		r.fail("generation %d out of range", gen)
	}
	t.generation = int32(gen)
	nm := r.count("member count")
	if r.err != nil {
		return nil, nil
	}
	t.members = make([]Member, 0, nm)
	for i := 0; i < nm && r.err == nil; i++ {
		m := Member{NodeID: r.string(), URL: r.string()}
		if i > 0 && compareMembers(t.members[i-1], m) >= 0 {
			r.fail("members not strictly sorted at %d", i)
		}
		t.members = append(t.members, m)
	}
	nt := r.count("topic count")
	prev := ""
	for i := 0; i < nt && r.err == nil; i++ {
		topic := r.string()
		if i > 0 && topic <= prev {
			r.fail("topics not strictly sorted at %q", topic)
		}
		prev = topic
		np := r.count("partition count")
		if np > math.MaxInt32 {
			r.fail("partition count %d out of range", np)
		}
		if r.err != nil {
			break
		}
		owners := make([]int32, np)
		for p := range owners {
			o := r.uvarint()
			if o > uint64(len(t.members)) {
				r.fail("topic %q partition %d: owner %d of %d members", topic, p, o, len(t.members))
			}
			owners[p] = int32(o) - 1
		}
		t.owners[topic] = owners
	}
	inner := r.nullableBytes()
	if r.err != nil {
		return nil, nil
	}
	return t, inner
}

func (r *reader) end() error {
	if r.err == nil && len(r.b) > 0 {
		r.fail("%d unexpected trailing bytes", len(r.b))
	}
	return r.err
}
