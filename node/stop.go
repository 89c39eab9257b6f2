package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/router"
)

// How long stop waits for each phase that does not have a configured
// deadline.
const (
	// leaveWait bounds leaving the group, and closing the engine after a
	// clean stop.
	leaveWait = 15 * time.Second
	// cancelWait is how long handlers get to return once their requests are
	// cancelled (queries check their context between steps).
	cancelWait = 5 * time.Second
	// failedStopWait bounds closing a failed engine: a write stuck on the
	// disk that failed it may never return, and the process must still exit.
	// It is a little longer than the store's own wait for operations in
	// flight (5 s), so a store that gives up on a stuck write says so.
	failedStopWait = 6 * time.Second
	// answerWait is how long the cancelled requests' answers get to reach
	// the wire before the connections close.
	answerWait = time.Second
)

// StopTimeout is the longest Close can take on a node configured with cfg:
// leaving the group, the drain (shutdown.drain_timeout), cancelling the
// requests left and sending their answers, and closing the engine, each
// bounded. Whatever stops the process by force (Kubernetes'
// terminationGracePeriodSeconds, systemd's TimeoutStopSec) should wait at
// least this long after SIGTERM, or it may cut a drain short or kill the
// process before its store is closed.
func StopTimeout(cfg config.Config) time.Duration {
	return leaveWait + cfg.Shutdown.DrainTimeout.D() + cancelWait + answerWait + leaveWait
}

// Close stops the node in an order that loses no answer and never lets a
// request read a closed store:
//
//  1. Leave the group, so the node's partitions move now. The listener
//     stays open meanwhile: requests in flight finish, and peers that still
//     forward to this node get 421 not-owner and re-route.
//  2. Stop taking connections and let requests in flight finish, up to
//     shutdown.drain_timeout.
//  3. Past it, cancel the requests left and wait for their handlers to
//     return: a cancelled request that has no answer yet gets a 503 (ask
//     another node); Server.Close alone would not wait for the handlers.
//  4. Only then close the engine and its store, then the plugins.
//
// A failed engine has left the group by itself, and its store may be stuck:
// Close skips step 1 and gives closing the engine a bounded wait. Later
// calls return the first call's result.
func (n *Node) Close() error {
	n.stopOnce.Do(func() { n.stopErr = n.shutdown() })
	return n.stopErr
}

func (n *Node) shutdown() error {
	began := time.Now()
	failed := n.engine.Err() != nil
	var errs []error
	if !failed {
		t := time.Now()
		err := within(leaveWait, "leaving the group", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), leaveWait)
			defer cancel()
			return n.engine.Leave(ctx)
		})
		if err != nil {
			// Not in errs: engine.Stop below returns Leave's error again
			// (or, if Leave is stuck, fails to finish itself).
			n.log.Warn("leaving the group failed", "err", err, "took", since(t))
		} else {
			n.log.Info("left the group", "took", since(t), "requests_in_flight", n.requests.running())
		}
	}

	// Shutdown closes the listener and idle connections, then waits for
	// requests in flight (and up to 5 s for connections that peers opened
	// and never used: the partitions have moved already, so only the exit
	// waits for those).
	t := time.Now()
	before := n.requests.finished()
	drain := n.cfg.Shutdown.DrainTimeout.D()
	dctx, dcancel := context.WithTimeout(context.Background(), drain)
	serr := n.srv.Shutdown(dctx)
	dcancel()
	drained := n.requests.finished() - before
	// Whatever happens below, closeWhenIdle leaves no request running and
	// admits none: one that arrives late (on a connection accepted before
	// the listener closed) must not reach the store either.
	wctx, wcancel := context.WithTimeout(context.Background(), cancelWait)
	defer wcancel()
	if serr == nil || errors.Is(serr, http.ErrServerClosed) {
		n.requests.closeWhenIdle(wctx) // none runs once every connection is idle
		n.log.Info("requests drained", "drained", drained, "took", since(t))
	} else {
		t = time.Now()
		left := n.requests.running()
		n.log.Warn("drain timeout passed; cancelling the requests left", "drained", drained,
			"in_flight", left, "drain_timeout", drain.String())
		// Cancelled handlers answer before the connections close, so that a
		// client gets a 503 rather than a cut connection.
		n.cancelRequests()
		stuck := n.requests.closeWhenIdle(wctx)
		// Shutdown again lets the answers just written reach the wire;
		// Close then ends whatever is left.
		gctx, gcancel := context.WithTimeout(context.Background(), answerWait)
		_ = n.srv.Shutdown(gctx)
		gcancel()
		_ = n.srv.Close()
		n.log.Info("requests cancelled", "cancelled", left, "answered_503", n.requests.refused(),
			"still_running", stuck, "took", since(t))
		if stuck > 0 {
			errs = append(errs, fmt.Errorf("%d requests still running %s after they were cancelled", stuck, cancelWait))
		}
	}
	n.cancelRequests()

	t = time.Now()
	stopWait := leaveWait
	if failed {
		stopWait = failedStopWait
	}
	err := within(stopWait, "closing the engine", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), stopWait)
		defer cancel()
		return n.engine.Stop(ctx)
	})
	if err != nil {
		errs = append(errs, err)
		n.log.Error("closing the engine failed", "err", err, "took", since(t))
	} else {
		n.log.Info("store closed", "took", since(t))
	}
	n.plugins.close()
	n.admin.Close()
	n.stopTracing()
	n.log.Info("node stopped", "took", since(began))
	return errors.Join(errs...)
}

