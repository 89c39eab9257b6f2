package router

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

// windowModel is what was produced to a window or session store's
// changelog, and what Kafka Streams would answer from it: the latest value
// of each (key, window) or (key, session), and each partition's stream
// time.
type windowModel struct {
	s          state.Store
	partitions int32
	values     map[string]string // by record key
	streamTime map[int32]int64
}

func newWindowModel(s state.Store, partitions int32) *windowModel {
	return &windowModel{s: s, partitions: partitions, values: map[string]string{}, streamTime: map[int32]int64{}}
}

// record is the changelog record of key's window [start, end) or session
// [start, end]: value "" is a tombstone.
func (m *windowModel) record(key string, start, end int64, value string) *kgo.Record {
	raw := []byte(key)
	p := serde.Partition(raw, m.partitions)
	t := start
	if m.s.Kind == state.SessionKind {
		raw = binary.BigEndian.AppendUint64(raw, uint64(end))
		raw = binary.BigEndian.AppendUint64(raw, uint64(start))
		t = end
	} else {
		raw = binary.BigEndian.AppendUint64(raw, uint64(start))
		raw = binary.BigEndian.AppendUint32(raw, 0)
	}
	if st, ok := m.streamTime[p]; !ok || t > st {
		m.streamTime[p] = t
	}
	r := &kgo.Record{Topic: m.s.Topic, Partition: p, Key: raw}
	if value == "" {
		delete(m.values, string(raw))
	} else {
		m.values[string(raw)] = value
		r.Value = []byte(value)
	}
	return r
}

// windowItem is a window or session as an answer lists it.
type windowItem struct {
	Key        string
	Start, End int64
	Value      string
}

// want is what a query selects, in the order of the stored keys
// (descending with reverse): those of key (all keys when key is nil, within
// [keyFrom, keyTo] when those are not empty) in time range r, not expired.
func (m *windowModel) want(key *string, keyFrom, keyTo string, r state.TimeRange, reverse bool) []windowItem {
	raws := make([]string, 0, len(m.values))
	for raw := range m.values {
		raws = append(raws, raw)
	}
	slices.Sort(raws)
	if reverse {
		slices.Reverse(raws)
	}
	var out []windowItem
	for _, raw := range raws {
		sp, _ := m.s.SplitKey([]byte(raw))
		k := string(sp.Key)
		switch {
		case key != nil && k != *key,
			key == nil && keyFrom != "" && k < keyFrom,
			key == nil && keyTo != "" && k > keyTo:
			continue
		}
		st, ok := m.streamTime[serde.Partition(sp.Key, m.partitions)]
		if !ok {
			st = state.NoStreamTime
		}
		if m.s.Match(sp, r, m.s.Oldest(st)) {
			out = append(out, windowItem{Key: k, Start: sp.Start, End: sp.End, Value: m.values[raw]})
		}
	}
	return out
}

