package ui_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/demo"
	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/node"
)

// envScreenshots names the directory the browser test writes its
// screenshots to (default: a temporary directory, removed at the end).
const envScreenshots = "IQENGINE_UI_SCREENSHOTS"

// The console in a real browser against a real three-node cluster on the
// demo's data: what each view shows is what the API answers, and a node
// that dies shows in the cluster view, first as unreachable, then with its
// partitions on the nodes left.
func TestConsoleInABrowser(t *testing.T) {
	chromium := findChromium(t)
	cluster := startDemoCluster(t)
	shots := screenshotDir(t)
	ctx := openBrowser(t, chromium)
	base := cluster.nodes[0].base

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("open the console: %v", err)
	}
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || loc != base+"/ui/" {
		t.Errorf("/ led to %q (%v), want the console at %s/ui/", loc, err, base)
	}
	topics := cluster.topics()

	t.Run("cluster", func(t *testing.T) {
		waitDOM(t, ctx, "the cluster view shows three nodes and every partition once, active and serving", func() error {
			return clusterShows(ctx, topics, []string{"node-1", "node-2", "node-3"})
		})
		screenshot(t, ctx, shots, "cluster")
	})

	t.Run("stores", func(t *testing.T) {
		view(t, ctx, "stores")
		wantRows := map[string]string{
			"orders":   "string json —",
			"sensors":  "int64 json —",
			"readings": "wasm:sensor-key wasm:sensor-value wasm:project",
		}
		for store := range wantRows {
			var count struct{ Count int64 }
			cluster.get(t, "/v1/stores/"+store+"/count", &count)
			wantRows[store] += " " + strconv.FormatInt(count.Count, 10)
		}
		waitDOM(t, ctx, "the stores view shows the three stores, their serdes and counts", func() error {
			rows, err := tableRows(ctx, "stores")
			if err != nil {
				return err
			}
			got := map[string]string{}
			for _, r := range rows {
				got[r["Store"]] = r["Key serde"] + " " + r["Value serde"] + " " + r["Transform"] + " " + r["Keys (approximate)"]
			}
			if !reflect.DeepEqual(got, wantRows) {
				return fmt.Errorf("stores table %v, want %v", got, wantRows)
			}
			return nil
		})
		screenshot(t, ctx, shots, "stores")
	})

	t.Run("token", func(t *testing.T) {
		view(t, ctx, "stores")
		for _, token := range []string{"s3cret", ""} {
			want := map[bool]string{true: "Bearer " + token, false: ""}[token != ""]
			if got := authorizationSent(t, ctx, token); got != want {
				t.Errorf("with %q in the token field, the console sent Authorization %q, want %q", token, got, want)
			}
		}
	})

	t.Run("lookup", func(t *testing.T) {
		view(t, ctx, "lookup")
		// What the API answers, the console shows.
		for _, c := range []struct{ store, key, params string }{
			{"orders", demo.SampleOrderKey(), ""},
			{"readings", demo.SampleReadingKey(), "fields=sensor,temp_c"}, // with the transform's parameters
		} {
			path := "/v1/stores/" + c.store + "/keys/" + c.key
			if c.params != "" {
				path += "?t." + c.params
			}
			var want struct {
				Key   json.RawMessage
				Value any
			}
			cluster.get(t, path, &want)
			wantKey := string(want.Key) // the console shows a JSON string's text, anything else as JSON
			if s, err := strconv.Unquote(wantKey); err == nil {
				wantKey = s
			}
			if got := lookup(t, ctx, c.store, c.key, c.params); got.key != wantKey || !reflect.DeepEqual(got.value, want.Value) {
				t.Errorf("%s: the console shows %s = %v, want the API's %s = %v", path, got.key, got.value, want.Key, want.Value)
			}
			screenshot(t, ctx, shots, "lookup-"+c.store)
		}

		// A problem shows its title and detail.
		status, body, err := testutil.Get(http.DefaultClient, base+"/v1/stores/sensors/keys/abc")
		var problem struct{ Title, Detail string }
		if err != nil || status != http.StatusBadRequest || json.Unmarshal(body, &problem) != nil || problem.Detail == "" {
			t.Fatalf("sensors/abc: %d %v %s, want a 400 problem with a detail", status, err, body)
		}
		if got := lookup(t, ctx, "sensors", "abc", ""); got.title != problem.Title || got.detail != problem.Detail {
			t.Errorf("sensors/abc: the console shows %q / %q, want the problem's %q / %q", got.title, got.detail, problem.Title, problem.Detail)
		}
		screenshot(t, ctx, shots, "lookup-problem")
	})

	t.Run("scan", func(t *testing.T) {
		view(t, ctx, "scan")
		q := "?prefix=o-000&limit=5"
		var page1, page2 scanAnswer
		cluster.get(t, "/v1/stores/orders/keys"+q, &page1)
		if page1.NextCursor == nil {
			t.Fatalf("the first page of %s has no next cursor", q)
		}
		cluster.get(t, "/v1/stores/orders/keys"+q+"&cursor="+url.QueryEscape(*page1.NextCursor), &page2)
		want1, want2 := page1.keys(), page2.keys()

		fill(t, ctx, "scan", map[string]string{"store": "orders", "from": "", "to": "", "prefix": "o-000", "limit": "5", "params": ""})
		click(t, ctx, "#scan-form button[type=submit]")
		scanPage(t, ctx, 1, want1)
		screenshot(t, ctx, shots, "scan")
		click(t, ctx, "#scan-next")
		scanPage(t, ctx, 2, want2)
		screenshot(t, ctx, shots, "scan-page-2")
		click(t, ctx, "#scan-prev")
		scanPage(t, ctx, 1, want1)

		// The transform's parameters apply to every item.
		fill(t, ctx, "scan", map[string]string{"store": "readings", "prefix": strconv.Itoa(demo.SampleReadingSite()), "limit": "3", "params": "fields=sensor"})
		click(t, ctx, "#scan-form button[type=submit]")
		waitDOM(t, ctx, "a readings page of values with only the sensor field", func() error {
			rows, err := tableRows(ctx, "scan-results")
			if err != nil {
				return err
			}
			if len(rows) != 3 {
				return fmt.Errorf("%d rows, want 3: %v", len(rows), rows)
			}
			for _, r := range rows {
				var v map[string]any
				if err := json.Unmarshal([]byte(r["Value"]), &v); err != nil || len(v) != 1 || v["sensor"] == nil {
					return fmt.Errorf("row %v: value is not {\"sensor\": …}", r)
				}
			}
			return nil
		})
	})

	t.Run("plugins", func(t *testing.T) {
		view(t, ctx, "plugins")
		var info struct {
			Plugins []struct {
				Module, SHA256 string
				ABIVersion     int `json:"abi_version"`
			}
		}
		if _, body, err := testutil.Get(http.DefaultClient, base+"/v1/info"); err != nil || json.Unmarshal(body, &info) != nil || len(info.Plugins) != 3 {
			t.Fatalf("/v1/info: %v %s", err, body)
		}
		waitDOM(t, ctx, "the plugins view lists the modules loaded, the readings store's uses of them and their metrics", func() error {
			loaded, err := tableRows(ctx, "plugin-modules")
			if err != nil {
				return err
			}
			var got, want []string
			for _, r := range loaded {
				got = append(got, r["Module"]+" "+r["SHA-256"]+" "+r["ABI"])
			}
			for _, p := range info.Plugins {
				want = append(want, fmt.Sprintf("%s %s v%d", p.Module, p.SHA256, p.ABIVersion))
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("modules loaded %q, want /v1/info's %q", got, want)
			}
			uses, err := tableRows(ctx, "plugin-uses")
			if err != nil {
				return err
			}
			var modules []string
			for _, r := range uses {
				modules = append(modules, r["Store"]+" "+r["Role"]+" "+r["Module"])
			}
			if want := []string{"readings key serde wasm:sensor-key", "readings value serde wasm:sensor-value", "readings transform wasm:project"}; !slices.Equal(modules, want) {
				return fmt.Errorf("modules %q, want %q", modules, want)
			}
			metrics, err := tableRows(ctx, "plugin-metrics")
			if err != nil {
				return err
			}
			var plugins []string
			for _, r := range metrics {
				if r["faults"] == "" {
					return fmt.Errorf("row %v has no faults column", r)
				}
				plugins = append(plugins, r["Plugin"])
			}
			if want := []string{"project", "sensor-key", "sensor-value"}; !slices.Equal(plugins, want) {
				return fmt.Errorf("metrics rows %q, want %q", plugins, want)
			}
			return nil
		})
		screenshot(t, ctx, shots, "plugins")
	})

	t.Run("a node dies", func(t *testing.T) {
		view(t, ctx, "cluster")
		dead := cluster.nodes[2]
		held := cluster.partitionsOf(t, "node-3")
		if len(held) == 0 {
			t.Fatal("node-3 holds no partition")
		}
		// First its HTTP port dies, as with a crash: the node is still in
		// the group, and the others cannot reach it.
		dead.ln.cut()
		waitDOM(t, ctx, "node-3 and its partitions show as unreachable", func() error {
			nodes, err := tableRows(ctx, "nodes")
			if err != nil {
				return err
			}
			for _, r := range nodes {
				if want := map[bool]string{true: "no", false: "yes"}[r["Node"] == "node-3"]; r["Answers"] != want {
					return fmt.Errorf("node row %v, want Answers %s", r, want)
				}
			}
			rows, err := tableRows(ctx, "partitions")
			if err != nil {
				return err
			}
			for _, r := range rows {
				if !held[r["Topic"]+"/"+r["Partition"]] {
					continue
				}
				if r["Node"] != "node-3" || r["State"] != "unreachable" || !strings.Contains(r["Note"], "node-3 did not answer") {
					return fmt.Errorf("row %v, want node-3 unreachable", r)
				}
			}
			return nil
		})
		screenshot(t, ctx, shots, "cluster-node-3-unreachable")

		// Then it leaves the group, as when its session expires: its
		// partitions move to the two nodes left.
		if err := dead.Close(); err != nil {
			t.Errorf("close node-3: %v", err)
		}
		waitDOM(t, ctx, "two nodes left, serving every partition once", func() error {
			return clusterShows(ctx, topics, []string{"node-1", "node-2"})
		})
		rows, err := tableRows(ctx, "partitions")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if held[r["Topic"]+"/"+r["Partition"]] && !strings.Contains(r["Note"], "was on node-3") {
				t.Errorf("row %v: moved from node-3, not marked so", r)
			}
		}
		screenshot(t, ctx, shots, "cluster-node-3-gone")
	})
}

