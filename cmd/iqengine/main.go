// Command iqengine runs an interactive-query node for Kafka topics, the
// embedded development broker, a self-contained demo, the plugin tools and
// the benchmark harness. A Go program that embeds a node uses package node
// instead.
//
//	iqengine serve --config FILE   run a node
//	iqengine check --config FILE   check a configuration and its plugins without running a node (--kafka: the brokers, topics and group too)
//	iqengine broker                run the embedded Kafka-protocol broker
//	iqengine demo                  broker + demo data + three nodes from :7070
//	iqengine plugin inspect|test   inspect a WebAssembly plugin, or check it against vectors
//	iqengine bench COMMAND         the benchmark harness: load, produce, restore, wait, rss, floor, report
//	iqengine version               the version, commit and Go version of this build (also --version)
//
// Errors are one line on stderr and a non-zero exit: 2 for bad usage or
// configuration (nothing was started), 1 for a failure while running.
// check prints one line per check and exits 0 when every check passed, 2
// when the configuration is wrong (a plugin that does not load or fails its
// vectors included), else 1 when a Kafka check failed (an unreachable
// broker, a missing topic, a permission the node lacks).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/iqengine/iqengine/node"
)

const usage = `usage: iqengine <command> [flags]

commands:
  serve    run a node: iqengine serve --config FILE
  check    check a configuration without running a node: iqengine check --config FILE [--kafka]
           (exit 0: all checks passed; 2: bad usage, configuration or plugin; 1: a Kafka check failed)
  broker   run the embedded Kafka-protocol broker (development only)
  demo     run the embedded broker, demo data and a node on port 7070
  plugin   inspect and test WebAssembly plugins: iqengine plugin test X.wasm --vectors V.jsonl
  bench    the benchmark harness: load, produce, restore, wait, rss, floor, report
  version  print the version, commit and Go version of this build (also --version)

Run "iqengine <command> -h" for a command's flags.
`

// usageError is bad input on the command line or in the config: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// startError is what a node that did not start ends its command with: a
// configuration it cannot run with is bad usage (exit 2), anything else a
// failure (exit 1).
func startError(err error) error {
	var ce *node.ConfigError
	if errors.As(err, &ce) {
		return usageError{err}
	}
	return err
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, stdout, stderr, getenv)
}

// runContext is run until ctx ends (what an interrupt does to run).
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(logger)

	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = serveCmd(ctx, rest, stderr, getenv)
	case "check":
		err = checkCmd(ctx, rest, stdout, stderr, getenv)
	case "broker":
		err = brokerCmd(ctx, rest, stdout, stderr, logger)
	case "demo":
		err = demoCmd(ctx, rest, stdout, stderr, logger)
	case "plugin":
		err = pluginCmd(ctx, rest, stdout, stderr)
	case "bench":
		err = benchCmd(ctx, rest, stdout, stderr)
	case "version", "--version", "-version":
		err = versionCmd(rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "iqengine: unknown command %q: want serve, check, demo, broker, plugin, bench or version (see iqengine -h)\n", cmd)
		return 2
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "iqengine: %s\n", oneLine(err))
		return 2
	default:
		fmt.Fprintf(stderr, "iqengine: %s\n", oneLine(err))
		return 1
	}
}

// oneLine keeps an error to one readable line: its lines, trimmed, are
// joined by "; " (joined errors), or by " " after a line that ends in ":"
// (a heading such as YAML's "unmarshal errors:").
func oneLine(err error) string {
	var b strings.Builder
	for line := range strings.Lines(err.Error()) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(line)
	}
	return b.String()
}

// flags is a subcommand's flag set. It reports errors instead of exiting,
// in one line, and prints the full usage only for -h.
type flags struct {
	*flag.FlagSet
	synopsis string
	stderr   io.Writer
}

func newFlags(name, synopsis string, stderr io.Writer) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flags{FlagSet: fs, synopsis: synopsis, stderr: stderr}
}

// parse parses args, turning flag errors into usage errors.
func (f *flags) parse(args []string) error {
	err := f.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(f.stderr, "usage: iqengine %s\n\nflags:\n", f.synopsis)
		f.SetOutput(f.stderr)
		f.PrintDefaults()
		return err
	}
	if err != nil {
		return usageError{fmt.Errorf("%s: %w (see iqengine %s -h)", f.Name(), err, f.Name())}
	}
	if f.NArg() > 0 {
		return usageError{fmt.Errorf("%s: unexpected argument %q (see iqengine %s -h)", f.Name(), f.Arg(0), f.Name())}
	}
	return nil
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
