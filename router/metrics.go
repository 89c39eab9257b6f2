package router

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics(r prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iqengine_http_requests_total",
			Help: "HTTP requests by endpoint and status code.",
		}, []string{"endpoint", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "iqengine_http_request_duration_seconds",
			Help:    "HTTP request latency by endpoint, including waits for restoring partitions.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
	}
	r.MustRegister(m.requests, m.latency)
	return m
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
