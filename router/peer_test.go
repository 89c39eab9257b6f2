package router

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

// fetchGate holds back the fetches of one node's Kafka client: while it is
// closed, every Fetch request fails as a broken connection would (the
// client reconnects and tries again), so the partitions the group assigns
// to the node stay restoring for as long as the test wants, on kfake and on
// a real broker alike. The group protocol, metadata and offset requests
// pass, so the node joins and owns its partitions.
type fetchGate struct{ closed atomic.Bool }

func (g *fetchGate) dial(ctx context.Context, network, host string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: c, g: g}, nil
}

type gatedConn struct {
	net.Conn
	g *fetchGate
}

const fetchKey = 1 // the Kafka protocol's API key of Fetch

func (c *gatedConn) Write(b []byte) (int, error) {
	// A request starts with its 4-byte length and its 2-byte API key, and
	// franz-go writes each request with one Write.
	if c.g.closed.Load() && len(b) >= 6 && binary.BigEndian.Uint16(b[4:6]) == fetchKey {
		return 0, errors.New("fetch held back by the test")
	}
	return c.Conn.Write(b)
}

// unavailable checks that a is the 503 of partitions that had no serving
// owner before the deadline, with Retry-After, and returns the partitions
// it names, sorted; ok is false when a is another status.
func unavailable(t *testing.T, what string, a answer, topic string) (partitions []int32, ok bool) {
	t.Helper()
	var p problem
	if a.status != http.StatusServiceUnavailable {
		t.Errorf("%s: %d %s, want 503 %s", what, a.status, a.body, problemTypePrefix+probUnavailable)
		return nil, false
	}
	a.decode(t, &p)
	if p.Type != problemTypePrefix+probUnavailable || p.Status != http.StatusServiceUnavailable {
		t.Errorf("%s: problem %q status %d, want %q 503", what, p.Type, p.Status, problemTypePrefix+probUnavailable)
	}
	if a.header.Get("Retry-After") == "" {
		t.Errorf("%s: 503 without Retry-After", what)
	}
	var got []int32
	for _, up := range p.Partitions {
		if up.Topic != topic {
			t.Errorf("%s: 503 names topic %q, want %q", what, up.Topic, topic)
		}
		got = append(got, up.Partition)
	}
	slices.Sort(got)
	return got, true
}

