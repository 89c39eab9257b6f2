package engine

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// storeMetrics are Pebble's own numbers, read when scraped: what explains a
// full disk (disk use, compaction debt), a write stall (level-0 files,
// compactions that fall behind) or slow reads (the block cache's hit rate).
var storeMetrics = []struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(m *pebble.Metrics) float64
}{
	{prometheus.NewDesc("iqengine_store_disk_usage_bytes", "Disk used by the store: tables, write-ahead log and manifest, obsolete files not yet deleted included.", nil, nil),
		prometheus.GaugeValue, func(m *pebble.Metrics) float64 { return float64(m.DiskSpaceUsage()) }},
	{prometheus.NewDesc("iqengine_store_compactions_total", "Compactions the store has run since it opened.", nil, nil),
		prometheus.CounterValue, func(m *pebble.Metrics) float64 { return float64(m.Compact.Count) }},
	{prometheus.NewDesc("iqengine_store_compacted_bytes_total", "Bytes compactions have written since the store opened.", nil, nil),
		prometheus.CounterValue, func(m *pebble.Metrics) float64 {
			var n uint64
			for _, l := range m.Levels {
				n += l.TableBytesCompacted
			}
			return float64(n)
		}},
	{prometheus.NewDesc("iqengine_store_compaction_debt_bytes", "Bytes the store estimates it must compact to reach a stable shape: growing debt means compactions fall behind.", nil, nil),
		prometheus.GaugeValue, func(m *pebble.Metrics) float64 { return float64(m.Compact.EstimatedDebt) }},
	{prometheus.NewDesc("iqengine_store_l0_files", "Files in the store's level 0: writes stall when there are too many.", nil, nil),
		prometheus.GaugeValue, func(m *pebble.Metrics) float64 { return float64(m.Levels[0].TablesCount) }},
	{prometheus.NewDesc("iqengine_store_block_cache_hits_total", "Reads of a table block found in the block cache (storage.cache_size).", nil, nil),
		prometheus.CounterValue, func(m *pebble.Metrics) float64 { return float64(m.BlockCache.Hits) }},
	{prometheus.NewDesc("iqengine_store_block_cache_misses_total", "Reads of a table block that went to disk: hits / (hits + misses) is the cache's hit rate.", nil, nil),
		prometheus.CounterValue, func(m *pebble.Metrics) float64 { return float64(m.BlockCache.Misses) }},
	{prometheus.NewDesc("iqengine_store_block_cache_bytes", "Bytes in the block cache.", nil, nil),
		prometheus.GaugeValue, func(m *pebble.Metrics) float64 { return float64(m.BlockCache.Size) }},
}

// storeCollector exports the store's Pebble metrics.
type storeCollector struct{ e *Engine }

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range storeMetrics {
		ch <- s.desc
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	if c.e.db == nil {
		return // Open failed
	}
	m := c.e.db.Metrics()
	if m == nil {
		return // the store is closing
	}
	for _, s := range storeMetrics {
		ch <- prometheus.MustNewConstMetric(s.desc, s.typ, s.value(m))
	}
}
