package router

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
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
			var keys []string
			cursor := ""
			for {
				a := httpGet(t, fmt.Sprintf("%s/v1/stores/orders/keys?limit=%d&cursor=%s", n.URL, limit, cursor))
				var p scanPage
				a.decode(t, &p)
				if a.status != 200 {
					t.Fatalf("scan via %s: %d %s", id, a.status, a.body)
				}
				for _, it := range p.Items {
					keys = append(keys, it.Key)
				}
				if p.NextCursor == nil {
					break
				}
				cursor = *p.NextCursor
			}
			if fmt.Sprint(keys) != fmt.Sprint(c.keys()) {
				t.Fatalf("scan via %s in pages of %d: %d keys, want %d in order", id, limit, len(keys), len(c.want))
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
