package router

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

// TestForwardMetrics: n1 counts its calls to n2 by outcome, as n1's
// /metrics shows them, while n2 answers each way a peer can: a record, a
// key it does not have, 421, 503, 500, nothing before the deadline, and a
// connection it drops.
func TestForwardMetrics(t *testing.T) {
	c := newTestCluster(t, 4, 100)
	n1 := c.start("n1")
	n2 := c.start("n2")
	c.waitStable(60 * time.Second)
	remote := n1.bal.Table().Partitions("n2")[c.topic]
	if len(remote) == 0 {
		t.Fatal("n2 owns no partition")
	}
	var key, absent string // of a partition n2 owns
	for _, k := range c.keys() {
		if slices.Contains(remote, serde.Partition([]byte(k), c.partitions)) {
			key = k
			break
		}
	}
	for i := 0; absent == ""; i++ {
		if k := fmt.Sprintf("absent-%d", i); slices.Contains(remote, serde.Partition([]byte(k), c.partitions)) {
			absent = k
		}
	}
	metrics := testutil.Scrape(n1.URL + "/metrics")
	forwards := func(outcome string) float64 {
		return testutil.Metric(t, metrics, "iqengine_forwards_total", "peer", "n2", "outcome", outcome)
	}
	answer := func(f func(w http.ResponseWriter, r *http.Request)) {
		g := func(w http.ResponseWriter, r *http.Request) bool { f(w, r); return true }
		n2.intercept.Store(&g)
	}
	cases := []struct {
		outcome string
		key     string
		n2      func(w http.ResponseWriter, r *http.Request) // nil: n2 answers itself
		status  int                                          // n1's answer
	}{
		{"ok", key, nil, http.StatusOK},
		{"ok", absent, nil, http.StatusNotFound},
		{"not_owner", key, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(generationHeader, "1")
			w.WriteHeader(http.StatusMisdirectedRequest)
		}, http.StatusServiceUnavailable},
		{"unavailable", key, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }, http.StatusServiceUnavailable},
		{"error", key, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "broken", http.StatusInternalServerError) }, http.StatusInternalServerError},
		{"timeout", key, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, http.StatusServiceUnavailable},
		{"unreachable", key, func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}, http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.outcome+" "+tc.key, func(t *testing.T) {
			if tc.n2 != nil {
				answer(tc.n2)
				defer n2.intercept.Store(nil)
			}
			before, timed := forwards(tc.outcome), testutil.Metric(t, metrics, "iqengine_forward_duration_seconds", "peer", "n2")
			a := httpGet(t, n1.URL+"/v1/stores/orders/keys/"+tc.key+"?timeout=300ms")
			if a.status != tc.status {
				t.Fatalf("n1 answered %d %s, want %d", a.status, a.body, tc.status)
			}
			if got := forwards(tc.outcome); got <= before {
				t.Errorf("forwards{outcome=%s}: %v before, %v after", tc.outcome, before, got)
			}
			if got := testutil.Metric(t, metrics, "iqengine_forward_duration_seconds", "peer", "n2"); got <= timed {
				t.Errorf("forward durations observed: %v before, %v after", timed, got)
			}
		})
	}
	// n2 forwards nothing: it owns what it was asked.
	if n := testutil.Metric(t, testutil.Scrape(n2.URL+"/metrics"), "iqengine_forwards_total"); n != 0 {
		t.Errorf("n2 made %v forwards", n)
	}
}

// TestWaitMetrics: a request that waits for a restoring partition adds its
// wait to iqengine_http_request_wait_seconds, and one that does not adds a
// 0.
func TestWaitMetrics(t *testing.T) {
	f, h := newFakeNode(t)
	reg := h.o.Registry
	waits := func() (n, sum float64) {
		return testutil.Metric(t, reg, "iqengine_http_request_wait_seconds_count", "endpoint", "get"),
			testutil.Metric(t, reg, "iqengine_http_request_wait_seconds_sum", "endpoint", "get")
	}
	if a := get(h, "/v1/stores/orders/keys/o-07"); a.status != http.StatusOK {
		t.Fatalf("lookup: %d %s", a.status, a.body)
	}
	if n, sum := waits(); n != 1 || sum != 0 {
		t.Fatalf("after a lookup that did not wait: %v waits of %v s, want 1 of 0", n, sum)
	}
	p := state.Partition{Topic: "orders", Partition: 3} // o-07's
	f.setStatus(p, state.Restoring)
	go func() {
		testutil.WaitFor(t, 2*time.Second, "the query did not retry the restoring partition", func() bool { return f.readsOf(p) >= 3 })
		f.setStatus(p, state.Serving)
	}()
	if a := get(h, "/v1/stores/orders/keys/o-07?timeout=2s"); a.status != http.StatusOK {
		t.Fatalf("lookup: %d %s", a.status, a.body)
	}
	if n, sum := waits(); n != 2 || sum <= 0 {
		t.Fatalf("after a lookup that waited: %v waits of %v s, want 2 of more than 0", n, sum)
	}
	if n := testutil.Metric(t, reg, "iqengine_http_request_wait_seconds", "endpoint", "scan"); n != 0 {
		t.Fatalf("%v scans waited; none was made", n)
	}
}
