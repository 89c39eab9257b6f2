// Package testutil holds the few helpers that tests of several packages
// share: waiting for a condition, a free port, an HTTP GET, a buffer safe
// for concurrent writers, an in-process node's configuration, reading a
// metric, what a call allocates. Anything that belongs to one package's
// tests stays in that package.
package testutil

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/serde"
)

// WaitFor polls cond every 20 ms until it holds, and fails t with what
// when it does not hold within timeout. Use it for state that has no event
// to wait on (another process, a broker); prefer a channel otherwise.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("after %v: %s", timeout, what)
	}
}

// WaitForNil is WaitFor for a condition that can say why it does not hold
// yet: it polls check every 20 ms until it returns nil, and fails t with
// what and check's last error when it does not within timeout.
func WaitForNil(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	var err error
	if !poll(timeout, func() bool { err = check(); return err == nil }) {
		t.Fatalf("after %v: %s: %v", timeout, what, err)
	}
}

// poll calls cond every 20 ms until it holds or timeout has passed, and
// reports whether it held. cond runs at least once, and once more at the
// deadline.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(min(20*time.Millisecond, time.Until(deadline)))
	}
	return true
}

// FreeAddr returns a loopback address whose port was free a moment ago,
// for a process the test starts and must tell where to listen, or for an
// address nothing listens on. In-process servers should listen on
// 127.0.0.1:0 instead.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// Get fetches url and returns its status and body.
func Get(client *http.Client, url string) (int, []byte, error) {
	status, _, body, err := fetch(client, url)
	return status, body, err
}

func fetch(client *http.Client, url string) (int, http.Header, []byte, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

// Buffer is a bytes.Buffer safe for concurrent use: a log or a process's
// output that a test reads while it is written.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// NodeConfig is the configuration of an in-process test node, n1, on the
// given brokers: a group and a data directory of its own, any free port,
// small caches. The caller adds its stores.
func NodeConfig(t testing.TB, group string, brokers []string) config.Config {
	cfg := config.Default()
	cfg.ApplicationID = group
	cfg.NodeID = "n1"
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.SessionTimeout = config.Duration(6 * time.Second)
	cfg.Storage.CacheSize = 8 << 20
	cfg.Storage.MemTableSize = 4 << 20
	return cfg
}

// JSONValue is a JSON document of size bytes for key, as a producer of
// small JSON records writes: {"id":key,"pad":"..."} with pseudo-random
// letters as padding (the same for the same key), so that a store's blocks
// do not compress to nothing. size must leave room for the key.
func JSONValue(key []byte, size int) []byte {
	v := fmt.Appendf(make([]byte, 0, size), `{"id":%q,"pad":"`, key)
	rng := rand.New(rand.NewPCG(uint64(len(key)), uint64(serde.Murmur2(key))))
	for len(v) < size-2 {
		v = append(v, byte('a'+rng.IntN(26)))
	}
	return append(v, `"}`...)
}

// DirSize is the bytes of the files under dir (a store's size on disk).
func DirSize(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if info, err := d.Info(); err == nil {
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
