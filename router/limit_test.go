package router

// The bounds on one node's work: requests in flight (429 beyond them), the
// bytes of a scan page, NDJSON pages written as they are merged, and
// counts that are cached, shared and cancelled with their request. Against
// the fake engine, but for the remote shares, which need other nodes.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/state"
)

var docs0 = state.Partition{Topic: "docs", Partition: 0}

// heldIterator is an iterator whose Next, once it has returned after
// records, says so on entered and then waits for release.
type heldIterator struct {
	state.Iterator
	after   int
	n       int
	entered chan<- struct{}
	release <-chan struct{}
}

func (it *heldIterator) Next() (state.Record, bool) {
	if it.n == it.after {
		it.entered <- struct{}{}
		<-it.release
	}
	it.n++
	return it.Iterator.Next()
}

// hold makes f's scans of docs/0 wait after their first after records, and
// its counts of docs/0 wait, until release is closed; each says on entered
// when it waits.
func hold(f *fakeEngine, after int) (entered chan struct{}, release chan struct{}) {
	entered, release = make(chan struct{}, 16), make(chan struct{})
	f.iterHook = func(p state.Partition, it state.Iterator) state.Iterator {
		if p != docs0 {
			return it
		}
		return &heldIterator{Iterator: it, after: after, entered: entered, release: release}
	}
	f.countHook = func(ctx context.Context, p state.Partition) error {
		if p != docs0 {
			return nil
		}
		entered <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return entered, release
}

// TestRequestsBeyondTheBoundsAre429: with a scan and a count of docs held
// in flight, a request beyond server.max_in_flight, or a scan or count
// beyond server.max_in_flight_scans, is refused at once with 429
// overloaded and Retry-After: 1, and counted. The health probes, /metrics
// and the calls between nodes (part of a request another node admitted)
// are never refused. Once the held requests end, the refused request
// answers.
func TestRequestsBeyondTheBoundsAre429(t *testing.T) {
	const (
		scansFull    = "this node is answering 2 scans and counts, as many as it takes at once; retry in a moment"
		requestsFull = "this node is answering 2 requests, as many as it takes at once; retry in a moment"
	)
	cases := []struct {
		name             string
		maxIn, maxScans  int
		target, endpoint string
		status           int
		detail           string
	}{
		{"a scan beyond the scans bound", 3, 2, "/v1/stores/orders/keys", "scan", 429, scansFull},
		{"a count beyond the scans bound", 3, 2, "/v1/stores/orders/count", "count", 429, scansFull},
		{"a lookup within the requests bound", 3, 2, "/v1/stores/orders/keys/o-01", "get", 200, ""},
		{"a lookup beyond the requests bound", 2, 2, "/v1/stores/orders/keys/o-01", "get", 429, requestsFull},
		{"a scan beyond both bounds is refused for the requests", 2, 2, "/v1/stores/orders/keys", "scan", 429, requestsFull},
		{"the stores beyond the requests bound", 2, 2, "/v1/stores", "stores", 429, requestsFull},
		{"the metadata beyond the requests bound", 2, 2, "/v1/metadata/instances", "instances", 429, requestsFull},
		{"liveness is never refused", 2, 2, "/healthz", "healthz", 200, ""},
		{"readiness is never refused", 2, 2, "/readyz", "readyz", 200, ""},
		{"metrics are never refused", 2, 2, "/metrics", "", 200, ""},
		{"an internal scan is never refused", 2, 2, "/v1/internal/stores/orders/partitions/0/scan?limit=5", "internal-scan", 200, ""},
		{"an internal count is never refused", 2, 2, "/v1/internal/stores/orders/partitions/0/count", "internal-count", 200, ""},
		{"an internal get is never refused", 2, 2, "/v1/internal/stores/orders/partitions/0/get?key=" + b64([]byte("o-06")), "internal-get", 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, h := newFakeNode(t, func(o *Options) { o.MaxInFlight, o.MaxInFlightScans = c.maxIn, c.maxScans })
			entered, release := hold(f, 0)
			var held sync.WaitGroup
			heldStatus := make(chan int, 2)
			for _, target := range []string{"/v1/stores/docs/keys", "/v1/stores/docs/count"} {
				held.Go(func() { heldStatus <- get(h, target).status })
				<-entered
			}
			a := get(h, c.target)
			if c.status == http.StatusTooManyRequests {
				wantProblem(t, a, c.target, c.status, probOverloaded, c.detail)
				if got := a.header.Get("Retry-After"); got != "1" {
					t.Errorf("Retry-After %q, want 1", got)
				}
			} else if a.status != c.status {
				t.Errorf("GET %s: %d %s, want %d", c.target, a.status, a.body, c.status)
			}
			reg := h.o.Registry
			if c.endpoint != "" {
				refused := 0.0
				if c.status == http.StatusTooManyRequests {
					refused = 1
				}
				if got := testutil.Metric(t, reg, "iqengine_http_refused_total", "endpoint", c.endpoint); got != refused {
					t.Errorf("iqengine_http_refused_total{endpoint=%q} %v, want %v", c.endpoint, got, refused)
				}
			}
			if got := testutil.Metric(t, reg, "iqengine_http_in_flight", "kind", "scans"); got != 2 {
				t.Errorf("scans in flight while two are held: %v", got)
			}
			close(release)
			held.Wait()
			for range 2 {
				if s := <-heldStatus; s != http.StatusOK {
					t.Errorf("a held request answered %d", s)
				}
			}
			if a := get(h, c.target); a.status != http.StatusOK {
				t.Errorf("GET %s once the held requests ended: %d %s", c.target, a.status, a.body)
			}
			for _, kind := range []string{"requests", "scans"} {
				if got := testutil.Metric(t, reg, "iqengine_http_in_flight", "kind", kind); got != 0 {
					t.Errorf("%s in flight after every request ended: %v", kind, got)
				}
			}
		})
	}
}

