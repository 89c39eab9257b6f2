package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iqengine/iqengine/internal/testutil"
)

// demoAnswerWithin is the promise: `iqengine demo` answers a key
// lookup and a range scan within 15 seconds of start. The readings store,
// decoded by the demo's plugins, keeps the same promise.
const demoAnswerWithin = 15 * time.Second

// built is the command's binary, built once for the package's tests.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// buildBinary builds the command (once) into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "iqengine-test-bin-")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "iqengine")
		out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// getJSON GETs url and decodes a JSON answer into v, returning the status
// and content type.
func getJSON(ctx context.Context, url string, v any) (status int, contentType string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.StatusCode, "", fmt.Errorf("%s: %w: %s", resp.Status, err, body)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), nil
}

type demoItem struct {
	Key   string `json:"key"`
	Value struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"value"`
	Partition int32 `json:"partition"`
}

// demoAnswers reports nil once the demo answers the key lookup and the
// range scan of the issue correctly.
func demoAnswers(ctx context.Context, base string) error {
	var one demoItem
	status, _, err := getJSON(ctx, base+"/v1/stores/orders/keys/o-00001", &one)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("key lookup: status %d", status)
	}
	if one.Key != "o-00001" || one.Value.ID != "o-00001" {
		return fmt.Errorf("key lookup: key %q, value.id %q, want o-00001", one.Key, one.Value.ID)
	}

	var page struct {
		Items []demoItem `json:"items"`
	}
	status, _, err = getJSON(ctx, base+"/v1/stores/orders/keys?from=o-00100&to=o-00199&limit=5", &page)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("range scan: status %d", status)
	}
	if len(page.Items) != 5 {
		return fmt.Errorf("range scan: %d items, want 5", len(page.Items))
	}
	for i, it := range page.Items {
		if it.Key < "o-00100" || it.Key > "o-00199" {
			return fmt.Errorf("range scan: item %d key %q is out of range", i, it.Key)
		}
		if it.Value.ID != it.Key {
			return fmt.Errorf("range scan: item %d key %q has value.id %q", i, it.Key, it.Value.ID)
		}
		if i > 0 && it.Key <= page.Items[i-1].Key {
			return fmt.Errorf("range scan: keys not in order: %q after %q", it.Key, page.Items[i-1].Key)
		}
	}
	return readingsAnswer(ctx, base)
}

// demoReading is the sensor-value plugin's JSON of a demo reading.
type demoReading struct {
	Sensor *int     `json:"sensor"`
	Site   *int     `json:"site"`
	Status string   `json:"status"`
	TempC  *float64 `json:"temp_c"`
	Label  *string  `json:"label"`
}

// readingsAnswer reports nil once the readings store answers the banner's
// queries: a lookup decoded by the plugins, the same lookup projected by the
// transform, and a filtered prefix scan.
func readingsAnswer(ctx context.Context, base string) error {
	var one struct {
		Key struct {
			Site   int `json:"site"`
			Sensor int `json:"sensor"`
		} `json:"key"`
		Value     demoReading `json:"value"`
		Partition int32       `json:"partition"`
	}
	status, _, err := getJSON(ctx, base+"/v1/stores/readings/keys/12-7", &one)
	if err != nil {
		return fmt.Errorf("readings lookup: %w", err)
	}
	v := one.Value
	if status != http.StatusOK || one.Key.Site != 12 || one.Key.Sensor != 7 || v.Sensor == nil || *v.Sensor != 7 ||
		v.Site == nil || *v.Site != 12 || v.TempC == nil || v.Label == nil || v.Status == "" || one.Partition != 0 {
		return fmt.Errorf("readings lookup: status %d, %+v", status, one)
	}

	var projected struct {
		Value map[string]json.RawMessage `json:"value"`
	}
	status, _, err = getJSON(ctx, base+"/v1/stores/readings/keys/12-7?t.fields=sensor,temp_c", &projected)
	if err != nil {
		return fmt.Errorf("projected lookup: %w", err)
	}
	if status != http.StatusOK || len(projected.Value) != 2 || string(projected.Value["sensor"]) != "7" || projected.Value["temp_c"] == nil {
		return fmt.Errorf("projected lookup: status %d, value %v, want only sensor 7 and temp_c", status, projected.Value)
	}

	var page struct {
		Items []struct {
			Value demoReading `json:"value"`
		} `json:"items"`
	}
	status, _, err = getJSON(ctx, base+"/v1/stores/readings/keys?prefix=12&t.min_temp_c=20&limit=5", &page)
	if err != nil {
		return fmt.Errorf("filtered scan: %w", err)
	}
	if status != http.StatusOK || len(page.Items) == 0 || len(page.Items) > 5 {
		return fmt.Errorf("filtered scan: status %d, %d items, want 1 to 5", status, len(page.Items))
	}
	for _, it := range page.Items {
		if v := it.Value; v.Site == nil || *v.Site != 12 || v.TempC == nil || *v.TempC < 20 {
			return fmt.Errorf("filtered scan: item %+v is not of site 12 at 20°C or more", v)
		}
	}
	return nil
}

func TestDemoBinary(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	listen := testutil.FreeAddr(t)
	base := "http://" + listen

	var stdout, stderr testutil.Buffer
	cmd := exec.Command(bin, "demo", "--listen", listen)
	// The demo's temporary directory goes under the test's.
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	logs := func() string { return "stdout:\n" + stdout.String() + "\nstderr:\n" + stderr.String() }

	// Poll until the lookup and the scan both answer, within the promise.
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(demoAnswerWithin))
	defer cancel()
	testutil.WaitForNil(t, time.Until(start.Add(demoAnswerWithin)), fmt.Sprintf("the demo answers within %s of start", demoAnswerWithin), func() error {
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("demo exited early: %v\n%s", err, logs())
		default:
		}
		if err := demoAnswers(ctx, base); err != nil {
			return fmt.Errorf("%v\n%s", err, logs())
		}
		return nil
	})
	took := time.Since(start)
	t.Logf("demo answered the key lookup, the range scan and the readings queries %s after process start", took.Round(time.Millisecond))

	// The default demo runs three nodes, and each answers every key. The
	// banner comes once all three have started.
	testutil.WaitForNil(t, time.Until(start.Add(demoAnswerWithin)), "the banner", func() error {
		if !strings.Contains(stdout.String(), "Ctrl-C") {
			return errors.New(logs())
		}
		return nil
	})
	var urls []string
	for _, line := range strings.Split(stdout.String(), "\n") {
		if _, list, ok := strings.Cut(line, "of one application at "); ok {
			urls = strings.Split(strings.TrimSuffix(strings.TrimSpace(list), "."), ", ")
		}
	}
	if len(urls) != 3 || urls[0] != base {
		t.Fatalf("the banner names nodes %q, want 3 starting with %s\n%s", urls, base, logs())
	}
	for _, u := range urls {
		var got struct {
			Value struct{ ID string } `json:"value"`
		}
		nctx, ncancel := context.WithTimeout(context.Background(), 10*time.Second)
		status, _, err := getJSON(nctx, u+"/v1/stores/orders/keys/o-00001?timeout=5s", &got)
		ncancel()
		if err != nil || status != http.StatusOK || got.Value.ID != "o-00001" {
			t.Fatalf("node %s: status %d, %+v, %v\n%s", u, status, got, err, logs())
		}
	}

	// A bad key is a problem+json 400 of a stable type.
	var prob struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	qctx, qcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer qcancel()
	status, ctype, err := getJSON(qctx, base+"/v1/stores/sensors/keys/abc", &prob)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusBadRequest || prob.Status != http.StatusBadRequest {
		t.Errorf("bad key: status %d (body %d), want 400", status, prob.Status)
	}
	if !strings.HasPrefix(ctype, "application/problem+json") {
		t.Errorf("bad key: Content-Type %q, want application/problem+json", ctype)
	}
	if prob.Type != "urn:iqengine:problem:bad-key" {
		t.Errorf("bad key: type %q, want urn:iqengine:problem:bad-key", prob.Type)
	}
	if !strings.Contains(prob.Detail, "int64") {
		t.Errorf("bad key: detail %q does not name the key serde", prob.Detail)
	}

	// The banner tells the user where to look, the plugins included, and
	// they are there.
	out := stdout.String()
	for _, want := range []string{
		base + "/ui/",
		base + "/v1/stores/orders/keys/o-00001",
		base + "/v1/stores/readings/keys/12-7",
		base + "/v1/stores/readings/keys/12-7?t.fields=sensor,temp_c",
		base + "/v1/stores/readings/keys?prefix=12&t.min_temp_c=20&limit=5",
		"Ctrl-C",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the banner does not show %s:\n%s", want, out)
		}
	}
	for _, u := range urls { // the console the banner points to: on every node
		if status, body, err := testutil.Get(http.DefaultClient, u+"/ui/"); err != nil || status != http.StatusOK ||
			!strings.Contains(string(body), "<title>iqengine console</title>") {
			t.Errorf("%s/ui/: %d %v, want the web console", u, status, err)
		}
	}
	pluginsDir := ""
	for _, line := range strings.Split(out, "\n") {
		if _, rest, ok := strings.Cut(line, "plugins are in "); ok {
			pluginsDir, _, _ = strings.Cut(rest, ": ")
		}
	}
	if !strings.HasPrefix(pluginsDir, dir) {
		t.Errorf("the banner names plugins dir %q, want one under %s\n%s", pluginsDir, dir, out)
	}
	for _, name := range []string{"sensor-key", "sensor-value", "project"} {
		if fi, err := os.Stat(filepath.Join(pluginsDir, name+".wasm")); err != nil || fi.Size() == 0 {
			t.Errorf("plugin %s: %v", name, err)
		}
	}

	// Ctrl-C stops it cleanly.
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	interrupted := time.Now()
	select {
	case err := <-exited:
		stopped = true
		t.Logf("demo exited %s after SIGINT", time.Since(interrupted).Round(time.Millisecond))
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("demo exited with %v after SIGINT, want 0\n%s", ee, logs())
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGQUIT) // a goroutine dump on stderr
		time.Sleep(time.Second)                 // for the dump to reach stderr
		t.Fatalf("demo did not exit within 15s of SIGINT\n%s", logs())
	}
	if strings.Contains(stderr.String(), "level=ERROR") {
		t.Errorf("errors were logged:\n%s", stderr.String())
	}
	// The demo removed its temporary directory.
	if left, _ := filepath.Glob(filepath.Join(dir, "iqengine-demo-*")); len(left) > 0 {
		t.Errorf("demo left %v behind", left)
	}
}

func TestDemoListenInUse(t *testing.T) {
	bin := buildBinary(t)
	// Hold a port so that the demo cannot listen on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(bin, "demo", "--listen", ln.Addr().String())
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	var stderr testutil.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("demo did not fail on a port in use\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want exit status 1\n%s", err, stderr.String())
	}
	// The error is the last line; the lines before are the log.
	lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	wantOneLine(t, lines[len(lines)-1]+"\n", "listen on "+ln.Addr().String(), "address already in use")
}

// A taken port after the first moves that node to a free port instead of
// failing the demo; the first port is the user's and fails clearly.
func TestDemoListenFallsBackPastTheFirstPort(t *testing.T) {
	// Hold two neighbouring ports: the first node's and the second's.
	var first, second net.Listener
	for attempt := 0; second == nil; attempt++ {
		if attempt == 50 {
			t.Fatal("found no two neighbouring free ports in 50 tries")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		next := net.JoinHostPort("127.0.0.1", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port+1))
		if nl, err := net.Listen("tcp", next); err == nil {
			first, second = ln, nl
		} else {
			ln.Close()
		}
	}
	defer first.Close()
	defer second.Close()
	port := first.Addr().(*net.TCPAddr).Port
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	if _, err := demoListen("127.0.0.1", port, 0, log); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("first node on a taken port: err = %v, want address already in use", err)
	}
	ln, err := demoListen("127.0.0.1", port, 1, log)
	if err != nil {
		t.Fatalf("second node: %v", err)
	}
	defer ln.Close()
	if got := ln.Addr().(*net.TCPAddr).Port; got == port+1 || got == port {
		t.Fatalf("second node listens on %d, want another free port", got)
	}
}
