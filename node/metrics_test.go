package node

import (
	"testing"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/testutil"
)

// A node's /metrics carries the engine's Kafka client, store, staleness
// and unserved-data metrics and the router's wait times, all on the one
// registry it serves, and they have moved by the time its first key is
// served. (Each package's tests move its own metrics in detail.)
func TestNodeMetrics(t *testing.T) {
	var topic string
	_, base, _ := inProcessNode(t, nil, func(c *config.Config) { topic = c.Stores[0].Topic })
	m := testutil.Scrape(base + "/metrics")
	moved := []struct {
		name   string
		labels []string
	}{
		{"iqengine_kafka_connects_total", nil},
		{"iqengine_kafka_fetch_records_total", []string{"topic", topic}},
		{"iqengine_store_disk_usage_bytes", nil},
		{"iqengine_http_request_wait_seconds_count", []string{"endpoint", "get"}},
	}
	for _, c := range moved {
		if v := testutil.Metric(t, m, c.name, c.labels...); v <= 0 {
			t.Errorf("%s%v = %v, want more than 0", c.name, c.labels, v)
		}
	}
	families, err := m.Gather()
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]int{}
	for _, f := range families {
		present[f.GetName()] = len(f.GetMetric())
	}
	for name, series := range map[string]int{
		"iqengine_partition_staleness_seconds":  3, // one per partition
		"iqengine_unserved_partitions":          1, // one per topic
		"iqengine_unserved_bytes":               1,
		"iqengine_store_compactions_total":      1,
		"iqengine_store_l0_files":               1,
		"iqengine_store_block_cache_hits_total": 1,
		"iqengine_http_request_wait_seconds":    6, // one per endpoint that waits
	} {
		if present[name] != series {
			t.Errorf("/metrics has %d series of %s, want %d", present[name], name, series)
		}
	}
}
