package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iqengine/iqengine/internal/testutil"
)

// noEnv is a getenv with no IQENGINE_* variables set.
func noEnv(string) string { return "" }

// envOf is a getenv that reads m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// result is what one in-process run of the command did.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// runCtx runs the command in-process until it returns or ctx ends. It
// restores the default slog logger, which run replaces, at t's end.
func runCtx(t *testing.T, ctx context.Context, getenv func(string) string, args ...string) result {
	t.Helper()
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	var stdout, stderr testutil.Buffer
	start := time.Now()
	code := runContext(ctx, args, &stdout, &stderr, getenv)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
}

// runArgs runs the command in-process with no environment, bounded by a
// generous deadline so that a command that wrongly starts does not hang
// the test.
func runArgs(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return runCtx(t, ctx, noEnv, args...)
}

// wantOneLine fails t unless stderr is exactly one line that starts with
// "iqengine: " and contains every one of wants.
func wantOneLine(t *testing.T, stderr string, wants ...string) {
	t.Helper()
	if !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("stderr is not exactly one line:\n%s", stderr)
	}
	line := strings.TrimSuffix(stderr, "\n")
	if !strings.HasPrefix(line, "iqengine: ") {
		t.Fatalf("stderr line does not start with %q: %s", "iqengine: ", line)
	}
	if strings.ContainsAny(line, "\r\t") {
		t.Errorf("stderr line has control characters: %q", line)
	}
	for _, w := range wants {
		if !strings.Contains(line, w) {
			t.Errorf("stderr line does not mention %q: %s", w, line)
		}
	}
}

// writeFile writes text to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNoArgsPrintsUsage(t *testing.T) {
	r := runArgs(t)
	if r.code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%s", r.code, r.stderr)
	}
	for _, w := range []string{"usage: iqengine <command>", "serve", "check", "broker", "demo"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("usage on stderr does not mention %q:\n%s", w, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "help"} {
		r := runArgs(t, arg)
		if r.code != 0 {
			t.Errorf("%s: exit %d, want 0", arg, r.code)
		}
		if !strings.Contains(r.stdout, "usage: iqengine <command>") {
			t.Errorf("%s: no usage on stdout: %q", arg, r.stdout)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	r := runArgs(t, "srve", "--config", "x.yaml")
	if r.code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%s", r.code, r.stderr)
	}
	wantOneLine(t, r.stderr, `unknown command "srve"`, "serve")
}

func TestFlagErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "iqengine.yaml", "stores: [{name: a, topic: t}]\n")
	tests := []struct {
		name  string
		args  []string
		wants []string
	}{
		{"serve unknown flag", []string{"serve", "--config", cfg, "--lisen", "127.0.0.1:1"}, []string{"serve: ", "flag provided but not defined", "-lisen", "iqengine serve -h"}},
		{"serve flag without value", []string{"serve", "--config"}, []string{"serve: ", "-config"}},
		{"serve missing config", []string{"serve"}, []string{"--config FILE is required", "iqengine serve -h"}},
		{"serve missing config with other flags", []string{"serve", "--listen", "127.0.0.1:1"}, []string{"--config FILE is required"}},
		{"serve positional argument", []string{"serve", "--config", cfg, "extra"}, []string{`unexpected argument "extra"`}},
		{"serve positional argument first", []string{"serve", cfg}, []string{`unexpected argument "` + cfg + `"`}},
		{"check missing config", []string{"check", "--kafka"}, []string{"check: --config FILE is required", "iqengine check -h"}},
		{"check unknown flag", []string{"check", "--config", cfg, "--brokrs", "a:1"}, []string{"check: ", "-brokrs"}},
		{"broker unknown flag", []string{"broker", "--port", "9092"}, []string{"broker: ", "-port"}},
		{"broker positional argument", []string{"broker", "now"}, []string{`unexpected argument "now"`}},
		{"demo unknown flag", []string{"demo", "--fast"}, []string{"demo: ", "-fast"}},
		{"demo bad rate", []string{"demo", "--rate", "0"}, []string{"--rate 0"}},
		{"demo rate not a number", []string{"demo", "--rate", "lots"}, []string{"-rate", "lots"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runArgs(t, tt.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", r.code, r.stderr)
			}
			wantOneLine(t, r.stderr, tt.wants...)
		})
	}
}

