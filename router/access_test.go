package router

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iqengine/iqengine/cluster"
)

// fakeIdentity reads the stores listed ("*": all).
type fakeIdentity struct {
	stores   []string
	metadata bool
}

func (i fakeIdentity) CanRead(s string) bool {
	return slices.Contains(i.stores, "*") || slices.Contains(i.stores, s)
}
func (i fakeIdentity) Metadata() bool { return i.metadata }

// fakeAuth knows three bearer tokens.
func fakeAuth(r *http.Request) (Identity, error) {
	switch r.Header.Get("Authorization") {
	case "":
		return nil, nil
	case "Bearer admin":
		return fakeIdentity{[]string{"*"}, true}, nil
	case "Bearer orders-reader":
		return fakeIdentity{[]string{"orders"}, false}, nil
	case "Bearer sensors-reader":
		return fakeIdentity{[]string{"sensors"}, false}, nil
	}
	return nil, errors.New("unknown bearer token")
}

// TestAccessByEndpoint: with authentication on, every endpoint but the
// health probes answers 401 without credentials or with bad ones, 403 with
// credentials for another store (or without metadata access), and its
// answer with the right ones; internal endpoints take no client's
// credentials at all.
func TestAccessByEndpoint(t *testing.T) {
	key := cluster.NewKey("a cluster secret of at least 32 characters")
	_, h := newFakeNode(t, func(o *Options) { o.Authenticate, o.ClusterKey = fakeAuth, key })
	_, open := newFakeNode(t, func(o *Options) { o.Authenticate, o.OpenMetrics = fakeAuth, true })
	type want struct{ none, orders, sensors, admin int }
	data := want{401, 200, 403, 200}
	meta := want{401, 403, 403, 200}
	internal := want{401, 401, 401, 401}
	cases := []struct {
		target string
		want   want
		h      *Handler
	}{
		{"/v1/stores/orders/keys/o-01", data, h},
		{"/v1/stores/orders/keys/absent", want{401, 404, 403, 404}, h},
		{"/v1/stores/orders/keys?limit=3", data, h},
		{"/v1/stores/orders/count", data, h},
		{"/v1/stores/nosuch/keys/x", want{401, 403, 403, 404}, h},
		{"/v1/stores", want{401, 200, 200, 200}, h},
		{"/v1/metadata/partitions", meta, h},
		{"/v1/metadata/instances", meta, h},
		{"/v1/metadata/stores/orders/keys/o-01", meta, h},
		{"/v1/info", meta, h},
		{"/metrics", meta, h},
		{"/metrics", want{200, 200, 200, 200}, open},
		{"/healthz", want{200, 200, 200, 200}, h},
		{"/readyz", want{200, 200, 200, 200}, h},
		{"/v1/internal/stores/orders/partitions/0/get?key=" + b64([]byte("o-01")), internal, h},
		{"/v1/internal/stores/orders/partitions/0/scan?limit=1", internal, h},
		{"/v1/internal/stores/orders/partitions/0/count", internal, h},
		{"/v1/internal/partitions", internal, h},
	}
	for _, c := range cases {
		for _, who := range []struct {
			header string
			status int
		}{
			{"", c.want.none}, {"Bearer forged", c.want.none}, {"Bearer orders-reader", c.want.orders},
			{"Bearer sensors-reader", c.want.sensors}, {"Bearer admin", c.want.admin},
		} {
			a := get(c.h, c.target, "Authorization", who.header)
			if a.status != who.status {
				t.Errorf("GET %s as %q: %d %s, want %d", c.target, who.header, a.status, a.body, who.status)
				continue
			}
			switch a.status {
			case 401:
				if a.header.Get("WWW-Authenticate") == "" || !strings.Contains(string(a.body), problemTypePrefix+probUnauthenticated) {
					t.Errorf("GET %s as %q: 401 without a challenge or its problem type: %s", c.target, who.header, a.body)
				}
				if strings.Contains(string(a.body), "forged") {
					t.Errorf("GET %s: the 401 repeats the credential: %s", c.target, a.body)
				}
			case 403:
				if !strings.Contains(string(a.body), problemTypePrefix+probForbidden) {
					t.Errorf("GET %s as %q: 403 without its problem type: %s", c.target, who.header, a.body)
				}
			}
		}
	}
	// /v1/stores lists only what the identity may read.
	a := get(h, "/v1/stores", "Authorization", "Bearer orders-reader")
	if !strings.Contains(string(a.body), `"name":"orders"`) || strings.Contains(string(a.body), `"name":"sensors"`) {
		t.Errorf("stores as orders-reader: %s", a.body)
	}
}

