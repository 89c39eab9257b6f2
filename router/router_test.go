package router

// The HTTP layer's specification, against the in-memory fake engine of
// fake_test.go (no broker, no Pebble): which requests are refused and how
// (TestBadInput...), how cursors page through scans (TestCursor...), and
// what answers look like, byte for byte (TestRender...). Each case is a
// request and the exact answer. Queries across nodes, rebalances and Kafka
// are specified on real engines in the other test files.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/state"
)

type answer struct {
	status int
	header http.Header
	body   []byte
}

// get asks h for target, with header names and values in pairs.
func get(h http.Handler, target string, header ...string) answer {
	return request(h, http.MethodGet, target, header...)
}

// request sends h a request with the method.
func request(h http.Handler, method, target string, header ...string) answer {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return answer{rec.Code, rec.Result().Header, body}
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer %d is not JSON: %v: %s", a.status, err, a.body)
	}
}

// oneLine joins an expected answer written over several lines: each line's
// indentation goes, and spaces inside a line stay.
func oneLine(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		b.WriteString(strings.TrimSpace(line))
	}
	return b.String()
}

// wantProblem checks that a is the problem document of kind, with status
// and detail, about the request target.
func wantProblem(t *testing.T, a answer, target string, status int, kind, detail string, partitions ...unavailablePartition) {
	t.Helper()
	want := problem{Type: problemTypePrefix + kind, Title: titles[kind], Status: status, Detail: detail, Instance: target, Partitions: partitions}
	var got problem
	if err := json.Unmarshal(a.body, &got); err != nil || a.status != status || !reflect.DeepEqual(got, want) {
		t.Errorf("GET %.200s:\n got %d %s\nwant %d %+v", target, a.status, a.body, status, want)
	}
	if ct := a.header.Get("Content-Type"); ct != problemContentType {
		t.Errorf("GET %.200s: Content-Type %q, want %q", target, ct, problemContentType)
	}
	if titles[kind] == "" {
		t.Errorf("problem type %q has no title", kind)
	}
}

// cursorOf returns the next_cursor of the first page of a scan.
func cursorOf(t *testing.T, h http.Handler, target string) string {
	t.Helper()
	var p struct {
		NextCursor string `json:"next_cursor"`
	}
	get(h, target).decode(t, &p)
	if p.NextCursor == "" {
		t.Fatalf("%s: no next_cursor", target)
	}
	return p.NextCursor
}

