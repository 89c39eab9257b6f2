package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/demo"
	"github.com/iqengine/iqengine/node"
)

// demoCmd runs everything a newcomer needs in one process: the embedded
// broker, the demo topics with continuously updating data, the readings
// store's WebAssembly plugins, and the nodes.
func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer, log *slog.Logger) error {
	f, err := parseDemoFlags(args, stderr)
	if err != nil {
		return err
	}
	dir := f.dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "iqengine-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	d, err := startDemoData(ctx, dir)
	if err != nil {
		return err
	}
	defer d.close()
	nodes, err := startDemoNodes(ctx, f, dir, d, log)
	if err != nil {
		return err
	}
	prodDone := make(chan error, 1)
	go func() { prodDone <- d.producer.Run(ctx, f.rate) }()
	printDemoBanner(stdout, d, f.rate, nodes)

	<-ctx.Done()
	err = stopNodes(nodes)
	if perr := <-prodDone; perr != nil && !errors.Is(perr, context.Canceled) {
		err = errors.Join(err, fmt.Errorf("demo producer: %w", perr))
	}
	return err
}

// demoFlags are the demo's command line.
type demoFlags struct {
	dataDir string
	host    string
	port    int // the first node's
	nodes   int
	rate    int
}

func parseDemoFlags(args []string, stderr io.Writer) (demoFlags, error) {
	fs := newFlags("demo", "demo [--nodes 3] [--data-dir DIR] [--listen 127.0.0.1:7070]", stderr)
	dataDir := fs.String("data-dir", "", "keep the broker's and the nodes' data here (default: a temporary directory, removed at exit)")
	listen := fs.String("listen", "127.0.0.1:7070", "the first node's HTTP listen address; node i listens on the next ports (port 0: any free ports)")
	nodes := fs.Int("nodes", 3, "how many nodes form the demo application (1 to 9)")
	rate := fs.Int("rate", 200, "demo records produced per second")
	if err := fs.parse(args); err != nil {
		return demoFlags{}, err
	}
	if *rate < 1 {
		return demoFlags{}, usageError{fmt.Errorf("demo: --rate %d must be at least 1", *rate)}
	}
	if *nodes < 1 || *nodes > 9 {
		return demoFlags{}, usageError{fmt.Errorf("demo: --nodes %d must be from 1 to 9", *nodes)}
	}
	host, portText, err := net.SplitHostPort(*listen)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil || port < 0 || port+*nodes-1 > 65535 {
		return demoFlags{}, usageError{fmt.Errorf("demo: --listen %q is not host:port", *listen)}
	}
	return demoFlags{dataDir: *dataDir, host: host, port: port, nodes: *nodes, rate: *rate}, nil
}

// demoData is the embedded broker with the demo topics, seeded, and the
// producer that keeps them changing.
type demoData struct {
	broker     *kfake.Cluster
	brokers    []string
	client     *kgo.Client
	producer   *demo.Producer
	pluginsDir string
}

func startDemoData(ctx context.Context, dir string) (_ *demoData, err error) {
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.DataDir(filepath.Join(dir, "broker")))
	if err != nil {
		return nil, fmt.Errorf("demo: embedded broker: %w", err)
	}
	d := &demoData{broker: broker, brokers: broker.ListenAddrs()}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	// The plugins go where the user can see them and drop in a replacement,
	// which the nodes load within seconds.
	d.pluginsDir = filepath.Join(dir, "plugins")
	if err := demo.WritePlugins(d.pluginsDir); err != nil {
		return nil, err
	}
	d.client, err = kgo.NewClient(kgo.SeedBrokers(d.brokers...), kgo.ProducerLinger(10*time.Millisecond),
		kgo.RecordPartitioner(demo.Partitioner()))
	if err != nil {
		return nil, err
	}
	if err := demo.CreateTopics(ctx, kadm.NewClient(d.client), demo.Topics()); err != nil {
		return nil, fmt.Errorf("demo: topics: %w", err)
	}
	d.producer = demo.NewProducer(d.client, uint64(time.Now().UnixNano()), demo.Options{})
	if err := d.producer.Seed(ctx); err != nil {
		return nil, fmt.Errorf("demo: seed data: %w", err)
	}
	return d, nil
}

