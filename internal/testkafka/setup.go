//go:build unix

package testkafka

// What StartCluster does before any node runs: the ports, every node's
// server.properties, the state file and the formatted storage.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// configure picks the ports, writes every node's server.properties and
// the state file, and makes the nodes' directories.
func (c *Cluster) configure(cfg Config, java, lib string) error {
	count := max(cfg.Brokers, 1)
	ports, err := freePorts(2 * count)
	if err != nil {
		return fmt.Errorf("free ports: %w", err)
	}
	heap := cfg.Heap
	if len(heap) == 0 {
		heap = []string{"-Xms256m", "-Xmx1g"}
		if count > 1 {
			heap = []string{"-Xms128m", "-Xmx512m"}
		}
	}
	log4j, err := repoFile("internal", "testkafka", "log4j2-broker.properties")
	if err != nil {
		return err
	}
	for i := range count {
		id, home := i+1, c.home(i+1)
		c.Nodes = append(c.Nodes, Node{
			ID:             id,
			Addr:           "127.0.0.1:" + strconv.Itoa(ports[i]),
			ControllerAddr: "127.0.0.1:" + strconv.Itoa(ports[count+i]),
			Cmd: slices.Concat([]string{java}, heap, []string{
				"-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
				"-Dkafka.logs.dir=" + filepath.Join(home, "logs"), "-Dlog4j2.configurationFile=" + log4j,
			}, cfg.JVMOpts, []string{"-cp", classpath(lib), "kafka.Kafka", propsFile(home)}),
		})
	}
	for _, n := range c.Nodes {
		home := c.home(n.ID)
		for _, d := range []string{"data", "logs"} {
			if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
				return err
			}
		}
		if err := os.WriteFile(propsFile(home), c.properties(n, cfg.Props), 0o644); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(c.Dir, stateFile), append(b, '\n'))
}

// properties is node n's server.properties: broker and controller on
// loopback, a quorum of every node, no automatic topic creation, and
// defaults for replication that fit the cluster's size.
func (c *Cluster) properties(n Node, extra []string) []byte {
	rf := min(len(c.Nodes), 3)
	isr := max(rf-1, 1)
	quorum := make([]string, len(c.Nodes))
	for i, o := range c.Nodes {
		quorum[i] = o.ControllerAddr
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by internal/testkafka for tests: node %d of %d, KRaft, broker and controller.\n", n.ID, len(c.Nodes))
	for _, kv := range [][2]any{
		{"process.roles", "broker,controller"},
		{"node.id", n.ID},
		{"controller.quorum.bootstrap.servers", strings.Join(quorum, ",")},
		{"listeners", "PLAINTEXT://" + n.Addr + ",CONTROLLER://" + n.ControllerAddr},
		{"advertised.listeners", "PLAINTEXT://" + n.Addr + ",CONTROLLER://" + n.ControllerAddr},
		{"listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"},
		{"inter.broker.listener.name", "PLAINTEXT"},
		{"controller.listener.names", "CONTROLLER"},
		{"log.dirs", filepath.Join(c.home(n.ID), "data")},
		{"num.partitions", 1},
		{"default.replication.factor", rf},
		{"min.insync.replicas", isr},
		{"auto.create.topics.enable", false},
		{"offsets.topic.replication.factor", rf},
		{"offsets.topic.num.partitions", 1},
		{"transaction.state.log.replication.factor", rf},
		{"transaction.state.log.min.isr", isr},
		{"transaction.state.log.num.partitions", 1},
		{"share.coordinator.state.topic.replication.factor", rf},
		{"share.coordinator.state.topic.min.isr", isr},
		{"group.initial.rebalance.delay.ms", 0},
		{"num.network.threads", 2},
		{"num.io.threads", 4},
		{"num.recovery.threads.per.data.dir", 1},
		{"log.retention.check.interval.ms", 300000},
	} {
		fmt.Fprintf(&b, "%s=%v\n", kv[0], kv[1])
	}
	if len(extra) > 0 {
		b.WriteString("# Config.Props\n" + strings.Join(extra, "\n") + "\n")
	}
	return []byte(b.String())
}

// format formats every node's KRaft storage, all at once, with one
// cluster id and the initial controllers: every node, each with the id of
// its metadata directory.
func (c *Cluster) format(ctx context.Context, java, lib string) error {
	voters := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		voters[i] = fmt.Sprintf("%d@%s:%s", n.ID, n.ControllerAddr, randomID())
	}
	cid := randomID()
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Go(func() {
			errs[i] = c.formatNode(ctx, java, lib, n, cid, strings.Join(voters, ","))
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Cluster) formatNode(ctx context.Context, java, lib string, n Node, cid, voters string) error {
	home := c.home(n.ID)
	cmd, err := toolCmd(ctx, java, lib, "kafka.tools.StorageTool", "format",
		"--config", propsFile(home), "--cluster-id", cid, "--initial-controllers", voters)
	if err != nil {
		return err
	}
	out, err := cmd.CombinedOutput()
	_ = os.WriteFile(filepath.Join(home, "logs", "format.log"), out, 0o644)
	if err != nil {
		return fmt.Errorf("formatting the storage of node %d: %w\n%s", n.ID, err, out)
	}
	return nil
}

// claim makes dir the cluster's state directory, or refuses a directory
// that holds something else: StartCluster and Stop empty it.
func claim(dir string) error {
	if home, _ := os.UserHomeDir(); dir == "/" || dir == home {
		return fmt.Errorf("refusing %s as the Kafka state directory", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 && !isFile(filepath.Join(dir, markerFile)) {
		return fmt.Errorf("%s is not empty and was not made by internal/testkafka: choose another state directory (%s)", dir, EnvDir)
	}
	return os.WriteFile(filepath.Join(dir, markerFile), nil, 0o644)
}

// empty removes everything in dir but its marker and its lock.
func empty(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != markerFile && e.Name() != lockFile {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// randomID is a Kafka Uuid as its tools write one: 16 random bytes in
// URL-safe base64 without padding, not starting with '-' (which would read
// as a flag).
func randomID() string {
	for {
		var b [16]byte
		_, _ = rand.Read(b[:])
		s := base64.RawURLEncoding.EncodeToString(b[:])
		if s[0] != '-' {
			return s
		}
	}
}