// TestBadInput: a request a client got wrong is refused with its problem,
// whose detail names the parameter and what it must be, before any
// partition is read.
func TestBadInput(t *testing.T) {
	f, h := newFakeNode(t)
	long := strings.Repeat("x", 64<<10+1)
	// Cursors of other scans than the ones they are sent with.
	prefix1 := cursorOf(t, h, "/v1/stores/orders/keys?prefix=o-1&limit=2")
	sensors := cursorOf(t, h, "/v1/stores/sensors/keys?limit=2")
	// The cursor's first byte is its format's version.
	b, err := base64.RawURLEncoding.DecodeString(prefix1)
	if err != nil {
		t.Fatal(err)
	}
	b[0]++
	nextVersion := base64.RawURLEncoding.EncodeToString(b)
	cases := []struct {
		name, target string
		status       int
		kind, detail string
	}{
		{"unknown store: lookup", "/v1/stores/nope/keys/a", 404, "unknown-store", `no store named "nope"`},
		{"unknown store: scan", "/v1/stores/nope/keys", 404, "unknown-store", `no store named "nope"`},
		{"unknown store: count", "/v1/stores/nope/count", 404, "unknown-store", `no store named "nope"`},
		{"unknown store: key metadata", "/v1/metadata/stores/nope/keys/a", 404, "unknown-store", `no store named "nope"`},

		{"empty key", "/v1/stores/orders/keys/", 400, "empty-key", "the key in the path is empty"},
		{"empty key: key metadata", "/v1/metadata/stores/orders/keys/", 400, "empty-key", "the key in the path is empty"},
		{"int64 key that is not a number", "/v1/stores/sensors/keys/abc", 400, "bad-key", `key is not a valid int64 key: "abc" is not an int64`},
		{"int64 key out of range", "/v1/stores/sensors/keys/9223372036854775808", 400, "bad-key", `key is not a valid int64 key: "9223372036854775808" is out of range for int64`},
		{"int64 key in hex", "/v1/stores/sensors/keys/0x10", 400, "bad-key", `key is not a valid int64 key: "0x10" is not an int64`},
		{"bytes key that is not base64", "/v1/stores/blobs/keys/a%2B_b", 400, "bad-key", `key is not a valid bytes key: "a+_b" is not base64: mixes the standard and URL-safe alphabets`},
		{"uuid key that is not a UUID", "/v1/stores/ids/keys/123", 400, "bad-key", `key is not a valid uuid key: "123" is not a UUID (want 8-4-4-4-12 hex digits, like 123e4567-e89b-12d3-a456-426614174000)`},
		{"key over 64 KiB", "/v1/stores/orders/keys/" + long, 400, "key-too-long", "key is 65537 bytes; the limit is 65536"},
		{"key over 64 KiB: key metadata", "/v1/metadata/stores/orders/keys/" + long, 400, "key-too-long", "key is 65537 bytes; the limit is 65536"},

		{"from over 64 KiB", "/v1/stores/orders/keys?from=" + long, 400, "key-too-long", "from is 65537 bytes; the limit is 65536"},
		{"to over 64 KiB", "/v1/stores/orders/keys?to=" + long, 400, "key-too-long", "to is 65537 bytes; the limit is 65536"},
		{"prefix over 64 KiB", "/v1/stores/orders/keys?prefix=" + long, 400, "key-too-long", "prefix is 65537 bytes; the limit is 65536"},
		{"from not in the key serde", "/v1/stores/sensors/keys?from=x", 400, "bad-key", `from is not a valid int64 key: "x" is not an int64`},
		{"to not in the key serde", "/v1/stores/sensors/keys?to=1.5", 400, "bad-key", `to is not a valid int64 key: "1.5" is not an int64`},
		{"prefix not in the key serde", "/v1/stores/sensors/keys?prefix=-", 400, "bad-key", `prefix is not a valid int64 key: "-" is not an int64`},
		{"from after to", "/v1/stores/orders/keys?from=o-20&to=o-10", 400, "bad-range", `from "o-20" sorts after to "o-10"`},
		// int64 keys compare as bytes, big-endian two's complement, as in
		// Kafka Streams: negative numbers sort after positive ones.
		{"negative from, positive to", "/v1/stores/sensors/keys?from=-1&to=5", 400, "bad-range", `from "-1" sorts after to "5"`},

		{"limit zero", "/v1/stores/orders/keys?limit=0", 400, "bad-limit", `limit "0" must be a whole number from 1 to 25`},
		{"limit negative", "/v1/stores/orders/keys?limit=-5", 400, "bad-limit", `limit "-5" must be a whole number from 1 to 25`},
		{"limit over the maximum", "/v1/stores/orders/keys?limit=26", 400, "bad-limit", `limit "26" must be a whole number from 1 to 25`},
		{"limit not a number", "/v1/stores/orders/keys?limit=ten", 400, "bad-limit", `limit "ten" must be a whole number from 1 to 25`},
		{"limit not whole", "/v1/stores/orders/keys?limit=2.5", 400, "bad-limit", `limit "2.5" must be a whole number from 1 to 25`},

		{"cursor not base64url", "/v1/stores/orders/keys?cursor=%21%21notacursor", 400, "bad-cursor", "cursor is malformed or belongs to another scan"},
		{"cursor too short", "/v1/stores/orders/keys?cursor=AQID", 400, "bad-cursor", "cursor is malformed or belongs to another scan"},
		{"cursor of another version", "/v1/stores/orders/keys?prefix=o-1&limit=2&cursor=" + nextVersion, 400, "bad-cursor", "cursor is malformed or belongs to another scan"},
		{"cursor of another prefix", "/v1/stores/orders/keys?prefix=o-2&cursor=" + prefix1, 400, "bad-cursor", "cursor is malformed or belongs to another scan"},
		{"cursor of the same prefix and a from", "/v1/stores/orders/keys?prefix=o-1&from=o-10&cursor=" + prefix1, 400, "bad-cursor", "cursor is malformed or belongs to another scan"},
		{"cursor of another store", "/v1/stores/orders/keys?cursor=" + sensors, 400, "bad-cursor", "cursor is malformed or belongs to another scan"},

		{"unknown scan parameter", "/v1/stores/orders/keys?form=o-1", 400, "bad-parameter", `unknown query parameter "form" (known: from, to, prefix, limit, cursor, timeout, replica, max_lag, position)`},
		{"unknown lookup parameter", "/v1/stores/orders/keys/o-01?limit=1", 400, "bad-parameter", `unknown query parameter "limit" (known: timeout, min_offset, replica, max_lag, position)`},
		{"unknown count parameter", "/v1/stores/orders/count?prefix=o", 400, "bad-parameter", `unknown query parameter "prefix" (known: timeout, replica, max_lag, position)`},
		{"replica neither active nor any", "/v1/stores/orders/keys/o-01?replica=standby", 400, "bad-replica-parameter", `replica "standby" must be active or any`},
		{"negative max_lag", "/v1/stores/orders/keys?max_lag=-1", 400, "bad-replica-parameter", `max_lag "-1" must be a whole number of records, 0 or more`},
		{"min_offset not an offset", "/v1/stores/orders/keys/o-01?min_offset=next", 400, "bad-replica-parameter", `min_offset "next" must be an offset, 0 or more (what the producer got back for the key's record)`},
		{"min_offset on a scan", "/v1/stores/orders/keys?min_offset=3", 400, "bad-parameter", `unknown query parameter "min_offset" (known: from, to, prefix, limit, cursor, timeout, replica, max_lag, position)`},
		{"position that is not a token", "/v1/stores/orders/count?position=abc", 400, "bad-replica-parameter", "position is not a position token of this store's topic: it is malformed"},
		{"position of another topic", "/v1/stores/orders/keys/o-01?position=" + encodePosition("docs", []served{{upto: 3}}, []int32{0}), 400, "bad-replica-parameter", "position is not a position token of this store's topic: it is of another topic"},
		{"position naming a partition the topic does not have", "/v1/stores/docs/keys/x?position=" + encodePosition("docs", []served{{upto: 3}}, []int32{5}), 400, "bad-replica-parameter", "position is not a position token of this store's topic: it is malformed"},
		{"key metadata takes no parameter", "/v1/metadata/stores/orders/keys/o-01?timeout=1s", 400, "bad-parameter", `unknown query parameter "timeout" (this endpoint takes none)`},
		{"transform parameter on a lookup, no transform", "/v1/stores/orders/keys/o-01?t.fields=id", 400, "bad-parameter", `store "orders" has no transform, so t.fields would be ignored`},
		{"transform parameters on a scan, no transform", "/v1/stores/orders/keys?t.min=1&t.fields=id", 400, "bad-parameter", `store "orders" has no transform, so t.fields, t.min would be ignored`},
		{"transform parameter without a name", "/v1/stores/orders/keys?t.=1", 400, "bad-parameter", `transform parameter "t." has no name after t.`},

		{"timeout not a duration", "/v1/stores/orders/keys/o-01?timeout=soon", 400, "bad-timeout", `timeout "soon" must be a duration like 250ms or 2s, above 0 and at most 2s`},
		{"timeout without a unit", "/v1/stores/orders/keys/o-01?timeout=5", 400, "bad-timeout", `timeout "5" must be a duration like 250ms or 2s, above 0 and at most 2s`},
		{"timeout zero", "/v1/stores/orders/keys?timeout=0s", 400, "bad-timeout", `timeout "0s" must be a duration like 250ms or 2s, above 0 and at most 2s`},
		{"timeout negative", "/v1/stores/orders/count?timeout=-1s", 400, "bad-timeout", `timeout "-1s" must be a duration like 250ms or 2s, above 0 and at most 2s`},
		{"timeout over the maximum", "/v1/stores/orders/keys/o-01?timeout=2001ms", 400, "bad-timeout", `timeout "2001ms" must be a duration like 250ms or 2s, above 0 and at most 2s`},

		{"no such endpoint", "/v2/stores", 404, "no-such-endpoint", "no endpoint at /v2/stores"},
		{"a store without keys or count", "/v1/stores/orders", 404, "no-such-endpoint", "no endpoint at /v1/stores/orders"},
		{"trailing slash", "/v1/stores/", 404, "no-such-endpoint", "no endpoint at /v1/stores/"},

		// Between nodes: the caller sent something no node sends.
		{"internal: partition not a number", "/v1/internal/stores/orders/partitions/x/get?key=AA", 400, "bad-parameter", `no partition "x" in topic orders`},
		{"internal: partition past the last", "/v1/internal/stores/orders/partitions/4/count", 400, "bad-parameter", `no partition "4" in topic orders`},
		{"internal: partition negative", "/v1/internal/stores/orders/partitions/-1/scan?limit=1", 400, "bad-parameter", `no partition "-1" in topic orders`},
		{"internal: key not base64url", "/v1/internal/stores/orders/partitions/0/get?key=a%2Bb", 400, "bad-key", "key must be base64url"},
		{"internal: scan without limit", "/v1/internal/stores/orders/partitions/0/scan", 400, "bad-parameter", "lower and upper must be base64url, limit 1 to 25 and max_bytes above 0"},
		{"internal: scan limit over the maximum", "/v1/internal/stores/orders/partitions/0/scan?limit=26", 400, "bad-parameter", "lower and upper must be base64url, limit 1 to 25 and max_bytes above 0"},
		{"internal: scan bound not base64url", "/v1/internal/stores/orders/partitions/0/scan?limit=1&upper=%3D%3D", 400, "bad-parameter", "lower and upper must be base64url, limit 1 to 25 and max_bytes above 0"},
		{"internal: scan max_bytes not above 0", "/v1/internal/stores/orders/partitions/0/scan?limit=1&max_bytes=0", 400, "bad-parameter", "lower and upper must be base64url, limit 1 to 25 and max_bytes above 0"},
	}
	before := f.totalReads()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantProblem(t, get(h, c.target), c.target, c.status, c.kind, c.detail)
		})
	}
	t.Run("method not allowed", func(t *testing.T) {
		a := request(h, http.MethodPost, "/v1/stores/orders/keys/o-01")
		wantProblem(t, a, "/v1/stores/orders/keys/o-01", 405, "method-not-allowed", "POST is not allowed on /v1/stores/orders/keys/o-01")
	})
	if n := f.totalReads() - before; n != 0 {
		t.Errorf("bad input read %d partitions; it must be refused first", n)
	}
}

