package router

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/serde"
)

// The tests of this file write the topic with a transactional producer and
// check that the nodes serve only what Kafka committed: values of aborted
// transactions never, values of committed ones only once their commit was
// asked, and a log that ends in a transaction marker (an offset with no
// record) is caught up with.

// txnValue is the value of every record the tests write: it says which
// transaction wrote it and how that transaction ends, so that an answer
// can be checked exactly.
type txnValue struct {
	Key     string `json:"key"`
	Txn     int    `json:"txn"`
	Seq     int    `json:"seq"`
	Outcome string `json:"outcome"` // "committed" or "aborted"
}

func outcome(commit bool) string {
	if commit {
		return "committed"
	}
	return "aborted"
}

// txnWriter writes transactions with one transactional producer and keeps
// the history of what was committed.
type txnWriter struct {
	t     *testing.T
	cl    *kgo.Client
	topic string

	mu sync.Mutex
	// committed holds every value each key had in a committed transaction;
	// asked is when each committed transaction's commit was asked, before
	// which none of its values may be served.
	committed map[string]map[string]bool
	asked     map[int]time.Time
	last      map[string]string // key -> value after the last committed transaction; absent: none or deleted
}

func newTxnWriter(t *testing.T, c *testCluster) *txnWriter {
	return &txnWriter{
		t: t, topic: c.topic,
		cl:        c.b.Client(t, kgo.TransactionalID(testkafka.Name(t, "txn"))),
		committed: map[string]map[string]bool{}, asked: map[int]time.Time{}, last: map[string]string{},
	}
}

// write writes one transaction: a record per key, a tombstone where del
// says so, then commits or aborts it.
func (w *txnWriter) write(txn int, keys []string, del []bool, commit bool) {
	t := w.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs := make([]*kgo.Record, len(keys))
	values := make([]string, len(keys))
	for i, k := range keys {
		rs[i] = &kgo.Record{Topic: w.topic, Key: []byte(k)}
		if !del[i] {
			b, _ := json.Marshal(txnValue{Key: k, Txn: txn, Seq: i, Outcome: outcome(commit)})
			values[i] = string(b)
			rs[i].Value = b
		}
	}
	if err := w.cl.BeginTransaction(); err != nil {
		t.Fatalf("transaction %d: begin: %v", txn, err)
	}
	if err := w.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("transaction %d: produce: %v", txn, err)
	}
	if commit {
		w.mu.Lock()
		w.asked[txn] = time.Now()
		for i, k := range keys {
			if w.committed[k] == nil {
				w.committed[k] = map[string]bool{}
			}
			if del[i] {
				delete(w.last, k)
			} else {
				w.committed[k][values[i]] = true
				w.last[k] = values[i]
			}
		}
		w.mu.Unlock()
	}
	if err := w.cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("transaction %d: end (commit %v): %v", txn, commit, err)
	}
}

// check says what is wrong with value as an answer for key received at
// done, or "": it must be a value a committed transaction wrote for key,
// received after that transaction's commit was asked.
func (w *txnWriter) check(key, value string, done time.Time) string {
	var v txnValue
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		return "value is not a written one: " + value
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	asked, committed := w.asked[v.Txn]
	switch {
	case v.Outcome == "aborted":
		return "value of an aborted transaction: " + value
	case v.Key != key || !w.committed[key][value]:
		return "value was never committed for " + key + ": " + value
	case !committed || !done.After(asked):
		return fmt.Sprintf("value of transaction %d answered before its commit was asked: %s", v.Txn, value)
	}
	return ""
}

// txnAnswer is one answer given while the transactions were written.
type txnAnswer struct {
	what   string // the request
	status int
	items  []scanItem // the records answered (one for a lookup)
	err    string     // a transport error, or the body of an unexpected answer
	done   time.Time
}

type scanItem struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// askAll looks up every key through every node and checks it against the
// last committed transaction: its value, or 404 key-not-found.
func askAll(t *testing.T, c *testCluster, keys []string, last map[string]string) {
	t.Helper()
	for _, id := range c.ids() {
		n := c.node(id)
		for _, k := range keys {
			a := httpGet(t, n.URL+"/v1/stores/orders/keys/"+k)
			want, live := last[k]
			if !live {
				var p problem
				if a.status != http.StatusNotFound || json.Unmarshal(a.body, &p) != nil || p.Type != problemTypePrefix+probKeyNotFound {
					t.Errorf("%s via %s (deleted or never committed): %d %s, want 404 %s", k, id, a.status, a.body, problemTypePrefix+probKeyNotFound)
				}
				continue
			}
			var got scanItem
			if a.status != http.StatusOK || json.Unmarshal(a.body, &got) != nil || string(got.Value) != want {
				t.Errorf("%s via %s: %d %s, want the last committed value %s", k, id, a.status, a.body, want)
			}
		}
		var cnt struct{ Count int }
		a := httpGet(t, n.URL+"/v1/stores/orders/count")
		a.decode(t, &cnt)
		if a.status != http.StatusOK || cnt.Count != len(last) {
			t.Errorf("count via %s: %d %s, want %d live keys", id, a.status, a.body, len(last))
		}
	}
}

