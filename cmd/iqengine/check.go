package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/iqengine/iqengine/node"
)

// checkCmd checks a configuration as serve would run it (node.Check): one
// line per check on stdout, "ok" or "FAIL", then a summary. It exits 2 when
// the configuration or a plugin is wrong, else 1 when a Kafka check fails.
func checkCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlags("check", "check --config FILE [--kafka] [flags]", stderr)
	cf := addConfigFlags(fs)
	withKafka := fs.Bool("kafka", false, "also check the brokers, credentials, topics and group (the group is described, never joined), and the schema registry if a store uses it")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *cf.path == "" {
		return usageError{errors.New("check: --config FILE is required (see iqengine check -h)")}
	}
	cfg, err := cf.load(getenv)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL %s\n", oneLine(err)) // it names the file or the variable
		return usageError{errors.New("check: the configuration is not valid")}
	}
	failed, badConfig := 0, false
	results := node.Check(ctx, cfg, node.CheckOptions{Kafka: *withKafka, Result: func(r node.CheckResult) {
		if r.What == "config" {
			r.What = "config " + *cf.path
		}
		if r.Err == nil {
			fmt.Fprintf(stdout, "ok   %s: %s\n", r.What, r.Found)
			return
		}
		fmt.Fprintf(stdout, "FAIL %s: %s\n", r.What, oneLine(r.Err))
		failed++
		var ce *node.ConfigError
		badConfig = badConfig || errors.As(r.Err, &ce)
	}})
	switch {
	case badConfig:
		return usageError{fmt.Errorf("check: %d of %d checks failed", failed, len(results))}
	case failed > 0:
		return fmt.Errorf("check: %d of %d checks failed", failed, len(results))
	}
	fmt.Fprintf(stdout, "%d of %d checks passed", len(results), len(results))
	if !*withKafka {
		fmt.Fprint(stdout, " (Kafka not checked: add --kafka)")
	}
	fmt.Fprintln(stdout)
	return nil
}
