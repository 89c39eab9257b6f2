package router

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/engine"
	"github.com/iqengine/iqengine/internal/store"
	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

// fixture is one node over two stores: "orders" (string keys, JSON values)
// and "sensors" (int64 keys), with known contents.
type fixture struct {
	t       *testing.T
	b       *testkafka.Broker
	group   string
	orders  string // topic
	sensors string // topic
	keys    []string
}

func newFixture(t *testing.T, partitions int32) *fixture {
	f := &fixture{t: t, b: testkafka.Start(t), group: testkafka.Name(t, "app"),
		orders: testkafka.Name(t, "orders"), sensors: testkafka.Name(t, "sensors")}
	f.b.CreateTopic(t, f.orders, partitions)
	f.b.CreateTopic(t, f.sensors, 3)
	cl := f.b.Client(t)
	var rs []*kgo.Record
	for i := 0; i < 500; i++ {
		k := fmt.Sprintf("o-%04d", i)
		f.keys = append(f.keys, k)
		rs = append(rs, &kgo.Record{Topic: f.orders, Key: []byte(k), Value: fmt.Appendf(nil, `{"id":%q,"n":%d}`, k, i)})
	}
	for i := int64(1); i <= 10; i++ {
		rs = append(rs, &kgo.Record{Topic: f.sensors, Key: binary.BigEndian.AppendUint64(nil, uint64(i)), Value: fmt.Appendf(nil, `{"sensor":%d}`, i)})
	}
	// A value that is not JSON, in a store whose value serde is json.
	rs = append(rs, &kgo.Record{Topic: f.sensors, Key: binary.BigEndian.AppendUint64(nil, 99), Value: []byte("not json")})
	testkafka.Produce(t, cl, rs...)
	sort.Strings(f.keys)
	return f
}

// node starts an engine and its handler.
func (f *fixture) node(id string) (*engine.Engine, *Handler) {
	t := f.t
	str, _ := serde.Lookup("string")
	js, _ := serde.Lookup("json")
	i64, _ := serde.Lookup("int64")
	e, err := engine.Open(engine.Config{
		ApplicationID:  f.group,
		NodeID:         id,
		Stores:         []state.Store{{Name: "orders", Topic: f.orders, Key: str, Value: js}, {Name: "sensors", Topic: f.sensors, Key: i64, Value: js}},
		Kafka:          []kgo.Opt{kgo.SeedBrokers(f.b.Addrs...)},
		SessionTimeout: 6 * time.Second,
		Store:          store.Options{Dir: t.TempDir(), CacheSize: 8 << 20, MemTableSize: 4 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = e.Stop(context.Background())
		}
	})
	return e, New(Options{Engine: e, Timeout: 5 * time.Second, MaxTimeout: 30 * time.Second, DefaultLimit: 100, MaxLimit: 1000})
}