// scanJSON is one decoded JSON scan page.
type scanJSON struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor *string           `json:"next_cursor"`
}

// TestPageEndsAtTheByteBudget: a page whose items' JSON reaches
// query.max_page_bytes ends there, before its limit, with a cursor; the
// cursor walks through every key once, in order, whether the page is JSON
// or NDJSON, and a page always holds at least one item, however small the
// budget, so that the cursor advances.
func TestPageEndsAtTheByteBudget(t *testing.T) {
	// Every orders item is 105 or 106 bytes of JSON and a separator.
	cases := []struct {
		name   string
		budget int
		target string
		pages  []int
	}{
		{"a budget of three items", 250, "/v1/stores/orders/keys?limit=25", []int{3, 3, 3, 3, 3, 3, 3, 3, 3, 3}},
		{"a budget of exactly two items", 2 * 107, "/v1/stores/orders/keys?limit=25", slices.Repeat([]int{2}, 15)},
		{"a budget under one item: one item a page", 1, "/v1/stores/orders/keys?prefix=o-0&limit=25", slices.Repeat([]int{1}, 10)},
		{"the limit ends a page before the budget", 1000, "/v1/stores/orders/keys?limit=4", []int{4, 4, 4, 4, 4, 4, 4, 2}},
		{"a budget larger than the scan", 1 << 20, "/v1/stores/orders/keys?limit=25", []int{25, 5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, h := newFakeNode(t, func(o *Options) { o.MaxPageBytes = c.budget })
			got := scanAll(t, h, c.target, "")
			want := orders(0, 29)
			if strings.Contains(c.target, "prefix=o-0") {
				want = orders(0, 9)
			}
			if !reflect.DeepEqual(got.keys, want) || !reflect.DeepEqual(got.pages, c.pages) {
				t.Errorf("JSON pages: keys %q in pages %v, want %q in pages %v", got.keys, got.pages, want, c.pages)
			}
			nd := ndjsonScanAll(t, h, c.target)
			if !reflect.DeepEqual(nd.keys, want) || !reflect.DeepEqual(nd.pages, c.pages) {
				t.Errorf("NDJSON pages: keys %q in pages %v, want %q in pages %v", nd.keys, nd.pages, want, c.pages)
			}
			// No page's items exceed the budget by more than their last.
			a := get(h, c.target)
			var pg scanJSON
			a.decode(t, &pg)
			size := 0
			for _, it := range pg.Items[:len(pg.Items)-1] {
				size += len(it) + 1
			}
			if size >= c.budget {
				t.Errorf("the first page holds %d bytes before its last item, over the budget %d", size, c.budget)
			}
		})
	}
}

