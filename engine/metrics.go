package engine

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iqengine/iqengine/state"
)

type metrics struct {
	applied  *prometheus.CounterVec
	nullKeys *prometheus.CounterVec
	wipes    *prometheus.CounterVec
	rebuilds *prometheus.CounterVec
	failures prometheus.Counter
	expired  *prometheus.CounterVec

	storeErrors prometheus.Counter
	writeStalls prometheus.Counter
}

// newMetrics registers the engine's metrics with r (none when r is nil).
// Per-partition lag and state are collected when scraped, from the same
// numbers /v1/metadata/partitions shows.
func newMetrics(e *Engine, r prometheus.Registerer) *metrics {
	m := &metrics{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iqengine_records_applied_total",
			Help: "Records applied to the local store, by topic.",
		}, []string{"topic"}),
		nullKeys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iqengine_records_null_key_total",
			Help: "Records skipped because their key is null, by topic.",
		}, []string{"topic"}),
		wipes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iqengine_partition_wipes_total",
			Help: "Partitions wiped and rebuilt because the stored state could not continue the log.",
		}, []string{"topic"}),
		rebuilds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iqengine_partition_rebuilds_total",
			Help: "Partitions wiped and restored from the log start while consuming: the log start passed the node, or the log was truncated below what it applied.",
		}, []string{"topic"}),
		expired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iqengine_keys_expired_total",
			Help: "Keys deleted because their last record fell below the log start of a topic with delete retention.",
		}, []string{"topic"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iqengine_store_background_errors_total",
			Help: "Errors of the store's background work (flushes, compactions), which it retries: a disk that is full or failing.",
		}),
		writeStalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iqengine_store_write_stalls_total",
			Help: "Times the store began holding writes back because flushes or compactions fell behind.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iqengine_engine_failures_total",
			Help: "1 once the engine has failed (a store write failed or stalled) and the node is leaving.",
		}),
	}
	if r != nil {
		r.MustRegister(m.applied, m.nullKeys, m.wipes, m.rebuilds, m.failures, m.expired, m.storeErrors, m.writeStalls, partitionCollector{e})
	}
	return m
}

var (
	lagDesc = prometheus.NewDesc("iqengine_partition_lag",
		"Records in the partition not yet applied on this node.", []string{"topic", "partition"}, nil)
	servingDesc = prometheus.NewDesc("iqengine_partition_serving",
		"1 when the partition serves queries on this node, 0 while it restores.", []string{"topic", "partition"}, nil)
)

type partitionCollector struct{ e *Engine }

func (c partitionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- servingDesc
}

func (c partitionCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.e.Partitions() {
		part := strconv.Itoa(int(p.Partition))
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(p.Lag), p.Topic, part)
		serving := 0.0
		if p.State == state.Serving.String() {
			serving = 1
		}
		ch <- prometheus.MustNewConstMetric(servingDesc, prometheus.GaugeValue, serving, p.Topic, part)
	}
}
