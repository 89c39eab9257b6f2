package logging

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/testutil"
)

// records decodes every line of a JSON log, failing t on a line that is
// not one JSON object.
func records(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(log) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("a log line is not JSON: %v: %q", err, line)
		}
		out = append(out, r)
	}
	return out
}

// summary is a log's records as "LEVEL component msg" lines.
func summary(t *testing.T, log string) string {
	var b strings.Builder
	for _, r := range records(t, log) {
		c, _ := r["component"].(string)
		b.WriteString(r["level"].(string) + " " + c + " " + r["msg"].(string) + "\n")
	}
	return b.String()
}

// What reaches the log at each setting: the node's own events filtered at
// log.level, the Kafka client's at log.kafka_level with component=kafka,
// whatever the two are to each other.
func TestLevels(t *testing.T) {
	tests := []struct {
		level, kafkaLevel string
		kgoLevel          kgo.LogLevel // what franz-go is told to log
		want              string
	}{
		{"info", "warn", kgo.LogLevelWarn, `INFO  node info
WARN  node warn
ERROR  node error
WARN kafka kafka warn
ERROR kafka kafka error
`},
		{"error", "debug", kgo.LogLevelDebug, `ERROR  node error
DEBUG kafka kafka debug
INFO kafka kafka info
WARN kafka kafka warn
ERROR kafka kafka error
`},
		{"debug", "error", kgo.LogLevelError, `DEBUG  node debug
INFO  node info
WARN  node warn
ERROR  node error
ERROR kafka kafka error
`},
	}
	for _, tc := range tests {
		t.Run(tc.level+"/"+tc.kafkaLevel, func(t *testing.T) {
			var buf testutil.Buffer
			c := config.Log{Format: "json", Level: tc.level, KafkaLevel: tc.kafkaLevel}
			log, kafka := ForNode(New(&buf, c), c)
			if got := kafka.Level(); got != kgo.LogLevelNone {
				t.Errorf("franz-go's level before Enable = %v, want none", got)
			}
			kafka.Enable()
			log.Debug("node debug")
			log.Info("node info")
			log.Warn("node warn")
			log.Error("node error")
			if got := kafka.Level(); got != tc.kgoLevel {
				t.Errorf("franz-go's level = %v, want %v", got, tc.kgoLevel)
			}
			// As franz-go's client calls it: only at its level and above.
			for _, l := range []kgo.LogLevel{kgo.LogLevelDebug, kgo.LogLevelInfo, kgo.LogLevelWarn, kgo.LogLevelError} {
				if l <= kafka.Level() {
					kafka.Log(l, "kafka "+strings.ToLower(l.String()))
				}
			}
			if got := summary(t, buf.String()); got != tc.want {
				t.Errorf("logged:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// The text format is key=value lines, as before the log section existed.
func TestTextFormat(t *testing.T) {
	var buf testutil.Buffer
	New(&buf, config.Log{Format: "text", Level: "info", KafkaLevel: "warn"}).Info("node started", "node", "n1")
	if got := buf.String(); !strings.Contains(got, `level=INFO msg="node started" node=n1`) {
		t.Errorf("text log: %q", got)
	}
}

// A Kafka client warning repeated (a broker that is down, retried several
// times a second) is logged once per message and broker address; the
// next one past the interval says how many were held back.
func TestKafkaWarningsRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf testutil.Buffer
		c := config.Log{Format: "json", Level: "info", KafkaLevel: "info"}
		_, kafka := ForNode(New(&buf, c), c)
		kafka.Enable()
		for range 5 {
			kafka.Log(kgo.LogLevelWarn, "unable to open connection to broker", "addr", "a:9092", "err", "refused")
			kafka.Log(kgo.LogLevelWarn, "unable to open connection to broker", "addr", "b:9092", "err", "refused")
			kafka.Log(kgo.LogLevelInfo, "joined") // what the client does, not trouble: never held back
		}
		time.Sleep(kafkaRepeatEvery)
		kafka.Log(kgo.LogLevelWarn, "unable to open connection to broker", "addr", "a:9092", "err", "refused")

		var got []string
		for _, r := range records(t, buf.String()) {
			if r["msg"] == "joined" {
				continue
			}
			got = append(got, fmt.Sprintf("%s repeated=%v", r["addr"], r["repeated"]))
		}
		want := []string{"a:9092 repeated=<nil>", "b:9092 repeated=<nil>", "a:9092 repeated=4"}
		if !slices.Equal(got, want) || strings.Count(buf.String(), `"msg":"joined"`) != 5 {
			t.Errorf("warnings logged %q, want %q, and 5 joins:\n%s", got, want, buf.String())
		}
	})
}