// ndjsonScanAll pages through the scan at target with Accept:
// application/x-ndjson.
func ndjsonScanAll(t *testing.T, h http.Handler, target string) scanned {
	t.Helper()
	var out scanned
	cursor := ""
	for len(out.pages) <= 1000 {
		u := target
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		a := get(h, u, "Accept", ndjsonContentType)
		lines := strings.Split(strings.TrimSuffix(string(a.body), "\n"), "\n")
		if a.status != http.StatusOK || len(lines) == 0 {
			t.Fatalf("%s: %d %s", u, a.status, a.body)
		}
		for _, line := range lines[:len(lines)-1] {
			var it struct {
				Key json.RawMessage `json:"key"`
			}
			if err := json.Unmarshal([]byte(line), &it); err != nil {
				t.Fatalf("%s: line %q: %v", u, line, err)
			}
			out.keys = append(out.keys, keyText(it.Key))
		}
		out.pages = append(out.pages, len(lines)-1)
		var end struct {
			NextCursor *string `json:"next_cursor"`
		}
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &end); err != nil {
			t.Fatalf("%s: last line %q: %v", u, lines[len(lines)-1], err)
		}
		if end.NextCursor == nil {
			return out
		}
		cursor = *end.NextCursor
	}
	t.Fatalf("%s: more than 1000 pages", target)
	return out
}

// addBig adds the store big (one partition, string keys b-000 to b-199,
// JSON values of about 1 KiB) to f.
func addBig(t *testing.T, f *fakeEngine) (keys []string) {
	f.addStore(t, "big", "big", 1, "string", "json")
	for i := range 200 {
		k := fmt.Sprintf("b-%03d", i)
		f.put(t, "big", k, fmt.Sprintf(`{"id":%q,"pad":%q}`, k, strings.Repeat("x", 1000)), int64(i))
		keys = append(keys, k)
	}
	return keys
}

