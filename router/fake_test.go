package router

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

// fakeEngine is an in-memory Engine, so that the HTTP layer's tests need no
// broker and no Pebble. Each partition keeps its records sorted by key, as
// the store does; a test sets a partition's status (serving, restoring, not
// assigned here) and makes its reads fail.
type fakeEngine struct {
	id string

	// stores (sorted by name) and topics (their partition counts) are set
	// up before the handler runs.
	stores []state.Store
	topics map[string]int32

	mu     sync.Mutex
	parts  map[state.Partition]*fakePartition
	health atomic.Pointer[fakeHealth]

	// Hooks a test sets before it sends requests: countHook runs in every
	// Count, with its context, before it counts (an error fails the
	// count); iterHook wraps every iterator NewIterator returns.
	countHook func(ctx context.Context, p state.Partition) error
	iterHook  func(p state.Partition, it state.Iterator) state.Iterator
	// streamTimes, when set for a partition, is what StreamTime answers.
	streamTimes map[state.Partition]int64
}

// fakeHealth is what Ready and Err answer.
type fakeHealth struct {
	ready bool
	err   error
}

type fakePartition struct {
	status state.Status      // 0: not assigned here
	kind   state.ReplicaKind // 0: active
	lag    int64             // what Replica says
	recs   []state.Record    // sorted by key
	fail   error             // when set, every read fails with it
	reads  int               // reads asked, served or not
}

// fakeTime is the Kafka timestamp of every record of the fake: it renders
// as 2026-01-02T03:04:05.006Z.
var fakeTime = time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC).UnixMilli()

func newFakeEngine(id string) *fakeEngine {
	f := &fakeEngine{id: id, topics: map[string]int32{}, parts: map[state.Partition]*fakePartition{}}
	f.health.Store(&fakeHealth{ready: true})
	return f
}

// addStore adds a store with the named built-in serdes over topic, which
// has n partitions, all serving here. Stores may share a topic.
func (f *fakeEngine) addStore(t testing.TB, name, topic string, n int32, key, value string) {
	t.Helper()
	k, err := serde.Lookup(key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := serde.Lookup(value)
	if err != nil {
		t.Fatal(err)
	}
	i, _ := slices.BinarySearchFunc(f.stores, name, byName)
	f.stores = slices.Insert(f.stores, i, state.Store{Name: name, Topic: topic, Key: k, Value: v})
	if _, ok := f.topics[topic]; ok {
		return
	}
	f.topics[topic] = n
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := int32(0); i < n; i++ {
		f.parts[state.Partition{Topic: topic, Partition: i}] = &fakePartition{status: state.Serving}
	}
}

// put writes the record of key text (in the store's key serde) in the
// partition Kafka's producer would choose, at offset, replacing the key's
// record.
func (f *fakeEngine) put(t testing.TB, store, key, value string, offset int64) {
	t.Helper()
	s, _ := f.Store(store)
	kb, err := s.Key.FromText(key)
	if err != nil {
		t.Fatalf("key %q of %s: %v", key, store, err)
	}
	p, err := serde.PartitionOf(s.Key, kb, f.topics[s.Topic])
	if err != nil {
		t.Fatal(err)
	}
	f.putAt(state.Partition{Topic: s.Topic, Partition: p}, kb, []byte(value), offset)
}

// putAt writes raw key and value bytes in partition p, wherever the
// partitioner would put them.
func (f *fakeEngine) putAt(p state.Partition, key, value []byte, offset int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	part := f.parts[p]
	rec := state.Record{Key: bytes.Clone(key), Value: bytes.Clone(value), Offset: offset, Timestamp: fakeTime}
	i, found := slices.BinarySearchFunc(part.recs, key, byKey)
	if found {
		part.recs[i] = rec
		return
	}
	part.recs = slices.Insert(part.recs, i, rec)
}

func byKey(r state.Record, key []byte) int { return bytes.Compare(r.Key, key) }

// setStatus makes partition p serve, restore or not be assigned here (0).
func (f *fakeEngine) setStatus(p state.Partition, s state.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.parts[p].status = s
}

// failReads makes every read of p fail with err (nil: succeed again).
func (f *fakeEngine) failReads(p state.Partition, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.parts[p].fail = err
}

// readsOf is how many reads of p were asked.
func (f *fakeEngine) readsOf(p state.Partition) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parts[p].reads
}

// totalReads is how many reads of any partition were asked.
func (f *fakeEngine) totalReads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, part := range f.parts {
		n += part.reads
	}
	return n
}

// setHealth sets what Ready and Err answer.
func (f *fakeEngine) setHealth(ready bool, err error) {
	f.health.Store(&fakeHealth{ready, err})
}

func (f *fakeEngine) NodeID() string { return f.id }

func (f *fakeEngine) Store(name string) (state.Store, bool) {
	if i, ok := slices.BinarySearchFunc(f.stores, name, byName); ok {
		return f.stores[i], true
	}
	return state.Store{}, false
}

