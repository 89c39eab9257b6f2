//go:build unix

package testkafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// EnvDir names the environment variable that sets the state directory of
// the cluster the kafka command runs (default: .kafka at the top of the
// repository). A relative path is taken from the top of the repository, so
// that the command, run there, and the tests, run in their package's
// directory, name the same one.
const EnvDir = "IQENGINE_KAFKA_DIR"

// ErrNotRunning is Status's answer when the state directory records no
// cluster.
var ErrNotRunning = errors.New("not running")

const (
	stateFile  = "cluster.json"
	markerFile = ".testkafka" // the directory is ours: StartCluster and Stop may empty it
	lockFile   = ".lock"
)

// Config is the cluster StartCluster starts.
type Config struct {
	// Dir holds the cluster's state: cluster.json (ports and command lines)
	// and a directory per node, nodeN, with its server.properties, data/,
	// logs/server.log, kafka.out and kafka.pid. StartCluster refuses a
	// directory that is not empty and that it did not create. Default:
	// DefaultDir().
	Dir string
	// Brokers is the number of nodes, each a KRaft broker and controller,
	// all of them voters of one quorum. With more than one, topics default
	// to min(Brokers, 3) replicas and a min.insync.replicas one fewer.
	// Zero: the cluster already running in Dir whatever its size, else one.
	Brokers int
	// Heap is each node's JVM heap flags. Default: -Xms256m -Xmx1g for a
	// single node, -Xms128m -Xmx512m each for more.
	Heap []string
	// JVMOpts are more JVM flags for every node, after Heap.
	JVMOpts []string
	// Props are server.properties lines (key=value) added to every node's
	// after ours, so that they win.
	Props []string
	// Logf receives what StartCluster is doing; nil: nothing is said.
	Logf func(format string, args ...any)
}

// Cluster is Apache Kafka run as one Java process per node on 127.0.0.1,
// as its state directory records it: the processes outlive the program
// that started them, and any program can open the directory to stop the
// cluster or to crash and restart a node.
type Cluster struct {
	// Dir is the state directory, absolute.
	Dir string `json:"-"`
	// Nodes are the nodes in the order of their ids, 1 to len(Nodes).
	Nodes []Node `json:"nodes"`
	// Logf receives what the cluster's methods are doing; nil: nothing is said.
	Logf func(format string, args ...any) `json:"-"`
}

// Node is one node of a Cluster.
type Node struct {
	ID             int      `json:"id"`              // node.id, from 1
	Addr           string   `json:"addr"`            // the broker listener, host:port
	ControllerAddr string   `json:"controller_addr"` // the controller listener
	Cmd            []string `json:"cmd"`             // the java command line that runs it
}

// DefaultDir is the state directory named by IQENGINE_KAFKA_DIR, or else
// .kafka at the top of the repository.
func DefaultDir() (string, error) {
	dir := os.Getenv(EnvDir)
	if filepath.IsAbs(dir) {
		return dir, nil
	}
	if dir == "" {
		dir = ".kafka"
	}
	return repoFile(dir)
}

// stateDir is dir as an absolute path, or DefaultDir() if dir is "".
func stateDir(dir string) (string, error) {
	if dir == "" {
		return DefaultDir()
	}
	return filepath.Abs(dir)
}

// Running returns the cluster in DefaultDir() when the tests run against it
// (IQENGINE_TEST_BROKERS is its bootstrap list, as `make kafka-test` sets
// it), and skips t otherwise: only then may a test crash and restart its
// nodes. The cluster's messages go to t's log.
func Running(t testing.TB) *Cluster {
	t.Helper()
	const how = "needs the brokers of `go run ./internal/testkafka/cmd/kafka start`, as `make kafka-test` runs them"
	env := os.Getenv(EnvBrokers)
	if env == "" {
		t.Skip(how)
	}
	c, err := OpenCluster("")
	if err == nil {
		err = c.Status()
	}
	if err != nil || c.Bootstrap() != env {
		t.Skipf("%s (%s=%s; the cluster in %s: %q, %v)", how, EnvBrokers, env, c.dir(), c.Bootstrap(), err)
	}
	c.Logf = func(format string, args ...any) { t.Logf("kafka: "+format, args...) }
	return c
}

