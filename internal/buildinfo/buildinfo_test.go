package buildinfo

import (
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iqengine/iqengine/plugins"
)

// A test binary has no version and no commit of its own: Get says so
// plainly, and the metric carries the same values as Get.
func TestGetAndMetricAgree(t *testing.T) {
	i := Get()
	if i.Version != "devel" || i.Commit != "unknown" || i.GoVersion != runtime.Version() {
		t.Errorf("Get() = %+v, want version devel, commit unknown, Go %s", i, runtime.Version())
	}
	var abi []int
	for v := range plugins.ABIVersion {
		abi = append(abi, v+1)
	}
	if !slices.Equal(i.PluginABI, abi) {
		t.Errorf("plugin ABI %v, want 1 to %d", i.PluginABI, plugins.ABIVersion)
	}
	i.PluginABI[0] = 99
	if Get().PluginABI[0] == 99 {
		t.Error("a caller changed the build's plugin ABI list")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector())
	want := `# HELP iqengine_build_info Always 1; its labels say which build of iqengine runs: version, commit, Go version.
# TYPE iqengine_build_info gauge
iqengine_build_info{commit="unknown",goversion="` + runtime.Version() + `",version="devel"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "iqengine_build_info"); err != nil {
		t.Error(err)
	}
}