// within runs f, but returns after d with an error naming what when f has
// not returned by then: the process is stopping, and a call stuck on a
// failed disk must not keep it from exiting.
func within(d time.Duration, what string, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("%s did not finish within %s", what, d)
	}
}

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }

// inflight counts the HTTP handlers running. Once closed (closeWhenIdle)
// it admits no more: a request that arrives after the drain is answered
// 503 without touching the engine.
type inflight struct {
	mu     sync.Mutex
	n      int
	done   int64         // handlers that have returned
	denied int64         // requests answered 503 by track
	idle   chan struct{} // closed when n falls to 0, for closeWhenIdle
	closed bool
}

func (f *inflight) admit() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.n++
	return true
}

func (f *inflight) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	f.done++
	if f.n == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
}

func (f *inflight) deny() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.denied++
}

func (f *inflight) running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *inflight) finished() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done
}

func (f *inflight) refused() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.denied
}

// closeWhenIdle waits until no handler runs, then admits no more. When ctx
// ends first it closes anyway and returns how many still run.
func (f *inflight) closeWhenIdle(ctx context.Context) int {
	for {
		f.mu.Lock()
		if f.n == 0 || ctx.Err() != nil {
			f.closed = true
			n := f.n
			f.mu.Unlock()
			return n
		}
		if f.idle == nil {
			f.idle = make(chan struct{})
		}
		idle := f.idle
		f.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
		}
	}
}

// track counts h's requests in n.requests. A request cancelled by the
// shutdown whose handler wrote nothing (the router writes nothing for a
// request whose context ended, as for a client that went away) is answered
// 503 here, as is one that arrives once the node no longer admits requests:
// the client, or the peer that forwarded it, asks another node.
func (n *Node) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.requests.admit() {
			n.requests.deny()
			n.shuttingDown(w, r)
			return
		}
		defer n.requests.leave()
		aw := &answerWriter{ResponseWriter: w}
		h.ServeHTTP(aw, r)
		if !aw.wrote && n.requestsCtx.Err() != nil {
			n.requests.deny()
			n.shuttingDown(w, r)
		}
	})
}

// shuttingDown answers 503 partition-unavailable, which clients retry and
// peers treat as a reason to try the partition's owner again.
func (n *Node) shuttingDown(w http.ResponseWriter, r *http.Request) {
	router.Unavailable(w, r, "node "+n.cfg.NodeID+" is shutting down; ask another node")
}

// answerWriter notes whether a handler wrote anything. It passes Flush on,
// for streamed scans.
type answerWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *answerWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *answerWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *answerWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *answerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