// waitCaughtUp waits until every node answers /readyz 200 and every
// partition of the topic has an owner that serves it and has applied the
// log up to its end: the offset before the high watermark, which is a
// transaction marker when the log ends in one. The ends are read again
// each time: a transaction's markers are written after EndTransaction
// returns (by its coordinator, to each partition's leader), so the log may
// still grow by a marker.
func waitCaughtUp(t *testing.T, c *testCluster, timeout time.Duration) {
	t.Helper()
	testutil.WaitForNil(t, timeout, "the nodes did not catch up with the log ends", func() error {
		ends := c.b.EndOffsets(t, c.topic)
		if why := caughtUp(t, c, ends); why != "" {
			return fmt.Errorf("log ends %v: %s", ends, why)
		}
		return nil
	})
}

func caughtUp(t *testing.T, c *testCluster, ends map[int32]int64) string {
	ids := c.ids()
	for _, id := range ids {
		if a := httpGet(t, c.node(id).URL+"/readyz"); a.status != http.StatusOK {
			return fmt.Sprintf("%s /readyz: %d %s", id, a.status, a.body)
		}
	}
	var md struct {
		Partitions []partitionView `json:"partitions"`
	}
	a := httpGet(t, c.node(ids[0]).URL+"/v1/metadata/partitions")
	if err := json.Unmarshal(a.body, &md); err != nil || len(md.Partitions) != int(c.partitions) {
		return fmt.Sprintf("/v1/metadata/partitions: %d %s", a.status, a.body)
	}
	for _, p := range md.Partitions {
		if p.Owner == "" || p.State != "serving" || p.Offset+1 != ends[p.Partition] {
			return fmt.Sprintf("partition %d: owner %q, %s, applied up to offset %d, the log ends at %d",
				p.Partition, p.Owner, p.State, p.Offset, ends[p.Partition])
		}
	}
	return ""
}

// judgeTxnAnswer reads one answer of the load: a scan's page or a lookup's
// record, a lookup's 404, or what was wrong.
func judgeTxnAnswer(a testutil.Answer) txnAnswer {
	scan := a.Tag.(bool)
	ta := txnAnswer{what: a.Path + " via " + a.Target, done: a.Done, status: a.Status}
	if a.Err != nil {
		ta.err = a.Err.Error()
		return ta
	}
	var p problem
	switch {
	case a.Status == http.StatusOK && scan:
		var pg struct{ Items []scanItem }
		if err := json.Unmarshal(a.Body, &pg); err != nil {
			ta.err = string(a.Body)
		}
		ta.items = pg.Items
	case a.Status == http.StatusOK:
		var it scanItem
		if err := json.Unmarshal(a.Body, &it); err != nil {
			ta.err = string(a.Body)
		}
		ta.items = []scanItem{it}
	case a.Status == http.StatusNotFound && !scan && json.Unmarshal(a.Body, &p) == nil && p.Type == problemTypePrefix+probKeyNotFound:
	default:
		ta.err = string(a.Body)
	}
	return ta
}