func (f *fakeEngine) Stores() []state.Store { return slices.Clone(f.stores) }

func byName(s state.Store, name string) int { return cmp.Compare(s.Name, name) }

func (f *fakeEngine) PartitionCount(topic string) (int32, error) {
	if n, ok := f.topics[topic]; ok {
		return n, nil
	}
	return 0, state.ErrUnknownTopic
}

// serving counts a read of p and returns p's records when it serves here,
// else the error the engine would give.
func (f *fakeEngine) serving(p state.Partition) ([]state.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	part := f.parts[p]
	if part == nil {
		return nil, &state.NotServingError{Partition: p}
	}
	part.reads++
	switch {
	case part.fail != nil:
		return nil, part.fail
	case part.status != state.Serving:
		return nil, &state.NotServingError{Partition: p, Status: part.status}
	}
	return part.recs, nil
}

func (f *fakeEngine) Get(p state.Partition, key []byte) (state.Record, error) {
	recs, err := f.serving(p)
	if err != nil {
		return state.Record{}, err
	}
	i, found := slices.BinarySearchFunc(recs, key, byKey)
	if !found {
		return state.Record{}, state.ErrNotFound
	}
	r := recs[i]
	r.Key, r.Value = bytes.Clone(r.Key), bytes.Clone(r.Value)
	return r, nil
}

// NewReverseIterator is NewIterator, backwards.
func (f *fakeEngine) NewReverseIterator(p state.Partition, lower, upper []byte) (state.Iterator, error) {
	it, err := f.NewIterator(p, lower, upper)
	if err != nil {
		return nil, err
	}
	fi := it.(*fakeIterator)
	slices.Reverse(fi.recs)
	return fi, nil
}

// StreamTime is the greatest time of p's records, by the key schema of a
// window or session store of p's topic, unless a test set it
// (streamTimes).
func (f *fakeEngine) StreamTime(p state.Partition) (int64, error) {
	recs, err := f.serving(p)
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, ok := f.streamTimes[p]; ok {
		return st, nil
	}
	st := state.NoStreamTime
	for _, s := range f.stores {
		if s.Topic != p.Topic || !s.Kind.Timed() {
			continue
		}
		for _, r := range recs {
			if t, ok := s.StreamTimeOf(r.Key); ok {
				st = max(st, t)
			}
		}
		break
	}
	return st, nil
}

func (f *fakeEngine) NewIterator(p state.Partition, lower, upper []byte) (state.Iterator, error) {
	recs, err := f.serving(p)
	if err != nil {
		return nil, err
	}
	var in []state.Record
	for _, r := range recs {
		if (lower == nil || bytes.Compare(r.Key, lower) >= 0) && (upper == nil || bytes.Compare(r.Key, upper) < 0) {
			in = append(in, r)
		}
	}
	if f.iterHook != nil {
		return f.iterHook(p, &fakeIterator{recs: in}), nil
	}
	return &fakeIterator{recs: in}, nil
}

// Replica says p is held here as its kind (active unless set), applied up
// to after its highest offset. Asking a partition that does not serve
// counts as a read, as the router then reads no further.
func (f *fakeEngine) Replica(p state.Partition) (state.Replica, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	part := f.parts[p]
	if part == nil || part.status != state.Serving {
		var st state.Status
		if part != nil {
			st = part.status
			part.reads++ // a read asked of a partition that does not serve
		}
		return state.Replica{}, &state.NotServingError{Partition: p, Status: st}
	}
	next := int64(0)
	for _, r := range part.recs {
		next = max(next, r.Offset+1)
	}
	kind := part.kind
	if kind == 0 {
		kind = state.Active
	}
	return state.Replica{Kind: kind, Next: next, Upto: next, Lag: part.lag}, nil
}

// setReplica makes p a replica of the given kind here, lag records behind.
func (f *fakeEngine) setReplica(p state.Partition, kind state.ReplicaKind, lag int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.parts[p].kind, f.parts[p].lag = kind, lag
}

