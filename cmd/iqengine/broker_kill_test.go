package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/iqengine/iqengine/internal/testkafka"
)

// kafkaScript returns the path of scripts/kafka.sh when the tests run
// against three brokers that it runs (`make kafka-test KAFKA_BROKERS=3`),
// and skips the test otherwise: only then can a test kill and restart one.
func kafkaScript(t *testing.T) string {
	t.Helper()
	const how = "needs three Kafka brokers run by scripts/kafka.sh: make kafka-test KAFKA_BROKERS=3"
	brokers := os.Getenv(testkafka.EnvBrokers)
	if !testkafka.Real() || len(strings.Split(brokers, ",")) != 3 {
		t.Skip(how)
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "kafka.sh"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(script, "status").Output()
	if err != nil || strings.TrimSpace(string(out)) != brokers {
		t.Skipf("%s (%s status: %q, %v)", how, script, out, err)
	}
	return script
}

// waitInSync waits until every partition of every topic, internal ones
// included, has all its replicas in sync.
func waitInSync(t *testing.T, ctx context.Context, adm *kadm.Client, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		md, err := adm.Metadata(ctx)
		behind := ""
		if err == nil {
		topics:
			for _, td := range md.Topics {
				for _, pd := range td.Partitions {
					if pd.Err != nil || len(pd.ISR) != len(pd.Replicas) {
						behind = fmt.Sprintf("%s/%d: replicas %v, in sync %v, %v", td.Topic, pd.Partition, pd.Replicas, pd.ISR, pd.Err)
						break topics
					}
				}
			}
		} else {
			behind = err.Error()
		}
		if behind == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas not in sync within %s: %s", within, behind)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestBrokerKilledUnderLoad runs three serve processes on three Kafka
// brokers (topics replicated three times), with a producer writing and
// clients querying, and kills with SIGKILL first the broker that
// coordinates the nodes' group, then another one, each left down past the
// brokers' session timeout so that its partition leadership and the group's
// coordination move, and started again. Queries are answered from the
// nodes' stores, so a broker crash costs no query: every answer is 200 or
// 404 and a state the key had. At the end every node equals the topic.
//
// The nodes' group session timeout is 20 s here: franz-go retries a
// heartbeat that cannot reach the coordinator for up to the session timeout
// and then drops the member's partitions, and Kafka moves a dead broker's
// coordination only after its broker.session.timeout.ms (9 s) and an
// election. With 6 s, as the other multi-process tests use, a coordinator
// crash makes every node give up its partitions until the group is
// coordinated again (seen here: about 10 s of 503s). README says so.
func TestBrokerKilledUnderLoad(t *testing.T) {
	const (
		partitions     = 12
		numKeys        = 2000
		store          = "orders"
		sessionTimeout = 20 * time.Second
		brokerDown     = 12 * time.Second // past Kafka's broker.session.timeout.ms (9 s)
		clients        = 3
		queryTimeout   = "2s"
	)
	script := kafkaScript(t)
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
	time.Sleep(2 * time.Second)

	type outage struct {
		broker                         int
		killed, starting, back, inSync time.Time
		generationAfter                int32
	}
	var outages []outage
	kafka := func(args ...string) {
		t.Helper()
		out, err := exec.Command(script, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("kafka.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// The group's coordinator first, then the lowest other broker.
	groups, err := pb.adm.DescribeGroups(ctx, pb.app)
	if err != nil || groups.Error() != nil {
		t.Fatalf("describe group %s: %v %v", pb.app, err, groups.Error())
	}
	coordinator := int(groups[pb.app].Coordinator.NodeID)
	other := 1
	if coordinator == 1 {
		other = 2
	}
	for _, broker := range []int{coordinator, other} {
		o := outage{broker: broker, killed: time.Now()}
		kafka("kill-node", fmt.Sprint(broker))
		time.Sleep(brokerDown)
		o.starting = time.Now()
		kafka("start-node", fmt.Sprint(broker))
		o.back = time.Now()
		waitInSync(t, ctx, pb.adm, 90*time.Second)
		o.inSync = time.Now()
		o.generationAfter = waitTable(t, client, fleet.clusterNodes(), partitions, store, 30*time.Second).Generation
		outages = append(outages, o)
		time.Sleep(2 * time.Second)
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

	// No query may fail: a broker crash moves partition leadership and
	// group coordination, never the nodes' partitions.
	counts := map[int]int{}
	var slowest time.Duration
	for _, ev := range events {
		counts[ev.status]++
		slowest = max(slowest, ev.end.Sub(ev.start))
		if ev.status == http.StatusServiceUnavailable {
			fails.add("a 503 via %s for a query from %s to %s: %s", ev.node,
				ev.start.Format("15:04:05.000"), ev.end.Format("15:04:05.000"), ev.detail)
		}
	}

	var sum strings.Builder
	fmt.Fprintf(&sum, "%d records produced (%d tombstones) over %d keys in %d partitions, three replicas each\n",
		total, prod.tombstones.Load(), numKeys, partitions)
	for _, o := range outages {
		what := "a partition leader"
		if o.broker == coordinator {
			what = "the group's coordinator"
		}
		fmt.Fprintf(&sum, "broker %d (%s): killed, down %s, its start took %s, replicas in sync %s later; routing generation %d before, %d after\n",
			o.broker, what, o.starting.Sub(o.killed).Round(100*time.Millisecond), o.back.Sub(o.starting).Round(100*time.Millisecond),
			o.inSync.Sub(o.back).Round(100*time.Millisecond), formed.Generation, o.generationAfter)
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
