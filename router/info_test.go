package router

import (
	"net/http"
	"slices"
	"testing"

	"github.com/iqengine/iqengine/internal/buildinfo"
)

// GET /v1/info says which build runs and what the node serves; without
// Options.Info, what the handler knows of itself.
func TestInfo(t *testing.T) {
	_, h := newFakeNode(t)
	a := get(h, "/v1/info")
	if a.status != http.StatusOK || a.header.Get("Content-Type") != jsonContentType {
		t.Fatalf("GET /v1/info: %d %s: %s", a.status, a.header.Get("Content-Type"), a.body)
	}
	var got Info
	a.decode(t, &got)
	b := buildinfo.Get()
	if got.Version != b.Version || got.Commit != b.Commit || got.GoVersion != b.GoVersion || !slices.Equal(got.PluginABI, b.PluginABI) {
		t.Errorf("build = %+v, want %+v", got.Info, b)
	}
	if want := []string{"blobs", "counters", "docs", "ids", "orders", "sensors"}; got.NodeID != "n1" || !slices.Equal(got.Stores, want) {
		t.Errorf("node %q, stores %q; want n1 and %q", got.NodeID, got.Stores, want)
	}

	// A node supplies the rest: its application and its features.
	h = New(Options{Engine: newFakeEngine("n2"), Info: func() Info {
		return Info{NodeID: "n2", ApplicationID: "app", Features: map[string]any{"kafka_tls": true}}
	}})
	var supplied Info
	get(h, "/v1/info").decode(t, &supplied)
	if supplied.NodeID != "n2" || supplied.ApplicationID != "app" || supplied.Features["kafka_tls"] != true {
		t.Errorf("with Options.Info: %+v", supplied)
	}
}
