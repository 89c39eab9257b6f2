package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
)

// process is one running iqengine process of a test, with its output.
type process struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr testutil.Buffer
	exited         chan struct{}
	err            error // Wait's error, set when exited is closed
}

// startProcess starts the binary with args. At t's end it kills the process
// if it still runs, and if t failed it logs the process's stderr.
func startProcess(t *testing.T, bin, name string, args ...string) *process {
	t.Helper()
	p, err := launch(bin, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.reap(t) })
	return p
}

// launch starts the binary with args; the caller reaps it.
func launch(bin, name string, args ...string) (*process, error) {
	p := &process{name: name, cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// reap ends the process if it still runs (with a goroutine dump on its
// stderr), and logs its stderr if t failed.
func (p *process) reap(t testing.TB) {
	if !p.done() {
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.exited:
		case <-time.After(2 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if t.Failed() {
		t.Logf("--- %s (%s) stderr:\n%s", p.name, strings.Join(p.cmd.Args[1:], " "), p.stderr.String())
	}
}

func (p *process) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to within for the process to exit 0,
// returning how long it took.
func (p *process) stop(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !p.done() {
		t.Fatalf("SIGTERM %s: %v", p.name, err)
	}
	start := time.Now()
	select {
	case <-p.exited:
	case <-time.After(within):
		t.Fatalf("%s did not exit within %s of SIGTERM", p.name, within)
	}
	took := time.Since(start)
	if p.err != nil {
		t.Fatalf("%s exited with %v after SIGTERM, want exit status 0", p.name, p.err)
	}
	return took
}

// clusterNode is one serve process and its base URL.
type clusterNode struct {
	*process
	id, base string
}

// instancesView is the part of /v1/metadata/instances the test reads.
type instancesView struct {
	Generation int32 `json:"generation"`
	Instances  []struct {
		NodeID string             `json:"node_id"`
		URL    string             `json:"url"`
		Stores map[string][]int32 `json:"stores"`
	} `json:"instances"`
}

// processBroker is what a multi-process test runs against.
type processBroker struct {
	brokers    []string
	topic, app string // unique topic (created) and application id
	cl         *kgo.Client
	adm        *kadm.Client
}

// startProcessBroker gives a multi-process test its broker: the real one
// named by IQENGINE_TEST_BROKERS, or `iqengine broker` run as a process. It
// creates a topic of the given partitions; on a real broker the topic and
// the group are deleted at the end.
func startProcessBroker(t *testing.T, bin, dir string, partitions int32) processBroker {
	t.Helper()
	var pb processBroker
	if testkafka.Real() {
		pb.brokers = strings.Split(os.Getenv(testkafka.EnvBrokers), ",")
	} else {
		addr := testutil.FreeAddr(t)
		b := startProcess(t, bin, "broker", "broker", "--listen", addr, "--data-dir", filepath.Join(dir, "broker"))
		waitDial(t, b, addr, 15*time.Second)
		pb.brokers = []string{addr}
		t.Cleanup(func() {
			if !b.done() && !t.Failed() {
				b.stop(t, 15*time.Second)
			}
		})
	}
	pb.topic, pb.app = testkafka.Name(t, "orders"), testkafka.Name(t, "app")
	cl, err := kgo.NewClient(kgo.SeedBrokers(pb.brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	pb.cl, pb.adm = cl, kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// -1: the broker's default replication factor.
	if resp, err := pb.adm.CreateTopic(ctx, partitions, -1, nil, pb.topic); err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", pb.topic, err, resp.Err)
	}
	if testkafka.Real() {
		// Cleanups run last first: this one while cl is still open.
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _ = pb.adm.DeleteTopics(ctx, pb.topic)
			_, _ = pb.adm.DeleteGroup(ctx, pb.app)
		})
	}
	return pb
}

// TestServeProcessesFormACluster runs a broker and three serve processes of
// one application: every node answers every key and scans every key, and
// after one node is stopped with SIGTERM the other two take its partitions
// and still answer everything.
func TestServeProcessesFormACluster(t *testing.T) {
	const (
		partitions = 12
		numKeys    = 500
		store      = "orders"
	)
	bin := buildBinary(t) // skips with -short
	testStart := time.Now()
	dir := t.TempDir()

	pb := startProcessBroker(t, bin, dir, partitions)
	brokers, topic, app, cl := pb.brokers, pb.topic, pb.app, pb.cl
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := make(map[string]string, numKeys)
	rs := make([]*kgo.Record, 0, numKeys)
	for i := range numKeys {
		k := fmt.Sprintf("k-%04d", i)
		v := fmt.Sprintf(`{"id":%q,"n":%d}`, k, i)
		want[k] = v
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(v)})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	keys := make([]string, 0, numKeys)
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	usedPartitions := map[int32]bool{}
	for _, r := range rs {
		usedPartitions[r.Partition] = true
	}
	if len(usedPartitions) != partitions {
		t.Fatalf("the keys went to %d partitions, want all %d", len(usedPartitions), partitions)
	}

	// One configuration file for all three nodes; the flags make them differ.
	config := nodeConfig(t, dir, app, brokers, topic, store, 6*time.Second)

	var nodes []*clusterNode
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		listen := testutil.FreeAddr(t)
		p := startProcess(t, bin, id, "serve", "--config", config, "--node-id", id,
			"--listen", listen, "--data-dir", filepath.Join(dir, id))
		nodes = append(nodes, &clusterNode{process: p, id: id, base: "http://" + listen})
	}
	client := &http.Client{Timeout: 15 * time.Second}

	formed := waitTable(t, client, nodes, partitions, store, 40*time.Second)
	t.Logf("3 processes formed generation %d %s after the test started", formed.Generation, time.Since(testStart).Round(time.Millisecond))
	checkAnswers(t, client, nodes, store, keys, want)

	// SIGTERM one: it leaves the group, the other two take its partitions.
	gone := nodes[1]
	took := gone.stop(t, 15*time.Second)
	t.Logf("%s exited 0 %s after SIGTERM", gone.id, took.Round(time.Millisecond))
	rest := []*clusterNode{nodes[0], nodes[2]}
	stopped := time.Now()
	formed = waitTable(t, client, rest, partitions, store, 30*time.Second)
	t.Logf("%s and %s formed generation %d %s after %s exited", rest[0].id, rest[1].id, formed.Generation,
		time.Since(stopped).Round(time.Millisecond), gone.id)
	checkAnswers(t, client, rest, store, keys, want)

	for _, n := range rest {
		took := n.stop(t, 15*time.Second)
		t.Logf("%s exited 0 %s after SIGTERM", n.id, took.Round(time.Millisecond))
	}
	for _, n := range nodes {
		if s := n.stderr.String(); strings.Contains(s, "level=ERROR") {
			t.Errorf("%s logged errors", n.id)
		}
	}
	t.Logf("the test took %s", time.Since(testStart).Round(time.Millisecond))
}

// waitDial waits until something accepts connections on addr, failing t
// if p exits first.
func waitDial(t *testing.T, p *process, addr string, within time.Duration) {
	t.Helper()
	testutil.WaitForNil(t, within, fmt.Sprintf("%s accepts connections on %s", p.name, addr), func() error {
		if p.done() {
			t.Fatalf("%s exited early: %v", p.name, p.err)
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// waitTable waits until every node of nodes answers /readyz 200 and lists
// exactly nodes, with one generation, in /v1/metadata/instances, and every
// partition of store's topic has exactly one owner among them.
func waitTable(t *testing.T, client *http.Client, nodes []*clusterNode, partitions int32, store string, within time.Duration) instancesView {
	t.Helper()
	var v instancesView
	testutil.WaitForNil(t, within, fmt.Sprintf("a %d-member table", len(nodes)), func() error {
		for _, n := range nodes {
			if n.done() {
				t.Fatalf("%s exited: %v", n.id, n.err)
			}
		}
		var err error
		v, err = tableAgreed(client, nodes, partitions, store)
		return err
	})
	return v
}

func tableAgreed(client *http.Client, nodes []*clusterNode, partitions int32, store string) (instancesView, error) {
	var first instancesView
	var wantIDs []string
	for _, n := range nodes {
		wantIDs = append(wantIDs, n.id)
	}
	slices.Sort(wantIDs)
	for i, n := range nodes {
		status, body, err := testutil.Get(client, n.base+"/readyz")
		if err != nil {
			return first, fmt.Errorf("%s /readyz: %w", n.id, err)
		}
		if status != http.StatusOK {
			return first, fmt.Errorf("%s /readyz: %d %s", n.id, status, body)
		}
		var v instancesView
		status, body, err = testutil.Get(client, n.base+"/v1/metadata/instances")
		if err == nil && status == http.StatusOK {
			err = json.Unmarshal(body, &v)
		}
		if err != nil || status != http.StatusOK {
			return first, fmt.Errorf("%s /v1/metadata/instances: %d %v %s", n.id, status, err, body)
		}
		var ids []string
		owned := map[int32]string{}
		for _, in := range v.Instances {
			ids = append(ids, in.NodeID)
			for _, p := range in.Stores[store] {
				if o, dup := owned[p]; dup {
					return first, fmt.Errorf("%s: partition %d owned by %s and %s", n.id, p, o, in.NodeID)
				}
				owned[p] = in.NodeID
			}
		}
		slices.Sort(ids)
		if !slices.Equal(ids, wantIDs) {
			return first, fmt.Errorf("%s lists instances %v (generation %d), want %v", n.id, ids, v.Generation, wantIDs)
		}
		if len(owned) != int(partitions) {
			return first, fmt.Errorf("%s: %d of %d partitions have an owner", n.id, len(owned), partitions)
		}
		if i == 0 {
			first = v
		} else if v.Generation != first.Generation {
			return first, fmt.Errorf("%s is at generation %d, %s at %d", n.id, v.Generation, nodes[0].id, first.Generation)
		}
	}
	return first, nil
}

// checkAnswers asks every node for every key, and scans in pages of 50
// through every node.
func checkAnswers(t *testing.T, client *http.Client, nodes []*clusterNode, store string, keys []string, want map[string]string) {
	t.Helper()
	for _, n := range nodes {
		servedBy := map[string]int{}
		for _, k := range keys {
			status, body, err := testutil.Get(client, n.base+"/v1/stores/"+store+"/keys/"+url.PathEscape(k))
			if err != nil {
				t.Fatalf("%s via %s: %v", k, n.id, err)
			}
			var got struct {
				Key      string          `json:"key"`
				Value    json.RawMessage `json:"value"`
				ServedBy string          `json:"served_by"`
			}
			if status == http.StatusOK {
				err = json.Unmarshal(body, &got)
			}
			if status != http.StatusOK || err != nil || got.Key != k || string(got.Value) != want[k] {
				t.Fatalf("%s via %s: %d %v %s, want value %s", k, n.id, status, err, body, want[k])
			}
			servedBy[got.ServedBy]++
		}
		if len(servedBy) != len(nodes) {
			t.Errorf("lookups via %s were served by %v, want every one of the %d nodes", n.id, servedBy, len(nodes))
		}

		var scanned []string
		for _, it := range scanAll(t, client, n.base, store, 50) {
			if string(it.Value) != want[it.Key] {
				t.Fatalf("scan via %s: %s = %s, want %s", n.id, it.Key, it.Value, want[it.Key])
			}
			scanned = append(scanned, it.Key)
		}
		if !slices.Equal(scanned, keys) {
			t.Fatalf("scan via %s in pages of 50: %d keys, want each of the %d once, in order", n.id, len(scanned), len(keys))
		}
	}
}

// scannedItem is one item of a scan page.
type scannedItem struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// scanAll pages through a full scan of store on the node at base, with
// pages of limit items, and returns the items in the order served.
func scanAll(t *testing.T, client *http.Client, base, store string, limit int) []scannedItem {
	t.Helper()
	var out []scannedItem
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatalf("scan via %s: the pages never end", base)
		}
		status, body, err := testutil.Get(client, fmt.Sprintf("%s/v1/stores/%s/keys?limit=%d&cursor=%s", base, store, limit, url.QueryEscape(cursor)))
		var page struct {
			Items      []scannedItem `json:"items"`
			NextCursor *string       `json:"next_cursor"`
		}
		if err == nil && status == http.StatusOK {
			err = json.Unmarshal(body, &page)
		}
		if err != nil || status != http.StatusOK {
			t.Fatalf("scan via %s, page %d: %d %v %s", base, pages, status, err, body)
		}
		if len(page.Items) > limit {
			t.Fatalf("scan via %s, page %d: %d items, limit %d", base, pages, len(page.Items), limit)
		}
		out = append(out, page.Items...)
		if page.NextCursor == nil {
			return out
		}
		cursor = *page.NextCursor
	}
}
