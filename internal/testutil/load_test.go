package testutil

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// A request whose target went away under it is sent to another target and
// counted, not judged; a transport error from a target that is still there
// is judged.
func TestLoadResendsOnlyWhatAGoneTargetDropped(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(r.URL.Path)) }))
	defer up.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // refuses connections from the start

	for _, c := range []struct {
		name            string
		downIsGone      bool
		wantTarget      string
		wantErr         bool
		wantInterrupted int64
	}{
		{"the dropped request goes to the next target", true, "up", false, 1},
		{"an error from a target still there is an answer", false, "down", true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []Answer
			l := &Load{
				Clients: 1,
				Client:  up.Client(),
				Pick: func(_ *rand.Rand, not string) (Target, bool) {
					if not == "down" {
						return Target{ID: "up", Base: up.URL}, true
					}
					return Target{ID: "down", Base: down.URL, Gone: func() bool { return c.downIsGone }}, true
				},
				Next: func(*rand.Rand) (string, any) { return "/k", "k" },
			}
			ctx, cancel := context.WithCancel(context.Background())
			l.Answer = func(a Answer) {
				mu.Lock()
				got = append(got, a)
				mu.Unlock()
				cancel() // one answer is enough
			}
			l.Start(ctx)
			<-ctx.Done()
			l.Stop()
			if len(got) != 1 {
				t.Fatalf("%d answers, want 1", len(got))
			}
			a := got[0]
			if a.Target != c.wantTarget || (a.Err != nil) != c.wantErr || a.Tag != "k" || a.Path != "/k" {
				t.Errorf("answer from %s, err %v, tag %v, path %s; want from %s, error %v", a.Target, a.Err, a.Tag, a.Path, c.wantTarget, c.wantErr)
			}
			if !c.wantErr && (a.Status != http.StatusOK || string(a.Body) != "/k") {
				t.Errorf("answer %d %q, want 200 /k", a.Status, a.Body)
			}
			if l.Interrupted() != c.wantInterrupted {
				t.Errorf("Interrupted() = %d, want %d", l.Interrupted(), c.wantInterrupted)
			}
		})
	}
}
