package kubernetes

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/node"
)

// Every probe's path answers 200 on a node that runs the ConfigMap's
// configuration with the first pod's environment (on the test broker, with
// topics and a group of the test's own): the kubelet would find the
// endpoints, and a healthy node passes them. A path the node does not serve
// answers 404, so the check tells the two apart.
func TestProbesAnswerOnANode(t *testing.T) {
	m := load(t)
	c := m.container(t)
	cfg := m.pod(t, 0).cfg

	b := testkafka.Start(t)
	cfg.Kafka.Brokers = b.Addrs
	cfg.ApplicationID = testkafka.Name(t, "app")
	cfg.DataDir = t.TempDir()
	cfg.Plugins.CacheDir = "" // derived again, under the new data_dir
	for i := range cfg.Stores {
		cfg.Stores[i].Topic = testkafka.Name(t, cfg.Stores[i].Topic)
		b.CreateTopic(t, cfg.Stores[i].Topic, 3)
	}
	// The container's port may be taken on this machine: the node listens
	// on any free port, and TestProbesNameTheNodesEndpoints checks that
	// the probes ask the configured one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Advertise = "http://" + ln.Addr().String()
	logs := &testutil.Buffer{}
	n, err := node.Start(context.Background(), cfg, node.WithListener(ln), node.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = n.Close()
		if t.Failed() {
			t.Logf("node logs:\n%s", logs)
		}
	})
	base := "http://" + n.Addr().String()
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
	}{
		{"startupProbe", c.StartupProbe},
		{"livenessProbe", c.LivenessProbe},
		{"readinessProbe", c.ReadinessProbe},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Fatalf("%s: not an HTTP GET", p.name)
		}
		path := p.probe.HTTPGet.Path
		testutil.WaitForNil(t, 30*time.Second, p.name+" passes", func() error {
			status, body, err := testutil.Get(http.DefaultClient, base+path)
			if err != nil || status != http.StatusOK {
				return fmt.Errorf("GET %s: %d %v %s", path, status, err, body)
			}
			return nil
		})
	}
	if status, _, err := testutil.Get(http.DefaultClient, base+"/no-such-probe"); err != nil || status != http.StatusNotFound {
		t.Fatalf("GET /no-such-probe: %d %v, want 404", status, err)
	}
}

// The pod's grace period covers the longest the node's shutdown can take
// with the ConfigMap's drain timeout, so the kubelet's SIGKILL never cuts
// the drain short or kills the node before its store is closed.
func TestGracePeriodFitsTheShutdown(t *testing.T) {
	m := load(t)
	cfg := m.pod(t, 0).cfg
	grace := m.sts.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil {
		t.Fatal("no terminationGracePeriodSeconds: Kubernetes' default, 30 s, is what the node's stop must then fit")
	}
	if stop := node.StopTimeout(cfg); time.Duration(*grace)*time.Second < stop {
		t.Errorf("terminationGracePeriodSeconds %d is shorter than the node's stop with shutdown.drain_timeout %s: up to %s",
			*grace, cfg.Shutdown.DrainTimeout.D(), stop)
	}
}
