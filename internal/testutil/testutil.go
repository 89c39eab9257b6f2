// Package testutil holds the few helpers that tests of several packages
// share: waiting for a condition and picking a free port. Anything that
// belongs to one package's tests stays in that package.
package testutil

import (
	"net"
	"testing"
	"time"
)

// WaitFor polls cond every 20 ms until it holds, and fails t with what
// when it does not hold within timeout. Use it for state that has no event
// to wait on (another process, a broker); prefer a channel otherwise.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FreeAddr returns a loopback address whose port was free a moment ago,
// for a process the test starts and must tell where to listen. In-process
// servers should listen on 127.0.0.1:0 instead.
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
