package router

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iqengine/iqengine/serde"
)

// httpGet asks a node over real HTTP.
func httpGet(t testing.TB, url string) answer {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, body}
}

// TestEveryNodeAnswersEveryKey runs three nodes over 12 partitions: every
// key, asked through every node, answers the topic's value, and a scan
// through any node returns every key exactly once, in order, across pages.
func TestEveryNodeAnswersEveryKey(t *testing.T) {
	c := newTestCluster(t, 12, 600)
	for _, id := range []string{"n1", "n2", "n3"} {
		c.start(id)
	}
	c.waitStable(60 * time.Second)
	forwarded := 0
	for _, id := range c.ids() {
		n := c.node(id)
		for k, v := range c.want {
			a := httpGet(t, n.URL+"/v1/stores/orders/keys/"+k)
			var got struct {
				Value    json.RawMessage `json:"value"`
				ServedBy string          `json:"served_by"`
			}
			a.decode(t, &got)
			if a.status != 200 || string(got.Value) != v {
				t.Fatalf("%s via %s: %d %s", k, id, a.status, a.body)
			}
			if got.ServedBy != id {
				forwarded++
			}
		}
		for _, limit := range []int{7, 100} {
			got := scanAll(t, n.h, fmt.Sprintf("/v1/stores/orders/keys?limit=%d", limit), "")
			if !slices.Equal(got.keys, c.keys()) {
				t.Fatalf("scan via %s in pages of %d: %d keys, want %d in order", id, limit, len(got.keys), len(c.want))
			}
		}
		var cnt struct{ Count int }
		httpGet(t, n.URL+"/v1/stores/orders/count").decode(t, &cnt)
		if cnt.Count != len(c.want) {
			t.Fatalf("count via %s: %d, want %d", id, cnt.Count, len(c.want))
		}
	}
	if forwarded == 0 {
		t.Fatal("no lookup was forwarded: the nodes did not split the partitions")
	}
	t.Logf("%d of %d lookups were forwarded to the owner", forwarded, 3*len(c.want))
}

// TestWaitsForPartitionsThenAnswers runs two nodes whose handlers have no
// routing table, so that neither forwards: each answers only the
// partitions it serves. A query on n1 for a partition n2 owns has no
// serving owner there: it waits, then answers 503 naming the partition, and
// a scan names every partition it could not reach. When n2 leaves, its
// partitions move to n1, and a query that was already waiting is answered.
func TestWaitsForPartitionsThenAnswers(t *testing.T) {
	c := newTestCluster(t, 4, 500)
	alone := nodeOptions{handler: func(o *Options) { o.Routing, o.Refresh = nil, nil }}
	n1 := c.startWith("n1", alone)
	c.startWith("n2", alone)
	c.waitStable(60 * time.Second)
	var away string // a key of n2's
	for _, k := range c.keys() {
		if o, _ := n1.bal.Table().Owner(c.topic, serde.Partition([]byte(k), c.partitions)); o.NodeID == "n2" {
			away = k
			break
		}
	}
	if away == "" {
		t.Fatal("n2 owns no partition; the group did not split them")
	}
	a := httpGet(t, n1.URL+"/v1/stores/orders/keys/"+away+"?timeout=300ms")
	if got, ok := unavailable(t, "a partition n2 owns, through n1", a, c.topic); ok && !slices.Equal(got, []int32{serde.Partition([]byte(away), c.partitions)}) {
		t.Errorf("503 names partitions %v, want the one of %s", got, away)
	}
	if w, _ := strconv.Atoi(a.header.Get(waitedHeader)); w < 300 {
		t.Errorf("answered after %dms, before the 300ms deadline", w)
	}
	a = httpGet(t, n1.URL+"/v1/stores/orders/keys?timeout=200ms")
	if got, ok := unavailable(t, "a scan through n1", a, c.topic); ok && !slices.Equal(got, n1.bal.Table().Partitions("n2")[c.topic]) {
		t.Errorf("scan's 503 names partitions %v, want n2's %v", got, n1.bal.Table().Partitions("n2")[c.topic])
	}

	// n2 leaves once a query for its partition has reached n1; that query
	// is answered when the partition serves on n1.
	path := "/v1/stores/orders/keys/" + away
	arrived := make(chan struct{})
	var once sync.Once
	seen := func(_ http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == path {
			once.Do(func() { close(arrived) })
		}
		return false // n1 answers it
	}
	n1.intercept.Store(&seen)
	type result struct {
		a   answer
		err error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(n1.URL + path + "?timeout=20s")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		done <- result{answer{resp.StatusCode, resp.Header, body}, err}
	}()
	<-arrived
	c.stop("n2")
	r := <-done
	if r.err != nil || r.a.status != http.StatusOK || !strings.Contains(string(r.a.body), `"key":"`+away+`"`) {
		t.Fatalf("after the move: %v %d %s", r.err, r.a.status, r.a.body)
	}
	t.Logf("the waiting query was answered after %sms", r.a.header.Get(waitedHeader))
	if got := scanAll(t, n1.h, "/v1/stores/orders/keys?limit=50", ""); !slices.Equal(got.keys, c.keys()) {
		t.Errorf("scan through n1 after the move: %d keys, want all %d in order", len(got.keys), len(c.want))
	}
}
