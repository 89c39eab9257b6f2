//go:build unix

// Command registry runs Apicurio Registry (the version testregistry names)
// on 127.0.0.1 for the tests, with in-memory storage, in the background
// until `stop`; its state is in .registry at the top of the repository (or
// IQENGINE_REGISTRY_DIR). It needs Java 21 or newer (JAVA21_HOME, or a JDK
// under /usr/lib/jvm) and, the first time, Maven to fetch the distribution
// from Maven Central. The work is done by package internal/testregistry,
// which tests call too.
//
// Usage, from within the repository:
//
//	go run ./internal/testregistry/cmd/registry start    start it, or use the one running; print its ccompat URL last
//	go run ./internal/testregistry/cmd/registry stop     stop it and remove its state
//	go run ./internal/testregistry/cmd/registry status   print its URL; exit 0 iff it runs and answers
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/iqengine/iqengine/internal/testregistry"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./internal/testregistry/cmd/registry start|stop|status")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "registry:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, command string) error {
	switch command {
	case "start":
		ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		started := time.Now()
		r, err := testregistry.Start(ctx, "", os.Stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "registry: Apicurio Registry %s answers (%s)\n", testregistry.Version, time.Since(started).Round(100*time.Millisecond))
		fmt.Println(r.URL)
		return nil
	case "stop":
		r, err := testregistry.Open("")
		if err != nil {
			fmt.Fprintln(os.Stderr, "registry: none runs")
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return r.Stop(ctx)
	case "status":
		r, err := testregistry.Open("")
		if err != nil {
			return err
		}
		if err := r.Ping(ctx); err != nil {
			return err
		}
		fmt.Println(r.URL)
		return nil
	}
	return fmt.Errorf("unknown command %q (start, stop or status)", command)
}
