package lograte

import (
	"testing"
	"testing/synctest"
	"time"
)

// One event per key per interval gets through; the next one that does says
// how many were held back; keys do not share an interval. In a synctest
// bubble time.Sleep moves the clock exactly, so the interval's edge is
// checked to the millisecond.
func TestAllow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(50 * time.Millisecond)
		if held, ok := l.Allow("a"); !ok || held != 0 {
			t.Fatalf("first a: %d %v", held, ok)
		}
		for range 3 {
			if _, ok := l.Allow("a"); ok {
				t.Fatal("a repeated within the interval got through")
			}
		}
		if _, ok := l.Allow("b"); !ok {
			t.Fatal("b held back by a's interval")
		}
		time.Sleep(49 * time.Millisecond)
		if _, ok := l.Allow("a"); ok {
			t.Fatal("a got through 49ms into its 50ms interval")
		}
		time.Sleep(time.Millisecond)
		if held, ok := l.Allow("a"); !ok || held != 4 {
			t.Fatalf("a after the interval: held %d, ok %v; want 4, true", held, ok)
		}
	})
}