// findChromium returns the path of a Chromium or Chrome binary. Without one
// the test skips, unless CI=true: CI must run it.
func findChromium(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("no browser for the console's test: none of %s is in PATH (on Debian: apt-get install chromium)", strings.Join(names, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true, where this test must run")
	}
	t.Skip(msg)
	return ""
}

// openBrowser starts headless Chromium for t and returns its tab. An
// exception in the console's script, or a page the security policy blocks,
// fails t.
func openBrowser(t *testing.T, chromium string) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.WindowSize(1280, 1000))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses root, as in CI containers
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancelTimeout)

	var mu sync.Mutex
	var errs []string
	messages := chromedp.Console(ctx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", chromium, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			// Failed requests (the 400 of a bad key) are the API's answers,
			// which the console shows; anything else is a defect.
			if m.IsException() || m.Source == "security" || (m.Source == "" && m.Type == chromedp.ConsoleError) {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancelTimeout()
		<-done
		for _, e := range errs {
			t.Errorf("browser console: %s", e)
		}
	})
	return ctx
}

// screenshotDir is where the screenshots go: $IQENGINE_UI_SCREENSHOTS, or a
// temporary directory.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv(envScreenshots)
	if dir == "" {
		dir = t.TempDir()
		t.Logf("screenshots in %s (removed at the end; set %s to keep them)", dir, envScreenshots)
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// waitDOM waits until check, which reads the page, passes.
func waitDOM(t *testing.T, ctx context.Context, what string, check func() error) {
	t.Helper()
	testutil.WaitForNil(t, 90*time.Second, what, func() error {
		if ctx.Err() != nil {
			t.Fatalf("%s: the browser's time is up: %v", what, ctx.Err())
		}
		return check()
	})
}

// view opens a view with its link, as a user does.
func view(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	click(t, ctx, `nav a[href="#`+name+`"]`)
	if err := chromedp.Do(ctx, chromedp.WaitVisible("#view-"+name)); err != nil {
		t.Fatalf("view %s: %v", name, err)
	}
}

func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Click(sel)); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

