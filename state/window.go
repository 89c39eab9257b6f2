package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Kind is what a store's topic holds: latest values by key, or the
// changelog of a Kafka Streams window or session store.
type Kind uint8

const (
	// KeyValue: each record key is a key; the store keeps its latest value.
	KeyValue Kind = iota
	// WindowKind: each record key is an inner key and a window's start
	// (WindowKey says how they are laid out); the store keeps the latest
	// value of each (key, window).
	WindowKind
	// SessionKind: each record key is an inner key and a session's end
	// and start, [key][end: 8 bytes BE][start: 8 bytes BE], Kafka Streams'
	// session key schema.
	SessionKind
)

func (k Kind) String() string {
	switch k {
	case KeyValue:
		return "keyvalue"
	case WindowKind:
		return "window"
	case SessionKind:
		return "session"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Timed reports whether the kind's keys carry times (window or session).
func (k Kind) Timed() bool { return k == WindowKind || k == SessionKind }

// WindowKey is how a window store's record key lays out the inner key and
// the window's start.
type WindowKey uint8

const (
	// WindowKeyChangelog is Kafka Streams' window key schema, that of a
	// window store's changelog: [key][start: 8 bytes BE][sequence number:
	// 4 bytes BE].
	WindowKeyChangelog WindowKey = iota
	// WindowKeyPlain is what TimeWindowedSerializer writes:
	// [key][start: 8 bytes BE].
	WindowKeyPlain
)

func (w WindowKey) String() string {
	if w == WindowKeyPlain {
		return "plain"
	}
	return "changelog"
}

// Window is the key schema and retention of a window or session store.
type Window struct {
	// Key is the window key layout (window stores only).
	Key WindowKey
	// Size is a window's length: its end is its start plus Size (window
	// stores only).
	Size time.Duration
	// Retention is how far behind the partition's stream time a window or
	// session stays visible, as the Kafka Streams store's retention.
	Retention time.Duration
}

// Span is a window or a session, with its inner key: the parts of a window
// or session store's record key. Start and End are Unix milliseconds; a
// window's End is exclusive (start + size), a session's the time of its
// last event.
type Span struct {
	Key        []byte
	Start, End int64
}

// suffixLen is the length of the times after the inner key.
func (s Store) suffixLen() int {
	switch {
	case s.Kind == SessionKind:
		return 16
	case s.Window.Key == WindowKeyPlain:
		return 8
	}
	return 12
}

// MinKeyLen is the shortest record key of the store's kind: an empty inner
// key and its times. A shorter key is malformed.
func (s Store) MinKeyLen() int {
	if !s.Kind.Timed() {
		return 0
	}
	return s.suffixLen()
}

// SplitKey splits a window or session store's record key into its inner key
// and times; ok is false when the key is too short for the schema. Key
// aliases raw.
func (s Store) SplitKey(raw []byte) (sp Span, ok bool) {
	n := s.suffixLen()
	if len(raw) < n {
		return sp, false
	}
	k, t := raw[:len(raw)-n], raw[len(raw)-n:]
	sp.Key = k
	if s.Kind == SessionKind {
		sp.End = int64(binary.BigEndian.Uint64(t))
		sp.Start = int64(binary.BigEndian.Uint64(t[8:]))
		return sp, true
	}
	sp.Start = int64(binary.BigEndian.Uint64(t))
	sp.End = satAdd(sp.Start, s.Window.Size.Milliseconds())
	return sp, true
}

// StreamTimeOf is the time a record key moves its partition's stream time
// to, at least: a window's start, a session's end (Kafka Streams' segment
// timestamp); ok is false for a malformed key.
func (s Store) StreamTimeOf(raw []byte) (int64, bool) {
	sp, ok := s.SplitKey(raw)
	if !ok {
		return 0, false
	}
	if s.Kind == SessionKind {
		return sp.End, true
	}
	return sp.Start, true
}

// NoStreamTime is the stream time of a partition that has seen no window
// or session yet: nothing is expired.
const NoStreamTime int64 = math.MinInt64

// Oldest is the earliest time still visible at stream time st: a window
// whose start, or a session whose end, is before it has expired (Kafka
// Streams: observed stream time - retention + 1).
func (s Store) Oldest(st int64) int64 {
	if st == NoStreamTime {
		return math.MinInt64
	}
	return satAdd(st, -s.Window.Retention.Milliseconds()+1)
}

// TimeRange selects the windows or sessions of a query: windows whose start
// lies in [From, To]; sessions that end at or after From and start at or
// before To (Kafka Streams' findSessions(earliestSessionEndTime,
// latestSessionStartTime)).
type TimeRange struct {
	From, To int64
}

// AllTime is the range that selects everything.
var AllTime = TimeRange{From: math.MinInt64, To: math.MaxInt64}

// Match reports whether sp is selected by r and visible from oldest on
// (see Oldest).
func (s Store) Match(sp Span, r TimeRange, oldest int64) bool {
	if s.Kind == SessionKind {
		return sp.End >= max(r.From, oldest) && sp.Start <= r.To
	}
	return sp.Start >= max(r.From, oldest) && sp.Start <= r.To
}

// KeyBounds are the record keys lower <= k < upper that can hold inner key
// key's windows or sessions in r: the bounds of a lookup's iterator, which
// may also meet other keys' records (an inner key that has key as a prefix)
// that the caller filters out with SplitKey.
func (s Store) KeyBounds(key []byte, r TimeRange) (lower, upper []byte) {
	lower = bytes.Clone(key)
	if s.Kind == WindowKind && r.From > 0 {
		lower = binary.BigEndian.AppendUint64(lower, uint64(r.From))
	}
	if s.Kind == SessionKind && r.From > 0 {
		lower = binary.BigEndian.AppendUint64(lower, uint64(r.From)) // a session's end
	}
	upper = PrefixEnd(key)
	if s.Kind == WindowKind && r.To >= 0 && r.To < math.MaxInt64 {
		upper = binary.BigEndian.AppendUint64(bytes.Clone(key), uint64(r.To+1))
	}
	return lower, upper
}

// satAdd is a + b, held at the int64 bounds instead of wrapping.
func satAdd(a, b int64) int64 {
	c := a + b
	switch {
	case b > 0 && c < a:
		return math.MaxInt64
	case b < 0 && c > a:
		return math.MinInt64
	}
	return c
}
