package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// brokerCmd runs franz-go's kfake, a Kafka-protocol broker in this process,
// persisted to a directory, so that several serve processes can share one
// broker during development. It is not Apache Kafka: use a real cluster for
// anything that matters.
func brokerCmd(ctx context.Context, args []string, stdout, stderr io.Writer, log *slog.Logger) error {
	fs := newFlags("broker", "broker [--listen 127.0.0.1:9092] [--data-dir DIR] [flags]", stderr)
	listen := fs.String("listen", "127.0.0.1:9092", "listen address; the embedded broker listens on 127.0.0.1 only")
	dataDir := fs.String("data-dir", "", "persist topics, records and groups here (default: in memory)")
	partitions := fs.Int("partitions", 12, "partitions of topics created without a count")
	mechanism := fs.String("sasl-mechanism", "", "require SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	user := fs.String("sasl-user", "", "the SASL user (with --sasl-mechanism)")
	password := fs.String("sasl-password", "", "the SASL password (with --sasl-mechanism)")
	if err := fs.parse(args); err != nil {
		return err
	}
	opts, err := brokerOptions(*listen, *dataDir, *partitions, *mechanism, *user, *password)
	if err != nil {
		return err
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	log.Info("embedded broker started", "listen", addr, "data_dir", *dataDir, "sasl", *mechanism != "")
	fmt.Fprintln(stdout, addr)
	<-ctx.Done()
	log.Info("embedded broker stopping")
	return nil
}

// brokerOptions validates the broker's flags into kfake options.
func brokerOptions(listen, dataDir string, partitions int, mechanism, user, password string) ([]kfake.Opt, error) {
	host, portText, err := net.SplitHostPort(listen)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil || port < 0 || port > 65535 {
		return nil, usageError{fmt.Errorf("broker: --listen %q is not host:port", listen)}
	}
	if host != "127.0.0.1" && host != "localhost" {
		return nil, usageError{fmt.Errorf("broker: --listen %q: the embedded broker listens on 127.0.0.1 only", listen)}
	}
	if partitions < 1 {
		return nil, usageError{fmt.Errorf("broker: --partitions %d must be at least 1", partitions)}
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DefaultNumPartitions(partitions), kfake.AllowAutoTopicCreation()}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	switch mechanism {
	case "":
		if user != "" || password != "" {
			return nil, usageError{fmt.Errorf("broker: --sasl-user and --sasl-password need --sasl-mechanism")}
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if user == "" || password == "" {
			return nil, usageError{fmt.Errorf("broker: --sasl-mechanism %s needs --sasl-user and --sasl-password", mechanism)}
		}
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(mechanism, user, password))
	default:
		return nil, usageError{fmt.Errorf("broker: --sasl-mechanism %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", mechanism)}
	}
	return opts, nil
}
