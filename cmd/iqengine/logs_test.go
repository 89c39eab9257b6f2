package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
)

// With log.format json, serve writes every event as one JSON line, the
// Kafka client's warnings included: here the one about a seed broker
// that cannot be reached (the other seeds can, so the node runs), with
// component=kafka.
func TestServeLogsJSONWithKafkaWarnings(t *testing.T) {
	b := testkafka.Start(t)
	topic := testkafka.Name(t, "orders")
	b.CreateTopic(t, topic, 2)
	dead := testutil.FreeAddr(t)
	dir := t.TempDir()
	config := writeFile(t, dir, "iqengine.yaml", "application_id: "+testkafka.Name(t, "app")+"\nnode_id: n1\nlisten: 127.0.0.1:0\n"+
		"data_dir: "+filepath.Join(dir, "data")+"\n"+
		// The dead seed first and last: each client starts at a random
		// seed, and tries the next one after each round of the brokers
		// it has found.
		"kafka: {brokers: ["+dead+", "+strings.Join(b.Addrs, ", ")+", "+dead+"], session_timeout: 6s}\n"+
		"log: {format: json}\n"+
		"stores: [{name: orders, topic: "+topic+"}]\n")

	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testutil.Buffer
	exited := make(chan int, 1)
	go func() { exited <- runContext(ctx, []string{"serve", "--config", config}, &stdout, &stderr, noEnv) }()

	// records decodes stderr, failing t on a line that is not one JSON
	// object.
	type record struct {
		Level, Msg, Component, Node, Addr string
	}
	records := func() []record {
		var out []record
		for line := range strings.Lines(stderr.String()) {
			var r record
			if err := json.Unmarshal([]byte(line), &r); err != nil || r.Msg == "" {
				t.Fatalf("stderr line is not a JSON log record (%v): %q", err, line)
			}
			out = append(out, r)
		}
		return out
	}
	var warning record
	testutil.WaitFor(t, 30*time.Second, "the node started, and franz-go's warning about the dead seed", func() bool {
		select {
		case code := <-exited:
			t.Fatalf("serve exited %d:\n%s", code, stderr.String())
		default:
		}
		started := false
		for _, r := range records() {
			if r.Component == "kafka" && r.Addr == dead {
				warning = r
			}
			started = started || r.Msg == "node started"
		}
		return started && warning.Msg != ""
	})
	if warning.Level != "WARN" || warning.Node != "n1" || !strings.Contains(warning.Msg, "unable to open connection") {
		t.Errorf("the Kafka client's record: %+v, want a warning for node n1 about the connection", warning)
	}
	cancel()
	if code := <-exited; code != 0 {
		t.Fatalf("serve exited %d after its context ended:\n%s", code, stderr.String())
	}
	msgs := map[string]bool{}
	for _, r := range records() {
		msgs[r.Msg] = true
	}
	for _, m := range []string{"left the group", "node stopped"} {
		if !msgs[m] {
			t.Errorf("no %q record:\n%s", m, stderr.String())
		}
	}
}
