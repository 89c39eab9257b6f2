package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/bench"
	"github.com/iqengine/iqengine/internal/testutil"
)

// TestStandbyFootprint measures what standby replicas cost, and is a
// measurement, not a check: it runs only with IQENGINE_FOOTPRINT=1
// (BENCHMARKS.md gives the command and the numbers). Three serve processes
// restore a topic of footprintRecords records from empty, with
// standby_replicas 0 and then 1: the time until the cluster is balanced and
// every replica has applied the whole log, the records applied per second
// per node over that time, and each node's RSS and store on disk then.
func TestStandbyFootprint(t *testing.T) {
	if os.Getenv("IQENGINE_FOOTPRINT") != "1" {
		t.Skip("a measurement: IQENGINE_FOOTPRINT=1 runs it")
	}
	const (
		partitions       = 12
		footprintRecords = 1_000_000
		keys             = 200_000
	)
	bin := buildBinary(t)
	dir := t.TempDir()
	pb := startProcessBroker(t, bin, dir, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	value := []byte(`{"v":"` + strings.Repeat("x", 90) + `"}`) // 100 bytes
	start := time.Now()
	for i := 0; i < footprintRecords; i += 10_000 {
		rs := make([]*kgo.Record, 0, 10_000)
		for j := i; j < i+10_000; j++ {
			rs = append(rs, &kgo.Record{Topic: pb.topic, Key: []byte(fmt.Sprintf("key-%07d", j%keys)), Value: value})
		}
		if err := pb.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d records of 100 bytes over %d keys produced in %s", footprintRecords, keys, time.Since(start).Round(time.Millisecond))
	client := &http.Client{Timeout: 10 * time.Second}
	var sum strings.Builder
	fmt.Fprintf(&sum, "%-17s %-9s %-16s %-30s %s\n", "standby_replicas", "ready in", "records/s/node", "RSS per node (MiB)", "store per node (MiB)")
	for _, standbys := range []int{0, 1} {
		app := fmt.Sprintf("%s-%d", pb.app, standbys)
		config := nodeConfig(t, filepath.Join(dir), app, pb.brokers, pb.topic, "orders", 10*time.Second,
			"replication:\n  standby_replicas: "+strconv.Itoa(standbys)+"\n")
		fleet := newFleet(t, filepath.Join(dir, "s"+strconv.Itoa(standbys)), 3)
		begin := time.Now()
		for _, n := range fleet.nodes {
			fleet.start(t, bin, config, client, n)
		}
		testutil.WaitForNil(t, 5*time.Minute, "balanced, every replica caught up", func() error {
			return caughtUpEverywhere(client, fleet, partitions*(1+standbys))
		})
		took := time.Since(begin)
		var rss, disk []string
		for _, n := range fleet.nodes {
			m, err := bench.ReadMemory(n.p.cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			rss = append(rss, fmt.Sprintf("%.0f", float64(m.RSS)/(1<<20)))
			disk = append(disk, fmt.Sprintf("%.0f", float64(testutil.DirSize(t, n.dataDir))/(1<<20)))
		}
		perNode := float64(footprintRecords*(1+standbys)) / 3 / took.Seconds()
		fmt.Fprintf(&sum, "%-17d %-9s %-16.0f %-30s %s\n", standbys, took.Round(100*time.Millisecond), perNode,
			strings.Join(rss, " / "), strings.Join(disk, " / "))
		for _, n := range fleet.nodes {
			n.p.stop(t, 15*time.Second)
		}
	}
	t.Logf("summary\n%s", sum.String())
}

// caughtUpEverywhere says why the fleet is not yet balanced with every
// replica caught up: want partitions held in all, none warming up.
func caughtUpEverywhere(client *http.Client, fleet *killFleet, want int) error {
	status, body, err := testutil.Get(client, fleet.nodes[0].base+"/v1/metadata/partitions")
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("partitions: %d %v", status, err)
	}
	var v struct {
		Partitions []struct {
			Owner         string `json:"owner"`
			State         string `json:"state"`
			Lag           int64  `json:"lag"`
			HighWatermark int64  `json:"high_watermark"`
			WarmUp        string `json:"warm_up"`
			Standbys      []struct {
				State string `json:"state"`
				Lag   int64  `json:"lag"`
			} `json:"standbys"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	held := 0
	for _, p := range v.Partitions {
		if p.Owner == "" || p.State != "serving" || p.Lag > 0 || p.HighWatermark == 0 || p.WarmUp != "" {
			return fmt.Errorf("partition %+v", p)
		}
		held++
		for _, s := range p.Standbys {
			if s.State != "serving" || s.Lag > 0 {
				return fmt.Errorf("a standby %+v", s)
			}
			held++
		}
	}
	if held != want {
		return fmt.Errorf("%d replicas, want %d", held, want)
	}
	return nil
}
