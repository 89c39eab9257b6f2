package router

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iqengine/iqengine/state"
)

// The bounds on the work one node takes, so that no caller can exhaust it:
// requests in flight (a request beyond them is refused at once with 429,
// never queued), the bytes of a scan page (and of each share of it asked
// of another node), how long one write may wait on a client that does not
// read, and a count's walks (cached per partition, shared, cancelled with
// their request).

const (
	defaultMaxInFlight      = 512
	defaultMaxInFlightScans = 16
	defaultMaxPageBytes     = 4 << 20
	defaultWriteTimeout     = 10 * time.Second
	// peerAnswerSlack is what a peer's answer may hold beyond two page
	// budgets: one record longer than a page.
	peerAnswerSlack = 1 << 20
	// overloadedRetryAfter is the Retry-After of a 429, in seconds: a
	// scan or count takes about that long.
	overloadedRetryAfter = 1
)

// boundDefaults fills in the bounds an Options leaves at zero.
func boundDefaults(o *Options) {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = defaultMaxInFlight
	}
	if o.MaxInFlightScans <= 0 {
		o.MaxInFlightScans = min(defaultMaxInFlightScans, o.MaxInFlight)
	}
	if o.MaxPageBytes <= 0 {
		o.MaxPageBytes = defaultMaxPageBytes
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = defaultWriteTimeout
	}
	if o.PeerAnswerLimit <= 0 {
		o.PeerAnswerLimit = 2*int64(o.MaxPageBytes) + peerAnswerSlack
	}
}

// slots counts the requests of one kind in flight, up to max.
type slots struct {
	n   atomic.Int64
	max int64
}

// take takes a slot, or reports false when all are taken.
func (s *slots) take() bool {
	for {
		n := s.n.Load()
		if n >= s.max {
			return false
		}
		if s.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *slots) free() { s.n.Add(-1) }

// limits are the handler's bounds of requests in flight and their metrics.
type limits struct {
	requests, scans slots
	refused         *prometheus.CounterVec // by endpoint
}

func newLimits(o Options) *limits {
	l := &limits{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iqengine_http_refused_total",
			Help: "Requests refused with 429 because the node was answering as many as it may at once (server.max_in_flight, or server.max_in_flight_scans for scans and counts), by endpoint."},
			[]string{"endpoint"}),
	}
	l.requests.max, l.scans.max = int64(o.MaxInFlight), int64(o.MaxInFlightScans)
	inFlight := func(kind string, s *slots) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iqengine_http_in_flight",
			Help:        "Requests being answered, of those the bounds count: requests (every one but the health probes, /metrics and calls between nodes) and scans (scans and counts, also among requests).",
			ConstLabels: prometheus.Labels{"kind": kind}}, func() float64 { return float64(s.n.Load()) })
	}
	o.Registry.MustRegister(l.refused, inFlight("requests", &l.requests), inFlight("scans", &l.scans))
	return l
}

// endpointClass is which bounds of requests in flight an endpoint counts
// against.
type endpointClass int

const (
	// unbounded: the health probes, which must answer whatever the load,
	// and the calls between nodes, which are part of a request another
	// node admitted (refusing them would fail that request half done).
	unbounded endpointClass = iota
	// bounded by server.max_in_flight.
	boundedRequest
	// bounded by both: scans and counts, which walk many records.
	boundedScan
)

func classOf(endpoint string) endpointClass {
	switch {
	case endpoint == "healthz" || endpoint == "readyz" || strings.HasPrefix(endpoint, "internal-"):
		return unbounded
	case endpoint == "scan" || endpoint == "count" || endpoint == "windows" || endpoint == "sessions":
		return boundedScan
	}
	return boundedRequest
}

// bounded wraps endpoint's handler in its bounds of requests in flight: a
// request that finds no slot free is answered 429 overloaded with
// Retry-After at once, and counted.
func (h *Handler) bounded(endpoint string, f handlerFunc) handlerFunc {
	class := classOf(endpoint)
	if class == unbounded {
		return f
	}
	refused := h.lim.refused.WithLabelValues(endpoint)
	refuse := func(w http.ResponseWriter, r *http.Request, what string, limit int64) {
		refused.Inc()
		w.Header().Set("Retry-After", strconv.Itoa(overloadedRetryAfter))
		writeProblem(w, r, http.StatusTooManyRequests, probOverloaded,
			"this node is answering "+strconv.FormatInt(limit, 10)+" "+what+", as many as it takes at once; retry in a moment")
	}
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if !h.lim.requests.take() {
			refuse(w, r, "requests", h.lim.requests.max)
			return
		}
		defer h.lim.requests.free()
		if class == boundedScan {
			if !h.lim.scans.take() {
				refuse(w, r, "scans and counts", h.lim.scans.max)
				return
			}
			defer h.lim.scans.free()
		}
		f(w, r, ps)
	}
}