// TestForwardedDeadlineAnswersLikeTheOwner keeps some partitions restoring
// on their owner, n2 (its fetches are held back), and asks for them with a
// short timeout through n2 and through n1, which forwards to n2 and waits
// for it up to the deadline. Both answer the same: 503 partition-unavailable
// with Retry-After, naming exactly the restoring partitions, once the
// deadline has passed. A lookup, a scan and a count alike; never a 500 for
// the deadline that ended the wait.
func TestForwardedDeadlineAnswersLikeTheOwner(t *testing.T) {
	const timeout = 300 * time.Millisecond
	c := newTestCluster(t, 6, 300)
	// n2 first: the group gives it every partition, which it cannot
	// restore. Then n1, which warms half of them up and takes them over;
	// n2 keeps the others, restoring (no replica holds them caught up, so
	// nothing can answer for them).
	gate := &fetchGate{}
	gate.closed.Store(true)
	defer gate.closed.Store(false) // so that n2 can stop
	n2 := c.startWith("n2", nodeOptions{kafka: []kgo.Opt{kgo.Dialer(gate.dial)}})
	n1 := c.start("n1")

	var restoring []int32
	testutil.WaitFor(t, 60*time.Second, "n2 owns no restoring partition in n1's routing table", func() bool {
		restoring = restoring[:0]
		table := n1.bal.Table()
		if _, ok := table.Member("n2"); !ok || n2.bal.Table().Generation() != table.Generation() {
			return false
		}
		for p := int32(0); p < c.partitions; p++ {
			if _, warming := table.WarmingUp(c.topic, p); warming {
				return false
			}
		}
		states := map[int32]string{}
		for _, p := range n2.e.Partitions() {
			states[p.Partition] = p.State
		}
		for p := int32(0); p < c.partitions; p++ {
			o, ok := table.Owner(c.topic, p)
			switch {
			case !ok:
				return false
			case o.NodeID == "n1":
				if _, err := n1.e.Count(context.Background(), state.Partition{Topic: c.topic, Partition: p}); err != nil {
					return false // n1 does not serve it yet
				}
			case states[p] != "restoring":
				return false
			default:
				restoring = append(restoring, p)
			}
		}
		return len(restoring) > 0
	})
	var key string
	for _, k := range c.keys() {
		if serde.Partition([]byte(k), c.partitions) == restoring[0] {
			key = k
			break
		}
	}
	t.Logf("n2 owns partitions %v, restoring; asking for %s (partition %d) with timeout %v", restoring, key, restoring[0], timeout)

	q := "?timeout=" + timeout.String()
	for _, tc := range []struct {
		what, path string
		want       []int32
	}{
		{"lookup", "/v1/stores/orders/keys/" + key + q, restoring[:1]},
		{"scan", "/v1/stores/orders/keys" + q, restoring},
		{"count", "/v1/stores/orders/count" + q, restoring},
	} {
		for _, n := range []*testNode{n2, n1} {
			what := tc.what + " through " + n.id
			a := httpGet(t, n.URL+tc.path)
			if got, ok := unavailable(t, what, a, c.topic); ok && !slices.Equal(got, tc.want) {
				t.Errorf("%s: 503 names partitions %v, want %v: %s", what, got, tc.want, a.body)
			}
			if w, _ := strconv.Atoi(a.header.Get(waitedHeader)); w < int(timeout.Milliseconds()) {
				t.Errorf("%s: 503 after waiting %dms, before the %v deadline", what, w, timeout)
			}
		}
	}

	// Released, n2 restores its partitions, and the same lookup through n1
	// is answered.
	gate.closed.Store(false)
	a := httpGet(t, n1.URL+"/v1/stores/orders/keys/"+key+"?timeout=30s")
	if a.status != http.StatusOK || a.header.Get(servedByHeader) != "n2" {
		t.Errorf("after the restore, %s through n1: %d (served by %q) %s", key, a.status, a.header.Get(servedByHeader), a.body)
	}
}

// TestAwaitDeadlineDuringFirstTry: when the first try alone takes the whole
// timeout (a call to the owner that waits for it up to the deadline), await
// reports the partitions that did not serve, not the deadline's bare
// context error, which would answer 500.
// It runs in a synctest bubble: the first try's wait for the deadline
// takes no real time.
func TestAwaitDeadlineDuringFirstTry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := state.Partition{Topic: "orders", Partition: 7}
		tries := 0
		_, waited, err := await(context.Background(), 50*time.Millisecond, func(_ context.Context, deadline time.Time) (struct{}, error) {
			tries++
			time.Sleep(time.Until(deadline))
			return struct{}{}, &waitError{p, "owner n2 did not answer before the deadline"}
		})
		var ue *unavailableError
		if !errors.As(err, &ue) || len(ue.partitions) != 1 || ue.partitions[0].Topic != p.Topic || ue.partitions[0].Partition != p.Partition {
			t.Fatalf("after %d tries: %v (%T), want an *unavailableError naming %s", tries, err, err, p)
		}
		if tries != 1 || waited != 50*time.Millisecond {
			t.Errorf("%d tries, waited %v; want 1 try that took the whole 50ms", tries, waited)
		}
	})
}

