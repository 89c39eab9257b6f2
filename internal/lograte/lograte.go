// Package lograte keeps a repeated error from flooding a log: one event per
// key per interval gets through, with the count of those held back.
package lograte

import (
	"sync"
	"time"
)

// Limiter lets one event per key through per interval and counts the rest.
// It is safe for concurrent use.
type Limiter struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
	held  map[string]int
}

// New returns a Limiter with the given interval.
func New(every time.Duration) *Limiter {
	return &Limiter{every: every, last: map[string]time.Time{}, held: map[string]int{}}
}

// Allow reports whether an event of key may be logged now, and how many of
// its events were held back since the last one that was.
func (l *Limiter) Allow(key string) (held int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if t, seen := l.last[key]; seen && now.Sub(t) < l.every {
		l.held[key]++
		return 0, false
	}
	held = l.held[key]
	l.last[key], l.held[key] = now, 0
	return held, true
}