func TestCommandHelp(t *testing.T) {
	for _, cmd := range []string{"serve", "check", "broker", "demo"} {
		t.Run(cmd, func(t *testing.T) {
			for _, h := range []string{"-h", "--help"} {
				r := runArgs(t, cmd, h)
				if r.code != 0 {
					t.Fatalf("%s %s: exit %d, want 0; stderr:\n%s", cmd, h, r.code, r.stderr)
				}
				if !strings.Contains(r.stderr, "usage: iqengine "+cmd) {
					t.Errorf("%s %s: no usage on stderr:\n%s", cmd, h, r.stderr)
				}
				if !strings.Contains(r.stderr, "-listen") {
					t.Errorf("%s %s: flags not listed:\n%s", cmd, h, r.stderr)
				}
			}
		})
	}
	r := runArgs(t, "serve", "-h")
	if !strings.Contains(r.stderr, "-config") {
		t.Errorf("serve -h does not list --config:\n%s", r.stderr)
	}
}

// baseConfig is a valid configuration but for what a test adds. Its broker
// is a closed port and its timeouts short, so that a case that wrongly
// passes validation fails fast instead of waiting for a broker.
func baseConfig(t *testing.T) string {
	t.Helper()
	return "data_dir: " + filepath.Join(t.TempDir(), "data") + "\n" +
		"kafka:\n" +
		"  brokers: [" + testutil.FreeAddr(t) + "]\n" +
		"  dial_timeout: 1s\n" +
		"  startup_timeout: 1s\n"
}

func TestConfigErrors(t *testing.T) {
	const oneStore = "stores:\n  - {name: orders, topic: orders}\n"
	tests := []struct {
		name  string
		yaml  string // appended to baseConfig, unless it starts with "!"
		wants []string
	}{
		{
			name:  "unknown field",
			yaml:  "lisen: 127.0.0.1:7070\n" + oneStore,
			wants: []string{"lisen", "not found", "line 6"},
		},
		{
			name:  "unknown nested field",
			yaml:  "query:\n  defualt_limit: 5\n" + oneStore,
			wants: []string{"defualt_limit", "not found"},
		},
		{
			name:  "bad duration",
			yaml:  "query:\n  timeout: 5 seconds\n" + oneStore,
			wants: []string{`"5 seconds" is not a duration`, "line 7"},
		},
		{
			name:  "zero duration",
			yaml:  "query:\n  timeout: 0s\n" + oneStore,
			wants: []string{"query.timeout: must be positive"},
		},
		{
			name:  "stores empty",
			yaml:  "stores: []\n",
			wants: []string{"stores: at least one store is needed"},
		},
		{
			name:  "stores missing",
			yaml:  "",
			wants: []string{"stores: at least one store is needed"},
		},
		{
			name:  "unknown key serde",
			yaml:  "stores:\n  - {name: orders, topic: orders, key: int128}\n",
			wants: []string{"stores[0].key", `unknown serde "int128"`, "built-in:", "string", "int64", "json"},
		},
		{
			name:  "unknown value serde",
			yaml:  "stores:\n  - {name: orders, topic: orders}\n  - {name: events, topic: events, value: thrift}\n",
			wants: []string{"stores[1].value", `unknown serde "thrift"`, "built-in:"},
		},
		{
			name:  "duplicate store names",
			yaml:  "stores:\n  - {name: orders, topic: orders}\n  - {name: orders, topic: orders-v2}\n",
			wants: []string{"stores[1].name", `"orders" is used twice`},
		},
		{
			name:  "bad store name",
			yaml:  "stores:\n  - {name: my orders, topic: orders}\n",
			wants: []string{"stores[0].name", `"my orders"`},
		},
		{
			name:  "store without topic",
			yaml:  "stores:\n  - {name: orders}\n",
			wants: []string{"stores[0].topic: must not be empty"},
		},
		{
			name:  "bad listen address",
			yaml:  "listen: localhost\n" + oneStore,
			wants: []string{`listen: "localhost" is not host:port`},
		},
		{
			name:  "bad broker address",
			yaml:  "!stores:\n  - {name: orders, topic: orders}\nkafka:\n  brokers: [kafka-1]\n",
			wants: []string{`kafka.brokers[0]: "kafka-1" is not host:port`},
		},
		{
			name:  "unknown SASL mechanism",
			yaml:  "!stores:\n  - {name: orders, topic: orders}\nkafka:\n  sasl: {mechanism: GSSAPI, username: u, password: p}\n",
			wants: []string{"kafka.sasl.mechanism", `"GSSAPI"`, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
		},
		{
			name:  "SASL without username",
			yaml:  "!stores:\n  - {name: orders, topic: orders}\nkafka:\n  sasl: {mechanism: PLAIN}\n",
			wants: []string{"kafka.sasl.username", "PLAIN"},
		},
		{
			name:  "cert_file without key_file",
			yaml:  "!stores:\n  - {name: orders, topic: orders}\nkafka:\n  tls: {cert_file: client.pem}\n",
			wants: []string{"kafka.tls", "cert_file and key_file go together"},
		},
		{
			name:  "yaml syntax error",
			yaml:  "!listen: [127.0.0.1:7070\n" + oneStore,
			wants: []string{"line ", "did not find expected"},
		},
		{
			name:  "tab indentation",
			yaml:  "!stores:\n\t- {name: orders, topic: orders}\n",
			wants: []string{"line 2", "tab"},
		},
		{
			name:  "wrong type",
			yaml:  "query:\n  max_limit: lots\n" + oneStore,
			wants: []string{"line 7", "lots"},
		},
		{
			name: "several errors at once",
			yaml: "listen: localhost\nstores: []\nquery: {timeout: 1m, max_timeout: 30s}\n",
			wants: []string{
				`listen: "localhost" is not host:port; `,
				"query.timeout: 1m0s is over query.max_timeout 30s; ",
				"stores: at least one store is needed",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			text, ok := strings.CutPrefix(tt.yaml, "!")
			if !ok {
				text = baseConfig(t) + text
			}
			path := writeFile(t, dir, "iqengine.yaml", text)
			r := runArgs(t, "serve", "--config", path)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", r.code, r.stderr)
			}
			wantOneLine(t, r.stderr, append([]string{"iqengine: config " + path + ": "}, tt.wants...)...)
			if r.took > 2*time.Second {
				t.Errorf("took %s: a config error must not wait for anything", r.took)
			}
			// check says the same in its one FAIL line, and never gets to
			// the brokers.
			r = runArgs(t, "check", "--config", path, "--kafka")
			wantCheck(t, r, 2, append([]string{"FAIL config " + path + ": "}, tt.wants...)...)
			if r.took > 2*time.Second {
				t.Errorf("check took %s: a config error must not wait for anything", r.took)
			}
		})
	}
}

func TestConfigFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	r := runArgs(t, "serve", "--config", path)
	if r.code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%s", r.code, r.stderr)
	}
	wantOneLine(t, r.stderr, "config", path, "no such file or directory")
}

func TestConfigIsADirectory(t *testing.T) {
	dir := t.TempDir()
	r := runArgs(t, "serve", "--config", dir)
	if r.code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%s", r.code, r.stderr)
	}
	wantOneLine(t, r.stderr, "config", dir, "is a directory")
}

// TestOverridesValidated checks that a bad value given by a flag
// or an environment variable is reported like one in the file.
func TestOverridesValidated(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "iqengine.yaml", baseConfig(t)+"stores: [{name: a, topic: t}]\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	r := runCtx(t, ctx, envOf(map[string]string{"IQENGINE_LISTEN": "nohost"}), "serve", "--config", path)
	if r.code != 2 {
		t.Fatalf("env: exit %d, want 2; stderr:\n%s", r.code, r.stderr)
	}
	wantOneLine(t, r.stderr, `listen: "nohost" is not host:port`)

	r = runCtx(t, ctx, noEnv, "serve", "--config", path, "--brokers", "kafka-1,kafka-2:9092")
	if r.code != 2 {
		t.Fatalf("flag: exit %d, want 2; stderr:\n%s", r.code, r.stderr)
	}
	wantOneLine(t, r.stderr, `kafka.brokers[0]: "kafka-1" is not host:port`)
}