// WaitApplied waits for ctx: the fake's partitions never move.
func (f *fakeEngine) WaitApplied(ctx context.Context, p state.Partition, next int64) error {
	if r, err := f.Replica(p); err == nil && r.Next >= next {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func (f *fakeEngine) Count(ctx context.Context, p state.Partition) (int64, error) {
	recs, err := f.serving(p)
	if err == nil && f.countHook != nil {
		err = f.countHook(ctx, p)
	}
	if err != nil {
		return 0, err
	}
	return int64(len(recs)), nil
}

// Partitions describes the partitions assigned here; a partition has
// applied its records up to its highest offset, and the log ends there.
func (f *fakeEngine) Partitions() []state.PartitionInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []state.PartitionInfo
	for p, part := range f.parts {
		if part.status == 0 {
			continue
		}
		last := int64(-1)
		for _, r := range part.recs {
			last = max(last, r.Offset)
		}
		kind := part.kind
		if kind == 0 {
			kind = state.Active
		}
		out = append(out, state.PartitionInfo{Topic: p.Topic, Partition: p.Partition, Replica: kind.String(), State: part.status.String(),
			Offset: last, HighWatermark: last + 1, Applied: int64(len(part.recs))})
	}
	slices.SortFunc(out, func(a, b state.PartitionInfo) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

func (f *fakeEngine) Ready() bool { return f.health.Load().ready }

func (f *fakeEngine) Err() error { return f.health.Load().err }

// fakeIterator holds a store iterator's promise and no more: the key and
// value it returns are overwritten by the next call to Next or Close, so a
// caller that keeps them without copying sees garbage.
type fakeIterator struct {
	recs []state.Record
	i    int
	last state.Record // the record returned last, owned by the iterator
}

func (it *fakeIterator) Next() (state.Record, bool) {
	it.scribble()
	if it.i >= len(it.recs) {
		return state.Record{}, false
	}
	r := it.recs[it.i]
	it.i++
	r.Key, r.Value = bytes.Clone(r.Key), bytes.Clone(r.Value)
	it.last = r
	return r, true
}

func (it *fakeIterator) Err() error { return nil }

func (it *fakeIterator) Close() error {
	it.scribble()
	it.recs = nil
	return nil
}

func (it *fakeIterator) scribble() {
	for _, b := range [][]byte{it.last.Key, it.last.Value} {
		for i := range b {
			b[i] = '#'
		}
	}
	it.last = state.Record{}
}

// newFakeNode is node n1 over a fake engine with these stores:
//
//   - orders (topic orders, 4 partitions): string keys o-00 to o-29, JSON
//     values {"id":"o-NN","n":N} at offset N;
//   - sensors (topic sensors, 3 partitions): int64 keys -1 and 1 to 10 with
//     values {"sensor":N} at offset 100+N;
//   - docs (topic docs, 1 partition): string keys and JSON values that need
//     care: a key with a slash and a space, one with a quote, one not in
//     ASCII, JSON with spaces in it, a value that is not JSON ("bad") and a
//     key that is not UTF-8 (the bytes ff fe);
//   - blobs (topic blobs, 1 partition): bytes keys and values;
//   - ids (topic ids, 1 partition): uuid keys, float64 values;
//   - counters (topic ids as well): int32 keys, string values, to show that
//     stores over one topic read the same records, each with its serdes;
//
// with scan pages of 10 records by default and 25 at most, queries waiting
// 1s by default and ?timeout= up to 2s. Keys are in the partitions Kafka's
// default partitioner gives them (murmur2 of the key bytes), which the
// tests' expected answers name. opts change the handler's options.
func newFakeNode(t testing.TB, opts ...func(*Options)) (*fakeEngine, *Handler) {
	f := newFakeEngine("n1")
	f.addStore(t, "orders", "orders", 4, "string", "json")
	f.addStore(t, "sensors", "sensors", 3, "int64", "json")
	f.addStore(t, "docs", "docs", 1, "string", "json")
	f.addStore(t, "blobs", "blobs", 1, "bytes", "bytes")
	f.addStore(t, "ids", "ids", 1, "uuid", "float64")
	f.addStore(t, "counters", "ids", 1, "int32", "string")
	for i := 0; i < 30; i++ {
		k := fmt.Sprintf("o-%02d", i)
		f.put(t, "orders", k, fmt.Sprintf(`{"id":%q,"n":%d}`, k, i), int64(i))
	}
	for _, n := range []int{-1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10} {
		f.put(t, "sensors", fmt.Sprint(n), fmt.Sprintf(`{"sensor":%d}`, n), int64(100+n))
	}
	f.put(t, "docs", "a/b c", `{ "spaced" : [1, 2] }`, 1)
	f.put(t, "docs", "bad", "not json", 2)
	f.put(t, "docs", `quote"d`, `"a JSON string"`, 3)
	f.put(t, "docs", "ünï", `{"é":"ü"}`, 4)
	f.putAt(state.Partition{Topic: "docs", Partition: 0}, []byte{0xff, 0xfe}, []byte(`{}`), 5)
	blobs := state.Partition{Topic: "blobs", Partition: 0}
	f.putAt(blobs, []byte{0xfb, 0xff}, []byte("hello"), 1)
	f.putAt(blobs, []byte{0x00}, []byte{}, 2)
	ids := state.Partition{Topic: "ids", Partition: 0}
	f.putAt(ids, []byte("123e4567-e89b-12d3-a456-426614174000"), binary.BigEndian.AppendUint64(nil, math.Float64bits(math.Pi)), 7)
	f.putAt(ids, []byte{0, 0, 0, 42}, []byte("forty-two"), 8)
	o := Options{
		Engine: f, Timeout: time.Second, MaxTimeout: 2 * time.Second,
		DefaultLimit: 10, MaxLimit: 25,
		Logger: slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		opt(&o)
	}
	return f, New(o)
}
