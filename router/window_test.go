package router

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

// addTimedStore adds a window or session store over topic (n partitions,
// string keys, json values) to the fake.
func (f *fakeEngine) addTimedStore(t testing.TB, name, topic string, n int32, kind state.Kind, w state.Window) {
	t.Helper()
	f.addStore(t, name, topic, n, "string", "json")
	for i := range f.stores {
		if f.stores[i].Name == name {
			f.stores[i].Kind, f.stores[i].Window = kind, w
		}
	}
}

// putWindow writes the value of key's window starting at start (Unix ms)
// in the window store's changelog key layout, in the key's partition.
func (f *fakeEngine) putWindow(t testing.TB, store, key string, start int64, value string, offset int64) {
	t.Helper()
	s, _ := f.Store(store)
	raw := binary.BigEndian.AppendUint64([]byte(key), uint64(start))
	if s.Window.Key == state.WindowKeyChangelog {
		raw = binary.BigEndian.AppendUint32(raw, 0)
	}
	f.putRaw(t, s, key, raw, value, offset)
}

// putSession writes the value of key's session [start, end].
func (f *fakeEngine) putSession(t testing.TB, store, key string, start, end int64, value string, offset int64) {
	t.Helper()
	s, _ := f.Store(store)
	raw := binary.BigEndian.AppendUint64([]byte(key), uint64(end))
	raw = binary.BigEndian.AppendUint64(raw, uint64(start))
	f.putRaw(t, s, key, raw, value, offset)
}

func (f *fakeEngine) putRaw(t testing.TB, s state.Store, key string, raw []byte, value string, offset int64) {
	t.Helper()
	p, err := serde.PartitionOf(s.Key, []byte(key), f.topics[s.Topic])
	if err != nil {
		t.Fatal(err)
	}
	f.putAt(state.Partition{Topic: s.Topic, Partition: p}, raw, []byte(value), offset)
}

// addTimedStores adds the window store "hourly" (1 h windows, 3 h
// retention) and the session store "visits" (2 h retention), each with a
// few records.
func addTimedStores(t testing.TB, f *fakeEngine) {
	t.Helper()
	f.addTimedStore(t, "hourly", "hourly-changelog", 3, state.WindowKind, state.Window{Size: time.Hour, Retention: 3 * time.Hour})
	f.addTimedStore(t, "visits", "visits-changelog", 3, state.SessionKind, state.Window{Retention: 2 * time.Hour})
	const h = int64(time.Hour / time.Millisecond)
	base := fakeTime - fakeTime%h
	for i, k := range []string{"o-01", "o-02", "o-1"} {
		for w := int64(0); w < 3; w++ {
			f.putWindow(t, "hourly", k, base+w*h, `{"n":`+string(rune('0'+w))+`}`, int64(10*i)+w)
		}
	}
	f.putSession(t, "visits", "v-1", base, base+60_000, `7`, 1)
	f.putSession(t, "visits", "v-1", base+h, base+h+5_000, `8`, 2)
}

// A window or session query that cannot be answered says why, with its own
// problem type; a key-value store's key that ends in /windows is still a
// key.
func TestWindowQueryErrors(t *testing.T) {
	f, h := newFakeNode(t)
	addTimedStores(t, f)
	f.put(t, "docs", "x/windows", `"a key, not a window query"`, 9)
	first := get(h, "/v1/stores/hourly/keys/o-01/windows?limit=1")
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	first.decode(t, &page)
	for _, c := range []struct {
		target, problem, detail string
	}{
		{"/v1/stores/orders/keys/o-01/windows?from=1", probWrongKind, `store "orders" is a keyvalue store, which has no windows`},
		{"/v1/stores/orders/keys/o-01/windows", probWrongKind, `has no key "o-01/windows" either`},
		{"/v1/stores/orders/keys/o-01/sessions?latest_start=1", probWrongKind, "which has no sessions"},
		{"/v1/stores/hourly/keys/o-01", probWrongKind, `store "hourly" is a window store, which has no key lookups: ask GET /v1/stores/hourly/keys/{key}/windows`},
		{"/v1/stores/visits/keys/v-1/windows", probWrongKind, `store "visits" is a session store, which has no windows`},
		{"/v1/stores/visits/windows", probWrongKind, `store "visits" is a session store`},
		{"/v1/stores/visits/keys?prefix=v", probWrongKind, `store "visits" is a session store, which has no key scans: ask GET /v1/stores/visits/keys/{key}/sessions for a key's sessions, or GET /v1/stores/visits/sessions`},
		{"/v1/stores/orders/sessions", probWrongKind, `store "orders" is a keyvalue store`},
		{"/v1/stores/hourly/keys/o-01/windows?from=2026-01-02T04:00:00Z&to=2026-01-02T03:00:00Z", probBadTimeRange, `from "2026-01-02T04:00:00Z" is after to "2026-01-02T03:00:00Z"`},
		{"/v1/stores/hourly/windows?from=5&to=4", probBadTimeRange, `from "5" is after to "4"`},
		{"/v1/stores/hourly/keys/o-01/windows?from=yesterday", probBadTime, `from "yesterday" is not a time: give milliseconds since the epoch`},
		{"/v1/stores/visits/sessions?earliest_end=2026-13-01", probBadTime, `earliest_end "2026-13-01" is not a time`},
		{"/v1/stores/hourly/keys/o-01/windows?order=sideways", probBadParameter, `order "sideways" must be asc or desc`},
		{"/v1/stores/hourly/keys/o-01/windows?key_from=a", probBadParameter, `unknown query parameter "key_from"`},
		{"/v1/stores/hourly/windows?order=desc", probBadParameter, `unknown query parameter "order"`},
		{"/v1/stores/hourly/windows?key_from=b&key_to=a", probBadRange, `key_from "b" sorts after key_to "a"`},
		{"/v1/stores/hourly/keys/o-02/windows?cursor=" + page.NextCursor, probBadCursor, "belongs to another scan"},
		{"/v1/stores/hourly/keys//windows", probEmptyKey, "the key in the path is empty"},
	} {
		a := get(h, c.target)
		var p problem
		a.decode(t, &p)
		if a.status != 400 || p.Type != problemTypePrefix+c.problem || !strings.Contains(p.Detail, c.detail) {
			t.Errorf("GET %s: %d %s\nwant 400 %s with %q", c.target, a.status, a.body, c.problem, c.detail)
		}
	}
	if a := get(h, "/v1/stores/docs/keys/x/windows"); a.status != 200 || !strings.Contains(string(a.body), "a key, not a window query") {
		t.Errorf("a key-value store's key ending in /windows: %d %s", a.status, a.body)
	}
}

// /v1/stores says each store's kind, and a window store's size and
// retention.
func TestStoreListShowsKinds(t *testing.T) {
	f, h := newFakeNode(t)
	addTimedStores(t, f)
	a := get(h, "/v1/stores")
	for _, want := range []string{
		`{"name":"hourly","topic":"hourly-changelog","partitions":3,"key_serde":"string","value_serde":"json","kind":"window","window_size_ms":3600000,"retention_ms":10800000,"window_key":"changelog"}`,
		`{"name":"visits","topic":"visits-changelog","partitions":3,"key_serde":"string","value_serde":"json","kind":"session","retention_ms":7200000}`,
	} {
		if !strings.Contains(string(a.body), want) {
			t.Errorf("/v1/stores: %s\nwant it to list %s", a.body, want)
		}
	}
}
