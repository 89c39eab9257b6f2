package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/internal/wasmgen"
)

// With --kafka: the brokers, each store's topic (partitions, cleanup.policy,
// permissions) and the group; a missing topic or an unreachable broker is
// one FAIL line and exit 1. Nothing is created: the group does not exist
// after the check any more than before.
func TestCheckKafka(t *testing.T) {
	b := testkafka.Start(t)
	topic := testkafka.Name(t, "orders")
	b.CreateTopic(t, topic, 3)
	missing := testkafka.Name(t, "missing")

	t.Run("all good", func(t *testing.T) {
		app := testkafka.Name(t, "app")
		path := checkFile(t, t.TempDir(), b.Addrs, app, "stores:\n  - {name: a, topic: "+topic+"}\n  - {name: b, topic: "+topic+", key: bytes}\n")
		r := runCtx(t, context.Background(), noEnv, "check", "--config", path, "--kafka")
		wantCheck(t, r, 0)
		for _, want := range []string{
			"ok   brokers: " + strings.Join(b.Addrs, ",") + " answer; no SASL\n",
			"ok   topic " + topic + " (stores[0], stores[1]): 3 partitions, cleanup.policy delete; may describe and read\n",
			"ok   group " + app + ": does not exist yet (no node has joined); may describe and read; not joined by this check\n",
			"4 of 4 checks passed\n",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
			}
		}
		wantNoGroup(t, b, app)
	})

	t.Run("a missing topic", func(t *testing.T) {
		app := testkafka.Name(t, "app")
		path := checkFile(t, t.TempDir(), b.Addrs, app, "stores:\n  - {name: a, topic: "+topic+"}\n  - {name: b, topic: "+missing+"}\n")
		r := runCtx(t, context.Background(), noEnv, "check", "--config", path, "--kafka")
		wantCheck(t, r, 1, "FAIL topic "+missing+" (stores[1]): ", fmt.Sprintf("topic %q does not exist", missing))
		if !strings.Contains(r.stdout, "ok   group "+app) {
			t.Errorf("the group was not checked:\n%s", r.stdout)
		}
		wantNoGroup(t, b, app)
		// Asking about it did not create it.
		if td := topicDetail(t, b, missing); td.Err == nil || len(td.Partitions) > 0 {
			t.Errorf("topic %s after the check: %d partitions, err %v; want it unknown", missing, len(td.Partitions), td.Err)
		}
	})

	t.Run("an unreachable broker", func(t *testing.T) {
		closed := testutil.FreeAddr(t)
		path := checkFile(t, t.TempDir(), []string{closed}, "app", "stores:\n  - {name: a, topic: "+topic+"}\n")
		r := runCtx(t, context.Background(), envOf(map[string]string{"IQENGINE_KAFKA_STARTUP_TIMEOUT": "1s"}), "check", "--config", path, "--kafka")
		wantCheck(t, r, 1, "FAIL brokers: kafka: no broker reachable at "+closed, "within 1s")
		if strings.Contains(r.stdout, "topic ") {
			t.Errorf("topics checked without a broker:\n%s", r.stdout)
		}
	})

	t.Run("a bad plugin is exit 2, with Kafka checked too", func(t *testing.T) {
		dir := t.TempDir()
		junk := writeBytes(t, dir, "junk.wasm", wasmgen.NotWasm())
		path := checkFile(t, dir, b.Addrs, testkafka.Name(t, "app"), "stores:\n  - {name: a, topic: "+missing+", value: {wasm: '"+junk+"'}}\n")
		r := runCtx(t, context.Background(), noEnv, "check", "--config", path, "--kafka")
		if r.code != 2 || strings.Count(r.stdout, "FAIL ") != 2 || !strings.Contains(r.stdout, "FAIL topic "+missing) {
			t.Fatalf("exit %d, want 2 with the plugin and the topic failed:\n%s", r.code, r.stdout)
		}
	})
}

// check --kafka leaves a running application alone: the group's members
// are the same after the check, although the check uses the running
// node's own configuration (its node id is the static instance id a
// joining client would take over).
func TestCheckLeavesTheGroupAlone(t *testing.T) {
	b := testkafka.Start(t)
	topic := testkafka.Name(t, "orders")
	b.CreateTopic(t, topic, 3)
	app := testkafka.Name(t, "app")
	pluginNode(t, b, func(c *config.Config) {
		c.ApplicationID = app
		c.Stores = []config.Store{{Name: "orders", Topic: topic}}
	})
	adm := kadm.NewClient(b.Client(t))
	var before kadm.DescribedGroup
	testutil.WaitForNil(t, 30*time.Second, "the node's group is stable", func() error {
		before = describeGroup(t, adm, app)
		if before.State != "Stable" || len(before.Members) != 1 {
			return fmt.Errorf("state %s with %d members", before.State, len(before.Members))
		}
		return nil
	})

	path := checkFile(t, t.TempDir(), b.Addrs, app, "stores:\n  - {name: orders, topic: "+topic+"}\n")
	r := runCtx(t, context.Background(), noEnv, "check", "--config", path, "--kafka")
	wantCheck(t, r, 0)
	if want := "ok   group " + app + ": Stable with 1 member; may describe and read; not joined by this check\n"; !strings.Contains(r.stdout, want) {
		t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
	}

	after := describeGroup(t, adm, app)
	if got, want := members(after), members(before); after.State != "Stable" || !slices.Equal(got, want) {
		t.Fatalf("after the check: %s %v\nbefore: %s %v", after.State, got, before.State, want)
	}
}

// describeGroup describes one group.
func describeGroup(t *testing.T, adm *kadm.Client, group string) kadm.DescribedGroup {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	return gs[group]
}

// members is who is in a group: member id, instance id and client id each.
func members(g kadm.DescribedGroup) []string {
	var out []string
	for _, m := range g.Members {
		id := ""
		if m.InstanceID != nil {
			id = *m.InstanceID
		}
		out = append(out, m.MemberID+" "+id+" "+m.ClientID)
	}
	slices.Sort(out)
	return out
}

// wantNoGroup fails t if the group exists: a check must not create it.
func wantNoGroup(t *testing.T, b *testkafka.Broker, group string) {
	t.Helper()
	adm := kadm.NewClient(b.Client(t))
	g := describeGroup(t, adm, group)
	if g.Err == nil && g.State != "Dead" { // GroupIDNotFound, or Dead before DescribeGroups v6
		t.Errorf("group %s after the check: state %q, err %v, members %v; want it not to exist", group, g.State, g.Err, members(g))
	}
	listed, err := adm.ListGroups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(listed.Groups(), group) {
		t.Errorf("group %s is listed after the check", group)
	}
}

// topicDetail is a topic's metadata, asked of the broker (not a cache).
func topicDetail(t *testing.T, b *testkafka.Broker, topic string) kadm.TopicDetail {
	t.Helper()
	md, err := kadm.NewClient(b.Client(t)).Metadata(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return md.Topics[topic]
}
