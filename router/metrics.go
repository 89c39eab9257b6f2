package router

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets are those of requests and calls to other nodes: 100µs
// (a lookup served here) to 30s (query.max_timeout's default).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// waits are the endpoints that wait for partitions, with their
	// iqengine_http_request_wait_seconds series.
	waits    map[string]prometheus.Observer
	forwards *prometheus.CounterVec   // peer, outcome
	forwardT *prometheus.HistogramVec // peer
	peers    sync.Map                 // node id -> *peerMetrics
	// answers counts partition reads by the kind of replica that
	// answered; failovers those answered by another replica after one
	// could not.
	answers   [3]prometheus.Counter // by state.ReplicaKind: none, active, standby
	failovers prometheus.Counter
}

// waitingEndpoints are the endpoints that wait while a partition has no
// serving owner.
var waitingEndpoints = []string{"get", "scan", "count", "internal-get", "internal-scan", "internal-count"}

func newHTTPMetrics(r prometheus.Registerer) *httpMetrics {
	// The first bucket is 0: most requests do not wait.
	waits := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "iqengine_http_request_wait_seconds",
		Help:    "Time a request waited for its partitions to have a serving owner (restoring, moving, owner unreachable), by endpoint: 0 for most. A forwarded request's wait includes the owner's (its internal-* endpoints).",
		Buckets: []float64{0, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"endpoint"})
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iqengine_http_requests_total",
			Help: "HTTP requests by endpoint and status code.",
		}, []string{"endpoint", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "iqengine_http_request_duration_seconds",
			Help:    "HTTP request latency by endpoint, including waits for restoring partitions.",
			Buckets: latencyBuckets,
		}, []string{"endpoint"}),
		waits: map[string]prometheus.Observer{},
		forwards: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iqengine_forwards_total",
			Help: "Calls to other nodes for partitions they own, by peer (node id) and outcome: ok (an answer, a key not found included), not_owner (421: the routing tables disagreed), unavailable (503: the partition restores there), timeout, unreachable, error (any other answer)."},
			[]string{"peer", "outcome"}),
		forwardT: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "iqengine_forward_duration_seconds",
			Help: "Time of a call to another node, by peer, whatever its outcome.", Buckets: latencyBuckets}, []string{"peer"}),
	}
	for _, e := range waitingEndpoints {
		m.waits[e] = waits.WithLabelValues(e)
	}
	answers := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iqengine_replica_reads_total",
		Help: "Partition reads of the queries this node took, by the kind of replica that answered: active, or standby (a standby answers when the active owner cannot, or when it is asked with ?replica=any and is nearer)."},
		[]string{"replica"})
	m.answers[1] = answers.WithLabelValues("active")
	m.answers[2] = answers.WithLabelValues("standby")
	m.failovers = prometheus.NewCounter(prometheus.CounterOpts{Name: "iqengine_failover_reads_total",
		Help: "Partition reads answered by another replica after the one asked first could not (unreachable, restoring, not holding it, behind)."})
	r.MustRegister(m.requests, m.latency, waits, m.forwards, m.forwardT, answers, m.failovers)
	return m
}

// answered counts the replicas that answered a query's partitions.
func (m *httpMetrics) answered(by ...served) {
	for _, s := range by {
		if int(s.kind) < len(m.answers) && s.kind != 0 {
			m.answers[s.kind].Inc()
		}
	}
}

// failover counts a read answered after another replica could not.
func (m *httpMetrics) failover(happened bool) {
	if happened {
		m.failovers.Inc()
	}
}

// waited records how long a request of endpoint waited for partitions.
func (m *httpMetrics) waited(endpoint string, d time.Duration) {
	m.waits[endpoint].Observe(d.Seconds())
}

// A forwardOutcome is how a call to another node ended.
type forwardOutcome int

const (
	forwardOK forwardOutcome = iota
	forwardNotOwner
	forwardUnavailable
	forwardTimeout
	forwardUnreachable
	forwardError
	nForwardOutcomes
)

var forwardOutcomes = [nForwardOutcomes]string{"ok", "not_owner", "unavailable", "timeout", "unreachable", "error"}

// peerMetrics are one peer's series, resolved at its first call: every
// outcome from 0, so that rates of each can be taken.
type peerMetrics struct {
	outcomes [nForwardOutcomes]prometheus.Counter
	latency  prometheus.Observer
}

// forwarded records a call to peer that ended with outcome after d.
func (m *httpMetrics) forwarded(peer string, outcome forwardOutcome, d time.Duration) {
	pm, ok := m.peers.Load(peer)
	if !ok {
		n := &peerMetrics{latency: m.forwardT.WithLabelValues(peer)}
		for i, o := range forwardOutcomes {
			n.outcomes[i] = m.forwards.WithLabelValues(peer, o)
		}
		pm, _ = m.peers.LoadOrStore(peer, n)
	}
	p := pm.(*peerMetrics)
	p.outcomes[outcome].Inc()
	p.latency.Observe(d.Seconds())
}

// endpointMetrics are one endpoint's metrics, resolved once so that a
// request does not look its labels up.
type endpointMetrics struct {
	latency  prometheus.Observer
	requests *prometheus.CounterVec
	name     string
	byStatus sync.Map // int -> prometheus.Counter
}

func (m *httpMetrics) endpoint(name string) *endpointMetrics {
	return &endpointMetrics{latency: m.latency.WithLabelValues(name), requests: m.requests, name: name}
}

func (m *endpointMetrics) observe(status int, d time.Duration) {
	c, ok := m.byStatus.Load(status)
	if !ok {
		c, _ = m.byStatus.LoadOrStore(status, m.requests.WithLabelValues(m.name, strconv.Itoa(status)))
	}
	c.(prometheus.Counter).Inc()
	m.latency.Observe(d.Seconds())
}