// scanPage is one page of a scan of string keys.
type scanPage struct {
	Items []struct {
		Key       string          `json:"key"`
		Value     json.RawMessage `json:"value"`
		Partition int32           `json:"partition"`
	} `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// scanned is what paging through a scan returned.
type scanned struct {
	keys       []string // in the order served: strings' text, numbers as written
	partitions []int32
	pages      []int // items per page
}

// scanAll pages through the scan at target (a URL with a query) of h from
// cursor (none: "") on, passing each page's next_cursor back until it is
// null.
func scanAll(t *testing.T, h http.Handler, target, cursor string) scanned {
	t.Helper()
	var out scanned
	for len(out.pages) <= 1000 {
		u := target
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		a := get(h, u)
		if a.status != http.StatusOK {
			t.Fatalf("%s: %d %s", u, a.status, a.body)
		}
		var p struct {
			Items []struct {
				Key       json.RawMessage `json:"key"`
				Partition int32           `json:"partition"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		a.decode(t, &p)
		for _, it := range p.Items {
			out.keys = append(out.keys, keyText(it.Key))
			out.partitions = append(out.partitions, it.Partition)
		}
		out.pages = append(out.pages, len(p.Items))
		if p.NextCursor == nil {
			return out
		}
		cursor = *p.NextCursor
	}
	t.Fatalf("%s: more than 1000 pages", target)
	return out
}

// keyText is the text form of a key in an answer: a JSON string's content,
// or a JSON number as written.
func keyText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// orders lists the orders store's keys o-NN for NN from lo to hi.
func orders(lo, hi int) []string {
	var out []string
	for i := lo; i <= hi; i++ {
		out = append(out, fmt.Sprintf("o-%02d", i))
	}
	return out
}

// TestCursorPagesThroughEveryScan: following next_cursor from the first
// page to the one whose next_cursor is null returns every key of the scan
// once, in key-byte order, in full pages of limit keys (the default without
// ?limit=) and a last page with what is left. from and to are inclusive,
// prefix selects keys whose bytes start with it, and they combine.
func TestCursorPagesThroughEveryScan(t *testing.T) {
	_, h := newFakeNode(t)
	cases := []struct {
		name   string
		target string
		keys   []string
		pages  []int
	}{
		{"every key, the default limit", "/v1/stores/orders/keys?", orders(0, 29), []int{10, 10, 10}},
		{"every key, pages of 7", "/v1/stores/orders/keys?limit=7", orders(0, 29), []int{7, 7, 7, 7, 2}},
		{"every key, pages of the maximum", "/v1/stores/orders/keys?limit=25", orders(0, 29), []int{25, 5}},
		{"every key, pages of 1", "/v1/stores/blobs/keys?limit=1", []string{"AA==", "+/8="}, []int{1, 1}},
		{"from and to, both inclusive", "/v1/stores/orders/keys?from=o-05&to=o-14&limit=4", orders(5, 14), []int{4, 4, 2}},
		{"from only", "/v1/stores/orders/keys?from=o-25&limit=3", orders(25, 29), []int{3, 2}},
		{"to only", "/v1/stores/orders/keys?to=o-03&limit=3", orders(0, 3), []int{3, 1}},
		{"from equal to to", "/v1/stores/orders/keys?from=o-12&to=o-12", orders(12, 12), []int{1}},
		{"from and to between two keys", "/v1/stores/orders/keys?from=o-05a&to=o-05b", nil, []int{0}},
		{"to before every key", "/v1/stores/orders/keys?to=a", nil, []int{0}},
		{"from after every key", "/v1/stores/orders/keys?from=p", nil, []int{0}},
		{"an empty from is the first key", "/v1/stores/orders/keys?from=&limit=25", orders(0, 29), []int{25, 5}},
		{"prefix", "/v1/stores/orders/keys?prefix=o-1&limit=4", orders(10, 19), []int{4, 4, 2}},
		{"prefix that is a whole key", "/v1/stores/orders/keys?prefix=o-07", orders(7, 7), []int{1}},
		{"prefix that no key has", "/v1/stores/orders/keys?prefix=x", nil, []int{0}},
		{"an empty prefix is every key", "/v1/stores/orders/keys?prefix=&limit=25", orders(0, 29), []int{25, 5}},
		{"prefix and from", "/v1/stores/orders/keys?prefix=o-1&from=o-15&limit=2", orders(15, 19), []int{2, 2, 1}},
		{"prefix and to", "/v1/stores/orders/keys?prefix=o-1&to=o-12", orders(10, 12), []int{3}},
		{"prefix, from and to", "/v1/stores/orders/keys?prefix=o-1&from=o-05&to=o-11", orders(10, 11), []int{2}},
		{"prefix outside from and to", "/v1/stores/orders/keys?prefix=o-2&to=o-15", nil, []int{0}},
		// int64 keys are big-endian two's complement: negative numbers
		// sort after positive ones, as in Kafka Streams' byte stores.
		{"int64 keys in byte order", "/v1/stores/sensors/keys?limit=4", []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "-1"}, []int{4, 4, 3}},
		{"int64 from and to", "/v1/stores/sensors/keys?from=3&to=6", []string{"3", "4", "5", "6"}, []int{4}},
		{"int64 from a positive number takes the negative ones too", "/v1/stores/sensors/keys?from=9", []string{"9", "10", "-1"}, []int{3}},
		{"bytes keys, bounds in URL-safe base64", "/v1/stores/blobs/keys?from=AA&to=-_8", []string{"AA==", "+/8="}, []int{2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := scanAll(t, h, c.target, "")
			if !reflect.DeepEqual(got.keys, c.keys) || !reflect.DeepEqual(got.pages, c.pages) {
				t.Errorf("%s:\n got keys %q in pages %v\nwant keys %q in pages %v", c.target, got.keys, got.pages, c.keys, c.pages)
			}
		})
	}
}

