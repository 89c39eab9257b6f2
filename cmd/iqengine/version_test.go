package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iqengine/iqengine/internal/buildinfo"
	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/router"
)

// versionLine matches `iqengine version`'s output.
var versionLine = regexp.MustCompile(`^iqengine (\S+)\ncommit: (\S+)( \(modified\))?\ngo: (\S+)\nplugin ABI: ([0-9, ]+)\n$`)

// printedBuild parses `iqengine version`'s output.
func printedBuild(t *testing.T, out string) buildinfo.Info {
	t.Helper()
	m := versionLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("version output is not in the expected form:\n%s", out)
	}
	i := buildinfo.Info{Version: m[1], Commit: m[2], Modified: m[3] != "", GoVersion: m[4]}
	for v := range strings.SplitSeq(m[5], ", ") {
		var n int
		fmt.Sscan(v, &n)
		i.PluginABI = append(i.PluginABI, n)
	}
	return i
}

// `iqengine version` and --version print the build to stdout.
func TestVersion(t *testing.T) {
	want := buildinfo.Get()
	for _, arg := range []string{"version", "--version", "-version"} {
		r := runArgs(t, arg)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%s: exit %d, stderr %q", arg, r.code, r.stderr)
		}
		if got := printedBuild(t, r.stdout); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s printed %+v, want %+v", arg, got, want)
		}
	}
	r := runArgs(t, "version", "--json")
	if r.code != 2 {
		t.Fatalf("version --json: exit %d, want 2", r.code)
	}
	wantOneLine(t, r.stderr, "flag provided but not defined: -json")
}

// A binary linked with a version says it in `iqengine version`, on
// /v1/info and in the iqengine_build_info metric, with the same commit and
// Go version in all three.
func TestVersionInfoAndMetricAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const version = "v0.0.0-agree"
	bin := filepath.Join(t.TempDir(), "iqengine")
	ldflags := "-X github.com/iqengine/iqengine/internal/buildinfo.version=" + version
	// -buildvcs=auto records the commit in a Git clone even where GOFLAGS
	// turns it off; where Git cannot say (a worktree, a source archive)
	// the commit is "unknown", the same in all three.
	if out, err := exec.Command("go", "build", "-buildvcs=auto", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Logf("go build -buildvcs=auto: %v\n%s\nbuilding without the commit", err, out)
		if out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	printed := printedBuild(t, string(out))
	if printed.Version != version {
		t.Fatalf("version printed %q, want %q from -ldflags", printed.Version, version)
	}
	if !regexp.MustCompile(`^([0-9a-f]{40}|unknown)$`).MatchString(printed.Commit) {
		t.Errorf("commit %q is neither a Git commit nor unknown", printed.Commit)
	}
	t.Logf("iqengine version:\n%s", out)

	b := testkafka.Start(t)
	topic, app := testkafka.Name(t, "orders"), testkafka.Name(t, "app")
	b.CreateTopic(t, topic, 2)
	dir := t.TempDir()
	listen := testutil.FreeAddr(t)
	config := writeFile(t, dir, "iqengine.yaml", "application_id: "+app+"\nnode_id: n1\nlisten: "+listen+"\n"+
		"data_dir: "+filepath.Join(dir, "data")+"\n"+
		"kafka: {brokers: ["+strings.Join(b.Addrs, ", ")+"], session_timeout: 6s}\n"+
		"log: {format: json}\n"+
		"stores: [{name: orders, topic: "+topic+"}]\n")
	p := startProcess(t, bin, "n1", "serve", "--config", config)
	base := "http://" + listen
	testutil.WaitFor(t, 30*time.Second, "the node answers /readyz", func() bool {
		if p.done() {
			t.Fatalf("serve exited: %v\n%s", p.err, p.stderr.String())
		}
		status, _, err := testutil.Get(http.DefaultClient, base+"/readyz")
		return err == nil && status == http.StatusOK
	})

	var info router.Info
	_, body, err := testutil.Get(http.DefaultClient, base+"/v1/info")
	if err == nil {
		err = json.Unmarshal(body, &info)
	}
	if err != nil {
		t.Fatalf("/v1/info: %v: %s", err, body)
	}
	if fmt.Sprint(info.Info) != fmt.Sprint(printed) {
		t.Errorf("/v1/info says %+v, `iqengine version` %+v", info.Info, printed)
	}
	if info.NodeID != "n1" || info.ApplicationID != app || !slices.Equal(info.Stores, []string{"orders"}) {
		t.Errorf("/v1/info: %s", body)
	}
	_, metrics, err := testutil.Get(http.DefaultClient, base+"/metrics")
	want := fmt.Sprintf(`iqengine_build_info{commit=%q,goversion=%q,version=%q} 1`, printed.Commit, printed.GoVersion, version)
	if err != nil || !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics (%v) lacks %s", err, want)
	}

	p.stop(t, 20*time.Second)
	// log.format json: every line the node wrote is one JSON record.
	lines := 0
	for line := range strings.Lines(p.stderr.String()) {
		var r struct{ Msg string }
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Msg == "" {
			t.Errorf("stderr line is not a JSON log record (%v): %q", err, line)
		}
		lines++
	}
	if lines < 2 {
		t.Errorf("the node logged %d records from start to stop", lines)
	}
}
