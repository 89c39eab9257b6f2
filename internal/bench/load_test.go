package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeStore answers iqengine-shaped lookups and scans for the keys
// k-0000000 to k-(n-1), like a node would.
type fakeStore struct {
	n        int
	name     string
	lookups  atomic.Int64
	scans    atomic.Int64
	mu       sync.Mutex
	keysSeen map[string]int
	conns    atomic.Int64
	// status, when set, answers every key request with it.
	status int
	// wrongKey answers a lookup with another key's record.
	wrongKey bool
}

func (f *fakeStore) keyNum(k string) (int, bool) {
	if !strings.HasPrefix(k, "k-") {
		return 0, false
	}
	n, err := strconv.Atoi(k[2:])
	return n, err == nil && n >= 0 && n < f.n
}

func (f *fakeStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = "/v1/stores/bench/keys"
	if !strings.HasPrefix(r.URL.Path, prefix) {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Iqengine-Served-By", f.name)
	if f.status != 0 {
		w.WriteHeader(f.status)
		return
	}
	if key, ok := strings.CutPrefix(r.URL.Path, prefix+"/"); ok {
		f.lookups.Add(1)
		f.mu.Lock()
		f.keysSeen[key]++
		f.mu.Unlock()
		if _, ok := f.keyNum(key); !ok {
			http.Error(w, `{"type":"urn:iqengine:problem:key-not-found"}`, http.StatusNotFound)
			return
		}
		if f.wrongKey {
			key = "k-x"
		}
		fmt.Fprintf(w, `{"key":%q,"value":{"n":1},"partition":3,"offset":7,"served_by":%q}`, key, f.name)
		return
	}
	f.scans.Add(1)
	q := r.URL.Query()
	from, okF := f.keyNum(q.Get("from"))
	to, okT := f.keyNum(q.Get("to"))
	limit, err := strconv.Atoi(q.Get("limit"))
	if !okF || !okT || err != nil {
		http.Error(w, "bad scan "+r.URL.RawQuery, http.StatusBadRequest)
		return
	}
	var items []string
	for i := from; i <= to && len(items) < limit; i++ {
		items = append(items, fmt.Sprintf(`{"key":"k-%07d","value":{"n":%d}}`, i, i))
	}
	fmt.Fprintf(w, `{"items":[%s],"next_cursor":null}`, strings.Join(items, ","))
}

func newFake(t *testing.T, n int) (*fakeStore, *httptest.Server) {
	t.Helper()
	f := &fakeStore{n: n, name: "n1", keysSeen: map[string]int{}}
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return f, srv
}

func TestLoadLookups(t *testing.T) {
	f, srv := newFake(t, 1000)
	res, err := Load(context.Background(), LoadOptions{
		Targets: []string{srv.URL}, Store: "bench", Keys: KeySpace{N: 1000, Format: DefaultKeyFormat},
		Concurrency: 4, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond,
		ServedByHeader: "Iqengine-Served-By", TargetName: "n1", VerifyEvery: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.OK != res.Requests || len(res.Errors) != 0 {
		t.Fatalf("requests %d, ok %d, errors %v", res.Requests, res.OK, res.Errors)
	}
	if res.Verified != res.Requests {
		t.Errorf("verified %d of %d", res.Verified, res.Requests)
	}
	// The warm-up's requests are sent but not counted (plus the one probe).
	if got := f.lookups.Load(); got <= res.Requests {
		t.Errorf("server saw %d lookups, measured %d: want the warm-up's on top", got, res.Requests)
	}
	if res.Throughput <= 0 || res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
		t.Errorf("throughput %v, latency %+v", res.Throughput, res.Latency)
	}
	if res.Forwarded == nil || *res.Forwarded != 0 || res.ServedBy["n1"] != res.Requests {
		t.Errorf("served by %v, forwarded %v", res.ServedBy, res.Forwarded)
	}
	// Keep-alive: about one connection per worker, not one per request (a
	// worker may dial again when its next request starts before the last
	// one's connection is back in the idle pool).
	if c := f.conns.Load(); c > 2*4+1 || c*10 > res.Requests {
		t.Errorf("%d connections for 4 workers and %d requests", c, res.Requests)
	}
	if res.Seconds < 0.3 || res.Seconds > 2 {
		t.Errorf("measured %v s, want about 0.3", res.Seconds)
	}
	b, err := json.Marshal(res)
	if err != nil || !strings.Contains(string(b), `"p99_9"`) {
		t.Errorf("JSON %s, %v", b, err)
	}
}

func TestLoadScans(t *testing.T) {
	f, srv := newFake(t, 500)
	res, err := Load(context.Background(), LoadOptions{
		Targets: []string{srv.URL}, Store: "bench", Mode: Scan, Keys: KeySpace{N: 500, Format: DefaultKeyFormat},
		ScanLimit: 100, Concurrency: 2, Duration: 200 * time.Millisecond, VerifyEvery: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.OK != res.Requests || res.Verified != res.Requests {
		t.Fatalf("requests %d, ok %d, verified %d, errors %v", res.Requests, res.OK, res.Verified, res.Errors)
	}
	if f.lookups.Load() != 0 || f.scans.Load() == 0 {
		t.Errorf("lookups %d, scans %d", f.lookups.Load(), f.scans.Load())
	}
	if res.ScanLimit != 100 || res.BytesPerRequest < 100*20 {
		t.Errorf("scan limit %d, %v bytes per request", res.ScanLimit, res.BytesPerRequest)
	}
}

func TestLoadCountsErrorsByStatus(t *testing.T) {
	// Keys beyond the server's 100 answer 404.
	_, srv := newFake(t, 100)
	res, err := Load(context.Background(), LoadOptions{
		Targets: []string{srv.URL}, Store: "bench", Keys: KeySpace{N: 200, Format: DefaultKeyFormat},
		Concurrency: 2, Duration: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors["404"] == 0 || res.OK == 0 || res.OK+res.Errors["404"] != res.Requests {
		t.Fatalf("requests %d, ok %d, errors %v", res.Requests, res.OK, res.Errors)
	}
}

func TestLoadBadBody(t *testing.T) {
	f, srv := newFake(t, 100)
	f.wrongKey = true
	res, err := Load(context.Background(), LoadOptions{
		Targets: []string{srv.URL}, Store: "bench", Keys: KeySpace{N: 100, Format: DefaultKeyFormat},
		Concurrency: 1, Duration: 100 * time.Millisecond, VerifyEvery: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors["bad-body"] == 0 || res.Errors["bad-body"] != res.Verified {
		t.Fatalf("errors %v, verified %d", res.Errors, res.Verified)
	}
}

func TestLoadFailsFastOnADeadTarget(t *testing.T) {
	_, srv := newFake(t, 10)
	u := srv.URL
	srv.Close()
	start := time.Now()
	_, err := Load(context.Background(), LoadOptions{
		Targets: []string{u}, Store: "bench", Keys: KeySpace{N: 10, Format: DefaultKeyFormat}, Duration: time.Minute,
	})
	if err == nil || !strings.Contains(err.Error(), u) || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
	f, srv2 := newFake(t, 10)
	f.status = http.StatusServiceUnavailable
	_, err = Load(context.Background(), LoadOptions{
		Targets: []string{srv2.URL}, Store: "bench", Keys: KeySpace{N: 10, Format: DefaultKeyFormat}, Duration: time.Minute,
	})
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err %v", err)
	}
}

func TestLoadSpreadsOverTargetsAndCountsForwarding(t *testing.T) {
	f1, s1 := newFake(t, 100)
	f2, s2 := newFake(t, 100)
	f2.name = "n2"
	res, err := Load(context.Background(), LoadOptions{
		Targets: []string{s1.URL, s2.URL}, Store: "bench", Keys: KeySpace{N: 100, Format: DefaultKeyFormat},
		Concurrency: 2, Duration: 200 * time.Millisecond, ServedByHeader: "Iqengine-Served-By", TargetName: "n1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if f1.lookups.Load() == 0 || f2.lookups.Load() == 0 {
		t.Fatalf("lookups %d and %d", f1.lookups.Load(), f2.lookups.Load())
	}
	if res.Forwarded == nil || *res.Forwarded < 0.3 || *res.Forwarded > 0.7 {
		t.Fatalf("forwarded %v, served by %v", res.Forwarded, res.ServedBy)
	}
}

func TestLoadCustomTemplate(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.RequestURI())
		mu.Unlock()
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	res, err := Load(context.Background(), LoadOptions{
		Targets: []string{srv.URL + "/"}, Store: "my store", Template: "{base}/kv/{store}?k={key}&n={limit}",
		Keys: KeySpace{N: 5, Format: "a/b %d"}, Concurrency: 1, Duration: 50 * time.Millisecond, VerifyEvery: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK == 0 {
		t.Fatalf("%+v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	u, err := url.Parse(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != "/kv/my store" || !strings.HasPrefix(u.Query().Get("k"), "a/b ") || u.Query().Get("n") != "100" {
		t.Errorf("request %s", paths[0])
	}
}

func TestLoadZipfPrefersLowKeys(t *testing.T) {
	f, srv := newFake(t, 10000)
	_, err := Load(context.Background(), LoadOptions{
		Targets: []string{srv.URL}, Store: "bench", Keys: KeySpace{N: 10000, Format: DefaultKeyFormat},
		Dist: Zipf, ZipfS: 1.2, Concurrency: 2, Duration: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var total int
	for _, n := range f.keysSeen {
		total += n
	}
	if hot := f.keysSeen["k-0000000"]; hot*10 < total {
		t.Errorf("key 0 asked %d times of %d: not hot", hot, total)
	}
}

func TestLoadOptionErrors(t *testing.T) {
	ks := KeySpace{N: 10, Format: DefaultKeyFormat}
	for _, o := range []LoadOptions{
		{Store: "s", Keys: ks},
		{Targets: []string{"http://x"}, Keys: ks},
		{Targets: []string{"http://x"}, Store: "s", Keys: KeySpace{N: 0, Format: DefaultKeyFormat}},
		{Targets: []string{"http://x"}, Store: "s", Keys: KeySpace{N: 10, Format: "k-%s-%d"}},
		{Targets: []string{"http://x"}, Store: "s", Keys: ks, Mode: "put"},
		{Targets: []string{"http://x"}, Store: "s", Keys: ks, Mode: Scan, ScanLimit: 11},
		{Targets: []string{"http://x"}, Store: "s", Keys: ks, Template: "{base}/{nope}"},
		{Targets: []string{"http://x"}, Store: "s", Keys: ks, Template: "{base}/x"},
		{Targets: []string{"http://x"}, Store: "s", Keys: ks, Dist: Zipf, ZipfS: 1},
	} {
		if _, err := Load(context.Background(), o); err == nil {
			t.Errorf("Load(%+v) did not fail", o)
		}
	}
}

func TestKeysAndTemplates(t *testing.T) {
	fk := compileKey("k-%07d")
	if got := string(fk.appendKey(nil, 42)); got != "k-0000042" {
		t.Errorf("fast key %q", got)
	}
	for _, f := range []string{"k-%07d", "%d", "x%05d-y", "user:%d"} {
		fk := compileKey(f)
		if !fk.ok {
			t.Errorf("%q not compiled", f)
			continue
		}
		for _, n := range []int{0, 7, 12345, 9999999} {
			if got, want := string(fk.appendKey(nil, n)), fmt.Sprintf(f, n); got != want {
				t.Errorf("%q %d: %q, want %q", f, n, got, want)
			}
		}
	}
	if compileKey("k-%x").ok || compileKey("k-%7d").ok {
		t.Error("unsupported verbs compiled")
	}
	tpl, err := ParseTemplate(ScanTemplate)
	if err != nil {
		t.Fatal(err)
	}
	got := string(tpl.appendURL(nil, &values{Base: "http://h:1/", Store: "s", From: "a b", To: "c&d", Limit: 100}))
	if want := "http://h:1/v1/stores/s/keys?from=a+b&to=c%26d&limit=100"; got != want {
		t.Errorf("scan URL %q, want %q", got, want)
	}
	lt, _ := ParseTemplate(LookupTemplate)
	if got := lt.URL("http://h", "s", "a/b"); got != "http://h/v1/stores/s/keys/a%2Fb" {
		t.Errorf("lookup URL %q", got)
	}
	if _, err := ParseTemplate("{base"); err == nil {
		t.Error("unclosed placeholder accepted")
	}
}
