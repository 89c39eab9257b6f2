package router

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

// holdStandbys is a franz-go hook that, while held, stops the fetches of
// the partitions a node keeps as standbys (a fetch that reads one of them
// waits): the node's standbys fall behind while its active partitions go
// on.
type holdStandbys struct {
	node *testNode
	held atomic.Bool
}

func (h *holdStandbys) OnFetchBatchRead(_ kgo.BrokerMetadata, topic string, partition int32, _ kgo.FetchBatchMetrics) {
	for h.held.Load() {
		if h.node == nil || h.node.e == nil {
			return
		}
		r, err := h.node.e.Replica(state.Partition{Topic: topic, Partition: partition})
		if err != nil || r.Kind != state.Standby {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStandbyAnswersWhenTheActiveCannot runs two nodes with one standby per
// partition. A standby held behind (its fetches stopped) is not asked while
// the active owner answers; when the active owner is killed, the standby
// answers at once (no wait for the session timeout), with its answer
// labelled standby and as far behind as it is; ?max_lag=0 refuses it
// (position-not-reached once the deadline passes), and ?replica=active
// waits for an active owner (partition-unavailable).
func TestStandbyAnswersWhenTheActiveCannot(t *testing.T) {
	c := newTestCluster(t, 4, 200)
	c.sessionTimeout = 30 * time.Second // the standby must answer long before the group notices
	hold := &holdStandbys{}
	c.startWith("n1", nodeOptions{standbys: 1})
	n2 := c.startWith("n2", nodeOptions{standbys: 1, kafka: []kgo.Opt{kgo.WithHooks(hold)}})
	hold.node = n2
	c.waitStable(60 * time.Second)
	// Every partition of n1 has its standby on n2, caught up.
	t1 := c.node("n1").bal.Table()
	var onN1 []int32
	for p := range c.partitions {
		if o, _ := t1.Owner(c.topic, p); o.NodeID == "n1" {
			onN1 = append(onN1, p)
		}
	}
	if len(onN1) == 0 {
		t.Fatal("n1 owns no partition")
	}
	testutil.WaitFor(t, 30*time.Second, "n2 holds n1's partitions as serving standbys", func() bool {
		for _, p := range onN1 {
			r, err := n2.e.Replica(state.Partition{Topic: c.topic, Partition: p})
			if err != nil || r.Kind != state.Standby {
				return false
			}
		}
		return true
	})

	// A key on n1, then newer values of it that n2's standby does not get.
	str, _ := serde.Lookup("string")
	var key string
	for _, k := range c.keys() {
		kb, _ := str.FromText(k)
		if p := serde.Partition(kb, c.partitions); p == onN1[0] {
			key = k
			break
		}
	}
	hold.held.Store(true)
	cl := c.b.Client(t)
	var last string
	for i := range 50 {
		last = fmt.Sprintf(`{"id":%q,"n":%d}`, key, 1000+i)
		testkafka.Produce(t, cl, &kgo.Record{Topic: c.topic, Key: []byte(key), Value: []byte(last)})
	}
	type labelled struct {
		Value   json.RawMessage `json:"value"`
		Replica string          `json:"replica"`
		Lag     int64           `json:"lag"`
	}
	lookup := func(q string) (answer, labelled) {
		a := httpGet(t, n2.URL+"/v1/stores/orders/keys/"+key+q)
		var got labelled
		if a.status == http.StatusOK {
			a.decode(t, &got)
		}
		return a, got
	}
	testutil.WaitFor(t, 10*time.Second, "n1 answers the newest value through n2", func() bool {
		a, got := lookup("?max_lag=0")
		return a.status == http.StatusOK && string(got.Value) == last && got.Replica == "active"
	})
	// n2's standby knows it is behind (it asks where the log ends).
	testutil.WaitFor(t, 10*time.Second, "n2's standby reports its lag", func() bool {
		r, err := n2.e.Replica(state.Partition{Topic: c.topic, Partition: onN1[0]})
		return err == nil && r.Kind == state.Standby && r.Lag >= 50
	})

	// The active owner dies: the standby answers at once, saying so.
	c.kill("n1")
	start := time.Now()
	a, got := lookup("?timeout=20s")
	took := time.Since(start)
	if a.status != http.StatusOK || got.Replica != "standby" || got.Lag < 50 || string(got.Value) == last {
		t.Fatalf("with n1 dead: %d %s; want 200 from n2's standby, 50 or more behind, without the newest value", a.status, a.body)
	}
	if a.header.Get(replicaHeader) != "standby" || a.header.Get(lagHeader) != strconv.FormatInt(got.Lag, 10) || a.header.Get(positionHeader) == "" {
		t.Errorf("headers %v, want the replica, lag and position of the body", a.header)
	}
	if took > 5*time.Second {
		t.Errorf("the standby answered %s after the kill: it waited", took)
	}
	t.Logf("n1 dead: n2's standby answered in %s, %d records behind", took.Round(time.Millisecond), got.Lag)

	a, _ = lookup("?max_lag=0&timeout=300ms")
	wantKind(t, "max_lag=0 with only a lagging standby", a, http.StatusServiceUnavailable, probNotReached)
	a, _ = lookup("?replica=active&timeout=300ms")
	wantKind(t, "replica=active with the active owner dead", a, http.StatusServiceUnavailable, probUnavailable)

	// Released, the standby catches up and answers the newest value.
	hold.held.Store(false)
	testutil.WaitFor(t, 20*time.Second, "the standby catches up", func() bool {
		a, got := lookup("?max_lag=0&timeout=1s")
		return a.status == http.StatusOK && string(got.Value) == last
	})
	metrics := testutil.Scrape(n2.URL + "/metrics")
	if n := testutil.Metric(t, metrics, "iqengine_replica_reads_total", "replica", "standby"); n < 2 {
		t.Errorf("iqengine_replica_reads_total{replica=standby} %v, want 2 or more", n)
	}
}
