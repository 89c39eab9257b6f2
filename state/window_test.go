package state

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"time"
)

func windowStore(k WindowKey) Store {
	return Store{Kind: WindowKind, Window: Window{Key: k, Size: time.Hour, Retention: 3 * time.Hour}}
}

// The key schemas split as Kafka Streams lays them out, and a key too
// short for its schema does not split.
func TestSplitKey(t *testing.T) {
	be := binary.BigEndian
	changelog := be.AppendUint32(be.AppendUint64([]byte("user-1"), 7_200_000), 0)
	plain := be.AppendUint64([]byte("user-1"), 7_200_000)
	session := be.AppendUint64(be.AppendUint64([]byte("user-1"), 9_000), 1_000)
	sessions := Store{Kind: SessionKind, Window: Window{Retention: time.Hour}}
	for _, c := range []struct {
		name string
		s    Store
		raw  []byte
		want Span
		ok   bool
	}{
		{"window changelog key", windowStore(WindowKeyChangelog), changelog, Span{[]byte("user-1"), 7_200_000, 10_800_000}, true},
		{"TimeWindowedSerializer key", windowStore(WindowKeyPlain), plain, Span{[]byte("user-1"), 7_200_000, 10_800_000}, true},
		{"session key: end, then start", sessions, session, Span{[]byte("user-1"), 1_000, 9_000}, true},
		{"an empty inner key", windowStore(WindowKeyChangelog), changelog[6:], Span{[]byte{}, 7_200_000, 10_800_000}, true},
		{"too short for the changelog schema", windowStore(WindowKeyChangelog), changelog[:11], Span{}, false},
		{"too short for a session", sessions, session[:15], Span{}, false},
		{"a window ending past the last millisecond", windowStore(WindowKeyPlain), be.AppendUint64(nil, math.MaxInt64-5), Span{[]byte{}, math.MaxInt64 - 5, math.MaxInt64}, true},
	} {
		sp, ok := c.s.SplitKey(c.raw)
		if ok != c.ok || ok && (!bytes.Equal(sp.Key, c.want.Key) || sp.Start != c.want.Start || sp.End != c.want.End) {
			t.Errorf("%s: %+v %v, want %+v %v", c.name, sp, ok, c.want, c.ok)
		}
	}
}

// Retention follows Kafka Streams: at stream time st a window starting at
// st - retention has expired, one starting a millisecond later has not;
// a session is judged by its end.
func TestRetentionAndMatch(t *testing.T) {
	w := windowStore(WindowKeyChangelog)
	const h = int64(time.Hour / time.Millisecond)
	st := 10 * h
	oldest := w.Oldest(st)
	if oldest != 7*h+1 {
		t.Fatalf("Oldest(10h) = %d, want 7h + 1 ms", oldest)
	}
	if w.Match(Span{Start: 7 * h}, AllTime, oldest) || !w.Match(Span{Start: 7*h + 1}, AllTime, oldest) {
		t.Error("the window at stream time - retention must be expired, the next millisecond's not")
	}
	if w.Oldest(NoStreamTime) != math.MinInt64 {
		t.Error("without a stream time nothing expires")
	}
	if !w.Match(Span{Start: 8 * h}, TimeRange{From: 8 * h, To: 8 * h}, oldest) || w.Match(Span{Start: 8 * h}, TimeRange{From: 8*h + 1, To: 9 * h}, oldest) {
		t.Error("a window matches when its start lies in [from, to]")
	}
	s := Store{Kind: SessionKind, Window: Window{Retention: 2 * time.Hour}}
	// findSessions(earliest end 5h, latest start 4h): a session [3h, 6h] spans it.
	if !s.Match(Span{Start: 3 * h, End: 6 * h}, TimeRange{From: 5 * h, To: 4 * h}, math.MinInt64) {
		t.Error("a session that ends after the earliest end and starts before the latest start matches")
	}
	if s.Match(Span{Start: 3 * h, End: 6 * h}, AllTime, s.Oldest(8*h)) {
		t.Error("a session ending at stream time - retention is expired")
	}
}

// KeyBounds holds every record of the key's windows in the range, and none
// of a longer key that has it as a prefix.
func TestKeyBounds(t *testing.T) {
	w := windowStore(WindowKeyChangelog)
	key := func(k string, start int64) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64([]byte(k), uint64(start)), 0)
	}
	lo, hi := w.KeyBounds([]byte("k1"), TimeRange{From: 100, To: 200})
	in := func(raw []byte) bool { return bytes.Compare(raw, lo) >= 0 && (hi == nil || bytes.Compare(raw, hi) < 0) }
	for _, c := range []struct {
		raw  []byte
		want bool
	}{
		{key("k1", 100), true}, {key("k1", 200), true}, {key("k1", 99), false}, {key("k1", 201), false},
		{key("k10", 150), false}, {key("k0", 150), false},
	} {
		if in(c.raw) != c.want {
			t.Errorf("%q in bounds: %v, want %v", c.raw, !c.want, c.want)
		}
	}
	lo, hi = w.KeyBounds([]byte("k1"), AllTime)
	if !bytes.Equal(lo, []byte("k1")) || !bytes.Equal(hi, []byte("k2")) {
		t.Errorf("all time: [%q, %q), want [k1, k2)", lo, hi)
	}
}