// fill sets the fields of a form, "#<form>-<field>", once its store list
// holds the store asked for.
func fill(t *testing.T, ctx context.Context, form string, fields map[string]string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.WaitReady(fmt.Sprintf("#%s-store option[value=%q]", form, fields["store"]))); err != nil {
		t.Fatalf("the %s form never lists store %s: %v", form, fields["store"], err)
	}
	// As typed: chromedp.SetValue cannot set an empty value.
	values, _ := json.Marshal(fields)
	refused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`((form, fields) => {
		for (const [f, v] of Object.entries(fields)) {
			const e = document.getElementById(form + "-" + f);
			e.value = v;
			if (e.value !== v) return f;
		}
		return "";
	})(`+strconv.Quote(form)+`, `+string(values)+`)`))
	if err != nil || refused != "" {
		t.Fatalf("fill the %s form with %v: %v; field %q refused its value", form, fields, err, refused)
	}
}

// scanAnswer is a page of a scan as the API answers it.
type scanAnswer struct {
	Items      []struct{ Key string }
	NextCursor *string `json:"next_cursor"`
}

func (a scanAnswer) keys() []string {
	var out []string
	for _, it := range a.Items {
		out = append(out, it.Key)
	}
	return out
}

// authorizationSent types token into the token field, as a user does, and
// returns the Authorization header of the request to /v1/stores that
// follows (the view reloads).
func authorizationSent(t *testing.T, ctx context.Context, token string) string {
	t.Helper()
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	requests := chromedp.Events(ectx, network.RequestWillBeSent)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const e = document.getElementById("token");
		e.value = `+strconv.Quote(token)+`;
		return e.dispatchEvent(new Event("change"));
	})()`)); err != nil {
		t.Fatalf("type the token: %v", err)
	}
	for ev, err := range requests {
		if err != nil {
			t.Fatalf("no request to /v1/stores after the token changed: %v", err)
		}
		if strings.HasSuffix(ev.Request.URL, "/v1/stores") {
			auth, _ := ev.Request.Headers["Authorization"].(string)
			return auth
		}
	}
	t.Fatal("no request to /v1/stores after the token changed")
	return ""
}

// shown is what the lookup view shows: the record's key and value, or a
// problem's title and detail.
type shown struct {
	key           string
	value         any
	title, detail string
}

func lookup(t *testing.T, ctx context.Context, store, key, params string) shown {
	t.Helper()
	fill(t, ctx, "lookup", map[string]string{"store": store, "key": key, "params": params})
	click(t, ctx, "#lookup-form button[type=submit]")
	var s shown
	waitDOM(t, ctx, "the lookup of "+store+"/"+key+" answers", func() error {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`(() => {
			const text = (sel) => document.querySelector(sel)?.textContent ?? "";
			return {key: text("#lookup-result dd.key"), value: text("#lookup-value"),
			        title: text("#lookup-problem .title"), detail: text("#lookup-problem .detail")};
		})()`))
		if err != nil {
			return err
		}
		s = shown{key: got["key"], title: got["title"], detail: got["detail"]}
		if s.title != "" {
			return nil
		}
		if s.key == "" {
			return errors.New("shows no key yet")
		}
		return json.Unmarshal([]byte(got["value"]), &s.value)
	})
	return s
}

// scanPage waits until the scan view shows page n with the keys given.
func scanPage(t *testing.T, ctx context.Context, n int, keys []string) {
	t.Helper()
	waitDOM(t, ctx, fmt.Sprintf("scan page %d shows %v", n, keys), func() error {
		status, err := chromedp.Run(ctx, chromedp.Text("#scan-status"))
		if err != nil {
			return err
		}
		if !strings.HasPrefix(status, fmt.Sprintf("Page %d:", n)) {
			return fmt.Errorf("status %q", status)
		}
		rows, err := tableRows(ctx, "scan-results")
		if err != nil {
			return err
		}
		var got []string
		for _, r := range rows {
			got = append(got, r["Key"])
		}
		if !slices.Equal(got, keys) {
			return fmt.Errorf("keys %q", got)
		}
		return nil
	})
}

// tableRows reads the table of that id as the user sees it: one map per
// body row from column heading to cell text.
func tableRows(ctx context.Context, id string) ([]map[string]string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[[]map[string]string](`(() => {
		const t = document.getElementById(`+strconv.Quote(id)+`);
		const heads = [...t.tHead.rows[0].cells].map((c) => c.textContent.trim());
		return [...t.tBodies[0].rows].map((r) => Object.fromEntries([...r.cells].map((c, i) => [heads[i], c.textContent.trim()])));
	})()`))
}

// clusterShows checks that the cluster view lists exactly the nodes given,
// each holding some partitions, and every partition of topics exactly once,
// active and serving on one of them.
func clusterShows(ctx context.Context, topics map[string]int32, nodes []string) error {
	rows, err := tableRows(ctx, "nodes")
	if err != nil {
		return err
	}
	var ids []string
	for _, r := range rows {
		if r["Answers"] != "yes" || r["Partitions"] == "0" || r["Partitions"] != r["Serving"] {
			return fmt.Errorf("node row %v: want it answering, with some partitions, all serving", r)
		}
		ids = append(ids, r["Node"])
	}
	if !slices.Equal(ids, nodes) {
		return fmt.Errorf("nodes %q, want %q", ids, nodes)
	}
	rows, err = tableRows(ctx, "partitions")
	if err != nil {
		return err
	}
	seen, total := map[string]int{}, 0
	for _, r := range rows {
		if r["Replica"] != "active" || r["State"] != "serving" || !slices.Contains(nodes, r["Node"]) {
			return fmt.Errorf("partition row %v: want active and serving on one of %q", r, nodes)
		}
		seen[r["Topic"]+"/"+r["Partition"]]++
	}
	for topic, n := range topics {
		total += int(n)
		for p := range n {
			if k := fmt.Sprintf("%s/%d", topic, p); seen[k] != 1 {
				return fmt.Errorf("partition %s shown %d times, want once", k, seen[k])
			}
		}
	}
	if len(rows) != total {
		return fmt.Errorf("%d partition rows, want %d", len(rows), total)
	}
	return nil
}

// demoCluster is three in-process nodes of one application serving the
// demo's stores, seeded, on the test broker.
type demoCluster struct {
	o     demo.Options
	nodes []*testNode
}

type testNode struct {
	*node.Node
	ln   *cuttable
	base string
}

func startDemoCluster(t *testing.T) *demoCluster {
	t.Helper()
	b := testkafka.Start(t)
	c := &demoCluster{o: demo.Options{OrdersTopic: testkafka.Name(t, "orders"), SensorsTopic: testkafka.Name(t, "sensors"),
		ReadingsTopic: testkafka.Name(t, "readings")}}
	cl := b.Client(t, kgo.RecordPartitioner(c.o.Partitioner()))
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := demo.CreateTopics(ctx, adm, c.o.Topics()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = adm.DeleteTopics(context.Background(), c.o.OrdersTopic, c.o.SensorsTopic, c.o.ReadingsTopic)
	})
	if err := demo.NewProducer(cl, 1, c.o).Seed(ctx); err != nil {
		t.Fatal(err)
	}
	plugins := t.TempDir()
	if err := demo.WritePlugins(plugins); err != nil {
		t.Fatal(err)
	}
	group := testkafka.Name(t, "app")
	for i := range 3 {
		cfg := testutil.NodeConfig(t, group, b.Addrs)
		cfg.NodeID = fmt.Sprintf("node-%d", i+1)
		cfg.Stores = c.o.Stores()
		cfg.Plugins.Dir = plugins
		inner, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln := &cuttable{Listener: inner}
		cfg.Listen = ln.Addr().String()
		n, err := node.Start(ctx, cfg, node.WithListener(ln), node.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		if err != nil {
			t.Fatalf("start %s: %v", cfg.NodeID, err)
		}
		t.Cleanup(func() { _ = n.Close() })
		c.nodes = append(c.nodes, &testNode{Node: n, ln: ln, base: "http://" + ln.Addr().String()})
	}
	return c
}

// topics are the cluster's topics and their partition counts.
func (c *demoCluster) topics() map[string]int32 {
	out := map[string]int32{}
	for _, tp := range c.o.Topics() {
		out[tp.Name] = tp.Partitions
	}
	return out
}

// get decodes the API's 200 answer to path, asked of the first node.
func (c *demoCluster) get(t *testing.T, path string, v any) {
	t.Helper()
	status, body, err := testutil.Get(http.DefaultClient, c.nodes[0].base+path)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s: %d %v %s", path, status, err, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

// partitionsOf is the set of "topic/partition" the API says node holds.
func (c *demoCluster) partitionsOf(t *testing.T, nodeID string) map[string]bool {
	t.Helper()
	var md struct {
		Partitions []struct {
			Topic     string
			Partition int32
			Owner     string
		}
	}
	c.get(t, "/v1/metadata/partitions", &md)
	out := map[string]bool{}
	for _, p := range md.Partitions {
		if p.Owner == nodeID {
			out[fmt.Sprintf("%s/%d", p.Topic, p.Partition)] = true
		}
	}
	return out
}

// cuttable is a listener the test can cut, as a crash does: it closes, and
// so does every connection it accepted. The node's server, stopped later,
// finds it closed already, which is not an error.
type cuttable struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
	isCut bool
}

func (l *cuttable) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isCut {
		conn.Close()
		return nil, net.ErrClosed
	}
	l.conns = append(l.conns, conn)
	return conn, nil
}

func (l *cuttable) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.isCut = true
	l.Listener.Close()
	for _, conn := range l.conns {
		conn.Close()
	}
}

func (l *cuttable) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isCut {
		return nil
	}
	err := l.Listener.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
