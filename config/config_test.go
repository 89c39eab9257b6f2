package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The example config documents every field with its default: it must load,
// validate, and say the same as Default().
func TestExampleConfigMatchesDefaults(t *testing.T) {
	c, err := Load("../examples/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d := Default()
	d.NodeID = "node-1"
	d.Advertise = "http://127.0.0.1:7070"
	d.Plugins.CacheDir = "iqengine-data/wasm-cache" // derived from data_dir
	c.Stores = nil
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("examples/config.yaml and Default() disagree:\n file    %+v\n default %+v", c, d)
	}
}

// A store's serde is a built-in name or a plugin mapping; a misspelt plugin
// field is an error, and plugin configs reach iq_init as JSON.
func TestPluginSerdesAndTransform(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := Load(write(`
plugins: {dir: /opt/plugins}
stores:
  - name: readings
    topic: readings
    key: {wasm: sensor-key}
    value: {wasm: ./build/sensor-value.wasm, config: {scale: 10, units: [c, f]}, allow_clock: true}
    transform: {wasm: project, params: {fields: "sensor,temp_c"}}
  - name: orders
    topic: orders
    key: string
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := c.Stores[0]
	if r.Key.String() != "wasm:sensor-key" || c.ModulePath(r.Key.Plugin) != filepath.Join("/opt/plugins", "sensor-key.wasm") {
		t.Fatalf("key = %v at %s", r.Key, c.ModulePath(r.Key.Plugin))
	}
	if c.ModulePath(r.Value.Plugin) != "./build/sensor-value.wasm" || !r.Value.AllowClock {
		t.Fatalf("value = %+v", r.Value)
	}
	if got := string(r.Value.ConfigJSON()); got != `{"scale":10,"units":["c","f"]}` {
		t.Fatalf("config JSON = %s", got)
	}
	if string(r.Key.ConfigJSON()) != "{}" {
		t.Fatalf("no config: %s", r.Key.ConfigJSON())
	}
	if r.Transform == nil || r.Transform.Wasm != "project" || r.Transform.Params["fields"] != "sensor,temp_c" {
		t.Fatalf("transform = %+v", r.Transform)
	}
	if o := c.Stores[1]; o.Key.String() != "string" || o.Value.String() != "json" || o.Transform != nil {
		t.Fatalf("orders = %+v", o)
	}

	for _, bad := range []struct{ yaml, want string }{
		{"stores: [{name: a, topic: a, value: {wsm: x}}]", "field wsm not found"},
		{"stores: [{name: a, topic: a, transform: {params: {a: b}}}]", "stores[0].transform.wasm: must name a module"},
		{"stores: [{name: a, topic: a, key: {config: {}}}]", "stores[0].key.wasm: must name a module"},
		{"stores: [{name: a, topic: a, key: int128}]", `stores[0].key: unknown serde "int128"`},
		{"plugins: {timeout: 0s}\nstores: [{name: a, topic: a}]", "plugins.timeout: must be positive"},
		{"plugins: {memory_limit: 100}\nstores: [{name: a, topic: a}]", "plugins.memory_limit: must be at least 64KiB"},
		{"stores: [{name: a, topic: a, kind: windowed}]", `stores[0].kind: "windowed" must be keyvalue, window or session`},
		{"stores: [{name: a, topic: a, kind: window, retention: 3h}]", "stores[0].window_size: is required for a window store"},
		{"stores: [{name: a, topic: a, kind: window, window_size: 1h}]", "stores[0].retention: is required for a window store"},
		{"stores: [{name: a, topic: a, kind: session}]", "stores[0].retention: is required for a session store"},
		{"stores: [{name: a, topic: a, kind: session, retention: 1h, window_size: 1h}]", "stores[0].window_size: applies to window stores only"},
		{"stores: [{name: a, topic: a, kind: window, window_size: 1h, retention: 3h, window_key: seq}]", `stores[0].window_key: "seq" must be changelog`},
		{"stores: [{name: a, topic: a, retention: 3h}]", "stores[0].retention: applies to window and session stores only"},
		{"stores: [{name: a, topic: t, kind: window, window_size: 1h, retention: 3h}, {name: b, topic: t}]", `stores[1].kind: this store (keyvalue) and store "a" (window, window_key changelog) read the same topic "t"`},
		{"stores: [{name: a, topic: t, kind: window, window_size: 1h, retention: 3h}, {name: b, topic: t, kind: window, window_size: 1h, retention: 3h, window_key: plain}]", `stores[1].kind: this store (window, window_key plain) and store "a" (window, window_key changelog)`},
	} {
		c, err := Load(write(bad.yaml))
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: err = %v, want %q", bad.yaml, err, bad.want)
		}
	}
}

// The Kafka Streams example's configuration loads and validates: a
// key-value, a window and a session store over its changelogs.
func TestStreamsExampleConfig(t *testing.T) {
	c, err := Load("../examples/streams-app/iqengine.yaml")
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, s := range c.Stores {
		kinds = append(kinds, s.Name+":"+s.Kind+":"+s.WindowKey+":"+s.WindowSize.D().String()+":"+s.Retention.D().String())
	}
	want := "counts:keyvalue::0s:0s windowed-counts:window:changelog:1h0m0s:3h0m0s sessions:session::0s:2h0m0s"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("stores: %s, want %s", got, want)
	}
}

// Sizes are bytes, written plainly or with a unit; anything else is an
// error that shows the text and the forms accepted.
func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		text string
		want Size
		err  bool
	}{
		{"1048576", 1 << 20, false},
		{"64MiB", 64 << 20, false},
		{"512KiB", 512 << 10, false},
		{"1GiB", 1 << 30, false},
		{"2TiB", 2 << 40, false},
		{"100MB", 100_000_000, false},
		{"1GB", 1_000_000_000, false},
		{"4096B", 4096, false},
		{" 8 MiB ", 8 << 20, false},
		{"0", 0, false},
		{"64 mb", 0, true},
		{"1.5GiB", 0, true},
		{"MiB", 0, true},
		{"", 0, true},
		{"9999999TiB", 0, true},
	} {
		got, err := ParseSize(c.text)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", c.text, got, err, c.want, c.err)
		}
	}
	for size, want := range map[Size]string{64 << 20: "64MiB", 1000: "1000B", 0: "0B", 3 << 30: "3GiB", 1536: "1536B"} {
		if got := size.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(size), got, want)
		}
	}
	// In a file, with the line of a bad size.
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("storage:\n  cache_size: 64MiB\n  memtable_size: lots\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), `line 3: "lots" is not a size`) {
		t.Fatalf("Load: %v, want line 3's size named", err)
	}
}
