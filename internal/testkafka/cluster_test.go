//go:build unix

package testkafka

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// configured returns a cluster of n nodes configured in a new directory
// (server.properties, cluster.json), none of them started.
func configured(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	c := &Cluster{Dir: t.TempDir()}
	if err := claim(c.Dir); err != nil {
		t.Fatal(err)
	}
	if err := c.configure(cfg, "java", "lib"); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestServerProperties(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		node  int
		wants []string
	}{
		{"one node", Config{}, 1, []string{"node.id=1\n", "default.replication.factor=1\n", "min.insync.replicas=1\n", "transaction.state.log.min.isr=1\n"}},
		{"node 2 of 3", Config{Brokers: 3}, 2, []string{"node.id=2\n", "default.replication.factor=3\n", "min.insync.replicas=2\n", "offsets.topic.replication.factor=3\n"}},
		{"node 4 of 5", Config{Brokers: 5}, 4, []string{"node.id=4\n", "default.replication.factor=3\n", "min.insync.replicas=2\n"}},
		{"props come last", Config{Props: []string{"num.partitions=7"}}, 1, []string{"num.partitions=1\n", "# Config.Props\nnum.partitions=7\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := configured(t, tc.cfg)
			b, err := os.ReadFile(propsFile(c.home(tc.node)))
			if err != nil {
				t.Fatal(err)
			}
			props := string(b)
			n := c.Nodes[tc.node-1]
			var quorum []string
			for _, o := range c.Nodes {
				quorum = append(quorum, o.ControllerAddr)
			}
			wants := append(tc.wants,
				"controller.quorum.bootstrap.servers="+strings.Join(quorum, ",")+"\n",
				"listeners=PLAINTEXT://"+n.Addr+",CONTROLLER://"+n.ControllerAddr+"\n",
				"log.dirs="+filepath.Join(c.home(tc.node), "data")+"\n",
				"auto.create.topics.enable=false\n")
			for _, want := range wants {
				if !strings.Contains(props, want) {
					t.Errorf("server.properties lacks %q:\n%s", want, props)
				}
			}
			if extra := strings.Join(tc.cfg.Props, "\n") + "\n"; len(tc.cfg.Props) > 0 && !strings.HasSuffix(props, extra) {
				t.Errorf("server.properties does not end with Config.Props, which must win:\n%s", props)
			}
		})
	}
}

func TestNodesHaveTheirOwnPorts(t *testing.T) {
	c := configured(t, Config{Brokers: 3})
	seen := map[string]bool{}
	for _, n := range c.Nodes {
		for _, addr := range []string{n.Addr, n.ControllerAddr} {
			if seen[addr] {
				t.Errorf("%s is given twice", addr)
			}
			seen[addr] = true
		}
	}
	reopened, err := OpenCluster(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if reopened.Bootstrap() != c.Bootstrap() || len(c.Nodes) != 3 {
		t.Errorf("reopened: %q, configured: %q", reopened.Bootstrap(), c.Bootstrap())
	}
}

func TestRandomID(t *testing.T) {
	for range 1000 {
		id := randomID()
		b, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(b) != 16 || strings.HasPrefix(id, "-") {
			t.Fatalf("%q: not 16 bytes of URL-safe base64 without '-' first (%v)", id, err)
		}
	}
}

func TestAForeignDirectoryIsNeverWiped(t *testing.T) {
	dir := t.TempDir()
	precious := filepath.Join(dir, "precious")
	if err := os.WriteFile(precious, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := StartCluster(context.Background(), Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "not made by") {
		t.Errorf("StartCluster in a foreign directory: %v", err)
	}
	if err := (&Cluster{Dir: dir}).Stop(context.Background()); err == nil {
		t.Error("Stop in a foreign directory: no error")
	}
	if _, err := os.Stat(precious); err != nil {
		t.Fatalf("the foreign directory's file: %v", err)
	}
}

// A pid file names a node's process only while that process runs the
// node's command line: a pid that another program has since is left alone.
func TestOnlyTheNodesOwnProcessIsSignalled(t *testing.T) {
	c := configured(t, Config{})
	home := c.home(1)
	if err := os.WriteFile(filepath.Join(home, "kafka.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Status(); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("status with the test's own pid recorded: %v", err)
	}
	if err := c.KillNode(1); err == nil {
		t.Error("KillNode of a node whose pid is another program's: no error")
	}

	// A stand-in for the broker: its command line names the node's
	// server.properties, as the java command does.
	if err := launch(home, []string{"sh", "-c", "sleep 60", propsFile(home)}); err != nil {
		t.Fatal(err)
	}
	pid, ok := runningPid(home)
	if !ok {
		t.Fatal("the stand-in does not count as running")
	}
	if err := c.Status(); err == nil || !strings.Contains(err.Error(), "does not take connections") {
		t.Errorf("status with a node that listens nowhere: %v", err)
	}
	if err := c.KillNode(1); err != nil {
		t.Fatal(err)
	}
	if alive(pid, home) {
		t.Error("the node still runs after KillNode")
	}

	if err := launch(home, []string{"sh", "-c", "sleep 60", propsFile(home)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the state directory after Stop: %v", err)
	}
	reopened, err := OpenCluster(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := reopened.Status(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("status after Stop: %v", err)
	}
}

// The readiness check asks one broker for the brokers it knows.
func TestListsAsksOneBrokerForTheBrokers(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	ctx := context.Background()
	addr := fake.ListenAddrs()[1]
	if err := lists(ctx, addr, []int{0, 1, 2}); err != nil {
		t.Errorf("all three brokers: %v", err)
	}
	if err := lists(ctx, addr, []int{1, 3}); err == nil {
		t.Error("a broker that does not exist was listed")
	}
	if err := lists(ctx, "127.0.0.1:1", []int{1}); err == nil {
		t.Error("nothing listening: no error")
	}
}