func TestLoadServeConfigOverrides(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "iqengine.yaml", `
node_id: file-node
listen: 127.0.0.1:1111
data_dir: file-data
kafka:
  brokers: [file-broker:9092]
stores:
  - {name: orders, topic: orders}
`)
	env := map[string]string{
		"IQENGINE_LISTEN":    "127.0.0.1:2222",
		"IQENGINE_BROKERS":   "env-broker-1:9092, env-broker-2:9092",
		"IQENGINE_NODE_ID":   "env-node",
		"IQENGINE_DATA_DIR":  "env-data",
		"IQENGINE_ADVERTISE": "http://env-host:2222",
	}
	type want struct {
		listen, nodeID, dataDir, advertise string
		brokers                            []string
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want want
	}{
		{
			name: "file",
			want: want{"127.0.0.1:1111", "file-node", "file-data", "http://127.0.0.1:1111", []string{"file-broker:9092"}},
		},
		{
			name: "env over file",
			env:  env,
			want: want{"127.0.0.1:2222", "env-node", "env-data", "http://env-host:2222", []string{"env-broker-1:9092", "env-broker-2:9092"}},
		},
		{
			name: "one env variable",
			env:  map[string]string{"IQENGINE_NODE_ID": "env-node"},
			want: want{"127.0.0.1:1111", "env-node", "file-data", "http://127.0.0.1:1111", []string{"file-broker:9092"}},
		},
		{
			name: "flags over file",
			args: []string{"--listen", "127.0.0.1:3333", "--brokers", "flag-broker:9092", "--node-id", "flag-node"},
			want: want{"127.0.0.1:3333", "flag-node", "file-data", "http://127.0.0.1:3333", []string{"flag-broker:9092"}},
		},
		{
			name: "flags over env",
			env:  env,
			args: []string{"--listen", "127.0.0.1:3333", "--brokers", "flag-broker-1:9092,flag-broker-2:9092", "--node-id", "flag-node",
				"--data-dir", "flag-data", "--advertise", "https://flag-host"},
			want: want{"127.0.0.1:3333", "flag-node", "flag-data", "https://flag-host", []string{"flag-broker-1:9092", "flag-broker-2:9092"}},
		},
		{
			name: "some flags over env",
			env:  env,
			args: []string{"--node-id", "flag-node"},
			want: want{"127.0.0.1:2222", "flag-node", "env-data", "http://env-host:2222", []string{"env-broker-1:9092", "env-broker-2:9092"}},
		},
		{
			name: "flag over one env variable",
			env:  map[string]string{"IQENGINE_LISTEN": "127.0.0.1:2222"},
			args: []string{"--listen", "127.0.0.1:3333"},
			want: want{"127.0.0.1:3333", "file-node", "file-data", "http://127.0.0.1:3333", []string{"file-broker:9092"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			args := append([]string{"--config", path}, tt.args...)
			cfg, err := loadServeConfig(args, &stderr, envOf(tt.env))
			if err != nil {
				t.Fatalf("loadServeConfig: %v", err)
			}
			got := want{cfg.Listen, cfg.NodeID, cfg.DataDir, cfg.Advertise, cfg.Kafka.Brokers}
			if got.listen != tt.want.listen || got.nodeID != tt.want.nodeID || got.dataDir != tt.want.dataDir ||
				got.advertise != tt.want.advertise || !slices.Equal(got.brokers, tt.want.brokers) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if len(cfg.Stores) != 1 || cfg.Stores[0].Key.String() != "string" || cfg.Stores[0].Value.String() != "json" {
				t.Errorf("stores = %+v, want one with the default serdes", cfg.Stores)
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr: %s", stderr.String())
			}
		})
	}
}

func TestLoadServeConfigErrorsAreUsageErrors(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "iqengine.yaml", "stores: []\n")
	for _, args := range [][]string{
		{"--config", path},
		{"--config", filepath.Join(dir, "missing.yaml")},
		{},
		{"--bogus"},
	} {
		_, err := loadServeConfig(args, &bytes.Buffer{}, noEnv)
		var ue usageError
		if err == nil || !errors.As(err, &ue) {
			t.Errorf("loadServeConfig(%q) = %v, want a usageError", args, err)
		}
	}
}

func TestBrokerFlagErrors(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		wants []string
	}{
		{"listen on all interfaces", []string{"--listen", "0.0.0.0:9092"}, []string{`--listen "0.0.0.0:9092"`, "127.0.0.1 only"}},
		{"listen on an empty host", []string{"--listen", ":9092"}, []string{`--listen ":9092"`, "127.0.0.1 only"}},
		{"listen not host:port", []string{"--listen", "9092"}, []string{`--listen "9092" is not host:port`}},
		{"listen port out of range", []string{"--listen", "127.0.0.1:70000"}, []string{`"127.0.0.1:70000" is not host:port`}},
		{"bad partitions", []string{"--partitions", "0"}, []string{"--partitions 0"}},
		{"unknown SASL mechanism", []string{"--sasl-mechanism", "GSSAPI", "--sasl-user", "u", "--sasl-password", "p"}, []string{`--sasl-mechanism "GSSAPI"`, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"}},
		{"lower-case SASL mechanism", []string{"--sasl-mechanism", "plain", "--sasl-user", "u", "--sasl-password", "p"}, []string{`"plain"`}},
		{"SASL without user", []string{"--sasl-mechanism", "PLAIN"}, []string{"--sasl-user and --sasl-password"}},
		{"user without SASL", []string{"--sasl-user", "u"}, []string{"need --sasl-mechanism"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runArgs(t, append([]string{"broker"}, tt.args...)...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", r.code, r.stderr)
			}
			wantOneLine(t, r.stderr, append([]string{"iqengine: broker: "}, tt.wants...)...)
			if r.stdout != "" {
				t.Errorf("stdout = %q: nothing should have started", r.stdout)
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"a\nb", "a; b"},
		{"config f: unmarshal errors:\n  line 1: x\n  line 2: y", "config f: unmarshal errors: line 1: x; line 2: y"},
		{"a\n\n b \n", "a; b"},
	}
	for _, tt := range tests {
		if got := oneLine(stringError(tt.in)); got != tt.want {
			t.Errorf("oneLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

type stringError string

func (e stringError) Error() string { return string(e) }
