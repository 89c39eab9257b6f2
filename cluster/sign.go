package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
)

// Key authenticates the nodes of one application to each other: every node
// derives it from the cluster secret they share (NewKey). With a key, a
// node's join envelope and the leader's assignment envelope end in an
// HMAC-SHA256 tag over everything before it, so a group member that does
// not know the secret cannot claim a node id, advertise a URL or hand out a
// routing table; the router signs calls between nodes with the same key.
//
// The tags bind what they sign to its purpose (a join tag does not verify
// as an assignment's, nor as a call's), and a join tag to the member's
// group instance id: a copy of a node's metadata replayed by another member
// is refused unless it joins with that node's instance id, which fences the
// node itself (Kafka's ACLs decide who may join the group at all).
type Key struct{ k []byte }

// tagSize is the length of an envelope's tag.
const tagSize = sha256.Size

// NewKey derives the key of a cluster secret; nil for "" (no
// authentication).
func NewKey(secret string) *Key {
	if secret == "" {
		return nil
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("iqengine cluster key v1"))
	return &Key{m.Sum(nil)}
}

// MAC returns the HMAC-SHA256 of the parts, each length-prefixed so that no
// two different lists of parts give the same input, under purpose.
func (k *Key) MAC(purpose string, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, k.k)
	var n [8]byte
	for _, p := range append([][]byte{[]byte(purpose)}, parts...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		m.Write(n[:])
		m.Write(p)
	}
	return m.Sum(nil)
}

// Verify reports whether tag is MAC(purpose, parts...), in constant time.
func (k *Key) Verify(tag []byte, purpose string, parts ...[]byte) bool {
	return hmac.Equal(tag, k.MAC(purpose, parts...))
}

var (
	errUnsigned = errors.New("carries no cluster signature (a node without cluster.secret, or not an iqengine node)")
	errBadTag   = errors.New("has a cluster signature that does not verify (another cluster.secret, or forged)")
	errInstance = errors.New("joined with another group instance id than its node id (a copy of another node's metadata?)")
)

const (
	purposeJoin  = "join"
	purposeTable = "assignment"
)

// seal appends the tag of envelope b.
func (k *Key) seal(b []byte, purpose string) []byte {
	if k == nil {
		return b
	}
	return append(b, k.MAC(purpose, b)...)
}

// open checks and strips the tag of a sealed envelope. Without a key, the
// envelope is decoded as it is, and a signed one fails to decode (its tag
// is bytes after the end).
func (k *Key) open(b []byte, purpose string) ([]byte, error) {
	if k == nil {
		return b, nil
	}
	if len(b) >= tagSize {
		body, tag := b[:len(b)-tagSize], b[len(b)-tagSize:]
		if k.Verify(tag, purpose, body) {
			return body, nil
		}
	}
	// An unsigned envelope that decodes whole is "unsigned", not "forged".
	var err error
	if purpose == purposeJoin {
		_, _, err = decodeJoin(b)
	} else {
		_, err = decodeAssignment(b)
	}
	if err == nil {
		return nil, errUnsigned
	}
	return nil, errBadTag
}