// TestSignedCalls: with a cluster key, an internal endpoint answers a call
// this key signs, once, within the replay window, and refuses with 401 a
// call that is unsigned, signed with another key, altered after signing,
// replayed, or too old.
func TestSignedCalls(t *testing.T) {
	key := cluster.NewKey("a cluster secret of at least 32 characters")
	_, h := newFakeNode(t, func(o *Options) { o.ClusterKey, o.ReplayWindow = key, 5*time.Second })
	_, other := newFakeNode(t, func(o *Options) {
		o.ClusterKey = cluster.NewKey("another cluster secret, 32 characters or more")
	})
	target := "/v1/internal/stores/orders/partitions/3/get?key=" + b64([]byte("o-07")) + "&timeout=1s"
	signed := func(by *Handler, target string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.Header.Set(hopsHeader, "1")
		by.signCall(r, "n1")
		return r
	}
	serve := func(r *http.Request) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code, rec.Body.String()
	}
	if code, body := serve(signed(h, target)); code != 200 {
		t.Fatalf("a signed call: %d %s", code, body)
	}
	replayed := signed(h, target)
	if code, body := serve(replayed); code != 200 {
		t.Fatalf("a signed call: %d %s", code, body)
	}
	old := signed(h, target)
	old.Header.Set(callTimeHeader, strconv.FormatInt(time.Now().Add(-time.Minute).UnixMilli(), 10))
	old.Header.Set(callSigHeader, base64.RawURLEncoding.EncodeToString(key.MAC(purposeCall, signedParts(old.Method, old.URL.RequestURI(), old.Header)...)))
	altered := signed(h, target)
	altered.URL.RawQuery = strings.Replace(altered.URL.RawQuery, "timeout=1s", "timeout=2s", 1)
	altered.RequestURI = altered.URL.RequestURI()
	hopped := signed(h, target)
	hopped.Header.Set(hopsHeader, "0")
	for name, r := range map[string]*http.Request{
		"unsigned":                httptest.NewRequest(http.MethodGet, target, nil),
		"signed with another key": signed(other, target),
		"altered after signing":   altered,
		"a header altered":        hopped,
		"replayed":                replayed,
		"older than the window":   old,
		"with a client's token": func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, target, nil)
			r.Header.Set("Authorization", "Bearer admin")
			return r
		}(),
		"a garbled signature": func() *http.Request { r := signed(h, target); r.Header.Set(callSigHeader, "%%%"); return r }(),
		"signed for another route": func() *http.Request {
			r := signed(h, strings.Replace(target, "/get", "/scan", 1))
			r.RequestURI = target
			return r
		}(),
	} {
		if code, body := serve(r); code != 401 || !strings.Contains(body, probUnauthenticated) {
			t.Errorf("%s: %d %s, want 401", name, code, body)
		} else {
			t.Logf("%s: %s", name, strings.TrimSpace(body))
		}
	}
}

// TestNonceSet: a nonce is refused the second time for at least two
// windows, and forgotten after three.
func TestNonceSet(t *testing.T) {
	var s nonceSet
	t0 := time.Unix(1000, 0)
	s.init(time.Second, t0)
	if !s.fresh("a", t0) || s.fresh("a", t0) {
		t.Fatal("a first seen twice, or refused the first time")
	}
	for _, d := range []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 2 * time.Second} {
		if s.fresh("a", t0.Add(d)) {
			t.Errorf("a taken again after %s", d)
		}
	}
	if !s.fresh("a", t0.Add(5*time.Second)) {
		t.Error("a still refused after five windows")
	}
	if s.fresh("", t0) {
		t.Error("an empty nonce taken")
	}
}

// TestKeepEarlier: a retry that ran out of time before asking a partition
// does not name it, unless the attempt before named it.
func TestKeepEarlier(t *testing.T) {
	u := func(p int32, reason string, late bool) unavailablePartition {
		return unavailablePartition{Topic: "t", Partition: p, Reason: reason, late: late}
	}
	restoring := []unavailablePartition{u(0, "restoring on n2", false)}
	cases := []struct {
		name        string
		now, before []unavailablePartition
		want        []unavailablePartition
	}{
		{"first attempt: as it is", []unavailablePartition{u(0, "restoring on n2", false), u(1, "late", true)}, nil,
			[]unavailablePartition{u(0, "restoring on n2", false), u(1, "late", true)}},
		{"late, served before: dropped", []unavailablePartition{u(0, "restoring on n2", false), u(1, "late", true)}, restoring, restoring},
		{"late, named before: the earlier reason", []unavailablePartition{u(0, "late", true)}, restoring, restoring},
		{"only late, served before: the earlier list", []unavailablePartition{u(1, "late", true)}, restoring, restoring},
	}
	for _, c := range cases {
		if got := keepEarlier(c.now, c.before); !slices.Equal(got, c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}
