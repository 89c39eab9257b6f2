//go:build unix

// Command kafka runs Apache Kafka on 127.0.0.1 for the tests: one node, or
// several forming one KRaft quorum, each a broker and a controller. They run
// in the background, past the command's exit, with their state in a
// directory (.kafka at the top of the repository, or IQENGINE_KAFKA_DIR)
// until `stop`. The jars come from scripts/kafka.sh (Maven Central, once).
// The work is done by package internal/testkafka, which tests call too.
//
// Usage, from within the repository:
//
//	go run ./internal/testkafka/cmd/kafka COMMAND [FLAGS] [ARGS]
//
//	start [--brokers N]   start the brokers, or use the ones already running;
//	                      print their bootstrap list on the last line
//	stop                  SIGTERM the brokers (SIGKILL those that do not stop
//	                      in time) and remove the state directory
//	status                print the bootstrap list; exit 0 iff every broker
//	                      runs and takes connections
//	kill-node ID          SIGKILL broker ID, as a crash; its data stays
//	start-node ID         start broker ID again on its data and wait until it
//	                      is back in the cluster
//	java CLASS|FILE.java [ARGS...]
//	                      run a Java main class or single-file program with
//	                      Kafka's jars, e.g. java
//	                      org.apache.kafka.tools.TopicCommand --bootstrap-server ADDRS --list
//
// Run a command with -h for its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/iqengine/iqengine/internal/testkafka"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code, err := run(ctx, os.Args[1], os.Args[2:])
	stop()
	if errors.Is(err, flag.ErrHelp) {
		code, err = 0, nil
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kafka:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: go run ./internal/testkafka/cmd/kafka start|stop|status|kill-node|start-node|java [FLAGS] [ARGS]")
	fmt.Fprintln(os.Stderr, "(go doc ./internal/testkafka/cmd/kafka for what each does)")
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "kafka: "+format+"\n", args...) }

// run runs one command and returns its exit status.
func run(ctx context.Context, command string, args []string) (int, error) {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	wait, what := 90*time.Second, "how long to wait for the brokers to be ready"
	if command == "stop" {
		wait, what = 30*time.Second, "how long to wait for the brokers to stop before killing them"
	}
	timeout := fs.Duration("timeout", wait, what)
	switch command {
	case "start":
		return start(ctx, fs, args, timeout)
	case "java":
		return java(ctx, args)
	case "stop", "status", "kill-node", "start-node":
		nargs := 0
		if strings.HasSuffix(command, "-node") {
			nargs = 1
		}
		if err := parse(fs, args, nargs); err != nil {
			return 2, err
		}
		c, err := testkafka.OpenCluster("")
		if err != nil {
			return 1, err
		}
		c.Logf = logf
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return manage(ctx, c, command, fs.Arg(0))
	case "help", "-h", "--help":
		usage()
		return 0, nil
	}
	usage()
	return 2, fmt.Errorf("unknown command %q", command)
}

func start(ctx context.Context, fs *flag.FlagSet, args []string, timeout *time.Duration) (int, error) {
	cfg := testkafka.Config{Logf: logf}
	fs.IntVar(&cfg.Brokers, "brokers", 0, "how many brokers (default: those running, else 1)")
	heap := fs.String("heap", "", `each broker's JVM heap flags (default "-Xms256m -Xmx1g" for one, "-Xms128m -Xmx512m" each for more)`)
	jvm := fs.String("jvm", "", "more JVM flags for every broker")
	fs.Func("prop", "a server.properties line KEY=VALUE for every broker (repeatable)", func(s string) error {
		cfg.Props = append(cfg.Props, s)
		return nil
	})
	if err := parse(fs, args, 0); err != nil {
		return 2, err
	}
	cfg.Heap, cfg.JVMOpts = strings.Fields(*heap), strings.Fields(*jvm)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c, err := testkafka.StartCluster(ctx, cfg)
	if err != nil {
		return 1, err
	}
	fmt.Println(c.Bootstrap())
	return 0, nil
}

// manage runs the commands on the cluster the state directory records.
func manage(ctx context.Context, c *testkafka.Cluster, command, node string) (int, error) {
	switch command {
	case "stop":
		return 0, c.Stop(ctx)
	case "status":
		if err := c.Status(); err != nil {
			return 1, err
		}
		fmt.Println(c.Bootstrap())
		return 0, nil
	}
	id, err := strconv.Atoi(node)
	if err != nil {
		return 2, fmt.Errorf("%s: the node's id is a number, not %q", command, node)
	}
	if command == "kill-node" {
		return 0, c.KillNode(id)
	}
	return 0, c.StartNode(ctx, id)
}

// java runs a Java program with Kafka's jars and returns its exit status.
func java(ctx context.Context, args []string) (int, error) {
	if len(args) == 0 {
		return 2, errors.New("java: which class or .java file?")
	}
	cmd, err := testkafka.Java(ctx, args...)
	if err != nil {
		return 1, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if exit, ok := errors.AsType[*exec.ExitError](err); ok {
			return exit.ExitCode(), nil
		}
		return 1, err
	}
	return 0, nil
}

// parse parses the flags and wants exactly n arguments after them.
func parse(fs *flag.FlagSet, args []string, n int) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != n {
		return fmt.Errorf("%s wants %d argument(s) after its flags, not %d", fs.Name(), n, fs.NArg())
	}
	return nil
}
