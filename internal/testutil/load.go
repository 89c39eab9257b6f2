package testutil

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Load is the tests' load generator: clients that send GET requests to
// the nodes of a cluster that changes under them (nodes stop, crash,
// restart), as users do, and hand every answer to Answer for the test to
// judge against what it produced.
//
// The rule for transport errors: a client sends only to a target Pick gave
// it. When the request fails at the transport level and the target is gone
// since (Target.Gone), the test stopped or killed it in between: the
// request is sent again to another target and counted in Interrupted, not
// judged. Any other transport error reaches Answer with Err set.
type Load struct {
	// Clients is how many requests are in flight at once.
	Clients int
	// Client sends the requests.
	Client *http.Client
	// Pick chooses the target of a request; ok false means none is running
	// now (the client waits 10 ms and asks again). not is the target the
	// request just failed on, to avoid.
	Pick func(rng *rand.Rand, not string) (t Target, ok bool)
	// Next is the path and query of a client's next request (after the
	// target's base URL), and what the test needs to judge its answer.
	Next func(rng *rand.Rand) (path string, tag any)
	// Answer receives every answer, from the clients' goroutines.
	Answer func(Answer)
	// Resent, when set, receives each attempt that failed because its
	// target went away (the request is then sent again).
	Resent func(Answer)
	// Pause is the longest pause of a client between two requests (a
	// random pause up to it; 0: none).
	Pause time.Duration
	// Seed makes the clients' random choices repeatable.
	Seed uint64

	cancel      context.CancelFunc
	wg          sync.WaitGroup
	interrupted atomic.Int64
}

// Target is one node a request goes to.
type Target struct {
	ID   string
	Base string // "http://host:port"
	// Gone reports whether the node stopped since Pick chose it (nil:
	// never).
	Gone func() bool
	// Done, when set, is called once the request to it has ended.
	Done func()
}

// Answer is one request and what came back.
type Answer struct {
	Target     string
	Path       string
	Tag        any
	Sent, Done time.Time
	Status     int
	Header     http.Header
	Body       []byte
	Err        error // a transport error from a target that was not gone
}

// Start runs the clients until ctx ends or Stop.
func (l *Load) Start(ctx context.Context) {
	ctx, l.cancel = context.WithCancel(ctx)
	for c := range l.Clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(l.Seed, uint64(c)))
			for ctx.Err() == nil {
				l.one(ctx, rng)
				if l.Pause > 0 {
					time.Sleep(time.Duration(rng.Int64N(int64(l.Pause))))
				}
			}
		}()
	}
}

// Stop stops the clients and waits for their last requests.
func (l *Load) Stop() {
	if l.cancel != nil {
		l.cancel()
	}
	l.wg.Wait()
}

// Interrupted counts the requests sent again because their target went
// away under them.
func (l *Load) Interrupted() int64 { return l.interrupted.Load() }

func (l *Load) one(ctx context.Context, rng *rand.Rand) {
	path, tag := l.Next(rng)
	not := ""
	for ctx.Err() == nil {
		t, ok := l.Pick(rng, not)
		if !ok {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		a := Answer{Target: t.ID, Path: path, Tag: tag, Sent: time.Now()}
		a.Status, a.Header, a.Body, a.Err = fetch(l.Client, t.Base+path)
		a.Done = time.Now()
		if t.Done != nil {
			t.Done()
		}
		if a.Err != nil && t.Gone != nil && t.Gone() {
			l.interrupted.Add(1)
			if l.Resent != nil {
				l.Resent(a)
			}
			not = t.ID
			continue
		}
		l.Answer(a)
		return
	}
}
