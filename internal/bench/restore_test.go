package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/iqengine/iqengine/internal/testutil"
)

// The test binary doubles as the process that Restore starts: with
// BENCH_TEST_HELPER=ADDR it serves /readyz (503 for its first 200ms, then
// 200) and /v1/stores/s/keys/{key} (200 for every key) on ADDR until
// SIGTERM, and with BENCH_TEST_HELPER=exit it exits at once.
func TestMain(m *testing.M) {
	switch addr := os.Getenv("BENCH_TEST_HELPER"); addr {
	case "":
		os.Exit(m.Run())
	case "exit":
		os.Exit(3)
	default:
		start := time.Now()
		mux := http.NewServeMux()
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
			if time.Since(start) < 200*time.Millisecond {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, `{"status":"ready"}`)
		})
		mux.HandleFunc("/v1/stores/s/keys/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"key":"x","value":1}`)
		})
		if err := http.ListenAndServe(addr, mux); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func TestRestoreTimesAProcess(t *testing.T) {
	addr := testutil.FreeAddr(t)
	state := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "old"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	res, err := Restore(context.Background(), RestoreOptions{
		Command: []string{os.Args[0], "-test.run=^$"},
		Env:     []string{"BENCH_TEST_HELPER=" + addr},
		Log:     &syncWriter{b: &log},
		Wipe:    state,
		Ready: ReadyOptions{
			URL:    "http://" + addr + "/readyz",
			Probes: []string{"http://" + addr + "/v1/stores/s/keys/a", "http://" + addr + "/v1/stores/s/keys/b"},
			Poll:   10 * time.Millisecond,
		},
		Records: 1000,
		Settle:  50 * time.Millisecond,
		Timeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatalf("%v; log:\n%s", err, log.String())
	}
	if !(res.UpSeconds > 0 && res.UpSeconds <= res.ReadySeconds && res.ReadySeconds <= res.Seconds) {
		t.Errorf("up %v, ready %v, restored %v: want increasing", res.UpSeconds, res.ReadySeconds, res.Seconds)
	}
	if res.ReadySeconds < 0.2 {
		t.Errorf("ready after %v s, but the helper answers 503 for 0.2 s", res.ReadySeconds)
	}
	if res.Memory.RSS <= 0 || res.Memory.Peak < res.Memory.RSS || res.MemoryAfterSettle == nil {
		t.Errorf("memory %+v, after settle %v", res.Memory, res.MemoryAfterSettle)
	}
	if res.RecordsPerSecond <= 0 || res.Records != 1000 {
		t.Errorf("records %d, %v/s", res.Records, res.RecordsPerSecond)
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Errorf("state dir not wiped: %v", entries)
	}
	// The process was stopped: its port is free again.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still answers after Restore", addr)
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func TestRestoreReportsAnEarlyExit(t *testing.T) {
	start := time.Now()
	_, err := Restore(context.Background(), RestoreOptions{
		Command: []string{os.Args[0], "-test.run=^$"},
		Env:     []string{"BENCH_TEST_HELPER=exit"},
		Ready:   ReadyOptions{URL: "http://" + testutil.FreeAddr(t) + "/readyz"},
		Timeout: 20 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("err %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %v to notice the exit", time.Since(start))
	}
}

func TestWaitReadyWaitsForProbesAndOwners(t *testing.T) {
	var ready, probes, owners atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/readyz":
			if ready.Add(1) < 3 {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		case r.URL.Path == "/instances":
			if owners.Add(1) < 3 {
				fmt.Fprint(w, `{"instances":[{"url":"a","stores":{"s":[0,1]}},{"url":"b","stores":{"s":[]}}]}`)
			} else {
				fmt.Fprint(w, `{"instances":[{"url":"a","stores":{"s":[0]}},{"url":"b","partitions":[1]}]}`)
			}
		default:
			if probes.Add(1) < 3 {
				w.WriteHeader(http.StatusNotFound)
			}
		}
	}))
	defer srv.Close()
	start := time.Now()
	times, err := WaitReady(context.Background(), start, ReadyOptions{
		URL: srv.URL + "/readyz", Probes: []string{srv.URL + "/k/1", srv.URL + "/k/2"},
		InstancesURL: srv.URL + "/instances", MinInstances: 2, Poll: time.Millisecond,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ready.Load() != 3 || owners.Load() != 3 || probes.Load() < 4 {
		t.Errorf("readyz asked %d times, instances %d, probes %d", ready.Load(), owners.Load(), probes.Load())
	}
	if times.Up <= 0 || times.Ready < times.Up || times.Probed < times.Ready {
		t.Errorf("times %+v", times)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = WaitReady(ctx, time.Now(), ReadyOptions{Probes: []string{srv.URL + "/readyz-never"}, Poll: time.Millisecond}, nil)
	if err != nil {
		t.Fatalf("probes only: %v", err)
	}
	srv.Close()
	_, err = WaitReady(ctx, time.Now(), ReadyOptions{URL: srv.URL + "/readyz", Poll: time.Millisecond}, nil)
	if err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Errorf("closed server: %v", err)
	}
}

func TestParseStatus(t *testing.T) {
	m, err := parseStatus([]byte("Name:\tx\nVmPeak:\t  999 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\nThreads: 3\n"))
	if err != nil || m.RSS != 1<<20 || m.Peak != 2<<20 {
		t.Fatalf("%+v, %v", m, err)
	}
	if _, err := parseStatus([]byte("Name: kthread\n")); err == nil {
		t.Error("no VmRSS accepted")
	}
	if _, err := parseStatus([]byte("VmRSS: 12 MB\nVmHWM: 1 kB\n")); err == nil {
		t.Error("MB accepted")
	}
	self, err := ReadMemory(os.Getpid())
	if err != nil || self.RSS <= 0 {
		t.Fatalf("own memory %+v, %v", self, err)
	}
	if _, err := ReadMemory(1 << 30); err == nil {
		t.Error("memory of a missing pid")
	}
}

// WatchPID checks on a ticker. In a synctest bubble the clock moves only
// when every goroutine waits, so a minute of checks takes no time.
func TestWatchPID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		select {
		case <-WatchPID(ctx, os.Getpid()):
			t.Fatal("own process reported gone")
		case <-time.After(time.Minute):
		}
		gone := WatchPID(ctx, 1<<30)
		synctest.Wait()
		select {
		case <-gone:
		default:
			t.Fatal("missing pid not reported at the first check")
		}
	})
}