// TestNDJSONStreamsBeforeThePageIsComplete: with Accept:
// application/x-ndjson, a page's lines reach the client as the merge
// produces them, a flush every 32 KiB: a client reads the first lines of a
// 200 KiB page while the store's iterator is held after its 100th record,
// so before the page could have been collected whole.
func TestNDJSONStreamsBeforeThePageIsComplete(t *testing.T) {
	f, h := newFakeNode(t, func(o *Options) { o.MaxLimit = 1000 })
	keys := addBig(t, f)
	big0 := state.Partition{Topic: "big", Partition: 0}
	var released atomic.Bool
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { released.Store(true); close(release) })
	f.iterHook = func(p state.Partition, it state.Iterator) state.Iterator {
		if p != big0 {
			return it
		}
		return &heldIterator{Iterator: it, after: 100, entered: make(chan struct{}, 1), release: release}
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	// Should the page not stream, the guard lets it end, and the test
	// fails on what it read before.
	guard := time.AfterFunc(10*time.Second, releaseOnce)
	defer guard.Stop()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/stores/big/keys?limit=1000", nil)
	req.Header.Set("Accept", ndjsonContentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ndjsonContentType {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	var got []string
	for len(got) < 20 && sc.Scan() {
		var it struct{ Key string }
		_ = json.Unmarshal(sc.Bytes(), &it)
		got = append(got, it.Key)
	}
	if released.Load() {
		t.Fatalf("the first %d lines arrived only once the page could be whole: the page did not stream", len(got))
	}
	releaseOnce()
	var last string
	for sc.Scan() {
		var it struct{ Key string }
		if strings.HasPrefix(sc.Text(), `{"next_cursor":`) {
			last = sc.Text()
			continue
		}
		_ = json.Unmarshal(sc.Bytes(), &it)
		got = append(got, it.Key)
	}
	if !slices.Equal(got, keys) || !strings.HasPrefix(last, `{"next_cursor":null,`) {
		t.Errorf("%d keys then %q; want the %d keys in order, then the last line", len(got), last, len(keys))
	}
}

// TestClientThatStopsReadingIsDropped: a client that asks for a 32 MB
// NDJSON page (more than the sockets buffer) and reads nothing after the
// status line holds its scan slot only until a write waits WriteTimeout:
// the write fails, the scan ends and frees its slot and buffers, while the
// client still holds its connection.
func TestClientThatStopsReadingIsDropped(t *testing.T) {
	f, h := newFakeNode(t, func(o *Options) {
		o.MaxLimit, o.MaxPageBytes, o.WriteTimeout = 10000, 1<<30, 100*time.Millisecond
	})
	f.addStore(t, "huge", "huge", 1, "string", "bytes")
	pad := bytes.Repeat([]byte{'x'}, 6<<10) // 8 KiB of JSON in base64
	for i := range 4000 {
		f.putAt(state.Partition{Topic: "huge", Partition: 0}, fmt.Appendf(nil, "h-%04d", i), pad, int64(i))
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/stores/huge/keys?limit=10000 HTTP/1.1\r\nHost: x\r\nAccept: %s\r\n\r\n", ndjsonContentType)
	status := make([]byte, len("HTTP/1.1 200"))
	if _, err := io.ReadFull(conn, status); err != nil || string(status) != "HTTP/1.1 200" {
		t.Fatalf("status line %q, %v", status, err)
	}
	scans := func() float64 { return testutil.Metric(t, h.o.Registry, "iqengine_http_in_flight", "kind", "scans") }
	testutil.WaitFor(t, 10*time.Second, "the scan of the client that stopped reading ends", func() bool { return scans() == 0 })
}

// failingIterator fails after its first after records.
type failingIterator struct {
	state.Iterator
	after, n int
}

var errDiskRead = errors.New("disk read failed")

func (it *failingIterator) Next() (state.Record, bool) {
	if it.n == it.after {
		return state.Record{}, false
	}
	it.n++
	return it.Iterator.Next()
}

func (it *failingIterator) Err() error {
	if it.n == it.after {
		return errDiskRead
	}
	return nil
}

// TestNDJSONErrorAfterTheFirstLine: a page that fails before anything was
// written answers its problem with its status, as JSON and as NDJSON; an
// NDJSON page that fails once lines went out (the status is sent) ends with
// a last line {"error": problem} instead of the cursor line, so that a
// client cannot take it for a whole page.
func TestNDJSONErrorAfterTheFirstLine(t *testing.T) {
	const problemLine = `{"error":{"type":"urn:iqengine:problem:internal","title":"Internal error","status":500,"detail":"disk read failed","instance":"/v1/stores/big/keys?limit=1000"}}`
	cases := []struct {
		name         string
		accept       string
		failAfter    int
		status       int
		lines        int // item lines before the last
		lastLine     string
		wantProblem  bool
		wantInternal bool
	}{
		{"JSON: the problem", "", 100, 500, 0, "", true, true},
		{"NDJSON before the first flush: the problem", ndjsonContentType, 10, 500, 0, "", true, true},
		{"NDJSON after lines went out: the lines, then the error line", ndjsonContentType, 100, 200, 100, problemLine, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, h := newFakeNode(t, func(o *Options) { o.MaxLimit = 1000 })
			addBig(t, f)
			f.iterHook = func(p state.Partition, it state.Iterator) state.Iterator {
				return &failingIterator{Iterator: it, after: c.failAfter}
			}
			const target = "/v1/stores/big/keys?limit=1000"
			var header []string
			if c.accept != "" {
				header = []string{"Accept", c.accept}
			}
			a := get(h, target, header...)
			if c.wantProblem {
				wantProblem(t, a, target, c.status, probInternal, errDiskRead.Error())
				return
			}
			lines := strings.Split(strings.TrimSuffix(string(a.body), "\n"), "\n")
			if a.status != c.status || len(lines) != c.lines+1 || lines[len(lines)-1] != c.lastLine {
				t.Errorf("%d, %d lines, the last %.300s; want %d, %d lines, the last %s", a.status, len(lines), lines[len(lines)-1], c.status, c.lines+1, c.lastLine)
			}
		})
	}
}

// TestCountStopsWhenItsRequestEnds: a count whose client goes away stops
// walking the partition: the walk's context ends with the request's.
func TestCountStopsWhenItsRequestEnds(t *testing.T) {
	f, h := newFakeNode(t)
	entered := make(chan struct{}, 1)
	stopped := make(chan error, 1)
	f.countHook = func(ctx context.Context, p state.Partition) error {
		if p != docs0 {
			return nil
		}
		entered <- struct{}{}
		<-ctx.Done()
		stopped <- ctx.Err()
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodGet, "/v1/stores/docs/count", nil).WithContext(ctx)
	done := make(chan struct{})
	go func() {
		h.ServeHTTP(httptest.NewRecorder(), req)
		close(done)
	}()
	<-entered
	cancel()
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Errorf("the walk stopped with %v, want context.Canceled", err)
	}
	<-done
	// The next count walks again, and answers.
	f.countHook = nil
	var got struct{ Count int }
	get(h, "/v1/stores/docs/count").decode(t, &got)
	if got.Count != 5 {
		t.Errorf("count after the cancelled one: %d, want 5", got.Count)
	}
}

// countingIterator counts the records its iterator returned.
type countingIterator struct {
	state.Iterator
	n *atomic.Int64
}

func (it *countingIterator) Next() (state.Record, bool) {
	r, ok := it.Iterator.Next()
	if ok {
		it.n.Add(1)
	}
	return r, ok
}

// TestScanStopsWhenItsRequestEnds: a scan whose client goes away stops
// merging within ctxCheckEvery records, rather than reading and rendering
// the rest of its page, and writes nothing.
func TestScanStopsWhenItsRequestEnds(t *testing.T) {
	f, h := newFakeNode(t, func(o *Options) { o.MaxLimit = 1000 })
	addBig(t, f)
	big0 := state.Partition{Topic: "big", Partition: 0}
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var read atomic.Int64
	f.iterHook = func(p state.Partition, it state.Iterator) state.Iterator {
		if p != big0 {
			return it
		}
		return &heldIterator{Iterator: &countingIterator{it, &read}, after: 10, entered: entered, release: release}
	}
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodGet, "/v1/stores/big/keys?limit=1000", nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		h.ServeHTTP(rec, req)
		close(done)
	}()
	<-entered
	cancel()
	close(release)
	<-done
	if n := read.Load(); n > 10+ctxCheckEvery || rec.Body.Len() > 0 {
		t.Errorf("after the client went away at record 10, the scan read %d of 200 records and wrote %d bytes; want at most %d and none",
			n, rec.Body.Len(), 10+ctxCheckEvery)
	}
}

