package node_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/node"
)

// A Go program embeds a node: it serves the "accounts" topic as a store,
// and any HTTP client reads a key's latest value from it. Here the brokers
// are franz-go's in-process kfake; in production they are the Kafka
// cluster's addresses.
func Example() {
	ctx := context.Background()
	brokers, stop := exampleBroker(ctx, &kgo.Record{Topic: "accounts", Key: []byte("alice"), Value: []byte(`{"balance":42}`), Timestamp: time.UnixMilli(1764633600000)})
	defer stop()

	dir, _ := os.MkdirTemp("", "iqengine-example-")
	defer os.RemoveAll(dir)
	cfg := config.Default()
	cfg.ApplicationID = "example"
	cfg.NodeID = "node-1"
	cfg.Listen = "127.0.0.1:0" // any free port
	cfg.DataDir = dir
	cfg.Kafka.Brokers = brokers
	cfg.Stores = []config.Store{{Name: "accounts", Topic: "accounts"}} // string keys, JSON values

	n, err := node.Start(ctx, cfg, node.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()

	// A lookup waits while the key's partition restores.
	resp, err := http.Get("http://" + n.Addr().String() + "/v1/stores/accounts/keys/alice")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status)
	fmt.Print(string(body))
	// Output:
	// 200 OK
	// {"key":"alice","value":{"balance":42},"partition":0,"offset":0,"timestamp":"2025-12-02T00:00:00.000Z","served_by":"node-1","replica":"active","lag":0,"position":"AQhhY2NvdW50cwEAAQ"}
}

// exampleBroker starts an in-process broker holding records, and returns
// its addresses and how to stop it.
func exampleBroker(ctx context.Context, records ...*kgo.Record) ([]string, func()) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		log.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, "accounts"); err != nil {
		log.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		log.Fatal(err)
	}
	return c.ListenAddrs(), c.Close
}

// Check a configuration as a node would run it, without running one: the
// configuration and the plugins, and with Kafka the brokers, each store's
// topic and the group, which Check describes and never joins.
func ExampleCheck() {
	ctx := context.Background()
	brokers, stop := exampleBroker(ctx)
	defer stop()

	cfg := config.Default()
	cfg.ApplicationID = "example"
	cfg.NodeID = "node-1"
	cfg.Kafka.Brokers = brokers
	cfg.Stores = []config.Store{{Name: "accounts", Topic: "accounts"}, {Name: "payments", Topic: "payments"}}

	for _, r := range node.Check(ctx, cfg, node.CheckOptions{Kafka: true}) {
		if r.Err != nil {
			fmt.Printf("FAIL %s: %v\n", r.What, r.Err)
			continue
		}
		fmt.Printf("ok   %s\n", r.What)
	}
	// Output:
	// ok   config
	// ok   brokers
	// ok   topic accounts (stores[0])
	// FAIL topic payments (stores[1]): topic "payments" does not exist (create it, or fix the store's topic)
	// ok   group example
}
