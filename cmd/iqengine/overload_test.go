package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/bench"
	"github.com/iqengine/iqengine/internal/testutil"
)

// overloadRSSBound is what the node's peak RSS (VmHWM) must stay under in
// TestOverloadKeepsLookupsAnswering. Unbounded, the 16 scans that run at
// once would each hold their ~40 MB page, and the other 48 theirs too.
const overloadRSSBound = 512 << 20

// TestOverloadKeepsLookupsAnswering is the load test of the node's bounds,
// a heavy process test that runs only with IQENGINE_OVERLOAD=1 (and not
// with -short): one serve process over a 64-partition store of 20,000
// records of 4 KiB (a limit=10000 scan is ~40 MB unbounded) takes 64
// clients that each scan limit=10000 pages from the start for a while
// (some as NDJSON, some that stop reading after the headers), while
// another client looks keys up. The lookups all answer 200 with their
// values; scans beyond server.max_in_flight_scans are refused at once with
// 429; every page that completes is the scan's first page, whole and in
// order, cut by query.max_page_bytes; the stalled clients' writes time out
// (server.write_timeout), after which a scan pages through every key
// exactly once; and the node's peak RSS stays under overloadRSSBound.
func TestOverloadKeepsLookupsAnswering(t *testing.T) {
	if os.Getenv("IQENGINE_OVERLOAD") != "1" {
		t.Skip("a load test: IQENGINE_OVERLOAD=1 runs it")
	}
	const (
		partitions = 64
		records    = 20_000
		valueSize  = 4 << 10
		scanners   = 64
		limit      = 10_000
		phase      = 8 * time.Second
		store      = "orders"
	)
	bin := buildBinary(t)
	dir := t.TempDir()
	pb := startProcessBroker(t, bin, dir, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	key := func(i int) string { return fmt.Sprintf("k-%05d", i) }
	value := func(i int) string {
		head := fmt.Sprintf(`{"k":%q,"pad":"`, key(i))
		return head + strings.Repeat("x", valueSize-len(head)-2) + `"}`
	}
	for i := 0; i < records; i += 1000 {
		rs := make([]*kgo.Record, 0, 1000)
		for j := i; j < i+1000; j++ {
			rs = append(rs, &kgo.Record{Topic: pb.topic, Key: []byte(key(j)), Value: []byte(value(j))})
		}
		if err := pb.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	config := nodeConfig(t, dir, pb.app, pb.brokers, pb.topic, store, 10*time.Second,
		"server:\n  write_timeout: 5s\n")
	listen := testutil.FreeAddr(t)
	node := startProcess(t, bin, "n1", "serve", "--config", config, "--node-id", "n1",
		"--listen", listen, "--data-dir", filepath.Join(dir, "n1"))
	base := "http://" + listen
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	defer client.CloseIdleConnections()
	testutil.WaitForNil(t, 90*time.Second, "the node serves every record", func() error {
		if node.done() {
			t.Fatalf("the node exited: %v\n%s", node.err, node.stderr.String())
		}
		status, body, err := testutil.Get(client, base+"/v1/stores/"+store+"/count")
		var c struct{ Count int }
		if err == nil && status == http.StatusOK {
			err = json.Unmarshal(body, &c)
		}
		if err != nil || status != http.StatusOK || c.Count != records {
			return fmt.Errorf("count: %d %v %d", status, err, c.Count)
		}
		return nil
	})
	restored, err := bench.ReadMemory(node.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// The peak from here on is the load's, not the restore's: Linux resets
	// VmHWM to VmRSS on "5" written to clear_refs.
	peakOf := "the load"
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", node.cmd.Process.Pid), []byte("5"), 0); err != nil {
		peakOf = "the node's life (the restore's included: " + err.Error() + ")"
	}

	fails := &failures{}
	// Pages are checked byte for byte, not decoded: the clients must
	// leave the two cores to the node. An item of the first page starts
	// with its key and value, and ends with its timestamp.
	prefixes := make([][]byte, 2*(4<<20)/valueSize)
	for n := range prefixes {
		prefixes[n] = []byte(`{"key":"` + key(n) + `","value":` + value(n) + `,"partition":`)
	}
	// checkItem checks that b starts with the n-th item of the first page,
	// and returns what follows it.
	checkItem := func(what string, n int, b []byte) ([]byte, bool) {
		if n < len(prefixes) && bytes.HasPrefix(b, prefixes[n]) {
			if end := bytes.Index(b[len(prefixes[n]):], []byte(`"}`)); end >= 0 {
				return b[len(prefixes[n])+end+2:], true
			}
		}
		fails.add("%s: item %d is %.100s, want %s", what, n, b, key(n))
		return nil, false
	}
	var pages, ndjsonPages, refused, stalled, lookups atomic.Int64
	var pageItems atomic.Int64
	checkRefusal := func(what string, resp *http.Response, body []byte) {
		var p struct{ Type string }
		_ = json.Unmarshal(body, &p)
		if p.Type != "urn:iqengine:problem:overloaded" || resp.Header.Get("Retry-After") != "1" {
			fails.add("%s: 429 %q, Retry-After %q", what, body, resp.Header.Get("Retry-After"))
		}
		refused.Add(1)
	}
	scanURL := base + "/v1/stores/" + store + "/keys?limit=" + fmt.Sprint(limit)
	// scan asks for the first page and checks it; kind is json, ndjson or
	// stall (asks, then reads nothing until release). It reports whether
	// the scan was refused.
	scan := func(kind string, release <-chan struct{}) (wasRefused bool) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, scanURL, nil)
		if kind == "ndjson" {
			req.Header.Set("Accept", "application/x-ndjson")
		}
		c := client
		if kind == "stall" {
			c = &http.Client{Transport: &http.Transport{}}
		}
		resp, err := c.Do(req)
		if err != nil {
			fails.add("%s scan: %v", kind, err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			body, _ := io.ReadAll(resp.Body)
			checkRefusal(kind+" scan", resp, body)
			return true
		}
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			fails.add("%s scan: %d %.300s", kind, resp.StatusCode, body)
			return
		}
		switch kind {
		case "stall":
			stalled.Add(1)
			<-release
			return
		case "ndjson":
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			n, end := 0, false
			for sc.Scan() {
				if bytes.HasPrefix(sc.Bytes(), []byte(`{"next_cursor":`)) {
					end = bytes.HasPrefix(sc.Bytes(), []byte(`{"next_cursor":"`))
					break
				}
				if rest, ok := checkItem("ndjson page", n, sc.Bytes()); !ok || len(rest) > 0 {
					return
				}
				n++
			}
			if !end || n == 0 || n >= limit {
				fails.add("ndjson page: %d items, a cursor line %v (%v)", n, end, sc.Err())
				return
			}
			ndjsonPages.Add(1)
			pageItems.Store(int64(n))
		default:
			body, err := io.ReadAll(resp.Body)
			b, ok := bytes.CutPrefix(body, []byte(`{"items":[`))
			if err != nil || !ok {
				fails.add("json page: %v %.100s", err, body)
				return
			}
			n := 0
			for ; ; n++ {
				if b, ok = checkItem("json page", n, b); !ok {
					return
				}
				if len(b) == 0 || b[0] != ',' {
					break
				}
				b = b[1:]
			}
			// The page's items reach the 4 MiB budget with their last.
			if !bytes.HasPrefix(b, []byte(`],"next_cursor":"`)) || len(body) > 4<<20+2*valueSize {
				fails.add("json page: %d items in %d bytes, then %.100s", n+1, len(body), b)
				return
			}
			pageItems.Store(int64(n + 1))
		}
		pages.Add(1)
		return false
	}

	// The lookups, all through the phase.
	phaseCtx, endPhase := context.WithTimeout(ctx, phase)
	defer endPhase()
	var took []time.Duration // each lookup's, written by its client alone
	lookupsDone := make(chan struct{})
	go func() {
		defer close(lookupsDone)
		for i := 0; phaseCtx.Err() == nil; i = (i + 7919) % records {
			start := time.Now()
			status, body, err := testutil.Get(client, base+"/v1/stores/"+store+"/keys/"+url.PathEscape(key(i)))
			took = append(took, time.Since(start))
			var got struct {
				Value json.RawMessage `json:"value"`
			}
			if err == nil && status == http.StatusOK {
				err = json.Unmarshal(body, &got)
			}
			if err != nil || status != http.StatusOK || string(got.Value) != value(i) {
				fails.add("lookup of %s: %d %v %.200s", key(i), status, err, body)
			}
			lookups.Add(1)
		}
	}()

	// The scans: 64 clients at once, each scanning until the phase ends;
	// one in eight asks until it is let in, and then stops reading.
	release := make(chan struct{})
	var wg, stalls sync.WaitGroup
	start := make(chan struct{})
	for i := range scanners {
		kind := []string{"json", "ndjson", "json", "ndjson", "json", "ndjson", "json", "stall"}[i%8]
		if kind == "stall" {
			stalls.Go(func() {
				<-start
				for phaseCtx.Err() == nil && scan(kind, release) {
					time.Sleep(100 * time.Millisecond)
				}
			})
			continue
		}
		wg.Go(func() {
			<-start
			for phaseCtx.Err() == nil {
				if scan(kind, nil) {
					time.Sleep(100 * time.Millisecond) // sooner than Retry-After
				}
			}
		})
	}
	close(start)
	<-phaseCtx.Done()
	<-lookupsDone
	wg.Wait()
	// What is left in flight is the stalled clients' scans: their writes
	// time out on the node (write_timeout 5s), which frees their slots
	// (or the kernel took their whole page), while they still read
	// nothing.
	scansInFlight := func() float64 {
		return testutil.Metric(t, testutil.Scrape(base+"/metrics"), "iqengine_http_in_flight", "kind", "scans")
	}
	held := scansInFlight()
	testutil.WaitFor(t, 30*time.Second, "the stalled clients' scans end", func() bool { return scansInFlight() == 0 })
	// A scan then pages through every key.
	var walked []string
	testutil.WaitForNil(t, 30*time.Second, "a whole scan through the pages once the stalled clients are dropped", func() error {
		walked = walked[:0]
		cursor := ""
		for {
			status, body, err := testutil.Get(client, scanURL+"&cursor="+url.QueryEscape(cursor))
			if err != nil || status != http.StatusOK {
				return fmt.Errorf("page after %d keys: %d %v %.200s", len(walked), status, err, body)
			}
			var pg struct {
				Items []struct {
					Key   string          `json:"key"`
					Value json.RawMessage `json:"value"`
				} `json:"items"`
				NextCursor *string `json:"next_cursor"`
			}
			if err := json.Unmarshal(body, &pg); err != nil {
				return err
			}
			for _, it := range pg.Items {
				if n := len(walked); n >= records || it.Key != key(n) || string(it.Value) != value(n) {
					return fmt.Errorf("key %d of the walk is %s", n, it.Key)
				}
				walked = append(walked, it.Key)
			}
			if pg.NextCursor == nil {
				break
			}
			cursor = *pg.NextCursor
		}
		if len(walked) != records {
			return fmt.Errorf("the walk gave %d keys, want %d", len(walked), records)
		}
		return nil
	})
	close(release)
	stalls.Wait()
	mem, err := bench.ReadMemory(node.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	metrics := testutil.Scrape(base + "/metrics")
	fails.report(t)

	if len(took) == 0 {
		t.Fatal("no lookup was answered")
	}
	slices.Sort(took)
	pct := func(p float64) time.Duration { return took[int(p*float64(len(took)-1))].Round(100 * time.Microsecond) }
	t.Logf("%d lookups, all 200 with their values: p50 %s, p99 %s, max %s; %d scan pages completed (%d NDJSON) of %d items each; %d scans refused with 429 (the node counted %v); %d clients stalled after the headers",
		lookups.Load(), pct(0.5), pct(0.99), pct(1), pages.Load(), ndjsonPages.Load(), pageItems.Load(),
		refused.Load(), testutil.Metric(t, metrics, "iqengine_http_refused_total", "endpoint", "scan"), stalled.Load())
	t.Logf("scans of stalled clients in flight when the others ended: %v; none once their writes timed out", held)
	t.Logf("node RSS: %d MiB after restoring (peak %d MiB); peak (VmHWM) over %s %d MiB, bound %d MiB",
		restored.RSS>>20, restored.Peak>>20, peakOf, mem.Peak>>20, overloadRSSBound>>20)
	if lookups.Load() == 0 || pages.Load() == 0 || ndjsonPages.Load() == 0 {
		t.Errorf("the load did not run: %d lookups, %d pages, %d NDJSON", lookups.Load(), pages.Load(), ndjsonPages.Load())
	}
	if refused.Load() == 0 {
		t.Errorf("no scan was refused: %d clients at once, and at most 16 scans in flight", scanners)
	}
	if mem.Peak >= overloadRSSBound {
		t.Errorf("peak RSS %d MiB, over the bound of %d MiB", mem.Peak>>20, overloadRSSBound>>20)
	}
}