// TestCountsAreCachedAndShared: a partition's count is reused while its
// applied position has not moved (up to a minute), and recounted at most
// once a second once it has; concurrent counts of a partition share one
// walk. In a synctest bubble, where time moves only when every goroutine
// waits.
func TestCountsAreCachedAndShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, h := newFakeNode(t)
		var walks atomic.Int64
		var gate chan struct{} // when set, walks wait for it
		f.countHook = func(ctx context.Context, p state.Partition) error {
			walks.Add(1)
			if gate != nil {
				<-gate
			}
			return nil
		}
		count := func() int {
			var got struct{ Count int }
			get(h, "/v1/stores/orders/count").decode(t, &got)
			return got.Count
		}
		steps := []struct {
			name   string
			before func()
			count  int
			walks  int64 // in all, after the step
		}{
			{"the first count walks the 4 partitions", nil, 30, 4},
			{"at once again: nothing moved, the counts are reused", nil, 30, 4},
			{"a record lands in one partition: within the second, the old count", func() { f.put(t, "orders", "o-30", `{}`, 30) }, 30, 4},
			{"a second after the last walk: that partition is walked again", func() { time.Sleep(time.Second) }, 31, 5},
			{"a second later, nothing moved: reused", func() { time.Sleep(time.Second) }, 31, 5},
			{"a minute later, nothing moved: every partition is walked again", func() { time.Sleep(time.Minute) }, 31, 9},
		}
		for _, s := range steps {
			if s.before != nil {
				s.before()
			}
			if got := count(); got != s.count || walks.Load() != s.walks {
				t.Fatalf("%s: count %d after %d walks, want %d after %d", s.name, got, walks.Load(), s.count, s.walks)
			}
		}
		// Three counts at once, once the cached counts are too old: one
		// walk per partition for the three.
		time.Sleep(time.Minute)
		gate = make(chan struct{})
		var wg sync.WaitGroup
		counts := make([]int, 3)
		for i := range counts {
			wg.Go(func() { counts[i] = count() })
		}
		synctest.Wait()
		close(gate)
		wg.Wait()
		if walks.Load() != 13 || !slices.Equal(counts, []int{31, 31, 31}) {
			t.Errorf("three concurrent counts: %v after %d walks in all, want 31 each after 13", counts, walks.Load())
		}
	})
}

