package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
)

// problemDoc is an RFC 9457 problem's fields that the tests check.
type problemDoc struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// withFS puts the node's store on fs: a test gives a node a disk that
// fails.
func withFS(fs vfs.FS) Option { return func(o *options) { o.fs = fs } }

// trackedServer serves h through a node's request tracking, with a base
// context that cancelRequests cancels, as Start sets it up.
func trackedServer(t *testing.T, h http.Handler) (*Node, *httptest.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{cfg: config.Config{NodeID: "n1"}, requests: &inflight{}, requestsCtx: ctx, cancelRequests: cancel}
	srv := httptest.NewUnstartedServer(n.track(h))
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(cancel)
	return n, srv
}

// waitRunning waits until n tracks want handlers running.
func waitRunning(t *testing.T, n *Node, want int) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("%d handlers running", want), func() bool { return n.requests.running() == want })
}

// shutdownProblem checks that an answer is the 503 that tells a client (or
// a peer) to ask another node.
func shutdownProblem(t *testing.T, status int, body []byte, err error) {
	t.Helper()
	var p problemDoc
	if err == nil {
		err = json.Unmarshal(body, &p)
	}
	if err != nil || status != http.StatusServiceUnavailable || p.Type != "urn:iqengine:problem:partition-unavailable" ||
		!strings.Contains(p.Detail, "n1 is shutting down") {
		t.Fatalf("got %d %v %s, want a 503 partition-unavailable saying n1 is shutting down", status, err, body)
	}
}

// How the node's request tracking behaves when it stops: it waits for
// handlers, answers for a handler cancelled without an answer, and keeps
// requests that arrive too late away from the handler (and so the store).
func TestStopTracksRequests(t *testing.T) {
	t.Run("a cancelled request with no answer gets a 503", func(t *testing.T) {
		n, srv := trackedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // a query waiting for a partition; writes nothing, as the router does
		}))
		type reply struct {
			status int
			body   []byte
			err    error
		}
		answer := make(chan reply, 1)
		go func() {
			status, body, err := testutil.Get(srv.Client(), srv.URL+"/v1/stores/s/keys/k")
			answer <- reply{status, body, err}
		}()
		waitRunning(t, n, 1)
		n.cancelRequests()
		if left := n.requests.closeWhenIdle(context.Background()); left != 0 {
			t.Fatalf("closeWhenIdle left %d running", left)
		}
		r := <-answer
		shutdownProblem(t, r.status, r.body, r.err)
		if got := n.requests.refused(); got != 1 {
			t.Errorf("refused() = %d, want 1", got)
		}
	})

	t.Run("an answer written before the cancel is kept", func(t *testing.T) {
		n, srv := trackedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"key":"k"}`)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}))
		answer := make(chan string, 1)
		go func() {
			status, body, err := testutil.Get(srv.Client(), srv.URL+"/")
			answer <- fmt.Sprintf("%d %s %v", status, body, err)
		}()
		waitRunning(t, n, 1)
		n.cancelRequests()
		n.requests.closeWhenIdle(context.Background())
		if got := <-answer; got != `200 {"key":"k"} <nil>` {
			t.Fatalf("got %s, want the handler's own 200", got)
		}
	})

	t.Run("closeWhenIdle waits for a handler, then admits no more", func(t *testing.T) {
		release := make(chan struct{})
		var calls atomic.Int32
		n, srv := trackedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			<-release
			_, _ = io.WriteString(w, "done")
		}))
		answer := make(chan string, 1)
		go func() {
			status, body, err := testutil.Get(srv.Client(), srv.URL+"/")
			answer <- fmt.Sprintf("%d %s %v", status, body, err)
		}()
		waitRunning(t, n, 1)
		closed := make(chan int, 1)
		go func() { closed <- n.requests.closeWhenIdle(context.Background()) }()
		select {
		case left := <-closed:
			t.Fatalf("closeWhenIdle returned (%d left) while a handler ran", left)
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		if left := <-closed; left != 0 {
			t.Fatalf("closeWhenIdle left %d running", left)
		}
		if got := <-answer; got != "200 done <nil>" {
			t.Fatalf("the running request got %s", got)
		}
		status, body, err := testutil.Get(srv.Client(), srv.URL+"/")
		shutdownProblem(t, status, body, err)
		if calls.Load() != 1 {
			t.Fatalf("the handler ran %d times, want once: a late request reached it", calls.Load())
		}
	})

	t.Run("closeWhenIdle gives up on a stuck handler at its deadline", func(t *testing.T) {
		release := make(chan struct{})
		n, srv := trackedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
		defer close(release)
		go func() { _, _, _ = testutil.Get(srv.Client(), srv.URL+"/") }()
		waitRunning(t, n, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if left := n.requests.closeWhenIdle(ctx); left != 1 {
			t.Fatalf("closeWhenIdle reported %d still running, want 1", left)
		}
	})
}

// inProcessNode starts a node in this process on fs, with opts, storing
// topic, which holds k1 = {"v":1}, and waits until it serves k1. Its logs
// go to logs.
func inProcessNode(t *testing.T, fs vfs.FS, edit func(*config.Config), opts ...Option) (n *Node, base string, logs *testutil.Buffer) {
	t.Helper()
	b := testkafka.Start(t)
	topic := testkafka.Name(t, "orders")
	b.CreateTopic(t, topic, 3)
	testkafka.Produce(t, b.Client(t), &kgo.Record{Topic: topic, Key: []byte("k1"), Value: []byte(`{"v":1}`)})
	cfg := testutil.NodeConfig(t, testkafka.Name(t, "app"), b.Addrs)
	cfg.Stores = []config.Store{{Name: "orders", Topic: topic}} // string keys, JSON values
	edit(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs = &testutil.Buffer{}
	opts = append(opts, withFS(fs), WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	n, err := Start(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	base = "http://" + n.Addr().String()
	testutil.WaitForNil(t, 30*time.Second, "k1 is served", func() error {
		status, body, err := testutil.Get(http.DefaultClient, base+"/v1/stores/orders/keys/k1")
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("%d %v %s", status, err, body)
		}
		if !strings.Contains(string(body), `"value":{"v":1}`) {
			t.Fatalf("k1: %s", body)
		}
		return nil
	})
	return n, base, logs
}

// stopPhases lists the shutdown phases a node logged, in order.
func stopPhases(logs string) []string {
	var out []string
	for line := range strings.Lines(logs) {
		_, m, ok := strings.Cut(line, `msg="`)
		if !ok {
			continue
		}
		m, _, _ = strings.Cut(m, `"`)
		switch m {
		case "left the group", "requests drained", "drain timeout passed; cancelling the requests left",
			"requests cancelled", "store closed", "node stopped":
			out = append(out, m)
		}
	}
	return out
}