// TestCursorSameKeyInTwoPartitions: scans merge partitions in (key,
// partition) order, and the cursor is the last (partition, key) returned,
// so a key present in two partitions (a custom partitioner, a topic whose
// partitions were added) comes once from each, in partition order, even
// when a page ends between them.
func TestCursorSameKeyInTwoPartitions(t *testing.T) {
	f, h := newFakeNode(t)
	for _, p := range []int32{3, 1} {
		f.putAt(state.Partition{Topic: "orders", Partition: p}, []byte("o-10"), []byte(`{"copy":true}`), 100)
	}
	got := scanAll(t, h, "/v1/stores/orders/keys?from=o-09&to=o-11&limit=1", "")
	// o-10 is in partition 0 too, where the partitioner put it.
	if want := []string{"o-09", "o-10", "o-10", "o-10", "o-11"}; !reflect.DeepEqual(got.keys, want) {
		t.Fatalf("keys %q, want %q", got.keys, want)
	}
	if want := []int32{0, 0, 1, 3, 3}; !reflect.DeepEqual(got.partitions, want) {
		t.Errorf("partitions %v, want %v: o-09, then o-10 from partitions 0, 1 and 3, then o-11", got.partitions, want)
	}
}

// TestCursorIsAPositionNotASnapshot: the cursor holds where the last page
// ended, not what the store held then. A key written before that position
// after the page was served is not returned by the next pages; a key
// written after it is. The limit may change from page to page: it is not
// part of the scan's identity.
func TestCursorIsAPositionNotASnapshot(t *testing.T) {
	f, h := newFakeNode(t)
	var first scanPage
	get(h, "/v1/stores/orders/keys?prefix=o-0&limit=5").decode(t, &first)
	if first.NextCursor == nil {
		t.Fatal("no cursor after the first page")
	}
	f.put(t, "orders", "o-02a", `{}`, 200) // behind the cursor (o-04)
	f.put(t, "orders", "o-06a", `{}`, 201) // ahead of it
	got := scanAll(t, h, "/v1/stores/orders/keys?prefix=o-0&limit=2", *first.NextCursor)
	if want := []string{"o-05", "o-06", "o-06a", "o-07", "o-08", "o-09"}; !reflect.DeepEqual(got.keys, want) || !reflect.DeepEqual(got.pages, []int{2, 2, 2}) {
		t.Errorf("after the first page: keys %q in pages %v, want %q in pages of 2", got.keys, got.pages, want)
	}
}