// StartCluster starts the cluster cfg describes, formatting every node's
// storage, and waits until every node answers a metadata request with all
// of them (the brokers are registered and unfenced) or ctx ends. A cluster
// that already runs in the directory is returned as it is if it has the
// size asked for, and an error otherwise; anything else there is wiped.
func StartCluster(ctx context.Context, cfg Config) (*Cluster, error) {
	dir, err := stateDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if err := claim(dir); err != nil {
		return nil, err
	}
	unlock, err := lock(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	old, err := OpenCluster(dir)
	if err != nil {
		return nil, err
	}
	if old.Status() == nil {
		if cfg.Brokers != 0 && cfg.Brokers != len(old.Nodes) {
			return nil, fmt.Errorf("%d broker(s) already run at %s, not %d: stop them first", len(old.Nodes), old.Bootstrap(), cfg.Brokers)
		}
		old.Logf = cfg.Logf
		return old, nil
	}
	old.killAll() // started but never ready, or some died: start over
	if err := empty(dir); err != nil {
		return nil, err
	}

	c := &Cluster{Dir: dir, Logf: cfg.Logf}
	var progress io.Writer // what scripts/kafka.sh says while it fetches the jars
	if cfg.Logf != nil {
		progress = logfWriter(cfg.Logf)
	}
	java, lib, err := locate(ctx, progress)
	if err != nil {
		return nil, err
	}
	if err := c.configure(cfg, java, lib); err != nil {
		return nil, err
	}
	if err := c.format(ctx, java, lib); err != nil {
		return nil, err
	}
	c.logf("starting %d Kafka node(s) in %s", len(c.Nodes), dir)
	for _, n := range c.Nodes {
		if err := launch(c.home(n.ID), n.Cmd); err != nil {
			c.killAll()
			return nil, fmt.Errorf("start node %d: %w", n.ID, err)
		}
	}
	if err := c.waitReady(ctx, c.Nodes, c.ids()); err != nil {
		c.killAll()
		return nil, err
	}
	return c, nil
}

// OpenCluster returns the cluster recorded in dir (""; DefaultDir()): one
// of no nodes when nothing is recorded there.
func OpenCluster(dir string) (*Cluster, error) {
	dir, err := stateDir(dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err == nil {
		err = json.Unmarshal(b, c)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster state in %s: %w", dir, err)
	}
	return c, nil
}

// Bootstrap is the comma-separated list of the brokers' addresses.
func (c *Cluster) Bootstrap() string {
	if c == nil {
		return ""
	}
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return strings.Join(addrs, ",")
}

// Status is nil when every node runs and takes connections on its broker
// listener, and otherwise says which does not (ErrNotRunning: no nodes).
func (c *Cluster) Status() error {
	if len(c.Nodes) == 0 {
		return ErrNotRunning
	}
	for _, n := range c.Nodes {
		pid, ok := runningPid(c.home(n.ID))
		if !ok {
			return fmt.Errorf("node %d of %d is not running", n.ID, len(c.Nodes))
		}
		if !accepts(n.Addr) {
			return fmt.Errorf("node %d of %d (pid %d) does not take connections on %s", n.ID, len(c.Nodes), pid, n.Addr)
		}
	}
	return nil
}

// Stop sends every node SIGTERM, so that they shut down together, waits
// for them to exit, kills with SIGKILL those still running when ctx ends,
// and removes the state directory.
func (c *Cluster) Stop(ctx context.Context) error {
	if _, err := os.Stat(c.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := claim(c.Dir); err != nil {
		return err
	}
	unlock, err := lock(c.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	// What the directory records now, not when c was opened.
	now, err := OpenCluster(c.Dir)
	if err != nil {
		return err
	}
	pids := map[int]int{}
	for _, n := range now.Nodes {
		if pid, ok := kill(c.home(n.ID), syscall.SIGTERM); ok {
			pids[n.ID] = pid
		}
	}
	for _, id := range slices.Sorted(maps.Keys(pids)) {
		if waitExit(ctx, pids[id], c.home(id)) != nil {
			c.logf("node %d (pid %d) did not stop in time, killing it", id, pids[id])
			_, _ = kill(c.home(id), syscall.SIGKILL)
			_ = waitExit(context.Background(), pids[id], c.home(id))
		}
	}
	return os.RemoveAll(c.Dir)
}

// KillNode crashes node id with SIGKILL and waits until it has exited. Its
// data stays, for StartNode.
func (c *Cluster) KillNode(id int) error {
	if _, err := c.node(id); err != nil {
		return err
	}
	unlock, err := lock(c.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	return c.killNode(id)
}

func (c *Cluster) killNode(id int) error {
	pid, ok := kill(c.home(id), syscall.SIGKILL)
	if !ok {
		return fmt.Errorf("node %d is not running", id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := waitExit(ctx, pid, c.home(id)); err != nil {
		return fmt.Errorf("node %d (pid %d) still runs a minute after SIGKILL", id, pid)
	}
	c.logf("node %d (pid %d) killed", id, pid)
	return nil
}

// StartNode starts node id again on its data and ports, and waits until it
// answers a metadata request with itself among the brokers (it is
// registered and unfenced) or ctx ends.
func (c *Cluster) StartNode(ctx context.Context, id int) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	unlock, err := lock(c.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	if pid, ok := runningPid(c.home(id)); ok {
		return fmt.Errorf("node %d already runs (pid %d)", id, pid)
	}
	start := time.Now()
	if err := launch(c.home(id), n.Cmd); err != nil {
		return fmt.Errorf("start node %d: %w", id, err)
	}
	if err := c.waitReady(ctx, []Node{n}, []int{id}); err != nil {
		_, _ = kill(c.home(id), syscall.SIGKILL)
		return err
	}
	c.logf("node %d started again at %s in %s", id, n.Addr, time.Since(start).Round(time.Millisecond))
	return nil
}

// waitReady waits until every node of nodes answers a metadata request
// that lists every broker of want, or ctx ends, or one of them exits.
func (c *Cluster) waitReady(ctx context.Context, nodes []Node, want []int) error {
	for {
		var last error
		for _, n := range nodes {
			if _, ok := runningPid(c.home(n.ID)); !ok {
				return c.failed(fmt.Sprintf("node %d exited during start-up", n.ID), nodes)
			}
			if err := lists(ctx, n.Addr, want); err != nil {
				last = fmt.Errorf("node %d: %w", n.ID, err)
				break
			}
		}
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return c.failed(fmt.Sprintf("not ready in time (%v)", last), nodes)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// lists asks the broker at addr, and only it, for the brokers it knows:
// registered and unfenced ones.
func lists(ctx context.Context, addr string, want []int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // none: only the brokers
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return err
	}
	var have []int
	for _, b := range resp.(*kmsg.MetadataResponse).Brokers {
		have = append(have, int(b.NodeID))
	}
	for _, id := range want {
		if !slices.Contains(have, id) {
			return fmt.Errorf("lists brokers %v, not %d", have, id)
		}
	}
	return nil
}

// failed returns msg with the end of the nodes' logs.
func (c *Cluster) failed(msg string, nodes []Node) error {
	lines := 40
	if len(nodes) > 1 {
		lines = 20
	}
	var b strings.Builder
	b.WriteString(msg)
	for _, n := range nodes {
		for _, f := range []string{filepath.Join("logs", "server.log"), "kafka.out"} {
			p := filepath.Join(c.home(n.ID), f)
			fmt.Fprintf(&b, "\n---- last lines of %s\n%s", p, tail(p, lines))
		}
	}
	return errors.New(b.String())
}

// killAll kills every node that runs, as a crash, and waits for them.
func (c *Cluster) killAll() {
	for _, n := range c.Nodes {
		if pid, ok := kill(c.home(n.ID), syscall.SIGKILL); ok {
			_ = waitExit(context.Background(), pid, c.home(n.ID))
		}
	}
}

func (c *Cluster) node(id int) (Node, error) {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("there is no node %d: the cluster in %s has %d", id, c.dir(), len(c.Nodes))
}

func (c *Cluster) ids() []int {
	ids := make([]int, len(c.Nodes))
	for i, n := range c.Nodes {
		ids[i] = n.ID
	}
	return ids
}

func (c *Cluster) home(id int) string { return filepath.Join(c.Dir, "node"+strconv.Itoa(id)) }

func (c *Cluster) dir() string {
	if c == nil {
		return "the state directory"
	}
	return c.Dir
}

func (c *Cluster) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

func propsFile(home string) string { return filepath.Join(home, "server.properties") }

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error() + "\n"
	}
	lines := strings.SplitAfter(string(b), "\n")
	return strings.Join(lines[max(len(lines)-n-1, 0):], "")
}

// logfWriter passes what is written to it to a Logf function.
type logfWriter func(format string, args ...any)

func (w logfWriter) Write(p []byte) (int, error) {
	w("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