// errAnswerBroken is a write after one that failed.
var errAnswerBroken = errors.New("an earlier write of the answer failed")

// answerWriter writes a long answer in chunks of writeChunk bytes, with a
// deadline on each, so that a client that stops reading fails the write
// within WriteTimeout, which ends the answer and frees its buffers; a
// client that reads, even slowly, keeps a long answer going.
type answerWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	started bool // bytes went out: the status and headers are sent
	broken  bool // a write failed: the connection is done
}

func (h *Handler) newAnswerWriter(w http.ResponseWriter) *answerWriter {
	return &answerWriter{w: w, rc: http.NewResponseController(w), timeout: h.o.WriteTimeout}
}

// deadline sets the connection's write deadline for the next write; a
// writer that cannot have one (a test's recorder) writes without.
func (a *answerWriter) deadline() {
	_ = a.rc.SetWriteDeadline(time.Now().Add(a.timeout))
}

// writeChunk is how much of an answer one write deadline covers.
const writeChunk = 64 << 10

// write writes b and flushes it to the client.
func (a *answerWriter) write(b []byte) error {
	if a.broken {
		return errAnswerBroken
	}
	a.started = true
	for len(b) > 0 {
		n := min(len(b), writeChunk)
		a.deadline()
		if _, err := a.w.Write(b[:n]); err != nil {
			a.broken = true
			return err
		}
		b = b[n:]
	}
	a.deadline()
	if err := a.rc.Flush(); err != nil {
		a.broken = true
		return err
	}
	return nil
}

// done ends the answer: its bytes have been flushed, so the connection's
// deadline is lifted for the next request on it.
func (a *answerWriter) done() {
	if !a.broken {
		_ = a.rc.SetWriteDeadline(time.Time{})
	}
}

// capturedProblem is a ResponseWriter that keeps a problem answer, to be
// written elsewhere (the last line of an NDJSON page already under way).
type capturedProblem struct {
	header http.Header
	body   []byte
}

func (c *capturedProblem) Header() http.Header { return c.header }
func (c *capturedProblem) WriteHeader(int)     {}
func (c *capturedProblem) Write(b []byte) (int, error) {
	c.body = append(c.body, b...)
	return len(b), nil
}

// countCache keeps each partition's last count: a count of a partition
// whose applied position has not moved reuses it (for up to countKeptFor:
// keys also leave a partition by retention, which moves no position), one
// that has moved recounts at most once per countRecountAfter, and
// concurrent counts of a partition share one walk, which ends when the
// last of them goes away. Counts are approximate either way: records
// arrive while a walk runs.
type countCache struct {
	mu sync.Mutex
	m  map[state.Partition]*countEntry
}

const (
	countRecountAfter = time.Second
	countKeptFor      = time.Minute
)

// countEntry is one partition's last count and its walk in flight.
type countEntry struct {
	valid  bool
	n      int64
	next   int64     // the partition's position when the walk began
	at     time.Time // when the walk ended
	flight *countFlight
}

// countFlight is a walk of a partition, shared by the counts that wait for
// it.
type countFlight struct {
	done    chan struct{}
	n       int64
	err     error
	waiters int
	cancel  context.CancelFunc
}

func newCountCache() *countCache {
	return &countCache{m: map[state.Partition]*countEntry{}}
}

// countOf counts p's keys here, through the cache; ctx ending stops the
// walk unless other counts still wait for it.
func (h *Handler) countOf(ctx context.Context, p state.Partition) (int64, error) {
	rep, err := h.e.Replica(p)
	if err != nil {
		return 0, err
	}
	c := h.counts
	c.mu.Lock()
	e := c.m[p]
	if e == nil {
		e = &countEntry{}
		c.m[p] = e
	}
	if age := time.Since(e.at); e.valid && (age < countRecountAfter || e.next == rep.Next && age < countKeptFor) {
		n := e.n
		c.mu.Unlock()
		return n, nil
	}
	f := e.flight
	if f == nil {
		// The walk is the flight's, not the first request's: it ends
		// when every count waiting for it has gone.
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &countFlight{done: make(chan struct{}), cancel: cancel}
		e.flight = f
		go func() {
			n, err := h.e.Count(wctx, p)
			cancel()
			c.mu.Lock()
			f.n, f.err = n, err
			if e.flight == f {
				e.flight = nil
			}
			if err == nil {
				e.valid, e.n, e.next, e.at = true, n, rep.Next, time.Now()
			}
			c.mu.Unlock()
			close(f.done)
		}()
	}
	f.waiters++
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.n, f.err
	case <-ctx.Done():
		c.mu.Lock()
		if f.waiters--; f.waiters == 0 {
			f.cancel()
			if e.flight == f {
				e.flight = nil
			}
		}
		c.mu.Unlock()
		return 0, ctx.Err()
	}
}
