package engine

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/iqengine/iqengine/state"
)

type metrics struct {
	applied  *prometheus.CounterVec
	nullKeys *prometheus.CounterVec
	// malformed counts window and session store records whose key is too
	// short for its schema.
	malformed *prometheus.CounterVec
	wipes     *prometheus.CounterVec
	rebuilds  *prometheus.CounterVec
	// promotions counts standbys that became active here.
	promotions *prometheus.CounterVec
	failures   prometheus.Counter
	expired    *prometheus.CounterVec

	storeErrors prometheus.Counter
	writeStalls prometheus.Counter
	// unservedWipes counts the partitions wiped because they were not
	// served here for storage.unserved_retention (see unserved.go).
	unservedWipes *prometheus.CounterVec
}

// newMetrics registers the engine's metrics with r (none when r is nil).
// Per-partition lag and state are collected when scraped, from the same
// numbers /v1/metadata/partitions shows; so are staleness, the store's
// Pebble metrics and the disk held by partitions no longer served.
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
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iqengine_records_malformed_key_total",
			Help: "Records of window and session stores' topics skipped because their key is too short for the key schema, by topic.",
		}, []string{"topic"}),
		wipes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iqengine_partition_wipes_total",
			Help: "Partitions wiped and rebuilt because the stored state could not continue the log.",
		}, []string{"topic"}),
		rebuilds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iqengine_partition_rebuilds_total",
			Help: "Partitions wiped and restored from the log start while consuming: the log start passed the node, or the log was truncated below what it applied.",
		}, []string{"topic"}),
		promotions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iqengine_standby_promotions_total",
			Help: "Partitions held here as a standby replica that the group then assigned here: they resumed from the standby's position instead of restoring.",
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
		unservedWipes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iqengine_unserved_partitions_wiped_total",
			Help: "Partitions whose stored data was wiped because this node had not served them for storage.unserved_retention.",
		}, []string{"topic"}),
	}
	if r != nil {
		r.MustRegister(m.applied, m.nullKeys, m.malformed, m.wipes, m.rebuilds, m.promotions, m.failures, m.expired, m.storeErrors, m.writeStalls,
			m.unservedWipes, partitionCollector{e}, storeCollector{e}, unservedCollector{e})
	}
	return m
}

// kafkaMetrics are the consumer client's metrics, by franz-go's kprom:
// connections, bytes and errors per broker (label node_id: the broker's),
// bytes and records fetched per broker and topic, as iqengine_kafka_*. They
// are registered on r when the client is created and unregistered when it
// closes; none when r is nil.
func kafkaMetrics(r prometheus.Registerer) []kgo.Opt {
	if r == nil {
		return nil
	}
	return []kgo.Opt{kgo.WithHooks(kprom.NewMetrics("iqengine_kafka", kprom.Registerer(r),
		kprom.FetchAndProduceDetail(kprom.ByNode, kprom.ByTopic, kprom.Records, kprom.UncompressedBytes)))}
}

var (
	lagDesc = prometheus.NewDesc("iqengine_partition_lag",
		"Records in the partition not yet applied on this node, by replica (active or standby).", []string{"topic", "partition", "replica"}, nil)
	servingDesc = prometheus.NewDesc("iqengine_partition_serving",
		"1 when the partition serves queries on this node (as an active owner or a caught-up standby, by replica), 0 while it restores.", []string{"topic", "partition", "replica"}, nil)
	stalenessDesc = prometheus.NewDesc("iqengine_partition_staleness_seconds",
		"Seconds since the partition last had applied every record of its log on this node (since its assignment when it never has); 0 while it has nothing left to apply.",
		[]string{"topic", "partition", "replica"}, nil)
)

type partitionCollector struct{ e *Engine }

func (c partitionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- servingDesc
	ch <- stalenessDesc
}

func (c partitionCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.e.Partitions() {
		part := strconv.Itoa(int(p.Partition))
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(p.Lag), p.Topic, part, p.Replica)
		serving := 0.0
		if p.State == state.Serving.String() {
			serving = 1
		}
		ch <- prometheus.MustNewConstMetric(servingDesc, prometheus.GaugeValue, serving, p.Topic, part, p.Replica)
	}
	now := time.Now()
	c.e.mu.RLock()
	defer c.e.mu.RUnlock()
	for p := range c.e.allParts() {
		ch <- prometheus.MustNewConstMetric(stalenessDesc, prometheus.GaugeValue, p.staleness(now).Seconds(),
			p.id.Topic, strconv.Itoa(int(p.id.Partition)), p.kind.String())
	}
}

// staleness is how long p has been behind the end of its log as last seen
// in a fetch: since it last had nothing left to apply, or since it was
// assigned (or rebuilt) when it has not caught up since. It is measured
// here, not from record timestamps: on a quiet topic the last record is
// old however current the partition is. A broker that stops answering
// leaves the end of the log where it was last seen, so staleness does not
// grow then; iqengine_kafka_* shows the broken connections.
func (p *partition) staleness(now time.Time) time.Duration {
	if p.next.Load() >= p.hwm.Load() {
		return 0
	}
	return now.Sub(time.Unix(0, p.caughtUp.Load()))
}

// noteProgress records that p has caught up when it has applied every
// record up to the end of the log seen in the last fetch.
func (p *partition) noteProgress() {
	if p.next.Load() >= p.hwm.Load() {
		p.caughtUp.Store(time.Now().UnixNano())
	}
}
