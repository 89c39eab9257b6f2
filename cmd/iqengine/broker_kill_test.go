package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
)

// waitInSync waits until every partition of every topic, internal ones
// included, has all its replicas in sync.
func waitInSync(t *testing.T, ctx context.Context, adm *kadm.Client, within time.Duration) {
	t.Helper()
	testutil.WaitForNil(t, within, "replicas in sync", func() error {
		md, err := adm.Metadata(ctx)
		if err != nil {
			return err
		}
		for _, td := range md.Topics {
			for _, pd := range td.Partitions {
				if pd.Err != nil || len(pd.ISR) != len(pd.Replicas) {
					return fmt.Errorf("%s/%d: replicas %v, in sync %v, %v", td.Topic, pd.Partition, pd.Replicas, pd.ISR, pd.Err)
				}
			}
		}
		return nil
	})
}

// TestBrokerKilledUnderLoad runs three serve processes on three Kafka
// brokers (topics replicated three times), with a producer writing and
// clients querying, and kills with SIGKILL first a broker that leads
// partitions but does not coordinate the nodes' group, then the one that
// coordinates it, each left down past Kafka's broker.session.timeout.ms
// (9 s) so that its work moves to the others, and started again.
//
// Queries are answered from the nodes' stores, so the first crash costs no
// query. Nor does the second: franz-go ends a member's group session when
// its heartbeat cannot reach the coordinator, which drops its partitions,
// but each node keeps them as standbys (standby_replicas is 1 by default)
// and answers from them, labelled with their lag, until the group has
// formed again: no query may answer 503. Every 200 and 404 is a state the
// key had, and at the end every node equals the topic.
func TestBrokerKilledUnderLoad(t *testing.T) {
	const (
		partitions     = 12
		numKeys        = 2000
		store          = "orders"
		sessionTimeout = 6 * time.Second
		brokerDown     = 12 * time.Second // past Kafka's broker.session.timeout.ms (9 s)
		clients        = 3
		queryTimeout   = "2s"
	)
	kafka := testkafka.Running(t)
	if len(kafka.Nodes) != 3 {
		t.Skip("needs three Kafka brokers: make kafka-test KAFKA_BROKERS=3")
	}
	bin := buildBinary(t)
	testStart := time.Now()
	dir := t.TempDir()

	pb := startProcessBroker(t, bin, dir, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	keys := numberedKeys(numKeys)
	fails := &failures{}
	prodCtx, stopProducing := context.WithCancel(ctx)
	prod := startWriter(prodCtx, pb.cl, pb.topic, keys, fails)

	config := nodeConfig(t, dir, pb.app, pb.brokers, pb.topic, store, sessionTimeout)
	transport := &http.Transport{MaxIdleConnsPerHost: 32}
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Timeout: 15 * time.Second, Transport: transport}
	fleet := newFleet(t, dir, 3)
	for _, n := range fleet.nodes {
		fleet.start(t, bin, config, client, n)
	}
	formed := waitTable(t, client, fleet.clusterNodes(), partitions, store, 60*time.Second)
	t.Logf("3 processes formed generation %d %s after the test started", formed.Generation, time.Since(testStart).Round(time.Millisecond))
	waitInSync(t, ctx, pb.adm, 60*time.Second)

	load := startQueries(ctx, clients, fleet, client, store, keys, queryTimeout, fails)
	time.Sleep(2 * time.Second) // the load runs a while before the first crash

	type outage struct {
		broker                                 int
		coordinator                            bool
		killed, starting, back, inSync, stable time.Time
		generationAfter                        int32
		n503                                   int
		first503, last503                      time.Time
	}
	var outages []outage
	coordinator := func() int {
		t.Helper()
		groups, err := pb.adm.DescribeGroups(ctx, pb.app)
		if err != nil || groups.Error() != nil {
			t.Fatalf("describe group %s: %v %v", pb.app, err, groups.Error())
		}
		return int(groups[pb.app].Coordinator.NodeID)
	}
	for _, crashCoordinator := range []bool{false, true} {
		broker := coordinator()
		if !crashCoordinator {
			broker = broker%3 + 1 // another one
		}
		o := outage{broker: broker, coordinator: crashCoordinator, killed: time.Now()}
		if err := kafka.KillNode(broker); err != nil {
			t.Fatal(err)
		}
		time.Sleep(brokerDown) // the broker stays down this long
		o.starting = time.Now()
		if err := kafka.StartNode(ctx, broker); err != nil {
			t.Fatal(err)
		}
		o.back = time.Now()
		waitInSync(t, ctx, pb.adm, 90*time.Second)
		o.inSync = time.Now()
		o.generationAfter = waitTable(t, client, fleet.clusterNodes(), partitions, store, 60*time.Second).Generation
		o.stable = time.Now()
		outages = append(outages, o)
		time.Sleep(2 * time.Second) // the load runs on the whole cluster a while
	}

	stopProducing()
	prod.wait()
	total := catchUp(t, ctx, pb.cl, pb.adm, client, fleet.clusterNodes(), partitions, store, pb.topic)
	events := load.stop()
	want := readTopic(t, ctx, pb.brokers, pb.topic, endOffsets(t, ctx, pb.adm, pb.topic))
	final := checkEveryKey(t, client, fleet.nodes, store, keys, want, fails)
	// Records a dying leader acknowledged just before the crash can be
	// fetched only once Kafka has moved its leadership (after
	// broker.session.timeout.ms, 9 s, and an election; seen: 10.5 s), so
	// answers for those keys fall that far behind: 20 s.
	judged := judgeAll(events, prod, 20*time.Second, fails)

	// No 503 at all: the standbys answer while the group re-forms.
	counts := map[int]int{}
	var slowest time.Duration
	for _, ev := range events {
		counts[ev.status]++
		slowest = max(slowest, ev.end.Sub(ev.start))
		if ev.status != http.StatusServiceUnavailable {
			continue
		}
		fails.add("a 503 via %s for a query from %s to %s: %s", ev.node,
			ev.start.Format("15:04:05.000"), ev.end.Format("15:04:05.000"), ev.detail)
		var in *outage
		for i := range outages {
			if o := &outages[i]; !ev.end.Before(o.killed) && !ev.start.After(o.stable) {
				in = o
			}
		}
		if in == nil {
			continue
		}
		in.n503++
		if in.first503.IsZero() || ev.end.Before(in.first503) {
			in.first503 = ev.end
		}
		if ev.end.After(in.last503) {
			in.last503 = ev.end
		}
	}

	var sum strings.Builder
	fmt.Fprintf(&sum, "%d records produced (%d tombstones) over %d keys in %d partitions, three replicas each\n",
		total, prod.tombstones.Load(), numKeys, partitions)
	for _, o := range outages {
		what := "a partition leader"
		if o.coordinator {
			what = "the group's coordinator"
		}
		fmt.Fprintf(&sum, "broker %d (%s): killed, down %s, its start took %s, replicas in sync %s later; routing generation %d before, %d after\n",
			o.broker, what, o.starting.Sub(o.killed).Round(100*time.Millisecond), o.back.Sub(o.starting).Round(100*time.Millisecond),
			o.inSync.Sub(o.back).Round(100*time.Millisecond), formed.Generation, o.generationAfter)
		if o.n503 > 0 {
			fmt.Fprintf(&sum, "  %d answers 503, from %s to %s after the kill\n", o.n503,
				o.first503.Sub(o.killed).Round(100*time.Millisecond), o.last503.Sub(o.killed).Round(100*time.Millisecond))
		}
	}
	fmt.Fprintf(&sum, "queries: %d 200, %d 404, %d 503, slowest %s\n%s\n%s\n",
		counts[http.StatusOK], counts[http.StatusNotFound], counts[http.StatusServiceUnavailable], slowest.Round(time.Millisecond), judged, final)
	t.Logf("summary\n%s", sum.String())
	fails.report(t)

	transport.CloseIdleConnections()
	for _, n := range fleet.nodes {
		n.p.stop(t, 15*time.Second)
	}
	t.Logf("the test took %s", time.Since(testStart).Round(time.Millisecond))
}
