package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/iqengine/iqengine/state"
)

func openMem(t *testing.T) *DB {
	t.Helper()
	d, err := Open(Options{Dir: "db", FS: vfs.NewMem(), CacheSize: 1 << 20, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func keysOf(t *testing.T, d *DB, p state.Partition, lower, upper []byte) string {
	t.Helper()
	it, err := d.NewIterator(p, lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for r, ok := it.Next(); ok; r, ok = it.Next() {
		out = append(out, fmt.Sprintf("%s=%s@%d", r.Key, r.Value, r.Offset))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

// Partitions are separate spans: neither a neighbouring partition nor a
// topic whose name extends this one's leaks into a scan, a count or a wipe.
func TestPartitionsAreSeparateSpans(t *testing.T) {
	d := openMem(t)
	p0 := state.Partition{Topic: "t", Partition: 0}
	p1 := state.Partition{Topic: "t", Partition: 1}
	other := state.Partition{Topic: "tt", Partition: 0}
	write := func(p state.Partition, cp int64, kv ...string) {
		b := d.NewBatch(p)
		for i := 0; i < len(kv); i += 2 {
			var err error
			if kv[i+1] == "" {
				err = b.Delete([]byte(kv[i]))
			} else {
				err = b.Set([]byte(kv[i]), []byte(kv[i+1]), cp, 1000)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(Checkpoint{Offset: cp, TopicID: [16]byte{1}}); err != nil {
			t.Fatal(err)
		}
	}
	write(p0, 3, "a", "1", "b", "2", "c", "3", "d", "4")
	write(p1, 7, "a", "x", "z", "y")
	write(other, 1, "a", "other")
	write(p0, 4, "b", "") // a tombstone
	if got := partitionsOf(t, d); got != "t/0 t/1 tt/0" {
		t.Fatalf("Partitions: %s", got)
	}

	cases := []struct {
		name         string
		p            state.Partition
		lower, upper string
		want         string
	}{
		{"whole partition", p0, "", "", "a=1@3 c=3@3 d=4@3"},
		{"lower bound inclusive", p0, "c", "", "c=3@3 d=4@3"},
		{"upper bound exclusive", p0, "", "d", "a=1@3 c=3@3"},
		{"both bounds", p0, "b", "d", "c=3@3"},
		{"empty range", p0, "e", "f", ""},
		{"other partition", p1, "", "", "a=x@7 z=y@7"},
		{"topic with a longer name", other, "", "", "a=other@1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var lo, hi []byte
			if c.lower != "" {
				lo = []byte(c.lower)
			}
			if c.upper != "" {
				hi = []byte(c.upper)
			}
			if got := keysOf(t, d, c.p, lo, hi); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}

	if cp, ok, err := d.Checkpoint(p0); err != nil || !ok || cp.Offset != 4 || cp.TopicID != [16]byte{1} {
		t.Fatalf("checkpoint %+v %v %v", cp, ok, err)
	}
	if n, _ := d.Count(context.Background(), p0); n != 3 {
		t.Fatalf("count %d, want 3", n)
	}
	if err := d.Wipe(p0); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := d.Checkpoint(p0); ok {
		t.Fatal("checkpoint survived the wipe")
	}
	if got := keysOf(t, d, p0, nil, nil); got != "" {
		t.Fatalf("wiped partition still holds %q", got)
	}
	if got := partitionsOf(t, d); got != "t/1 tt/0" {
		t.Fatalf("Partitions after the wipe: %s", got)
	}
	if got := keysOf(t, d, p1, nil, nil); got != "a=x@7 z=y@7" {
		t.Fatalf("the wipe reached partition 1: %q", got)
	}
	if r, ok, _ := d.Get(other, []byte("a")); !ok || string(r.Value) != "other" || r.Timestamp != 1000 {
		t.Fatalf("the wipe reached another topic: %+v %v", r, ok)
	}
}

func partitionsOf(t *testing.T, d *DB) string {
	t.Helper()
	ps, err := d.Partitions()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return strings.Join(out, " ")
}

// EstimateDiskUsage counts a partition's flushed records, and of its
// neighbours' no more than the block the bounds fall in.
func TestEstimateDiskUsage(t *testing.T) {
	d := openMem(t)
	p, q := state.Partition{Topic: "t", Partition: 0}, state.Partition{Topic: "t", Partition: 1}
	b := d.NewBatch(p)
	rng := rand.New(rand.NewPCG(1, 2))
	value := make([]byte, 1000) // random: it does not compress
	for i := 0; i < 200; i++ {
		for j := range value {
			value[j] = byte(rng.Uint32())
		}
		if err := b.Set(fmt.Appendf(nil, "k-%03d", i), value, int64(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(Checkpoint{Offset: 199}); err != nil {
		t.Fatal(err)
	}
	if err := d.db.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := d.EstimateDiskUsage(p)
	if err != nil || got < 200_000 {
		t.Fatalf("partition 0: %d bytes, %v; want at least the 200 kB written", got, err)
	}
	// A data block the span's bounds fall in counts whole: an empty
	// neighbour's estimate is at most one block (32 KiB).
	if got, err := d.EstimateDiskUsage(q); err != nil || got > 32<<10 {
		t.Fatalf("empty partition 1: %d bytes, %v", got, err)
	}
}

// DeleteOlder deletes only keys whose current record is below the offset:
// a key written again since it was chosen, one in another partition and
// one already gone are left alone, and the checkpoint is untouched.
func TestDeleteOlder(t *testing.T) {
	d := openMem(t)
	p, q := state.Partition{Topic: "t", Partition: 0}, state.Partition{Topic: "t", Partition: 1}
	write := func(p state.Partition, cp int64, kvs ...string) {
		b := d.NewBatch(p)
		for i := 0; i < len(kvs); i += 2 {
			var off int64
			fmt.Sscan(kvs[i+1], &off)
			if err := b.Set([]byte(kvs[i]), []byte(kvs[i+1]), off, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(Checkpoint{Offset: cp}); err != nil {
			t.Fatal(err)
		}
	}
	write(p, 3, "a", "1", "b", "2", "c", "3")
	write(q, 1, "a", "1")
	write(p, 12, "b", "12") // b written again after it was chosen
	n, err := d.DeleteOlder(p, [][]byte{[]byte("a"), []byte("b"), []byte("gone")}, 10)
	if err != nil || n != 1 {
		t.Fatalf("deleted %d, %v; want 1", n, err)
	}
	if got, want := keysOf(t, d, p, nil, nil), "b=12@12 c=3@3"; got != want {
		t.Fatalf("partition 0 holds %q, want %q", got, want)
	}
	if got := keysOf(t, d, q, nil, nil); got != "a=1@1" {
		t.Fatalf("partition 1 holds %q", got)
	}
	if cp, _, _ := d.Checkpoint(p); cp.Offset != 12 {
		t.Fatalf("checkpoint moved to %d", cp.Offset)
	}
}

// watchedContext counts the calls to its Err, and says cancelled once
// cancelled is set.
type watchedContext struct {
	context.Context
	cancelled bool
	looks     int
}

func (c *watchedContext) Err() error {
	c.looks++
	if c.cancelled {
		return context.Canceled
	}
	return nil
}

// TestCountHonoursCancellation: Count walks every key of its partition
// while its context lives, looking at the context every countCheckEvery
// keys; a cancelled count stops at its next look with the context's error,
// instead of walking the rest of the partition.
func TestCountHonoursCancellation(t *testing.T) {
	d := openMem(t)
	p := state.Partition{Topic: "t", Partition: 0}
	const keys = 5 * countCheckEvery
	b := d.NewBatch(p)
	for i := range keys {
		if err := b.Set(fmt.Appendf(nil, "k-%05d", i), []byte("v"), int64(i), 1000); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(Checkpoint{Offset: keys}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		cancelled bool
		wantN     int64
		wantErr   error
		wantLooks int
	}{
		{"a live context: every key, looked at every countCheckEvery keys", false, keys, nil, keys / countCheckEvery},
		{"a cancelled context: the context's error at the first look", true, 0, context.Canceled, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := &watchedContext{Context: context.Background(), cancelled: c.cancelled}
			n, err := d.Count(ctx, p)
			if n != c.wantN || !errors.Is(err, c.wantErr) || (err == nil) != (c.wantErr == nil) || ctx.looks != c.wantLooks {
				t.Errorf("Count: %d, %v after %d looks at the context; want %d, %v after %d", n, err, ctx.looks, c.wantN, c.wantErr, c.wantLooks)
			}
		})
	}
}

// A reverse iterator walks the same bounds in descending key order.
func TestReverseIterator(t *testing.T) {
	d := openMem(t)
	p := state.Partition{Topic: "t", Partition: 0}
	b := d.NewBatch(p)
	for _, k := range []string{"a", "b", "c", "d"} {
		if err := b.Set([]byte(k), []byte(k), 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(Checkpoint{Offset: 1}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ lower, upper, want string }{
		{"", "", "d c b a"},
		{"b", "d", "c b"},
		{"e", "", ""},
	} {
		var lo, hi []byte
		if c.lower != "" {
			lo = []byte(c.lower)
		}
		if c.upper != "" {
			hi = []byte(c.upper)
		}
		it, err := d.NewReverseIterator(p, lo, hi)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for r, ok := it.Next(); ok; r, ok = it.Next() {
			got = append(got, string(r.Key))
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("[%q, %q): %q, want %q", c.lower, c.upper, strings.Join(got, " "), c.want)
		}
	}
}

// The stream time is written with a batch, read back after a reopen, and
// dropped by a wipe with the rest of the partition.
func TestStreamTime(t *testing.T) {
	fs := vfs.NewMem()
	d, err := Open(Options{Dir: "db", FS: fs, CacheSize: 1 << 20, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	p, other := state.Partition{Topic: "w", Partition: 3}, state.Partition{Topic: "w", Partition: 4}
	if _, ok, err := d.StreamTime(p); ok || err != nil {
		t.Fatalf("stream time before any batch: ok %v, err %v", ok, err)
	}
	for _, st := range []int64{-5, 1796205600000} {
		b := d.NewBatch(p)
		if err := b.SetStreamTime(st); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(Checkpoint{Offset: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if d, err = Open(Options{Dir: "db", FS: fs, CacheSize: 1 << 20, MemTableSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if st, ok, err := d.StreamTime(p); !ok || err != nil || st != 1796205600000 {
		t.Fatalf("stream time after reopening: %d %v %v", st, ok, err)
	}
	if _, ok, _ := d.StreamTime(other); ok {
		t.Fatal("another partition has a stream time")
	}
	if got := partitionsOf(t, d); got != "w/3" {
		t.Fatalf("Partitions: %q", got)
	}
	if err := d.Wipe(p); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := d.StreamTime(p); ok {
		t.Fatal("the stream time survived the wipe")
	}
}