// TestInternalScanStopsAtMaxBytes: the internal scan a node asks another
// for a share of a page ends at its limit, or after the record whose
// encoding reaches max_bytes, and says whether more follow.
func TestInternalScanStopsAtMaxBytes(t *testing.T) {
	_, h := newFakeNode(t)
	const base = "/v1/internal/stores/orders/partitions/0/scan?"
	all, _, err := decodeRecords(get(h, base+"limit=25").body)
	if err != nil || len(all) < 5 {
		t.Fatalf("partition 0: %d records, %v", len(all), err)
	}
	size := func(n int) int { // the encoding of the first n records
		b := []byte{}
		for _, r := range all[:n] {
			b = appendRecord(b, r)
		}
		return len(b)
	}
	cases := []struct {
		name  string
		query string
		n     int
		more  bool
	}{
		{"no max_bytes: the limit alone", "limit=25", len(all), false},
		{"the limit first", "limit=2&max_bytes=1000000", 2, true},
		{"max_bytes 1: one record", "limit=25&max_bytes=1", 1, true},
		{"max_bytes reached exactly by the third record", "limit=25&max_bytes=" + strconv.Itoa(size(3)), 3, true},
		{"max_bytes one byte past the third record", "limit=25&max_bytes=" + strconv.Itoa(size(3)+1), 4, true},
		{"max_bytes beyond the partition", "limit=25&max_bytes=1000000", len(all), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target := base + c.query
			a := get(h, target)
			recs, more, err := decodeRecords(a.body)
			if a.status != http.StatusOK || err != nil || len(recs) != c.n || more != c.more {
				t.Errorf("GET %s: %d, %d records, more %v (%v); want %d, more %v", target, a.status, len(recs), more, err, c.n, c.more)
			}
		})
	}
}

