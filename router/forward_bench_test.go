//go:build unix

package router

// BenchmarkForwardedLookup measures what forwarding costs a key lookup. Run
// it with
//
//	go test -run '^$' -bench ForwardedLookup -benchtime 3s -count 3 ./router/
//
// Two nodes of one application (the in-process harness: each its own
// engine, Pebble store and HTTP server on loopback, against the embedded
// broker or IQENGINE_TEST_BROKERS) share a 12-partition topic of benchFwdKeys
// keys. One keep-alive client asks, over real HTTP, for the same keys in the
// same order: "local" asks each key's owner; "forwarded" asks the other node,
// which calls the owner once. Allocations count both nodes and the client
// (they share the process), and so does cpu-ns/op: the process's user and
// system CPU time per lookup, which is steadier than ns/op (wall time) on a
// busy machine. With -count N, each sub-benchmark runs N times in a row
// (local, local, ..., forwarded, ...); the last log line compares the
// medians.

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/iqengine/iqengine/serde"
)

const benchFwdKeys = 1000

func BenchmarkForwardedLookup(b *testing.B) {
	// The engines log rebalances at INFO; keep them out of the results.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	b.Cleanup(func() { slog.SetDefault(prev) })

	c := newTestCluster(b, 12, benchFwdKeys)
	c.start("n1")
	c.start("n2")
	c.waitStable(60 * time.Second)

	// For every key: the URL on its owner and on the other node.
	table := c.node("n1").bal.Table()
	other := map[string]string{"n1": c.node("n2").URL, "n2": c.node("n1").URL}
	keys := c.keys()
	local := make([]string, len(keys))
	forwarded := make([]string, len(keys))
	owners := make([]string, len(keys))
	perNode := map[string]int{}
	for i, k := range keys {
		o, ok := table.Owner(c.topic, serde.Partition([]byte(k), c.partitions))
		if !ok {
			b.Fatalf("key %s: no owner", k)
		}
		path := "/v1/stores/orders/keys/" + url.PathEscape(k)
		local[i], forwarded[i], owners[i] = o.URL+path, other[o.NodeID]+path, o.NodeID
		perNode[o.NodeID]++
	}
	b.Logf("%d keys: %v by owner", len(keys), perNode)

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 16, MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute}}
	defer client.CloseIdleConnections()
	lookup := func(b *testing.B, u string) *http.Response {
		resp, err := client.Get(u)
		if err != nil {
			b.Fatalf("GET %s: %v", u, err)
		}
		// Read to the end so the connection is reused.
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d %v %s", u, resp.StatusCode, err, body)
		}
		return resp
	}
	// Every key once each way, checked: the owner serves both, and only
	// the forwarded asks reach the other node first.
	for i := range keys {
		if got := lookup(b, local[i]).Header.Get(servedByHeader); got != owners[i] {
			b.Fatalf("GET %s served by %q, want the owner %s", local[i], got, owners[i])
		}
		if got := lookup(b, forwarded[i]).Header.Get(servedByHeader); got != owners[i] {
			b.Fatalf("GET %s served by %q, want the owner %s", forwarded[i], got, owners[i])
		}
	}

	wall, cpu := map[string][]float64{}, map[string][]float64{}
	for _, bm := range []struct {
		name string
		urls []string
	}{{"local", local}, {"forwarded", forwarded}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for i := 0; b.Loop(); i++ {
				lookup(b, bm.urls[i%len(bm.urls)])
			}
			perOp := float64((cpuTime(b) - cpu0).Nanoseconds()) / float64(b.N)
			b.ReportMetric(perOp, "cpu-ns/op")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
			wall[bm.name] = append(wall[bm.name], float64(b.Elapsed().Nanoseconds())/float64(b.N))
			cpu[bm.name] = append(cpu[bm.name], perOp)
		})
	}
	if len(wall["local"]) > 0 && len(wall["forwarded"]) > 0 {
		lw, fw := median(wall["local"]), median(wall["forwarded"])
		lc, fc := median(cpu["local"]), median(cpu["forwarded"])
		b.Logf("medians of %d runs: local %.0f ns/lookup (%.0f cpu-ns), forwarded %.0f ns/lookup (%.0f cpu-ns): ratio %.2f (cpu %.2f)",
			len(wall["local"]), lw, lc, fw, fc, fw/lw, fc/lc)
	}
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	if n := len(xs); n%2 == 0 {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[len(xs)/2]
}