func (d *demoData) close() {
	if d.client != nil {
		d.client.Close()
	}
	d.broker.Close()
}

// startDemoNodes starts the demo application's nodes, or none.
func startDemoNodes(ctx context.Context, f demoFlags, dir string, d *demoData, log *slog.Logger) ([]*node.Node, error) {
	var running []*node.Node
	for i := 0; i < f.nodes; i++ {
		cfg := config.Default()
		cfg.ApplicationID = "iqengine-demo"
		cfg.NodeID = fmt.Sprintf("node-%d", i+1)
		cfg.DataDir = filepath.Join(dir, cfg.NodeID)
		cfg.Kafka.Brokers = d.brokers
		cfg.Kafka.SessionTimeout = config.Duration(10 * time.Second)
		cfg.Storage.CacheSize = 32 << 20
		cfg.Storage.MemTableSize = 16 << 20
		cfg.Plugins.Dir = d.pluginsDir
		cfg.Stores = demo.Stores()
		ln, err := demoListen(f.host, f.port, i, log)
		if err == nil {
			cfg.Listen = ln.Addr().String()
			var n *node.Node
			if n, err = node.Start(ctx, cfg, node.WithListener(ln), node.WithLogger(log)); err == nil {
				running = append(running, n)
				continue
			}
		}
		return nil, errors.Join(startError(err), stopNodes(running))
	}
	return running, nil
}

// stopNodes stops nodes in turn.
func stopNodes(nodes []*node.Node) error {
	var err error
	for _, n := range nodes {
		err = errors.Join(err, n.Close())
	}
	return err
}

func printDemoBanner(stdout io.Writer, d *demoData, rate int, nodes []*node.Node) {
	var urls []string
	for _, n := range nodes {
		urls = append(urls, "http://"+n.Addr().String())
	}
	brokers, pluginsDir := d.brokers, d.pluginsDir
	fmt.Fprintf(stdout, `
iqengine demo: an embedded broker at %[1]s, demo data updating at %[2]d records/s,
and %[3]d node(s) of one application at %[4]s.
The web console: %[5]s/ui/ (every node serves it).
Any node answers any key; try the same query on each. Try:

  curl %[5]s/v1/stores
  curl %[5]s/v1/stores/orders/keys/%[6]s
  curl '%[5]s/v1/stores/orders/keys?from=o-00100&to=o-00199&limit=5'
  curl '%[5]s/v1/stores/orders/keys?prefix=o-0004&limit=3'
  curl %[5]s/v1/stores/sensors/keys/%[7]d
  curl %[5]s/v1/stores/orders/count
  curl %[5]s/v1/metadata/instances
  curl %[5]s/v1/metadata/partitions
  curl %[5]s/v1/stores/sensors/keys/abc     # a bad key: a problem+json answer

The readings store holds binary records that WebAssembly plugins decode:
  curl %[5]s/v1/stores/readings/keys/%[8]s
  curl '%[5]s/v1/stores/readings/keys/%[8]s?t.fields=sensor,temp_c'
  curl '%[5]s/v1/stores/readings/keys?prefix=%[9]d&t.min_temp_c=20&limit=5'
Its plugins are in %[10]s: replace one there and the nodes reload it.

Ctrl-C stops it.
`, brokers[0], rate, len(urls), strings.Join(urls, ", "), urls[0], demo.SampleOrderKey(), demo.SampleSensorID(),
		demo.SampleReadingKey(), demo.SampleReadingSite(), pluginsDir)
}

// demoListen binds node i's HTTP port: the first node exactly the port
// asked for, node i the i-th port after it, or any free port when that one
// is taken (another program's, or the first was 0). Only the first port is
// the user's promise; the banner prints every node's URL.
func demoListen(host string, first, i int, log *slog.Logger) (net.Listener, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(portOf(first, i)))
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if i == 0 || !errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if ln, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", host, err)
	}
	log.Warn("demo port taken; this node listens on a free port instead", "node", i+1, "wanted", addr, "listen", ln.Addr().String())
	return ln, nil
}

// portOf is node i's port: the next ports after the first, or 0 (any free
// port) for all when the first is 0.
func portOf(first, i int) int {
	if first == 0 {
		return 0
	}
	return first + i
}
