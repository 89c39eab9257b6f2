package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iqengine/iqengine/state"
)

// closeFixture is a store holding closeKeys keys in one partition, each
// with the value closeValue(key).
const closeKeys = 200

var closeP = state.Partition{Topic: "t", Partition: 0}

func closeKey(i int) []byte      { return fmt.Appendf(nil, "k-%04d", i) }
func closeValue(k []byte) []byte { return append([]byte("v-"), k...) }

func openFilled(t *testing.T) *DB {
	t.Helper()
	d := openMem(t)
	b := d.NewBatch(closeP)
	for i := range closeKeys {
		k := closeKey(i)
		if err := b.Set(k, closeValue(k), int64(i), 1000); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(Checkpoint{Offset: closeKeys - 1}); err != nil {
		t.Fatal(err)
	}
	return d
}

// waitClosing returns once Close has begun: new operations are refused.
func waitClosing(d *DB) {
	for d.ops.Load()&closing == 0 {
		runtime.Gosched()
	}
}

// After Close, every operation answers ErrClosed and touches nothing.
func TestEveryOperationAfterCloseIsErrClosed(t *testing.T) {
	d := openFilled(t)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		op   func() error
	}{
		{"Get", func() error { _, _, err := d.Get(closeP, closeKey(1)); return err }},
		{"Checkpoint", func() error { _, _, err := d.Checkpoint(closeP); return err }},
		{"NewIterator", func() error { _, err := d.NewIterator(closeP, nil, nil); return err }},
		{"Count", func() error { _, err := d.Count(context.Background(), closeP); return err }},
		{"Wipe", func() error { return d.Wipe(closeP) }},
		{"Sync", d.Sync},
		{"Batch.Commit", func() error {
			b := d.NewBatch(closeP)
			if err := b.Set([]byte("x"), []byte("y"), 1, 1); err != nil {
				return err
			}
			return b.Commit(Checkpoint{Offset: 1})
		}},
		{"Close again", d.Close},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.op(); !errors.Is(err, ErrClosed) {
				t.Fatalf("got %v, want ErrClosed", err)
			}
		})
	}
	if m := d.Metrics(); m != nil {
		t.Errorf("Metrics after Close = %v, want nil", m)
	}
}

// An iterator opened before Close keeps reading every record while Close
// waits for it; Close returns only after the iterator's Close, and
// operations started in between are refused.
func TestCloseWaitsForAnOpenIterator(t *testing.T) {
	d := openFilled(t)
	it, err := d.NewIterator(closeP, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, ok := it.Next()
	if !ok || !bytes.Equal(first.Key, closeKey(0)) {
		t.Fatalf("first record %q %v", first.Key, ok)
	}

	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	waitClosing(d)
	if _, _, err := d.Get(closeP, closeKey(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get while closing: %v, want ErrClosed", err)
	}

	n := 1
	for r, ok := it.Next(); ok; r, ok = it.Next() {
		if !bytes.Equal(r.Key, closeKey(n)) || !bytes.Equal(r.Value, closeValue(r.Key)) {
			t.Fatalf("record %d while closing: %q=%q", n, r.Key, r.Value)
		}
		n++
	}
	if err := it.Err(); err != nil || n != closeKeys {
		t.Fatalf("the iterator read %d of %d records while the store closed: %v", n, closeKeys, err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while an iterator was open", err)
	default:
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// A leaked iterator does not make Close hang: past its wait, Close reports
// the operation left and leaves Pebble open, so the iterator still reads
// instead of touching freed memory.
func TestCloseGivesUpOnALeakedIterator(t *testing.T) {
	d := openFilled(t)
	d.closeWait = 50 * time.Millisecond
	it, err := d.NewIterator(closeP, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = d.Close()
	if err == nil || !strings.Contains(err.Error(), "1 operations still in flight") {
		t.Fatalf("Close with a leaked iterator: %v, want an error naming 1 operation in flight", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Close took %s with closeWait 50ms", took)
	}
	if r, ok := it.Next(); !ok || !bytes.Equal(r.Value, closeValue(closeKey(0))) {
		t.Fatalf("the leaked iterator after Close: %q %v %v", r.Value, ok, it.Err())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.db.Close(); err != nil { // what the process's exit would release
		t.Fatal(err)
	}
}

// Reads, scans, counts, writes and syncs racing Close never panic, and each
// gets either a correct answer or ErrClosed; Close returns nil once they are
// done.
func TestOperationsRacingClose(t *testing.T) {
	for round := range 20 {
		d := openFilled(t)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		fail := func(format string, args ...any) {
			select {
			case errs <- fmt.Errorf(format, args...):
			default:
			}
		}
		// ok reports whether to go on: false on ErrClosed, and on anything
		// else after reporting it.
		ok := func(what string, err error) bool {
			if err != nil && !errors.Is(err, ErrClosed) {
				fail("%s: %v", what, err)
			}
			return err == nil
		}
		started := make(chan struct{})
		var ready sync.WaitGroup
		var done atomic.Int64 // operations completed
		worker := func(name string, step func(i int) error) {
			wg.Add(1)
			ready.Add(1)
			go func() {
				defer wg.Done()
				ready.Done()
				<-started
				for i := 0; ; i++ {
					if !ok(name, step(i)) {
						return
					}
					done.Add(1)
				}
			}()
		}
		worker("Get", func(i int) error {
			k := closeKey(i % closeKeys)
			r, found, err := d.Get(closeP, k)
			if err == nil && (!found || !bytes.Equal(r.Value, closeValue(k))) {
				return fmt.Errorf("%s = %q found=%v", k, r.Value, found)
			}
			return err
		})
		worker("scan", func(int) error {
			it, err := d.NewIterator(closeP, nil, nil)
			if err != nil {
				return err
			}
			defer it.Close()
			n := 0
			for r, ok := it.Next(); ok; r, ok = it.Next() {
				if !bytes.Equal(r.Key, closeKey(n)) || !bytes.Equal(r.Value, closeValue(r.Key)) {
					return fmt.Errorf("record %d: %q=%q", n, r.Key, r.Value)
				}
				n++
			}
			if n != closeKeys {
				return fmt.Errorf("%d records, want %d (%v)", n, closeKeys, it.Err())
			}
			return it.Err()
		})
		worker("Count", func(int) error {
			n, err := d.Count(context.Background(), closeP)
			if err == nil && n != closeKeys {
				return fmt.Errorf("%d, want %d", n, closeKeys)
			}
			return err
		})
		worker("Commit", func(i int) error {
			// Rewrites keys with the values they have, so the readers'
			// expectations hold whichever commits land.
			b := d.NewBatch(closeP)
			k := closeKey(i % closeKeys)
			if err := b.Set(k, closeValue(k), int64(closeKeys+i), 2000); err != nil {
				return err
			}
			return b.Commit(Checkpoint{Offset: int64(closeKeys + i)})
		})
		worker("Checkpoint", func(int) error {
			_, found, err := d.Checkpoint(closeP)
			if err == nil && !found {
				return errors.New("no checkpoint")
			}
			return err
		})
		worker("Sync", func(int) error { return d.Sync() })

		ready.Wait()
		close(started)
		for done.Load() < int64(round*10) { // close at a different moment each round
			runtime.Gosched()
		}
		if err := d.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", round, err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
	}
}
