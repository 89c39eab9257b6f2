package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/buildinfo"
	"github.com/iqengine/iqengine/internal/logging"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/router"
)

// A running node logs its own events at log.level and its Kafka client's
// at log.kafka_level, each record one JSON line; the Kafka client's carry
// component=kafka and the node's id.
func TestNodeLogLevels(t *testing.T) {
	// The defaults: "node started", and none of franz-go's group steps.
	t.Run("info/warn", func(t *testing.T) {
		nodeInfo, kafkaInfo := infoRecords(t, config.Log{Format: "json", Level: "info", KafkaLevel: "warn"})
		if !slices.Contains(nodeInfo, "node started") || len(kafkaInfo) > 0 {
			t.Errorf("node info records %q, kafka info records %q; want \"node started\" and no kafka ones", nodeInfo, kafkaInfo)
		}
	})
	// A quieter node, a chattier client: the group's steps, no "node started".
	t.Run("warn/info", func(t *testing.T) {
		nodeInfo, kafkaInfo := infoRecords(t, config.Log{Format: "json", Level: "warn", KafkaLevel: "info"})
		if len(nodeInfo) > 0 || len(kafkaInfo) == 0 {
			t.Errorf("node info records %q, kafka info records %q; want no node ones and some kafka ones", nodeInfo, kafkaInfo)
		}
	})
}

// infoRecords runs a node with the log settings lc and returns the
// messages of the info records it logged from start to stop: its own, and
// its Kafka client's. Every record must be one JSON line, for node n1, and
// none at debug.
func infoRecords(t *testing.T, lc config.Log) (nodeInfo, kafkaInfo []string) {
	var logs testutil.Buffer
	n, _, _ := inProcessNode(t, nil, func(c *config.Config) { c.Log = lc }, WithLogger(logging.New(&logs, lc)))
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(logs.String()) {
		var r struct{ Level, Msg, Component, Node string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("a log line is not JSON: %v: %q", err, line)
		}
		if r.Node != "n1" || r.Level == "DEBUG" {
			t.Errorf("a record not for node n1, or at debug: %s", line)
		}
		switch {
		case r.Level == "INFO" && r.Component == "kafka":
			kafkaInfo = append(kafkaInfo, r.Msg)
		case r.Level == "INFO":
			nodeInfo = append(nodeInfo, r.Msg)
		}
	}
	return nodeInfo, kafkaInfo
}

// GET /v1/info names the build, the node, its application and stores, and
// its features, and says the same as the iqengine_build_info metric.
func TestNodeInfo(t *testing.T) {
	var app string
	_, base, _ := inProcessNode(t, nil, func(c *config.Config) { app = c.ApplicationID })
	status, body, err := testutil.Get(http.DefaultClient, base+"/v1/info")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /v1/info: %d %v %s", status, err, body)
	}
	var got router.Info
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	b := buildinfo.Get()
	if got.Version != b.Version || got.Commit != b.Commit || got.GoVersion != b.GoVersion || !slices.Equal(got.PluginABI, b.PluginABI) ||
		got.NodeID != "n1" || got.ApplicationID != app || !slices.Equal(got.Stores, []string{"orders"}) {
		t.Errorf("info %s, want build %+v, node n1, application %s, stores [orders]", body, b, app)
	}
	wantFeatures := map[string]any{"plugins": []any{}, "plugin_reload": false, "isolation_level": "read_committed",
		"kafka_tls": false, "kafka_sasl": "none", "disk_check": true, "tracing": false, "console": true}
	for k, want := range wantFeatures {
		if fmt.Sprint(got.Features[k]) != fmt.Sprint(want) {
			t.Errorf("features[%s] = %v, want %v", k, got.Features[k], want)
		}
	}

	_, metrics, err := testutil.Get(http.DefaultClient, base+"/metrics")
	want := `iqengine_build_info{commit="` + b.Commit + `",goversion="` + b.GoVersion + `",version="` + b.Version + `"} 1`
	if err != nil || !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics (%v) lacks %s", err, want)
	}
}