// waitReady waits until every given engine is ready and, together, they
// serve every partition of the fixture's topics.
func (f *fixture) waitReady(es ...*engine.Engine) {
	f.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		serving := 0
		ready := true
		for _, e := range es {
			ready = ready && e.Ready()
			for _, p := range e.Partitions() {
				if p.State == "serving" {
					serving++
				}
			}
		}
		n1, _ := es[0].PartitionCount(f.orders)
		n2, _ := es[0].PartitionCount(f.sensors)
		if ready && serving == int(n1+n2) {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatal("engines never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func get(h http.Handler, target string, header ...string) answer {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return answer{rec.Code, rec.Result().Header, body}
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer %d is not JSON: %v: %s", a.status, err, a.body)
	}
}

func TestBadInput(t *testing.T) {
	f := newFixture(t, 4)
	e, h := f.node("n1")
	f.waitReady(e)
	long := strings.Repeat("x", 64<<10+1)
	cases := []struct {
		name, target string
		status       int
		kind         string
	}{
		{"unknown store", "/v1/stores/nope/keys/a", 404, "unknown-store"},
		{"unknown store scan", "/v1/stores/nope/keys", 404, "unknown-store"},
		{"absent key", "/v1/stores/orders/keys/o-9999", 404, "key-not-found"},
		{"key the serde cannot parse", "/v1/stores/sensors/keys/abc", 400, "bad-key"},
		{"int64 out of range", "/v1/stores/sensors/keys/9223372036854775808", 400, "bad-key"},
		{"empty key", "/v1/stores/orders/keys/", 400, "empty-key"},
		{"key over 64 KiB", "/v1/stores/orders/keys/" + long, 400, "key-too-long"},
		{"range bound over 64 KiB", "/v1/stores/orders/keys?from=" + long, 400, "key-too-long"},
		{"limit zero", "/v1/stores/orders/keys?limit=0", 400, "bad-limit"},
		{"limit negative", "/v1/stores/orders/keys?limit=-5", 400, "bad-limit"},
		{"limit over the max", "/v1/stores/orders/keys?limit=1001", 400, "bad-limit"},
		{"limit not a number", "/v1/stores/orders/keys?limit=ten", 400, "bad-limit"},
		{"malformed cursor", "/v1/stores/orders/keys?cursor=%21%21notacursor", 400, "bad-cursor"},
		{"truncated cursor", "/v1/stores/orders/keys?cursor=AQID", 400, "bad-cursor"},
		{"from after to", "/v1/stores/orders/keys?from=o-0300&to=o-0200", 400, "bad-range"},
		{"bad range bound for the serde", "/v1/stores/sensors/keys?from=x", 400, "bad-key"},
		{"unknown scan parameter", "/v1/stores/orders/keys?form=o-1", 400, "bad-parameter"},
		{"unknown lookup parameter", "/v1/stores/orders/keys/o-0001?limt=1", 400, "bad-parameter"},
		{"bad timeout", "/v1/stores/orders/keys/o-0001?timeout=soon", 400, "bad-timeout"},
		{"timeout over the max", "/v1/stores/orders/keys/o-0001?timeout=1h", 400, "bad-timeout"},
		{"no such endpoint", "/v2/stores", 404, "no-such-endpoint"},
		{"undecodable value", "/v1/stores/sensors/keys/99", 500, "undecodable-value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := get(h, c.target)
			if a.status != c.status {
				t.Fatalf("status %d, want %d: %s", a.status, c.status, a.body)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var p problem
			a.decode(t, &p)
			if p.Type != problemTypePrefix+c.kind || p.Status != c.status || p.Title == "" || p.Detail == "" {
				t.Fatalf("problem %+v, want type %s", p, c.kind)
			}
		})
	}
	// A cursor of one scan is refused by another.
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	get(h, "/v1/stores/orders/keys?prefix=o-01&limit=2").decode(t, &page)
	a := get(h, "/v1/stores/orders/keys?prefix=o-02&limit=2&cursor="+page.NextCursor)
	if a.status != 400 || !strings.Contains(string(a.body), "bad-cursor") {
		t.Fatalf("cursor of another scan: %d %s", a.status, a.body)
	}
	// Bad input changed nothing.
	var ok struct{ Value struct{ ID string } }
	get(h, "/v1/stores/orders/keys/o-0001").decode(t, &ok)
	if ok.Value.ID != "o-0001" {
		t.Fatalf("after bad input: %+v", ok)
	}
}

func TestLookup(t *testing.T) {
	f := newFixture(t, 4)
	e, h := f.node("n1")
	f.waitReady(e)
	a := get(h, "/v1/stores/orders/keys/o-0042")
	var got struct {
		Key       string          `json:"key"`
		Value     json.RawMessage `json:"value"`
		Partition int32           `json:"partition"`
		Offset    int64           `json:"offset"`
		Timestamp string          `json:"timestamp"`
		ServedBy  string          `json:"served_by"`
	}
	a.decode(t, &got)
	if a.status != 200 || got.Key != "o-0042" || string(got.Value) != `{"id":"o-0042","n":42}` || got.ServedBy != "n1" {
		t.Fatalf("lookup: %d %s", a.status, a.body)
	}
	if want := serde.Partition([]byte("o-0042"), 4); got.Partition != want {
		t.Fatalf("partition %d, want %d (Kafka's default partitioner)", got.Partition, want)
	}
	if _, err := time.Parse(time.RFC3339, got.Timestamp); err != nil {
		t.Fatalf("timestamp %q: %v", got.Timestamp, err)
	}
	if a.header.Get(waitedHeader) == "" || a.header.Get(servedByHeader) != "n1" {
		t.Fatalf("headers %v", a.header)
	}
	// An int64 key, written as text in the URL.
	a = get(h, "/v1/stores/sensors/keys/7")
	if a.status != 200 || !strings.Contains(string(a.body), `"key":7,"value":{"sensor":7}`) {
		t.Fatalf("int64 lookup: %d %s", a.status, a.body)
	}
	// A key with a slash and a space, URL-encoded.
	a = get(h, "/v1/stores/orders/keys/"+url.PathEscape("no/such key"))
	if a.status != 404 {
		t.Fatalf("encoded key: %d %s", a.status, a.body)
	}
}

type scanPage struct {
	Items []struct {
		Key       string          `json:"key"`
		Value     json.RawMessage `json:"value"`
		Partition int32           `json:"partition"`
	} `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// scanAll pages through a scan and returns the keys in the order served.
func scanAll(t *testing.T, h http.Handler, query string, limit int) []string {
	t.Helper()
	var keys []string
	cursor := ""
	for pages := 0; ; pages++ {
		target := fmt.Sprintf("/v1/stores/orders/keys?limit=%d&%s", limit, query)
		if cursor != "" {
			target += "&cursor=" + cursor
		}
		a := get(h, target)
		if a.status != 200 {
			t.Fatalf("%s: %d %s", target, a.status, a.body)
		}
		var p scanPage
		a.decode(t, &p)
		if len(p.Items) > limit {
			t.Fatalf("page of %d items over limit %d", len(p.Items), limit)
		}
		for _, it := range p.Items {
			keys = append(keys, it.Key)
		}
		if p.NextCursor == nil {
			return keys
		}
		cursor = *p.NextCursor
		if pages > 10000 {
			t.Fatal("scan never ends")
		}
	}
}

func TestScans(t *testing.T) {
	f := newFixture(t, 6)
	e, h := f.node("n1")
	f.waitReady(e)
	between := func(lo, hi string) (out []string) {
		for _, k := range f.keys {
			if k >= lo && k <= hi {
				out = append(out, k)
			}
		}
		return out
	}
	cases := []struct {
		name  string
		query string
		limit int
		want  []string
	}{
		{"full scan in pages of 7", "", 7, f.keys},
		{"full scan in one page", "", 1000, f.keys},
		{"range, both bounds inclusive", "from=o-0100&to=o-0199", 9, between("o-0100", "o-0199")},
		{"range from only", "from=o-0490", 3, between("o-0490", "o-9999")},
		{"range to only", "to=o-0009", 4, between("", "o-0009")},
		{"single key range", "from=o-0250&to=o-0250", 5, []string{"o-0250"}},
		{"prefix", "prefix=o-004", 3, between("o-0040", "o-0049")},
		{"prefix and range", "prefix=o-01&from=o-0195", 2, between("o-0195", "o-0199")},
		{"empty range", "from=o-0200a&to=o-0200b", 5, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := scanAll(t, h, c.query, c.limit)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("got %d keys %v\nwant %d keys %v", len(got), got, len(c.want), c.want)
			}
		})
	}

	// NDJSON streams the same items, then the cursor.
	a := get(h, "/v1/stores/orders/keys?from=o-0010&limit=3", "Accept", "application/x-ndjson")
	lines := strings.Split(strings.TrimSpace(string(a.body)), "\n")
	if a.status != 200 || a.header.Get("Content-Type") != "application/x-ndjson" || len(lines) != 4 ||
		!strings.HasPrefix(lines[0], `{"key":"o-0010"`) || !strings.HasPrefix(lines[3], `{"next_cursor":"`) {
		t.Fatalf("ndjson: %d %q", a.status, lines)
	}

	// Count.
	var cnt struct{ Count int64 }
	get(h, "/v1/stores/orders/count").decode(t, &cnt)
	if cnt.Count != int64(len(f.keys)) {
		t.Fatalf("count %d, want %d", cnt.Count, len(f.keys))
	}

	// One undecodable value does not break a scan of its store.
	a = get(h, "/v1/stores/sensors/keys?limit=100")
	if a.status != 200 || !strings.Contains(string(a.body), `"value":null,"error":"value does not decode as json`) {
		t.Fatalf("scan with a bad value: %d %s", a.status, a.body)
	}
}

func TestStoresAndHealth(t *testing.T) {
	f := newFixture(t, 4)
	e, h := f.node("n1")
	f.waitReady(e)
	var s struct {
		Stores []struct {
			Name       string `json:"name"`
			Topic      string `json:"topic"`
			Partitions int32  `json:"partitions"`
			Key        string `json:"key_serde"`
		} `json:"stores"`
	}
	get(h, "/v1/stores").decode(t, &s)
	if len(s.Stores) != 2 || s.Stores[0].Name != "orders" || s.Stores[0].Partitions != 4 || s.Stores[1].Key != "int64" {
		t.Fatalf("stores: %+v", s)
	}
	var parts struct {
		Partitions []struct {
			Owner, Topic, State string
			Lag                 int64
		}
	}
	get(h, "/v1/metadata/partitions").decode(t, &parts)
	if len(parts.Partitions) != 7 || parts.Partitions[0].Owner != "n1" || parts.Partitions[0].State != "serving" {
		t.Fatalf("partitions: %+v", parts)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if a := get(h, path); a.status != 200 {
			t.Fatalf("%s: %d %s", path, a.status, a.body)
		}
	}
	get(h, "/v1/stores/orders/keys/o-0001")
	get(h, "/v1/stores/orders/keys/nope")
	m := string(get(h, "/metrics").body)
	for _, want := range []string{
		`iqengine_http_requests_total{endpoint="get",status="200"}`,
		`iqengine_http_requests_total{endpoint="get",status="404"}`,
		`iqengine_http_request_duration_seconds_bucket{endpoint="get"`,
	} {
		if !strings.Contains(m, want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
}

// TestWaitsForPartitionsThenAnswers runs two nodes of one application, so
// each serves only some partitions. A query on one node for a partition the
// other owns has no serving owner here: it waits, then answers 503 naming
// the partition. When the other node leaves, its partitions move here, and
// a query that waits long enough is answered.
func TestWaitsForPartitionsThenAnswers(t *testing.T) {
	f := newFixture(t, 4)
	e1, h1 := f.node("n1")
	e2, _ := f.node("n2")
	f.waitReady(e1, e2)
	var away string
	for _, k := range f.keys {
		p := state.Partition{Topic: f.orders, Partition: serde.Partition([]byte(k), 4)}
		if _, err := e1.Get(p, []byte(k)); err != nil {
			away = k
			break
		}
	}
	if away == "" {
		t.Fatal("n1 serves every partition; the group did not split them")
	}
	a := get(h1, "/v1/stores/orders/keys/"+away+"?timeout=300ms")
	var p problem
	a.decode(t, &p)
	if a.status != 503 || a.header.Get("Retry-After") == "" || p.Type != problemTypePrefix+probUnavailable ||
		len(p.Partitions) != 1 || p.Partitions[0].Topic != f.orders {
		t.Fatalf("not-owned partition: %d %v %s", a.status, a.header, a.body)
	}
	if w := a.header.Get(waitedHeader); w < "300" && len(w) <= 3 {
		t.Fatalf("answered after %sms, before the 300ms deadline", w)
	}
	// A scan lists every partition it could not reach.
	a = get(h1, "/v1/stores/orders/keys?timeout=200ms")
	a.decode(t, &p)
	if a.status != 503 || len(p.Partitions) == 0 || len(p.Partitions) >= 4 {
		t.Fatalf("scan with partitions elsewhere: %d %s", a.status, a.body)
	}

	// n2 leaves; a query that was already waiting is answered once its
	// partition serves on n1.
	done := make(chan answer, 1)
	go func() { done <- get(h1, "/v1/stores/orders/keys/"+away+"?timeout=20s") }()
	time.Sleep(100 * time.Millisecond)
	if err := e2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	a = <-done
	if a.status != 200 || !strings.Contains(string(a.body), `"key":"`+away+`"`) {
		t.Fatalf("after the move: %d %s", a.status, a.body)
	}
	t.Logf("the waiting query was answered after %sms", a.header.Get(waitedHeader))
	if got := scanAll(t, h1, "", 50); len(got) != len(f.keys) {
		t.Fatalf("scan after the move: %d keys, want %d", len(got), len(f.keys))
	}
}