// TestRenderLookup: a found key answers 200 with its key and value in the
// store's serdes, its partition (Kafka's default partitioner), offset and
// timestamp (RFC 3339, UTC, milliseconds), and the node that served it, in
// the body and in headers.
func TestRenderLookup(t *testing.T) {
	f, h := newFakeNode(t)
	const ts = `"timestamp":"2026-01-02T03:04:05.006Z"`
	cases := []struct {
		name, target, want string
	}{
		{"string key, JSON value", "/v1/stores/orders/keys/o-07",
			`{"key":"o-07","value":{"id":"o-07","n":7},"partition":3,"offset":7,` + ts + `,"served_by":"n1"` + labels(f, "orders", 3) + `}`},
		{"JSON is served as stored, spaces included; an escaped slash is part of the key", "/v1/stores/docs/keys/" + url.PathEscape("a/b c"),
			`{"key":"a/b c","value":{ "spaced" : [1, 2] },"partition":0,"offset":1,` + ts + `,"served_by":"n1"` + labels(f, "docs", 0) + `}`},
		{"a quote in the key is escaped in JSON", "/v1/stores/docs/keys/quote%22d",
			`{"key":"quote\"d","value":"a JSON string","partition":0,"offset":3,` + ts + `,"served_by":"n1"` + labels(f, "docs", 0) + `}`},
		{"UTF-8 key and value", "/v1/stores/docs/keys/" + url.PathEscape("ünï"),
			`{"key":"ünï","value":{"é":"ü"},"partition":0,"offset":4,` + ts + `,"served_by":"n1"` + labels(f, "docs", 0) + `}`},
		{"int64 key written as decimal text", "/v1/stores/sensors/keys/7",
			`{"key":7,"value":{"sensor":7},"partition":2,"offset":107,` + ts + `,"served_by":"n1"` + labels(f, "sensors", 2) + `}`},
		{"negative int64 key", "/v1/stores/sensors/keys/-1",
			`{"key":-1,"value":{"sensor":-1},"partition":2,"offset":99,` + ts + `,"served_by":"n1"` + labels(f, "sensors", 2) + `}`},
		{"bytes key in URL-safe base64 without padding, bytes as standard base64", "/v1/stores/blobs/keys/-_8",
			`{"key":"+/8=","value":"aGVsbG8=","partition":0,"offset":1,` + ts + `,"served_by":"n1"` + labels(f, "blobs", 0) + `}`},
		{"bytes key in standard base64 with padding", "/v1/stores/blobs/keys/" + url.PathEscape("+/8="),
			`{"key":"+/8=","value":"aGVsbG8=","partition":0,"offset":1,` + ts + `,"served_by":"n1"` + labels(f, "blobs", 0) + `}`},
		{"empty bytes value", "/v1/stores/blobs/keys/AA",
			`{"key":"AA==","value":"","partition":0,"offset":2,` + ts + `,"served_by":"n1"` + labels(f, "blobs", 0) + `}`},
		{"uuid key, float64 value", "/v1/stores/ids/keys/123e4567-e89b-12d3-a456-426614174000",
			`{"key":"123e4567-e89b-12d3-a456-426614174000","value":3.141592653589793,"partition":0,"offset":7,` + ts + `,"served_by":"n1"` + labels(f, "ids", 0) + `}`},
		{"int32 key, string value", "/v1/stores/counters/keys/42",
			`{"key":42,"value":"forty-two","partition":0,"offset":8,` + ts + `,"served_by":"n1"` + labels(f, "ids", 0) + `}`},
		{"a timeout changes nothing when the partition serves", "/v1/stores/orders/keys/o-06?timeout=1ms",
			`{"key":"o-06","value":{"id":"o-06","n":6},"partition":0,"offset":6,` + ts + `,"served_by":"n1"` + labels(f, "orders", 0) + `}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := get(h, c.target)
			if a.status != http.StatusOK || string(a.body) != c.want+"\n" {
				t.Errorf("GET %s:\n got %d %s\nwant 200 %s", c.target, a.status, a.body, c.want)
			}
			for name, want := range map[string]string{"Content-Type": "application/json", servedByHeader: "n1", waitedHeader: "0"} {
				if got := a.header.Get(name); got != want {
					t.Errorf("GET %s: %s %q, want %q", c.target, name, got, want)
				}
			}
		})
	}
}

// TestRenderScan: a page is {"items": [...], "next_cursor": ...} in JSON,
// or with Accept: application/x-ndjson one item per line and a last line
// with the cursor. An item is a lookup's answer without served_by. A record
// its serdes cannot decode does not fail the page: its value is null with
// an error, and a key that does not decode is null with its bytes in
// key_base64.
func TestRenderScan(t *testing.T) {
	f, h := newFakeNode(t)
	const ts = `"timestamp":"2026-01-02T03:04:05.006Z"`
	o05 := `{"key":"o-05","value":{"id":"o-05","n":5},"partition":2,"offset":5,` + ts + `}`
	o06 := `{"key":"o-06","value":{"id":"o-06","n":6},"partition":0,"offset":6,` + ts + `}`
	cases := []struct {
		name, target, accept string
		contentType, want    string
	}{
		{"a page with more after it", "/v1/stores/orders/keys?from=o-05&limit=2", "",
			"application/json", `{"items":[` + o05 + `,` + o06 + `],"next_cursor":"AYc5NBPwCNmfAAAAAG8tMDY"` + labels(f, "orders", 0, 1, 2, 3) + `}`},
		{"the same page as NDJSON", "/v1/stores/orders/keys?from=o-05&limit=2", "application/x-ndjson",
			"application/x-ndjson", o05 + "\n" + o06 + "\n" + `{"next_cursor":"AYc5NBPwCNmfAAAAAG8tMDY"` + labels(f, "orders", 0, 1, 2, 3) + `}`},
		{"NDJSON asked among other types", "/v1/stores/orders/keys?from=o-05&limit=2", "application/json;q=0.5, application/x-ndjson",
			"application/x-ndjson", o05 + "\n" + o06 + "\n" + `{"next_cursor":"AYc5NBPwCNmfAAAAAG8tMDY"` + labels(f, "orders", 0, 1, 2, 3) + `}`},
		{"the last page", "/v1/stores/orders/keys?from=o-05&to=o-06", "",
			"application/json", `{"items":[` + o05 + `,` + o06 + `],"next_cursor":null` + labels(f, "orders", 0, 1, 2, 3) + `}`},
		{"the last page as NDJSON", "/v1/stores/orders/keys?from=o-05&to=o-06", "application/x-ndjson",
			"application/x-ndjson", o05 + "\n" + o06 + "\n" + `{"next_cursor":null` + labels(f, "orders", 0, 1, 2, 3) + `}`},
		{"an empty page", "/v1/stores/orders/keys?prefix=x", "",
			"application/json", `{"items":[],"next_cursor":null` + labels(f, "orders", 0, 1, 2, 3) + `}`},
		{"an empty page as NDJSON", "/v1/stores/orders/keys?prefix=x", "application/x-ndjson",
			"application/x-ndjson", `{"next_cursor":null` + labels(f, "orders", 0, 1, 2, 3) + `}`},
		{"values and keys that do not decode", "/v1/stores/docs/keys", "", "application/json", oneLine(`
			{"items":[
				{"key":"a/b c","value":{ "spaced" : [1, 2] },"partition":0,"offset":1,` + ts + `},
				{"key":"bad","value":null,"error":"value does not decode as json: not a JSON document","partition":0,"offset":2,` + ts + `},
				{"key":"quote\"d","value":"a JSON string","partition":0,"offset":3,` + ts + `},
				{"key":"ünï","value":{"é":"ü"},"partition":0,"offset":4,` + ts + `},
				{"key":null,"key_base64":"//4=","value":{},"partition":0,"offset":5,` + ts + `}
			],"next_cursor":null` + labels(f, "docs", 0) + `}`)},
		{"two stores over one topic: the ids store", "/v1/stores/ids/keys", "", "application/json", oneLine(`
			{"items":[
				{"key":null,"key_base64":"AAAAKg==","value":null,"error":"value does not decode as float64: float64 needs 8 bytes, got 9","partition":0,"offset":8,` + ts + `},
				{"key":"123e4567-e89b-12d3-a456-426614174000","value":3.141592653589793,"partition":0,"offset":7,` + ts + `}
			],"next_cursor":null` + labels(f, "ids", 0) + `}`)},
		{"two stores over one topic: the counters store", "/v1/stores/counters/keys", "", "application/json", oneLine(`
			{"items":[
				{"key":42,"value":"forty-two","partition":0,"offset":8,` + ts + `},
				{"key":null,"key_base64":"MTIzZTQ1NjctZTg5Yi0xMmQzLWE0NTYtNDI2NjE0MTc0MDAw","value":null,"error":"value does not decode as string: not valid UTF-8 at byte 3","partition":0,"offset":7,` + ts + `}
			],"next_cursor":null` + labels(f, "ids", 0) + `}`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var header []string
			if c.accept != "" {
				header = []string{"Accept", c.accept}
			}
			a := get(h, c.target, header...)
			if a.status != http.StatusOK || string(a.body) != c.want+"\n" {
				t.Errorf("GET %s (Accept %q):\n got %d %s\nwant 200 %s", c.target, c.accept, a.status, a.body, c.want)
			}
			for name, want := range map[string]string{"Content-Type": c.contentType, servedByHeader: "n1", waitedHeader: "0"} {
				if got := a.header.Get(name); got != want {
					t.Errorf("GET %s: %s %q, want %q", c.target, name, got, want)
				}
			}
		})
	}
}

// TestRenderProblems: what a query answers when the store cannot give what
// it asks: an absent key, a stored value that does not decode, a partition
// that does not serve before the deadline (503 with Retry-After, naming the
// partitions), a forwarded request for a partition this node does not own
// (421 at once, with this node's routing generation), a read that fails
// (500). A read that meets a closed store (state.ErrClosed: the node's
// shutdown closed it under the query) is a partition that does not serve
// here, never a 500: the query waits for another owner, and a peer's call
// is answered 421, so that the peer refreshes its routing table and asks
// again.
func TestRenderProblems(t *testing.T) {
	f, h := newFakeNode(t)
	restoring := state.Partition{Topic: "sensors", Partition: 2}
	f.setStatus(restoring, state.Restoring)
	unassigned := state.Partition{Topic: "sensors", Partition: 1}
	f.setStatus(unassigned, 0)
	broken := state.Partition{Topic: "orders", Partition: 3}
	f.failReads(broken, errors.New("disk on fire"))
	closed := state.Partition{Topic: "blobs", Partition: 0}
	f.failReads(closed, fmt.Errorf("engine: %w", state.ErrClosed))
	restoringP := unavailablePartition{Topic: "sensors", Partition: 2, Reason: "restoring on n1"}
	unassignedP := unavailablePartition{Topic: "sensors", Partition: 1, Reason: "no owner (moving between nodes)"}

	cases := []struct {
		name, target string
		hops         string // Iqengine-Hops
		status       int
		kind, detail string
		partitions   []unavailablePartition
	}{
		{"absent key", "/v1/stores/orders/keys/o-99", "", 404, "key-not-found", `key "o-99" is not in the store`, nil},
		{"absent key, escaped", "/v1/stores/docs/keys/" + url.PathEscape("no/such key"), "", 404, "key-not-found", `key "no/such key" is not in the store`, nil},
		{"value that does not decode", "/v1/stores/docs/keys/bad", "", 500, "undecodable-value", "value at offset 2 does not decode as json: not a JSON document", nil},
		{"partition restoring", "/v1/stores/sensors/keys/7?timeout=1ms", "", 503, "partition-unavailable",
			"no serving owner before the deadline for partition sensors/2 (restoring on n1)", []unavailablePartition{restoringP}},
		{"partition not assigned here, no other owner known", "/v1/stores/sensors/keys/3?timeout=1ms", "", 503, "partition-unavailable",
			"no serving owner before the deadline for partition sensors/1 (no owner (moving between nodes))", []unavailablePartition{unassignedP}},
		{"store closed under the read", "/v1/stores/blobs/keys/AA?timeout=1ms", "", 503, "partition-unavailable",
			"no serving owner before the deadline for partition blobs/0 (no owner (moving between nodes))", []unavailablePartition{{Topic: "blobs", Partition: 0, Reason: "no owner (moving between nodes)"}}},
		{"scan: every partition that did not serve", "/v1/stores/sensors/keys?timeout=1ms", "", 503, "partition-unavailable",
			"no serving owner before the deadline for partition sensors/1 (no owner (moving between nodes)), sensors/2 (restoring on n1)", []unavailablePartition{unassignedP, restoringP}},
		{"count: every partition that did not serve", "/v1/stores/sensors/count?timeout=1ms", "", 503, "partition-unavailable",
			"no serving owner before the deadline for partition sensors/1 (no owner (moving between nodes)), sensors/2 (restoring on n1)", []unavailablePartition{unassignedP, restoringP}},
		{"forwarded, partition not assigned here", "/v1/stores/sensors/keys/3", "1", 421, "not-owner",
			"this node does not own partition sensors/1 (routing generation -1)", nil},
		{"forwarded, partition restoring here: it waits", "/v1/stores/sensors/keys/7?timeout=1ms", "1", 503, "partition-unavailable",
			"no serving owner before the deadline for partition sensors/2 (restoring on n1)", []unavailablePartition{restoringP}},
		{"read failed", "/v1/stores/orders/keys/o-07", "", 500, "internal", "disk on fire", nil},
		{"scan with a read that failed", "/v1/stores/orders/keys", "", 500, "internal", "disk on fire", nil},
		{"count with a read that failed", "/v1/stores/orders/count", "", 500, "internal", "disk on fire", nil},
		{"forwarded, store closed", "/v1/stores/blobs/keys/AA", "1", 421, "not-owner",
			"this node does not own partition blobs/0 (routing generation -1)", nil},
		{"internal get, partition not assigned here", "/v1/internal/stores/sensors/partitions/1/get?key=AAAAAAAAAAM&timeout=1s", "1", 421, "not-owner",
			"this node does not own partition sensors/1 (routing generation -1)", nil},
		{"internal count, store closed", "/v1/internal/stores/blobs/partitions/0/count?timeout=1s", "1", 421, "not-owner",
			"this node does not own partition blobs/0 (routing generation -1)", nil},
		{"internal scan, partition restoring", "/v1/internal/stores/sensors/partitions/2/scan?limit=1&timeout=1ms", "1", 503, "partition-unavailable",
			"no serving owner before the deadline for partition sensors/2 (restoring on n1)", []unavailablePartition{{Topic: "sensors", Partition: 2, Reason: "restoring on n1"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var header []string
			if c.hops != "" {
				header = []string{hopsHeader, c.hops}
			}
			start := time.Now()
			a := get(h, c.target, header...)
			wantProblem(t, a, c.target, c.status, c.kind, c.detail, c.partitions...)
			switch c.status {
			case http.StatusServiceUnavailable:
				if ra := a.header.Get("Retry-After"); ra != "1" {
					t.Errorf("Retry-After %q, want 1", ra)
				}
			case http.StatusMisdirectedRequest:
				if g := a.header.Get(generationHeader); g != "-1" {
					t.Errorf("%s %q, want -1", generationHeader, g)
				}
				if took := time.Since(start); took > time.Second/2 {
					t.Errorf("421 after %v: it waited", took)
				}
			}
		})
	}
}

// TestRenderCountStoresAndMetadata: the count, the list of stores, where a
// key lives, and the partitions with their owner and state, on a node that
// is in no routing table (a single node).
func TestRenderCountStoresAndMetadata(t *testing.T) {
	f, h := newFakeNode(t)
	f.setStatus(state.Partition{Topic: "sensors", Partition: 1}, state.Restoring)
	f.setStatus(state.Partition{Topic: "sensors", Partition: 2}, 0)
	cases := []struct{ name, target, want string }{
		{"count", "/v1/stores/orders/count", `{"approximate":true,"count":30,"lag":0,"position":"` + token(f, "orders", 0, 1, 2, 3) + `","replica":"active","store":"orders"}`},
		{"count of a store over a shared topic", "/v1/stores/counters/count", `{"approximate":true,"count":2,"lag":0,"position":"` + token(f, "ids", 0) + `","replica":"active","store":"counters"}`},
		{"stores", "/v1/stores", oneLine(`
			{"stores":[
				{"name":"blobs","topic":"blobs","partitions":1,"key_serde":"bytes","value_serde":"bytes","kind":"keyvalue"},
				{"name":"counters","topic":"ids","partitions":1,"key_serde":"int32","value_serde":"string","kind":"keyvalue"},
				{"name":"docs","topic":"docs","partitions":1,"key_serde":"string","value_serde":"json","kind":"keyvalue"},
				{"name":"ids","topic":"ids","partitions":1,"key_serde":"uuid","value_serde":"float64","kind":"keyvalue"},
				{"name":"orders","topic":"orders","partitions":4,"key_serde":"string","value_serde":"json","kind":"keyvalue"},
				{"name":"sensors","topic":"sensors","partitions":3,"key_serde":"int64","value_serde":"json","kind":"keyvalue"}
			]}`)},
		{"where a key lives", "/v1/metadata/stores/orders/keys/o-07",
			`{"store":"orders","topic":"orders","key":"o-07","partition":3,"owner":null,"standbys":[],"generation":-1}`},
		{"where an int64 key lives", "/v1/metadata/stores/sensors/keys/7",
			`{"store":"sensors","topic":"sensors","key":"7","partition":2,"owner":null,"standbys":[],"generation":-1}`},
		{"instances", "/v1/metadata/instances", `{"generation":-1,"instances":[]}`},
		{"partitions", "/v1/metadata/partitions", oneLine(`
			{"generation":-1,"partitions":[
				{"topic":"blobs","partition":0,"owner":"n1","replica":"active","state":"serving","offset":2,"high_watermark":3,"lag":0,"start_offset":0,"applied":2,"standbys":[]},
				{"topic":"docs","partition":0,"owner":"n1","replica":"active","state":"serving","offset":5,"high_watermark":6,"lag":0,"start_offset":0,"applied":5,"standbys":[]},
				{"topic":"ids","partition":0,"owner":"n1","replica":"active","state":"serving","offset":8,"high_watermark":9,"lag":0,"start_offset":0,"applied":2,"standbys":[]},
				{"topic":"orders","partition":0,"owner":"n1","replica":"active","state":"serving","offset":29,"high_watermark":30,"lag":0,"start_offset":0,"applied":10,"standbys":[]},
				{"topic":"orders","partition":1,"owner":"n1","replica":"active","state":"serving","offset":26,"high_watermark":27,"lag":0,"start_offset":0,"applied":5,"standbys":[]},
				{"topic":"orders","partition":2,"owner":"n1","replica":"active","state":"serving","offset":28,"high_watermark":29,"lag":0,"start_offset":0,"applied":5,"standbys":[]},
				{"topic":"orders","partition":3,"owner":"n1","replica":"active","state":"serving","offset":23,"high_watermark":24,"lag":0,"start_offset":0,"applied":10,"standbys":[]},
				{"topic":"sensors","partition":0,"owner":"n1","replica":"active","state":"serving","offset":104,"high_watermark":105,"lag":0,"start_offset":0,"applied":3,"standbys":[]},
				{"topic":"sensors","partition":1,"owner":"n1","replica":"active","state":"restoring","offset":110,"high_watermark":111,"lag":0,"start_offset":0,"applied":5,"standbys":[]},
				{"topic":"sensors","partition":2,"owner":"","replica":"","state":"","offset":0,"high_watermark":0,"lag":0,"start_offset":0,"applied":0,"error":"no owner (moving between nodes)","standbys":[]}
			]}`)},
		{"this node's partitions, for the other nodes", "/v1/internal/partitions", oneLine(`
			[
				{"topic":"blobs","partition":0,"replica":"active","state":"serving","offset":2,"high_watermark":3,"lag":0,"start_offset":0,"applied":2},
				{"topic":"docs","partition":0,"replica":"active","state":"serving","offset":5,"high_watermark":6,"lag":0,"start_offset":0,"applied":5},
				{"topic":"ids","partition":0,"replica":"active","state":"serving","offset":8,"high_watermark":9,"lag":0,"start_offset":0,"applied":2},
				{"topic":"orders","partition":0,"replica":"active","state":"serving","offset":29,"high_watermark":30,"lag":0,"start_offset":0,"applied":10},
				{"topic":"orders","partition":1,"replica":"active","state":"serving","offset":26,"high_watermark":27,"lag":0,"start_offset":0,"applied":5},
				{"topic":"orders","partition":2,"replica":"active","state":"serving","offset":28,"high_watermark":29,"lag":0,"start_offset":0,"applied":5},
				{"topic":"orders","partition":3,"replica":"active","state":"serving","offset":23,"high_watermark":24,"lag":0,"start_offset":0,"applied":10},
				{"topic":"sensors","partition":0,"replica":"active","state":"serving","offset":104,"high_watermark":105,"lag":0,"start_offset":0,"applied":3},
				{"topic":"sensors","partition":1,"replica":"active","state":"restoring","offset":110,"high_watermark":111,"lag":0,"start_offset":0,"applied":5}
			]`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := get(h, c.target)
			if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/json" || string(a.body) != c.want+"\n" {
				t.Errorf("GET %s:\n got %d %s %s\nwant 200 application/json %s", c.target, a.status, a.header.Get("Content-Type"), a.body, c.want)
			}
		})
	}
}

// TestRenderHealth: /healthz is 200 until the engine fails, then 503 with
// the reason; /readyz is 200 only while the engine is ready. Both answer
// whatever the partitions do.
func TestRenderHealth(t *testing.T) {
	f, h := newFakeNode(t)
	cases := []struct {
		name   string
		ready  bool
		err    error
		path   string
		status int
		want   string
	}{
		{"healthy", true, nil, "/healthz", 200, `{"status":"ok"}`},
		{"ready", true, nil, "/readyz", 200, `{"status":"ready"}`},
		{"restoring: healthy", false, nil, "/healthz", 200, `{"status":"ok"}`},
		{"restoring: not ready", false, nil, "/readyz", 503, `{"status":"restoring"}`},
		{"failed: not healthy", false, errors.New("store stalled for 1m0s"), "/healthz", 503, `{"error":"store stalled for 1m0s","status":"failed"}`},
		{"failed: not ready", false, errors.New("store stalled for 1m0s"), "/readyz", 503, `{"error":"store stalled for 1m0s","status":"failed"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.setHealth(c.ready, c.err)
			a := get(h, c.path)
			if a.status != c.status || a.header.Get("Content-Type") != "application/json" || string(a.body) != c.want+"\n" {
				t.Errorf("GET %s: %d %s, want %d %s", c.path, a.status, a.body, c.status, c.want)
			}
		})
	}
}

