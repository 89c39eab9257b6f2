package testutil

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records the message instead of
// ending the test, so that a test can check how a wait fails.
type fatalRecorder struct {
	testing.TB
	fatal string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

// The waits run in a synctest bubble: its clock moves only when every
// goroutine waits, so how long a wait took is exact.
func TestWaitFor(t *testing.T) {
	t.Run("returns at once when the condition holds", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r, start, calls := &fatalRecorder{TB: t}, time.Now(), 0
			WaitFor(r, time.Second, "holds", func() bool { calls++; return true })
			if r.fatal != "" || calls != 1 || time.Since(start) != 0 {
				t.Errorf("fatal %q, %d calls, %v", r.fatal, calls, time.Since(start))
			}
		})
	})
	t.Run("returns within a poll of the condition coming true", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r, start := &fatalRecorder{TB: t}, time.Now()
			WaitFor(r, time.Second, "holds later", func() bool { return time.Since(start) >= 90*time.Millisecond })
			if took := time.Since(start); r.fatal != "" || took != 100*time.Millisecond {
				t.Errorf("fatal %q after %v; want success after 100ms (5 polls)", r.fatal, took)
			}
		})
	})
	t.Run("fails with what at the timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r, start, calls := &fatalRecorder{TB: t}, time.Now(), 0
			WaitFor(r, 110*time.Millisecond, "the thing happens", func() bool { calls++; return false })
			if want := "after 110ms: the thing happens"; r.fatal != want {
				t.Errorf("fatal %q, want %q", r.fatal, want)
			}
			// Polls at 0, 20, ... 100 ms, and once more at the deadline.
			if took := time.Since(start); took != 110*time.Millisecond || calls != 7 {
				t.Errorf("gave up after %v and %d calls; want 110ms and 7", took, calls)
			}
		})
	})
}

func TestWaitForNil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, n := &fatalRecorder{TB: t}, 0
		WaitForNil(r, time.Second, "counts to 3", func() error {
			if n++; n < 3 {
				return fmt.Errorf("at %d", n)
			}
			return nil
		})
		if r.fatal != "" || n != 3 {
			t.Errorf("fatal %q after %d calls", r.fatal, n)
		}

		WaitForNil(r, time.Second, "the nodes agree", func() error { return errors.New("n2 is behind") })
		if want := "after 1s: the nodes agree: n2 is behind"; r.fatal != want {
			t.Errorf("fatal %q, want %q", r.fatal, want)
		}
	})
}

func TestFreeAddr(t *testing.T) {
	addr := FreeAddr(t)
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		t.Fatalf("FreeAddr() = %q (%v), want a 127.0.0.1 address", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the address FreeAddr gave cannot be listened on: %v", err)
	}
	_ = ln.Close()
}