// TestOnlyCommittedValuesAreServed writes 6,000 records over 300 keys (one
// in ten a tombstone) in 120 transactions, about a third of them aborted,
// the last committed; 20 of the keys are only ever written by aborted
// transactions. Two nodes serve from the start, a third joins halfway and
// restores its partitions from a log full of aborted records and markers.
// Lookups and scans run through every node all along, and every answer is
// checked: no value of an aborted transaction, nor of a committed one before
// its commit was asked, ever appears. At the end every partition serves and
// has applied its log to the end, and every key answers through every node
// its last committed value, or 404 when its last committed record is a
// tombstone or no transaction that wrote it committed; count is the number
// of live keys.
func TestOnlyCommittedValuesAreServed(t *testing.T) {
	const (
		nkeys     = 300
		neverKeys = 20 // k-280.. are written only by aborted transactions
		txns      = 120
		perTxn    = 50
		clients   = 4
	)
	c := newTestCluster(t, 6, 0)
	c.start("n1")
	c.start("n2")
	c.waitStable(60 * time.Second)
	w := newTxnWriter(t, c)
	rng := rand.New(rand.NewPCG(1, 2))
	keyName := func(i int) string { return fmt.Sprintf("k-%03d", i) }
	all := make([]string, nkeys)
	for i := range all {
		all[i] = keyName(i)
	}

	var mu sync.Mutex
	var answers []txnAnswer
	load := &testutil.Load{
		Clients: clients,
		Client:  &http.Client{Timeout: 30 * time.Second},
		Seed:    7,
		Pick: func(rng *rand.Rand, _ string) (testutil.Target, bool) {
			ids := c.ids()
			id := ids[rng.IntN(len(ids))]
			return testutil.Target{ID: id, Base: c.node(id).URL}, true
		},
		Next: func(rng *rand.Rand) (string, any) {
			if rng.IntN(10) == 0 { // a scan in ten requests
				return "/v1/stores/orders/keys?limit=1000", true
			}
			return "/v1/stores/orders/keys/" + all[rng.IntN(nkeys)], false
		},
		Answer: func(a testutil.Answer) {
			ta := judgeTxnAnswer(a)
			mu.Lock()
			answers = append(answers, ta)
			mu.Unlock()
		},
	}
	defer load.Client.CloseIdleConnections()
	load.Start(context.Background())
	defer load.Stop() // also when the test fails early

	start := time.Now()
	aborted, records := 0, 0
	for txn := 0; txn < txns; txn++ {
		if txn == txns/2 {
			c.start("n3")
		}
		commit := txn == txns-1 || rng.IntN(3) != 0
		keys := make([]string, perTxn)
		del := make([]bool, perTxn)
		for i := range keys {
			if commit {
				keys[i] = keyName(rng.IntN(nkeys - neverKeys))
			} else {
				keys[i] = keyName(rng.IntN(nkeys))
			}
			del[i] = rng.IntN(10) == 0
		}
		w.write(txn, keys, del, commit)
		records += perTxn
		if !commit {
			aborted++
		}
	}
	produced := time.Since(start)
	waitCaughtUp(t, c, 30*time.Second)
	load.Stop()
	t.Logf("%d records in %d transactions (%d aborted) in %v; caught up %v after the first",
		records, txns, aborted, produced.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// Every answer given meanwhile.
	failures, values, notFound, whileWriting := 0, 0, 0, 0
	fail := func(format string, args ...any) {
		failures++
		if failures <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, a := range answers {
		if a.err != "" {
			fail("%s: %d %s", a.what, a.status, a.err)
			continue
		}
		if a.status == http.StatusNotFound {
			notFound++
		}
		if a.done.Before(start.Add(produced)) {
			whileWriting++
		}
		for _, it := range a.items {
			values++
			if why := w.check(it.Key, string(it.Value), a.done); why != "" {
				fail("%s: %s", a.what, why)
			}
		}
	}
	if failures > 20 {
		t.Errorf("... %d wrong answers in all", failures)
	}
	t.Logf("%d answers (%d while writing, the rest until caught up): %d values checked, %d lookups 404", len(answers), whileWriting, values, notFound)
	if whileWriting == 0 || values == 0 {
		t.Errorf("%d answers while writing, %d values: the clients did not overlap the transactions", whileWriting, values)
	}

	// And now, through every node.
	askAll(t, c, all, w.last)
	for i := nkeys - neverKeys; i < nkeys; i++ {
		if _, ok := w.committed[keyName(i)]; ok {
			t.Fatalf("%s was committed; the test's keys overlap", keyName(i))
		}
	}
}

// TestLogEndingInAMarkerServes writes one committed transaction, then one
// aborted transaction to one partition only, and nothing more: two
// partitions' logs end in a commit marker, one in an abort marker, offsets
// that hold no record. Nodes started after that restore every partition to
// its end and serve it: every node is ready, and every key answers its
// committed value (the aborted transaction's keys: the committed value, or
// 404 for a key only it wrote).
func TestLogEndingInAMarkerServes(t *testing.T) {
	c := newTestCluster(t, 3, 0)
	w := newTxnWriter(t, c)
	var keys, onlyAborted, rewritten []string
	for i := 0; i < 30; i++ {
		keys = append(keys, fmt.Sprintf("m-%02d", i))
		if serde.Partition([]byte(keys[i]), c.partitions) == 1 {
			rewritten = append(rewritten, keys[i])
		}
	}
	for i := 0; len(onlyAborted) < 10; i++ {
		if k := fmt.Sprintf("a-%02d", i); serde.Partition([]byte(k), c.partitions) == 1 {
			onlyAborted = append(onlyAborted, k)
		}
	}
	w.write(0, keys, make([]bool, len(keys)), true)
	abortedKeys := append(rewritten, onlyAborted...)
	w.write(1, abortedKeys, make([]bool, len(abortedKeys)), false)
	for _, id := range []string{"n1", "n2", "n3"} {
		c.start(id)
	}
	waitCaughtUp(t, c, 30*time.Second)
	askAll(t, c, append(keys, onlyAborted...), w.last)
}
