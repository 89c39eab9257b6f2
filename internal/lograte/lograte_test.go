package lograte

import (
	"testing"
	"time"
)

// One event per key per interval gets through; the next one that does says
// how many were held back; keys do not share an interval.
func TestAllow(t *testing.T) {
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
	time.Sleep(60 * time.Millisecond)
	if held, ok := l.Allow("a"); !ok || held != 3 {
		t.Fatalf("a after the interval: held %d, ok %v; want 3, true", held, ok)
	}
}
