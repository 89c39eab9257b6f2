//go:build unix

package router

// Benchmarks of standby replicas. Run them with
//
//	go test -run '^$' -bench 'FailoverLookup|StandbyIngest' -benchtime 3s -count 3 ./router/
//
// BenchmarkFailoverLookup: two nodes with one standby per partition (the
// in-process harness, real HTTP on loopback). "normal" asks n2 for keys n1
// owns (a forwarded lookup, answered by n1's active replica); then n1 is
// killed and "failover" asks n2 for the same keys: n2 tries n1 (connection
// refused), then answers from its own standby. The difference is what a
// failover costs a lookup while the group has not noticed the crash yet.
//
// BenchmarkStandbyIngest: a topic of benchIngestRecords records restored by
// two nodes from empty, with standby_replicas 0 and 1: the time until the
// cluster is balanced (nothing left to warm up and move) and every replica
// of every partition has applied the whole log, the records applied per
// second per node over that time, and each node's store on disk then.

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

func BenchmarkFailoverLookup(b *testing.B) {
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	b.Cleanup(func() { slog.SetDefault(prev) })

	c := newTestCluster(b, 12, benchFwdKeys)
	c.sessionTimeout = 60 * time.Second // the group must not notice the kill during the benchmark
	c.startWith("n1", nodeOptions{standbys: 1})
	n2 := c.startWith("n2", nodeOptions{standbys: 1})
	c.waitStable(60 * time.Second)
	table := n2.bal.Table()
	var urls []string
	for _, k := range c.keys() {
		p := serde.Partition([]byte(k), c.partitions)
		if o, _ := table.Owner(c.topic, p); o.NodeID == "n1" {
			urls = append(urls, n2.URL+"/v1/stores/orders/keys/"+url.PathEscape(k))
		}
	}
	testutil.WaitFor(b, 30*time.Second, "n2's standbys serve", func() bool {
		for p := range c.partitions {
			if o, _ := table.Owner(c.topic, p); o.NodeID == "n1" {
				if r, err := n2.e.Replica(state.Partition{Topic: c.topic, Partition: p}); err != nil || r.Kind != state.Standby {
					return false
				}
			}
		}
		return true
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 16, MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute}}
	defer client.CloseIdleConnections()
	lookup := func(b *testing.B, u, want string) {
		resp, err := client.Get(u)
		if err != nil {
			b.Fatalf("GET %s: %v", u, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get(replicaHeader) != want {
			b.Fatalf("GET %s: %d %s %v %s, want an answer from the %s replica", u, resp.StatusCode, resp.Header.Get(replicaHeader), err, body, want)
		}
	}
	run := func(name, want string) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for i := 0; b.Loop(); i++ {
				lookup(b, urls[i%len(urls)], want)
			}
			b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
	run("normal", "active")
	c.kill("n1")
	run("failover", "standby")
}

const benchIngestRecords = 200_000

func BenchmarkStandbyIngest(b *testing.B) {
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	b.Cleanup(func() { slog.SetDefault(prev) })

	c := newTestCluster(b, 12, 0)
	cl := c.b.Client(b)
	value := []byte(`{"id":"` + fmt.Sprintf("%090d", 0) + `"}`) // 100 bytes
	var rs []*kgo.Record
	for i := range benchIngestRecords {
		rs = append(rs, &kgo.Record{Topic: c.topic, Key: []byte("key-" + strconv.Itoa(i%100_000)), Value: value})
		if len(rs) == 10_000 {
			testkafka.Produce(b, cl, rs...)
			rs = rs[:0]
		}
	}
	for _, standbys := range []int{0, 1} {
		b.Run("standby_replicas="+strconv.Itoa(standbys), func(b *testing.B) {
			var took time.Duration
			var disk [2]float64
			round := 0
			for b.Loop() {
				round++
				c.group = testkafka.Name(b, fmt.Sprintf("app-%d-%d", standbys, round))
				start := time.Now()
				n1 := c.startWith("n1", nodeOptions{standbys: standbys})
				n2 := c.startWith("n2", nodeOptions{standbys: standbys})
				testutil.WaitFor(b, 2*time.Minute, "every replica applies the whole log", func() bool {
					if !c.stable() {
						return false // not balanced yet: partitions still to move
					}
					held := 0
					for _, n := range []*testNode{n1, n2} {
						for _, p := range n.e.Partitions() {
							if p.State != state.Serving.String() || p.Offset+1 < p.HighWatermark || p.HighWatermark == 0 {
								return false
							}
							held++
						}
					}
					return held == int(c.partitions)*(1+standbys)
				})
				took += time.Since(start)
				for i, n := range []*testNode{n1, n2} {
					disk[i] += float64(testutil.DirSize(b, n.dir))
				}
				c.stop("n1")
				c.stop("n2")
			}
			per := took.Seconds() / float64(round)
			b.ReportMetric(per, "s/restore")
			b.ReportMetric(float64(benchIngestRecords*(1+standbys))/2/per, "records/s/node")
			b.ReportMetric(disk[0]/float64(round)/(1<<20), "MiB-n1")
			b.ReportMetric(disk[1]/float64(round)/(1<<20), "MiB-n2")
		})
	}
}