// fetchWindows follows a window or session query's pages from its first.
func fetchWindows(t *testing.T, base, target string) []windowItem {
	t.Helper()
	var out []windowItem
	cursor := ""
	for range 1000 {
		u := target
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		a := httpGet(t, base+u)
		if a.status != 200 {
			t.Fatalf("GET %s: %d %s", u, a.status, a.body)
		}
		var page struct {
			Items []struct {
				Key   string          `json:"key"`
				Start time.Time       `json:"start"`
				End   time.Time       `json:"end"`
				Value json.RawMessage `json:"value"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		a.decode(t, &page)
		for _, it := range page.Items {
			out = append(out, windowItem{Key: it.Key, Start: it.Start.UnixMilli(), End: it.End.UnixMilli(), Value: string(it.Value)})
		}
		if page.NextCursor == nil {
			return out
		}
		cursor = *page.NextCursor
	}
	t.Fatalf("%s: more than 1000 pages", target)
	return nil
}

// Three nodes serve a Kafka Streams window store's changelog and a session
// store's: every node answers every key's windows and sessions, for time
// ranges in both orders and through pages, and every key's in time and key
// ranges, exactly as Kafka Streams' fetch, backwardFetch, fetchAll and
// findSessions would from the same changelog records: the latest value of
// each window, tombstones applied, and nothing that the partition's stream
// time has put out of retention. A key too short for the schema is skipped
// and counted.
func TestWindowAndSessionQueriesOnEveryNode(t *testing.T) {
	b := testkafka.Start(t)
	const parts = 6
	const hour = int64(time.Hour / time.Millisecond)
	base := int64(1_796_205_600_000) // an hour's start
	str, _ := serde.Lookup("string")
	js, _ := serde.Lookup("json")
	wstore := state.Store{Name: "hourly", Topic: testkafka.Name(t, "hourly-changelog"), Key: str, Value: js,
		Kind: state.WindowKind, Window: state.Window{Size: time.Hour, Retention: 3 * time.Hour}}
	sstore := state.Store{Name: "visits", Topic: testkafka.Name(t, "visits-changelog"), Key: str, Value: js,
		Kind: state.SessionKind, Window: state.Window{Retention: 2 * time.Hour}}
	b.CreateTopic(t, wstore.Topic, parts)
	b.CreateTopic(t, sstore.Topic, parts)
	wm, sm := newWindowModel(wstore, parts), newWindowModel(sstore, parts)

	rng := rand.New(rand.NewPCG(15, 15))
	var keys []string
	for i := range 30 {
		keys = append(keys, fmt.Sprintf("k%d", i)) // k1 is a prefix of k10..k19
	}
	var recs []*kgo.Record
	for range 1500 {
		k := keys[rng.IntN(len(keys))]
		// Windows over ten hours, out of order; one record in ten a
		// tombstone.
		start := base + rng.Int64N(10)*hour
		v := strconv.Itoa(rng.IntN(100))
		if rng.IntN(10) == 0 {
			v = ""
		}
		recs = append(recs, wm.record(k, start, start+hour, v))
		// Sessions of up to 20 minutes over ten hours.
		s := base + rng.Int64N(10*hour)
		recs = append(recs, sm.record(k, s, s+rng.Int64N(20*60_000), v))
	}
	// Partition 0 of the window changelog gets a key of 5 bytes, shorter
	// than the 12 bytes of the times.
	recs = append(recs, &kgo.Record{Topic: wstore.Topic, Partition: 0, Key: []byte("short"), Value: []byte("1")})
	testkafka.Produce(t, b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner())), recs...)

	c := &testCluster{t: t, b: b, group: testkafka.Name(t, "app"), topic: wstore.Topic, partitions: parts,
		sessionTimeout: 6 * time.Second, nodes: map[string]*testNode{}}
	t.Cleanup(func() {
		for _, id := range c.ids() {
			c.stop(id)
		}
	})
	for _, id := range []string{"n1", "n2", "n3"} {
		n := startNode(t, b, c.group, id, []state.Store{wstore, sstore}, c.sessionTimeout, nodeOptions{})
		c.mu.Lock()
		c.nodes[id] = n
		c.mu.Unlock()
	}
	c.waitStable(60 * time.Second)
	testutil.WaitFor(t, 30*time.Second, "every node ready", func() bool {
		for _, id := range c.ids() {
			if !c.node(id).e.Ready() {
				return false
			}
		}
		return true
	})

	check := func(t *testing.T, n *testNode, target string, want []windowItem) {
		t.Helper()
		got := fetchWindows(t, n.URL, target)
		if !slices.Equal(got, want) {
			t.Fatalf("GET %s via %s:\n got %d %v\nwant %d %v", target, n.id, len(got), got, len(want), want)
		}
	}
	rfc := func(ms int64) string { return url.QueryEscape(time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)) }
	ranges := []struct {
		query string
		r     state.TimeRange
	}{
		{"", state.AllTime},
		{fmt.Sprintf("from=%d&to=%d", base+2*hour, base+5*hour), state.TimeRange{From: base + 2*hour, To: base + 5*hour}},
		{fmt.Sprintf("from=%d&to=%d", base+8*hour, base+8*hour), state.TimeRange{From: base + 8*hour, To: base + 8*hour}},
		{"from=" + rfc(base+7*hour+1), state.TimeRange{From: base + 7*hour + 1, To: state.AllTime.To}},
		{"to=" + rfc(base+9*hour), state.TimeRange{From: state.AllTime.From, To: base + 9*hour}},
	}
	sranges := []struct {
		query string
		r     state.TimeRange
	}{
		{"", state.AllTime},
		{fmt.Sprintf("earliest_end=%d&latest_start=%d", base+8*hour, base+9*hour), state.TimeRange{From: base + 8*hour, To: base + 9*hour}},
		{fmt.Sprintf("earliest_end=%d", base+9*hour+30*60_000), state.TimeRange{From: base + 9*hour + 30*60_000, To: state.AllTime.To}},
		// A latest start before the earliest end: the sessions that span it.
		{fmt.Sprintf("earliest_end=%d&latest_start=%d", base+9*hour, base+9*hour-1), state.TimeRange{From: base + 9*hour, To: base + 9*hour - 1}},
	}
	compared := 0
	for _, id := range c.ids() {
		n := c.node(id)
		for _, k := range keys {
			for _, rg := range ranges {
				for _, order := range []string{"asc", "desc"} {
					for _, limit := range []int{100, 2} {
						q := fmt.Sprintf("?%s&order=%s&limit=%d", rg.query, order, limit)
						check(t, n, "/v1/stores/hourly/keys/"+k+"/windows"+q, wm.want(&k, "", "", rg.r, order == "desc"))
						compared++
					}
				}
			}
			for _, rg := range sranges {
				for _, order := range []string{"asc", "desc"} {
					check(t, n, "/v1/stores/visits/keys/"+k+"/sessions?"+rg.query+"&order="+order, sm.want(&k, "", "", rg.r, order == "desc"))
					compared++
				}
			}
		}
		for _, rg := range ranges {
			for _, kr := range [][2]string{{"", ""}, {"k1", "k2"}, {"k25", ""}} {
				q := "?" + rg.query + "&limit=7"
				if kr[0] != "" {
					q += "&key_from=" + kr[0]
				}
				if kr[1] != "" {
					q += "&key_to=" + kr[1]
				}
				check(t, n, "/v1/stores/hourly/windows"+q, wm.want(nil, kr[0], kr[1], rg.r, false))
				compared++
			}
		}
		for _, rg := range sranges {
			check(t, n, "/v1/stores/visits/sessions?"+rg.query+"&limit=9", sm.want(nil, "", "", rg.r, false))
			check(t, n, "/v1/stores/visits/sessions?"+rg.query+"&key_from=k3&key_to=k3", sm.want(nil, "k3", "k3", rg.r, false))
			compared += 2
		}
	}
	all := wm.want(nil, "", "", state.AllTime, false)
	expired := 0
	for raw := range wm.values {
		sp, _ := wstore.SplitKey([]byte(raw))
		if sp.Start < wstore.Oldest(wm.streamTime[serde.Partition(sp.Key, parts)]) {
			expired++
		}
	}
	if expired == 0 || len(all) == 0 {
		t.Fatalf("the data does not test retention: %d windows answered, %d expired", len(all), expired)
	}
	t.Logf("%d queries compared; %d windows answered, %d kept in the changelog but expired", compared, len(all), expired)

	// The short key is counted where partition 0 is held.
	var ps struct {
		Partitions []struct {
			Topic         string `json:"topic"`
			Partition     int32  `json:"partition"`
			MalformedKeys int64  `json:"malformed_keys"`
		} `json:"partitions"`
	}
	httpGet(t, c.node("n1").URL+"/v1/metadata/partitions").decode(t, &ps)
	found := false
	for _, p := range ps.Partitions {
		if p.Topic == wstore.Topic && p.Partition == 0 {
			found = p.MalformedKeys == 1
		}
	}
	if !found {
		t.Fatalf("partition 0 of the window changelog does not count its malformed key: %+v", ps.Partitions)
	}
}
