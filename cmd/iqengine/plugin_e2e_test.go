package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testplugins"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/internal/wasmgen"
	"github.com/iqengine/iqengine/node"
)

// reading is one sensor record in the example plugins' formats
// (sdk/conformance/README.md).
type reading struct {
	site   uint16
	sensor uint32
	status byte
	time   int64
	temp   int32
	hum    uint32
	label  string
}

func (r reading) key() []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, r.site), r.sensor)
}

func (r reading) value() []byte {
	v := []byte{1, r.status}
	v = binary.LittleEndian.AppendUint16(v, r.site)
	v = binary.LittleEndian.AppendUint32(v, r.sensor)
	v = binary.LittleEndian.AppendUint64(v, uint64(r.time))
	v = binary.LittleEndian.AppendUint32(v, uint32(r.temp))
	v = binary.LittleEndian.AppendUint32(v, r.hum)
	return append(v, r.label...)
}

// json is what sensor-value must answer for r, built independently of the
// plugin.
func (r reading) json() string {
	status := []string{"ok", "degraded", "offline"}[r.status]
	sign, t := "", r.temp
	if t < 0 {
		sign, t = "-", -t
	}
	label, _ := json.Marshal(r.label)
	return fmt.Sprintf(`{"sensor":%d,"site":%d,"time":%d,"status":"%s","temp_c":%s%d.%02d,"humidity":%d.%d,"label":%s}`,
		r.sensor, r.site, r.time, status, sign, t/100, t%100, r.hum/10, r.hum%10, label)
}

func (r reading) text() string { return fmt.Sprintf("%d-%d", r.site, r.sensor) }