// TestRenderMetrics: /metrics counts requests by endpoint and status and
// times them by endpoint.
func TestRenderMetrics(t *testing.T) {
	_, h := newFakeNode(t)
	get(h, "/v1/stores/orders/keys/o-01")
	get(h, "/v1/stores/orders/keys/o-01")
	get(h, "/v1/stores/orders/keys/nope")
	get(h, "/v1/stores/orders/keys?limit=0")
	m := string(get(h, "/metrics").body)
	for _, want := range []string{
		`iqengine_http_requests_total{endpoint="get",status="200"} 2`,
		`iqengine_http_requests_total{endpoint="get",status="404"} 1`,
		`iqengine_http_requests_total{endpoint="scan",status="400"} 1`,
		`iqengine_http_request_duration_seconds_count{endpoint="get"} 3`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestQueryWaitsWhileRestoring: a lookup of a partition that restores here
// waits, retrying, and is answered once the partition serves; the answer
// says how long it waited.
func TestQueryWaitsWhileRestoring(t *testing.T) {
	f, h := newFakeNode(t)
	p := state.Partition{Topic: "orders", Partition: 3}
	f.setStatus(p, state.Restoring)
	done := make(chan answer, 1)
	go func() { done <- get(h, "/v1/stores/orders/keys/o-07?timeout=2s") }()
	// Two reads: the query has found the partition restoring and retried.
	testutil.WaitFor(t, 2*time.Second, "the query did not retry the restoring partition", func() bool { return f.readsOf(p) >= 2 })
	f.setStatus(p, state.Serving)
	a := <-done
	if a.status != http.StatusOK || !strings.HasPrefix(string(a.body), `{"key":"o-07",`) {
		t.Fatalf("after the restore: %d %s", a.status, a.body)
	}
	if a.header.Get(waitedHeader) == "0" {
		t.Errorf("%s: 0 after waiting for a restore", waitedHeader)
	}
}

// TestRenderHardErrorBeatsWaiting: a scan or count where one partition's
// read fails and another's partition is still restoring answers the failure
// at once (500), instead of waiting out the deadline for the restoring one
// and then answering 503 without the failure.
func TestRenderHardErrorBeatsWaiting(t *testing.T) {
	f, h := newFakeNode(t)
	f.setStatus(state.Partition{Topic: "orders", Partition: 1}, state.Restoring)
	f.failReads(state.Partition{Topic: "orders", Partition: 3}, errors.New("disk on fire"))
	for _, target := range []string{"/v1/stores/orders/keys?timeout=2s", "/v1/stores/orders/count?timeout=2s"} {
		start := time.Now()
		a := get(h, target)
		wantProblem(t, a, target, 500, "internal", "disk on fire")
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s: answered after %v: it waited for the restoring partition", target, took)
		}
	}
}

// token is the position token of partitions read from the fake.
func token(f *fakeEngine, topic string, partitions ...int32) string {
	l := labels(f, topic, partitions...)
	_, tok, _ := strings.Cut(l, `"position":"`)
	return strings.TrimSuffix(tok, `"`)
}

// labels is how an answer read from active replicas here ends: the kind of
// replica, its lag, and the position token of the partitions read.
func labels(f *fakeEngine, topic string, partitions ...int32) string {
	by := make([]served, len(partitions))
	for i, p := range partitions {
		r, err := f.Replica(state.Partition{Topic: topic, Partition: p})
		if err != nil {
			panic(err)
		}
		by[i] = served{kind: r.Kind, upto: r.Upto}
	}
	return `,"replica":"active","lag":0,"position":"` + encodePosition(topic, by, partitions) + `"`
}

// TestReplicaLabelsAndBounds: an answer from a standby says so, with its
// lag, in the body and the headers; ?max_lag= below its lag refuses it
// (position-not-reached, naming how far behind it is), ?replica=active
// refuses it (partition-unavailable), and ?min_offset= past what it
// applied waits, then answers position-not-reached. A position token
// passed back is honoured like min_offset.
func TestReplicaLabelsAndBounds(t *testing.T) {
	f, h := newFakeNode(t)
	p := state.Partition{Topic: "orders", Partition: 3} // o-07's; offsets up to 23
	f.setReplica(p, state.Standby, 7)
	a := get(h, "/v1/stores/orders/keys/o-07")
	var got struct {
		Replica  string `json:"replica"`
		Lag      int64  `json:"lag"`
		Position string `json:"position"`
	}
	a.decode(t, &got)
	if a.status != http.StatusOK || got.Replica != "standby" || got.Lag != 7 {
		t.Fatalf("from a standby 7 behind: %d %s", a.status, a.body)
	}
	for name, want := range map[string]string{replicaHeader: "standby", lagHeader: "7", positionHeader: got.Position} {
		if a.header.Get(name) != want {
			t.Errorf("%s %q, want %q", name, a.header.Get(name), want)
		}
	}
	if pos, err := decodePosition(got.Position, "orders", 4); err != nil || pos[3] != 24 || len(pos) != 1 {
		t.Errorf("position %q decodes to %v %v, want partition 3 at 24", got.Position, pos, err)
	}
	if a := get(h, "/v1/stores/orders/keys/o-07?max_lag=7"); a.status != http.StatusOK {
		t.Errorf("max_lag=7 from a standby 7 behind: %d %s", a.status, a.body)
	}
	wantProblem(t, get(h, "/v1/stores/orders/keys/o-07?max_lag=6&timeout=1ms"), "/v1/stores/orders/keys/o-07?max_lag=6&timeout=1ms", 503, probNotReached,
		"no replica had applied as far as the query wants before the deadline: orders/3 (7 records behind on n1, max_lag 6)",
		unavailablePartition{Topic: "orders", Partition: 3, Reason: "7 records behind on n1, max_lag 6"})
	wantProblem(t, get(h, "/v1/stores/orders/keys/o-07?replica=active&timeout=1ms"), "/v1/stores/orders/keys/o-07?replica=active&timeout=1ms", 503, probUnavailable,
		"no serving owner before the deadline for partition orders/3 (only a standby on n1 (the query wants the active replica))",
		unavailablePartition{Topic: "orders", Partition: 3, Reason: "only a standby on n1 (the query wants the active replica)"})
	if a := get(h, "/v1/stores/orders/keys/o-07?min_offset=23"); a.status != http.StatusOK {
		t.Errorf("min_offset=23, applied up to 23: %d %s", a.status, a.body)
	}
	wantProblem(t, get(h, "/v1/stores/orders/keys/o-07?min_offset=24&timeout=1ms"), "/v1/stores/orders/keys/o-07?min_offset=24&timeout=1ms", 503, probNotReached,
		"no replica had applied as far as the query wants before the deadline: orders/3 (applied up to offset 23 on n1, the query wants 24)",
		unavailablePartition{Topic: "orders", Partition: 3, Reason: "applied up to offset 23 on n1, the query wants 24"})
	ahead := encodePosition("orders", []served{{upto: 30}}, []int32{3})
	if a := get(h, "/v1/stores/orders/count?timeout=1ms&position="+ahead); a.status != http.StatusServiceUnavailable {
		t.Errorf("a count with a position ahead of the replica: %d %s", a.status, a.body)
	}
	if a := get(h, "/v1/stores/orders/keys?position="+got.Position); a.status != http.StatusOK || a.header.Get(replicaHeader) != "standby" {
		t.Errorf("a scan with the lookup's own position: %d %s %v", a.status, a.body, a.header)
	}
}
