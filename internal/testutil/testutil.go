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