// TestOverlongPeerAnswerFails has n2 answer n1's internal calls with pages
// it makes up, around n1's limit on a peer's answer: a page of exactly the
// limit is read whole, and a page of one record more fails the query with a
// 500 that names the peer and the limit. Cut at the limit, that page ends
// on a record boundary and reads as a whole page: its last record would be
// skipped without a word. A lookup and a count fail the same way.
func TestOverlongPeerAnswerFails(t *testing.T) {
	const perPage = 20
	value := []byte(`{"fake":true}`)
	// fakePage is n2's page of partition p: n records, none after them.
	fakePage := func(p, n int) []byte {
		b := []byte{0}
		for i := 0; i < n; i++ {
			b = appendRecord(b, state.Record{Key: fmt.Appendf(nil, "fake-%d-%03d", p, i), Value: value, Offset: int64(i)})
		}
		return b
	}
	limit := len(fakePage(0, perPage))

	c := newTestCluster(t, 4, 200)
	n1 := c.startWith("n1", nodeOptions{handler: func(o *Options) { o.PeerAnswerLimit = int64(limit) }})
	n2 := c.start("n2")
	c.waitStable(60 * time.Second)
	remote := n1.bal.Table().Partitions("n2")[c.topic]
	if len(remote) == 0 || len(remote) == int(c.partitions) {
		t.Fatalf("n2 owns partitions %v of %d", remote, c.partitions)
	}
	var remoteKey string
	for _, k := range c.keys() {
		if slices.Contains(remote, serde.Partition([]byte(k), c.partitions)) {
			remoteKey = k
			break
		}
	}

	// pose makes n2 answer every internal call with what body returns
	// for the partition and the endpoint (get, scan or count).
	pose := func(body func(p int, endpoint string) []byte) {
		f := func(w http.ResponseWriter, r *http.Request) bool {
			rest, ok := strings.CutPrefix(r.URL.Path, "/v1/internal/stores/orders/partitions/")
			if !ok {
				return false
			}
			ps, endpoint, _ := strings.Cut(rest, "/")
			p, _ := strconv.Atoi(ps)
			w.Header().Set("Content-Type", recordsType)
			setServed(w.Header(), served{kind: state.Active})
			_, _ = w.Write(body(p, endpoint))
			return true
		}
		n2.intercept.Store(&f)
	}
	wantOverlong := func(what string, a answer) {
		t.Helper()
		var p problem
		if a.status != http.StatusInternalServerError {
			t.Errorf("%s: %d %s, want 500", what, a.status, a.body)
			return
		}
		a.decode(t, &p)
		want := "node n2 answered more than " + strconv.Itoa(limit) + " bytes"
		if p.Type != problemTypePrefix+probInternal || !strings.Contains(p.Detail, want) {
			t.Errorf("%s: problem %q %q, want %q saying %q", what, p.Type, p.Detail, problemTypePrefix+probInternal, want)
		}
	}

	// Pages of exactly the limit: read whole, merged with n1's own keys.
	pose(func(p int, _ string) []byte { return fakePage(p, perPage) })
	a := httpGet(t, n1.URL+"/v1/stores/orders/keys?limit=1000")
	var pg scanPage
	a.decode(t, &pg)
	want := map[string]string{}
	for k, v := range c.want {
		if !slices.Contains(remote, serde.Partition([]byte(k), c.partitions)) {
			want[k] = v
		}
	}
	for _, p := range remote {
		for i := 0; i < perPage; i++ {
			want[fmt.Sprintf("fake-%d-%03d", p, i)] = string(value)
		}
	}
	got := map[string]string{}
	for _, it := range pg.Items {
		got[it.Key] = string(it.Value)
	}
	if a.status != http.StatusOK || !maps.Equal(got, want) || len(pg.Items) != len(want) {
		t.Errorf("pages of exactly the limit (%d bytes): %d, %d items, want %d: %.300s", limit, a.status, len(pg.Items), len(want), a.body)
	}

	// One record more: the first limit bytes are the page above, whole
	// records with "no more" in front; n1 must not take them for the page.
	pose(func(p int, endpoint string) []byte {
		switch endpoint {
		case "get":
			return appendRecord([]byte{0}, state.Record{Key: []byte(remoteKey), Value: fmt.Appendf(nil, `{"pad":%q}`, strings.Repeat("x", limit))})
		case "count":
			return []byte(strings.Repeat("0", limit) + "7")
		}
		return fakePage(p, perPage+1)
	})
	wantOverlong("scan", httpGet(t, n1.URL+"/v1/stores/orders/keys?limit=1000"))
	wantOverlong("lookup of "+remoteKey, httpGet(t, n1.URL+"/v1/stores/orders/keys/"+remoteKey))
	wantOverlong("count", httpGet(t, n1.URL+"/v1/stores/orders/count"))
}