// TestRemoteSharesFollowUp runs two nodes over 6 partitions, one of which
// (partition 2) also holds 300 keys z-000 to z-299. Each remote partition
// is asked for a share of a page (2 × ⌈limit/6⌉ + 16 records, and a share
// of the bytes), not the page's whole limit; a partition whose share runs
// out is asked again for what follows, so pages through the node that
// does not hold partition 2 are the same full pages as through the node
// that does: every key once, in order, in pages of the limit.
func TestRemoteSharesFollowUp(t *testing.T) {
	const hot = 2
	c := newTestCluster(t, 6, 120)
	cl := c.b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var rs []*kgo.Record
	for i := range 300 {
		k := fmt.Sprintf("z-%03d", i)
		c.want[k] = fmt.Sprintf(`{"id":%q}`, k)
		rs = append(rs, &kgo.Record{Topic: c.topic, Partition: hot, Key: []byte(k), Value: []byte(c.want[k])})
	}
	testkafka.Produce(t, cl, rs...)
	c.start("n1")
	c.start("n2")
	c.waitStable(60 * time.Second)
	ownerID, _ := c.node("n1").bal.Table().Owner(c.topic, hot)
	owner := c.node(ownerID.NodeID)
	other := c.node("n1")
	if owner == other {
		other = c.node("n2")
	}
	type asked struct {
		partition, limit, maxBytes int
	}
	var mu sync.Mutex
	var calls []asked
	seen := func(_ http.ResponseWriter, r *http.Request) bool {
		rest, ok := strings.CutPrefix(r.URL.Path, "/v1/internal/stores/orders/partitions/")
		if ok && strings.HasSuffix(rest, "/scan") {
			p, _ := strconv.Atoi(strings.TrimSuffix(rest, "/scan"))
			limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			maxBytes, _ := strconv.Atoi(r.URL.Query().Get("max_bytes"))
			mu.Lock()
			calls = append(calls, asked{p, limit, maxBytes})
			mu.Unlock()
		}
		return false
	}
	owner.intercept.Store(&seen)

	for _, sc := range []struct {
		target string
		keys   int
		limit  int
	}{
		{"/v1/stores/orders/keys?prefix=z-&limit=100", 300, 100},
		{"/v1/stores/orders/keys?limit=100", 420, 100},
		{"/v1/stores/orders/keys?limit=7", 420, 7},
	} {
		local := scanAll(t, owner.h, sc.target, "")
		mu.Lock()
		calls = nil
		mu.Unlock()
		remote := scanAll(t, other.h, sc.target, "")
		var want []string
		for _, k := range c.keys() {
			if !strings.Contains(sc.target, "prefix=z-") || strings.HasPrefix(k, "z-") {
				want = append(want, k)
			}
		}
		wantPages := slices.Repeat([]int{sc.limit}, sc.keys/sc.limit)
		if sc.keys%sc.limit != 0 {
			wantPages = append(wantPages, sc.keys%sc.limit)
		}
		if !slices.Equal(remote.keys, want) || !slices.Equal(remote.pages, wantPages) || !slices.Equal(local.pages, remote.pages) {
			t.Errorf("%s through %s (partition %d remote): %d keys in pages %v; through its owner pages %v; want %d keys in pages %v",
				sc.target, other.id, hot, len(remote.keys), remote.pages, local.pages, len(want), wantPages)
		}
		share := 2*((sc.limit+5)/6) + 16
		mu.Lock()
		hotCalls := 0
		for _, a := range calls {
			if a.limit > sc.limit || a.maxBytes <= 0 || a.maxBytes > defaultMaxPageBytes || a.limit < min(share, sc.limit) {
				t.Errorf("%s: partition %d was asked for limit %d, max_bytes %d; want a share from %d to %d records, and at most %d bytes",
					sc.target, a.partition, a.limit, a.maxBytes, min(share, sc.limit), sc.limit, defaultMaxPageBytes)
			}
			if a.partition == hot {
				hotCalls++
			}
		}
		mu.Unlock()
		if share < sc.limit && hotCalls <= len(remote.pages) {
			t.Errorf("%s: %d calls for partition %d over %d pages: no page followed up", sc.target, hotCalls, hot, len(remote.pages))
		}
		t.Logf("%s: %d pages through %s, %d internal scans of partition %d", sc.target, len(remote.pages), other.id, hotCalls, hot)
	}

	// A page that followed up says which replicas answered it, every
	// partition in its position token.
	a := httpGet(t, other.URL+"/v1/stores/orders/keys?prefix=z-&limit=300")
	var pg struct {
		Items    []json.RawMessage `json:"items"`
		Replica  string            `json:"replica"`
		Position string            `json:"position"`
	}
	a.decode(t, &pg)
	pos, err := decodePosition(pg.Position, c.topic, c.partitions)
	if len(pg.Items) != 300 || pg.Replica != "active" || err != nil || len(pos) != int(c.partitions) || pos[hot] < 300 {
		t.Errorf("a 300-item page through %s: %d items, replica %q, position %v (%v)", other.id, len(pg.Items), pg.Replica, pos, err)
	}
	if !bytes.Contains(a.body, []byte(`"key":"z-299"`)) {
		t.Errorf("the page lacks z-299")
	}
}