// withFS puts the node's store on the file system it is given (the
// hook a test uses to give a node a failing disk), and a node stopped with
// nothing in flight goes through every phase at once.
func TestNodeStoreOnAGivenFileSystem(t *testing.T) {
	fs := vfs.NewMem()
	var dataDir string
	n, base, logs := inProcessNode(t, fs, func(c *config.Config) { dataDir = c.DataDir })

	inFS, err := fs.List(dataDir)
	if err != nil || !slices.ContainsFunc(inFS, func(f string) bool { return strings.HasPrefix(f, "MANIFEST-") }) {
		t.Errorf("the given file system holds %v (%v), want the store's files", inFS, err)
	}
	if onDisk, _ := vfs.Default.List(dataDir); slices.ContainsFunc(onDisk, func(f string) bool { return strings.HasPrefix(f, "MANIFEST-") }) {
		t.Errorf("the store was written to the data directory on disk: %v", onDisk)
	}

	if err := n.Close(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if got, want := stopPhases(logs.String()), []string{"left the group", "requests drained", "store closed", "node stopped"}; !slices.Equal(got, want) {
		t.Errorf("stop logged %q, want %q\n%s", got, want, logs)
	}
	if _, _, err := testutil.Get(http.DefaultClient, base+"/healthz"); err == nil {
		t.Error("the node still answers HTTP after stop")
	}
	if err := n.Close(); err != nil {
		t.Errorf("a second stop: %v, want the first one's nil", err)
	}
}

// lowDisk is the operating system's file system with, once full is set,
// 10 MiB free.
type lowDisk struct {
	vfs.FS
	full atomic.Bool
}

func (d *lowDisk) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	u, err := d.FS.GetDiskUsage(path)
	if d.full.Load() {
		u.AvailBytes = 10 << 20
	}
	return u, err
}

// A node whose engine fails (here: its disk is almost full) stops by
// itself, without waiting for a signal, and wait returns one line that
// names the failure, for the process to exit 1 with.
func TestNodeWaitEndsWhenTheEngineFails(t *testing.T) {
	fs := &lowDisk{FS: vfs.Default}
	n, base, logs := inProcessNode(t, fs, func(c *config.Config) { c.Storage.MinFreeSpace = 64 << 20 })
	waited := make(chan error, 1)
	go func() { waited <- n.Wait(context.Background()) }()
	fs.full.Store(true)
	var err error
	select {
	case err = <-waited:
	case <-time.After(30 * time.Second):
		t.Fatal("wait did not return within 30s of the disk filling")
	}
	failure := n.engine.Err()
	if failure == nil || err == nil || err.Error() != "node failed: "+failure.Error() || strings.Contains(err.Error(), "\n") {
		t.Fatalf("wait returned %v, want one line \"node failed: \" and the engine's error (%v)", err, failure)
	}
	t.Logf("wait returned: %v", err)
	// The engine left the group by itself: stop does not leave again.
	if got, want := stopPhases(logs.String()), []string{"requests drained", "store closed", "node stopped"}; !slices.Equal(got, want) {
		t.Errorf("stop logged %q, want %q\n%s", got, want, logs)
	}
	if _, _, err := testutil.Get(http.DefaultClient, base+"/healthz"); err == nil {
		t.Error("the failed node still answers HTTP after wait returned")
	}
}
