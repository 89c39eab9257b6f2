// Package buildinfo says which build of iqengine runs: its version, the
// commit it was built from, the Go version, and the plugin ABI versions it
// loads. `iqengine version`, GET /v1/info and the iqengine_build_info
// metric all read it here, so that they cannot disagree.
//
// It knows nothing of nodes, configuration or HTTP.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iqengine/iqengine/plugins"
)

// version is the release version, set when linking:
//
//	go build -ldflags "-X github.com/iqengine/iqengine/internal/buildinfo.version=v1.2.0" ./cmd/iqengine
//
// Left empty, it is the main module's version from the binary's build
// information (the tag or pseudo-version `go install` or a build in a Git
// checkout records), or "devel" when there is none.
var version string

// Info describes the running build.
type Info struct {
	// Version is the release version (see version above).
	Version string `json:"version"`
	// Commit is the Git commit the binary was built from (vcs.revision), or
	// "unknown" when it was not built in a checkout (go test, a source
	// archive, -buildvcs=false).
	Commit string `json:"commit"`
	// Modified reports that the checkout had uncommitted changes
	// (vcs.modified): the commit alone does not say what was built.
	Modified bool `json:"modified"`
	// GoVersion is the Go release that compiled it, e.g. "go1.26.8".
	GoVersion string `json:"go_version"`
	// PluginABI lists the plugin ABI versions this build loads
	// (sdk/ABI.md): every version from 1 to plugins.ABIVersion.
	PluginABI []int `json:"plugin_abi"`
}

// Get returns the running build's information.
func Get() Info {
	i := get()
	i.PluginABI = append([]int(nil), i.PluginABI...) // the caller's own
	return i
}

var get = sync.OnceValue(func() Info {
	i := Info{Version: version, Commit: "unknown", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Commit = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	for v := 1; v <= plugins.ABIVersion; v++ {
		i.PluginABI = append(i.PluginABI, v)
	}
	return i
})

// Collector is the iqengine_build_info gauge: 1, labelled with the
// version, the commit and the Go version, the Prometheus convention for
// telling which build runs where (join it to any other series by
// instance). Each call returns a new collector, for one registry.
func Collector() prometheus.Collector {
	i := get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "iqengine_build_info",
		Help:        "Always 1; its labels say which build of iqengine runs: version, commit, Go version.",
		ConstLabels: prometheus.Labels{"version": i.Version, "commit": i.Commit, "goversion": i.GoVersion},
	})
	g.Set(1)
	return g
}