// pluginNode starts one node in-process with the given config changes.
func pluginNode(t *testing.T, b *testkafka.Broker, edit func(*config.Config)) string {
	t.Helper()
	cfg := testutil.NodeConfig(t, testkafka.Name(t, "app"), b.Addrs)
	edit(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	n, err := node.Start(context.Background(), cfg, node.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	base := "http://" + n.Addr().String()
	testutil.WaitFor(t, 30*time.Second, "the node is ready", func() bool {
		code, _, _ := testutil.Get(http.DefaultClient, base+"/readyz")
		return code == http.StatusOK
	})
	return base
}

type problemDoc struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func getProblem(t *testing.T, url string) (int, problemDoc, string) {
	t.Helper()
	code, body, err := testutil.Get(http.DefaultClient, url)
	if err != nil {
		t.Fatal(err)
	}
	var p problemDoc
	_ = json.Unmarshal(body, &p)
	return code, p, string(body)
}

// End to end on the embedded broker (or a real one): binary sensor records
// come back as the JSON the sensor-value plugin makes, keys are written and
// partitioned by the sensor-key plugin, and the project transform projects
// and filters lookups and scans. The plugins are the Go examples, or, with
// IQENGINE_PLUGIN_DIR, the three modules in that directory (scripts/
// sdk-test.sh runs this test with each SDK's builds).
func TestPluginsEndToEnd(t *testing.T) {
	dir := os.Getenv("IQENGINE_PLUGIN_DIR")
	if dir == "" {
		dir = testplugins.Dir(t)
	}
	t.Logf("plugins from %s", dir)
	b := testkafka.Start(t)
	topic := testkafka.Name(t, "readings")
	const partitions = 6
	b.CreateTopic(t, topic, partitions)
	orders := testkafka.Name(t, "orders")
	b.CreateTopic(t, orders, 2)

	// Sites 1..8, sensors 1..25, each in partition site % 6 as sensor-key's
	// partitioner says (not murmur2), with labels in several scripts.
	var rs []reading
	labels := []string{"hall", "café", "日本", "roof \"north\"", "", "line\nbreak"}
	for site := uint16(1); site <= 8; site++ {
		for s := uint32(1); s <= 25; s++ {
			rs = append(rs, reading{site: site, sensor: s, status: byte(s % 3), time: 1700000000000 + int64(s),
				temp: int32(s)*137 - 1500, hum: s * 31, label: labels[int(s)%len(labels)]})
		}
	}
	cl := b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for _, r := range rs {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(r.site % partitions), Key: r.key(), Value: r.value()})
	}
	recs = append(recs, &kgo.Record{Topic: orders, Partition: 0, Key: []byte("o-1"), Value: []byte(`{"total":5}`)})
	testkafka.Produce(t, cl, recs...)

	base := pluginNode(t, b, func(c *config.Config) {
		c.Plugins.Dir = dir
		c.Stores = []config.Store{
			{Name: "readings", Topic: topic,
				Key:       config.Serde{Plugin: config.Plugin{Wasm: "sensor-key"}},
				Value:     config.Serde{Plugin: config.Plugin{Wasm: filepath.Join(dir, "sensor-value.wasm")}},
				Transform: &config.Transform{Plugin: config.Plugin{Wasm: "project"}}},
			{Name: "orders", Topic: orders, Key: config.Builtin("string"), Value: config.Builtin("json")},
		}
	})

	code, body, _ := testutil.Get(http.DefaultClient, base+"/v1/stores")
	if code != 200 || !strings.Contains(string(body), `"key_serde":"wasm:sensor-key"`) || !strings.Contains(string(body), `"transform":{"module":"wasm:project"}`) {
		t.Fatalf("store list: %d %s", code, body)
	}

	// Every key answers the plugin's JSON.
	for _, r := range rs {
		code, body, err := testutil.Get(http.DefaultClient, base+"/v1/stores/readings/keys/"+r.text())
		if err != nil || code != http.StatusOK {
			t.Fatalf("%s: %d %s %v", r.text(), code, body, err)
		}
		var got struct {
			Key       json.RawMessage `json:"key"`
			Value     json.RawMessage `json:"value"`
			Partition int32           `json:"partition"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		wantKey := fmt.Sprintf(`{"site":%d,"sensor":%d}`, r.site, r.sensor)
		if string(got.Value) != r.json() || string(got.Key) != wantKey || got.Partition != int32(r.site%partitions) {
			t.Fatalf("%s: got key %s value %s partition %d\nwant key %s value %s partition %d", r.text(), got.Key, got.Value, got.Partition, wantKey, r.json(), r.site%partitions)
		}
	}
	t.Logf("%d binary readings answered as the plugin's JSON", len(rs))

	// Transform on a lookup: projection, and a filter that hides the record.
	r := rs[30] // site 2, sensor 6
	code, body, _ = testutil.Get(http.DefaultClient, base+"/v1/stores/readings/keys/"+r.text()+"?t.fields=sensor,temp_c")
	if want := fmt.Sprintf(`"value":{"sensor":%d,"temp_c":%s}`, r.sensor, strings.TrimPrefix(strings.Split(strings.Split(r.json(), `"temp_c":`)[1], ",")[0], "")); code != 200 || !strings.Contains(string(body), want) {
		t.Fatalf("projected lookup: %d %s; want %s", code, body, want)
	}
	code, p, raw := getProblem(t, base+"/v1/stores/readings/keys/"+r.text()+"?t.min_temp_c=1000")
	if code != 404 || p.Type != "urn:iqengine:problem:filtered" {
		t.Fatalf("filtered lookup: %d %s", code, raw)
	}
	code, p, raw = getProblem(t, base+"/v1/stores/readings/keys/9-9")
	if code != 404 || p.Type != "urn:iqengine:problem:key-not-found" {
		t.Fatalf("absent key: %d %s", code, raw)
	}

	// Scans: a prefix (one site), filtered and projected; limit counts the
	// records kept; pages follow the cursor.
	var want []string
	for _, r := range rs {
		if r.site == 3 && r.temp >= 500 {
			want = append(want, fmt.Sprintf(`{"sensor":%d,"status":"%s"}`, r.sensor, []string{"ok", "degraded", "offline"}[r.status]))
		}
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		url := base + "/v1/stores/readings/keys?prefix=3&limit=4&t.fields=sensor,status&t.min_temp_c=5"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		code, body, err := testutil.Get(http.DefaultClient, url)
		if err != nil || code != 200 {
			t.Fatalf("scan: %d %s %v", code, body, err)
		}
		var page struct {
			Items []struct {
				Value json.RawMessage `json:"value"`
			} `json:"items"`
			Next *string `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Items) > 4 {
			t.Fatalf("page of %d items over limit 4", len(page.Items))
		}
		for _, it := range page.Items {
			got = append(got, string(it.Value))
		}
		if page.Next == nil {
			break
		}
		cursor = *page.Next
		if pages > 20 {
			t.Fatal("scan does not end")
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("filtered scan:\n got %v\nwant %v", got, want)
	}
	t.Logf("filtered, projected prefix scan: %d of 25 records of site 3 over pages of 4", len(got))

	// Bad input: a key the plugin rejects (422), a parameter the transform
	// rejects (422), a t. parameter on a store without a transform (400).
	for _, c := range []struct {
		url, typ string
		code     int
	}{
		{"/v1/stores/readings/keys/12-x", "plugin-rejected", 422},
		{"/v1/stores/readings/keys/" + r.text() + "?t.min_temp_c=warm", "plugin-rejected", 422},
		{"/v1/stores/readings/keys?t.colour=red", "plugin-rejected", 422},
		{"/v1/stores/orders/keys/o-1?t.fields=total", "bad-parameter", 400},
	} {
		code, p, raw := getProblem(t, base+c.url)
		if code != c.code || p.Type != "urn:iqengine:problem:"+c.typ || !strings.Contains(p.Detail, "") {
			t.Errorf("%s: %d %s; want %d %s", c.url, code, raw, c.code, c.typ)
		}
	}
	if code, _, _ := testutil.Get(http.DefaultClient, base+"/v1/stores/orders/keys/o-1"); code != 200 {
		t.Fatalf("orders: %d", code)
	}
}

// Hostile plugins at query time: each query through one answers 500 naming
// the plugin and the reason, while other stores and other keys keep being
// answered; modules refused at load time stop the node from starting with
// one clear line.
func TestHostilePluginsDoNotTakeTheNodeDown(t *testing.T) {
	dir := t.TempDir()
	hostile := map[string][]byte{
		"trap":      wasmgen.Trap(),
		"loop":      wasmgen.InfiniteLoop(),
		"memory":    wasmgen.MemoryGrowth(),
		"oob":       wasmgen.OutOfBoundsResult(),
		"badjson":   wasmgen.InvalidJSON(),
		"huge":      wasmgen.HugeResult(),
		"rejecting": wasmgen.Reject(),
	}
	want := map[string]struct {
		code int
		text string
	}{
		"trap": {500, "trap"}, "loop": {500, "timeout"}, "memory": {500, "memory"}, "oob": {500, "outside memory"},
		"badjson": {500, "not valid UTF-8 JSON"}, "huge": {500, "over the"}, "rejecting": {422, wasmgen.RejectMessage},
	}
	b := testkafka.Start(t)
	var stores []config.Store
	cl := b.Client(t)
	good := testkafka.Name(t, "good")
	b.CreateTopic(t, good, 2)
	testkafka.Produce(t, cl, &kgo.Record{Topic: good, Key: []byte("k"), Value: []byte(`{"fine":true}`)})
	stores = append(stores, config.Store{Name: "good", Topic: good, Key: config.Builtin("string"), Value: config.Builtin("json")})
	for name, bin := range hostile {
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), bin, 0o644); err != nil {
			t.Fatal(err)
		}
		topic := testkafka.Name(t, name)
		b.CreateTopic(t, topic, 1)
		testkafka.Produce(t, cl, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte(`{"a":1}`)})
		stores = append(stores, config.Store{Name: name, Topic: topic, Key: config.Builtin("string"),
			Value: config.Serde{Plugin: config.Plugin{Wasm: name}}})
	}
	base := pluginNode(t, b, func(c *config.Config) {
		c.Plugins.Dir = dir
		c.Plugins.Timeout = config.Duration(300 * time.Millisecond)
		c.Plugins.MemoryLimit = 4 << 20
		c.Stores = stores
	})
	for round := 0; round < 2; round++ {
		for name, w := range want {
			code, p, raw := getProblem(t, base+"/v1/stores/"+name+"/keys/k")
			kind := map[int]string{500: "plugin-failed", 422: "plugin-rejected"}[w.code]
			if code != w.code || p.Type != "urn:iqengine:problem:"+kind || !strings.Contains(p.Detail, "plugin "+name) || !strings.Contains(p.Detail, w.text) {
				t.Errorf("%s: %d %s; want %d naming the plugin and %q", name, code, raw, w.code, w.text)
			}
			// Scans through the faulty plugin fail the same way.
			if code, _, raw := getProblem(t, base+"/v1/stores/"+name+"/keys"); name != "rejecting" && code != 500 {
				t.Errorf("%s scan: %d %s", name, code, raw)
			}
			if code, body, _ := testutil.Get(http.DefaultClient, base+"/v1/stores/good/keys/k"); code != 200 || !strings.Contains(string(body), `"fine":true`) {
				t.Fatalf("good store after %s: %d %s", name, code, body)
			}
		}
	}
	code, body, _ := testutil.Get(http.DefaultClient, base+"/metrics")
	if code != 200 || !strings.Contains(string(body), `iqengine_plugin_faults_total{kind="timeout",plugin="loop"} 4`) {
		t.Errorf("metrics lack the timeout faults:\n%s", grepLines(string(body), "plugin"))
	}

	// Refused at load time: the node does not start, and says why in one line.
	for name, c := range map[string]struct {
		bin  []byte
		want string
	}{
		"forbidden": {wasmgen.ForbiddenImport(), "stores[0].value: plugin forbidden: forbidden import wasi_snapshot_preview1.path_open"},
		"notwasm":   {wasmgen.NotWasm(), "stores[0].value: plugin notwasm: not a WebAssembly module"},
		"nokey":     {wasmgen.EchoWith(wasmgen.EchoOptions{Omit: []string{"iq_key_to_json", "iq_key_from_text"}}), "stores[0].key: plugin nokey: lacks the key_to_json capability"},
	} {
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), c.bin, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.DataDir, cfg.Kafka.Brokers, cfg.Plugins.Dir = t.TempDir(), b.Addrs, dir
		ref := config.Serde{Plugin: config.Plugin{Wasm: name}}
		cfg.Stores = []config.Store{{Name: "x", Topic: good, Value: ref}}
		if name == "nokey" {
			cfg.Stores[0] = config.Store{Name: "x", Topic: good, Key: ref}
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		_, err := node.Start(context.Background(), cfg, node.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		var ce *node.ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: node.Start: %v; want a ConfigError, one line containing %q", name, err, c.want)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Dropping a new module file into the plugin directory switches answers to
// it under load with no failed query; a broken file is refused and the
// loaded version keeps serving.
func TestPluginFileReplacedUnderLoad(t *testing.T) {
	dir := t.TempDir()
	mod := filepath.Join(dir, "shape.wasm")
	if err := os.WriteFile(mod, wasmgen.ConstValue(`{"version":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	b := testkafka.Start(t)
	topic := testkafka.Name(t, "shapes")
	b.CreateTopic(t, topic, 3)
	cl := b.Client(t)
	for i := 0; i < 50; i++ {
		testkafka.Produce(t, cl, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%02d", i)), Value: []byte(`{}`)})
	}
	base := pluginNode(t, b, func(c *config.Config) {
		c.Plugins.Dir = dir
		c.Plugins.ReloadInterval = config.Duration(50 * time.Millisecond)
		c.Stores = []config.Store{{Name: "shapes", Topic: topic, Value: config.Serde{Plugin: config.Plugin{Wasm: "shape"}}}}
	})

	var v1, v2, failed atomic.Int64
	var firstFail atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				url := fmt.Sprintf("%s/v1/stores/shapes/keys/k%02d", base, (g*13+i)%50)
				if i%5 == 0 {
					url = base + "/v1/stores/shapes/keys?limit=20"
				}
				code, body, err := testutil.Get(client, url)
				switch {
				case err != nil || code != 200:
					failed.Add(1)
					firstFail.CompareAndSwap(nil, fmt.Sprintf("%d %s %v", code, body, err))
				case strings.Contains(string(body), `{"version":2}`) && !strings.Contains(string(body), `{"version":1}`):
					v2.Add(1)
				case strings.Contains(string(body), `{"version":1}`) && !strings.Contains(string(body), `{"version":2}`):
					v1.Add(1)
				}
			}
		}()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		testutil.WaitForNil(t, 10*time.Second, what, func() error {
			if !cond() {
				return fmt.Errorf("v1 %d, v2 %d, failed %d", v1.Load(), v2.Load(), failed.Load())
			}
			return nil
		})
	}
	waitFor("answers from version 1", func() bool { return v1.Load() > 50 })
	// /v1/info names the module version that serves.
	moduleHash := func() string {
		t.Helper()
		var info struct {
			Plugins []struct{ Module, SHA256 string }
		}
		_, body, err := testutil.Get(http.DefaultClient, base+"/v1/info")
		if err != nil || json.Unmarshal(body, &info) != nil || len(info.Plugins) != 1 || info.Plugins[0].Module != "shape" {
			t.Fatalf("/v1/info: %v %s", err, body)
		}
		return info.Plugins[0].SHA256
	}
	hash1 := moduleHash()
	// Write the new version in place, in two halves, as a slow copy would.
	bin := wasmgen.ConstValue(`{"version":2}`)
	if err := os.WriteFile(mod, bin[:len(bin)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(mod, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write(bin[len(bin)/2:])
	f.Close()
	base2 := v2.Load()
	waitFor("answers from version 2", func() bool { return v2.Load() > base2+50 })
	v1AtSwitch := v1.Load()
	if hash2 := moduleHash(); hash2 == hash1 {
		t.Errorf("/v1/info names module %s before and after the reload", hash1)
	}

	// A broken replacement is refused; version 2 keeps answering.
	if err := os.WriteFile(mod, []byte("this is not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor("the broken file refused", func() bool {
		_, body, _ := testutil.Get(http.DefaultClient, base+"/metrics")
		return strings.Contains(string(body), `iqengine_plugin_reloads_total{plugin="shape",result="refused"} 1`)
	})
	after := v2.Load()
	waitFor("version 2 still answering", func() bool { return v2.Load() > after+50 })
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d queries failed, first: %v", failed.Load(), firstFail.Load())
	}
	if v1.Load() > v1AtSwitch+8 { // a few in flight at the switch
		t.Fatalf("version 1 kept answering after the switch: %d then %d", v1AtSwitch, v1.Load())
	}
	t.Logf("answers: %d from version 1, %d from version 2, 0 failed; the broken file was refused", v1.Load(), v2.Load())
}
