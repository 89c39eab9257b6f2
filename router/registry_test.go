package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/iqengine/iqengine/plugins"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/serde/registry"
)

func TestRegistryProblem(t *testing.T) {
	for _, tc := range []struct {
		err        error
		status     int
		kind       string
		retryAfter string
	}{
		{fmt.Errorf("render: %w", &registry.UnavailableError{What: "schema id 7", Err: errors.New("connection refused")}), 503, "registry-unavailable", "1"},
		{&registry.UnknownSchemaError{What: "schema id 7", Record: true}, 500, "schema-unknown", ""},
		{errors.New("something else"), 0, "", ""},
	} {
		w := httptest.NewRecorder()
		ok := registryProblem(w, httptest.NewRequest(http.MethodGet, "/v1/stores/s/keys/k", nil), tc.err)
		if ok != (tc.status != 0) {
			t.Errorf("%v: handled %v", tc.err, ok)
			continue
		}
		if !ok {
			continue
		}
		var p problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if w.Code != tc.status || p.Type != problemTypePrefix+tc.kind || p.Detail != tc.err.Error() || p.Title == "" ||
			w.Header().Get("Retry-After") != tc.retryAfter {
			t.Errorf("%v: %d %+v Retry-After %q", tc.err, w.Code, p, w.Header().Get("Retry-After"))
		}
	}
}

// outageSerde is the json serde in front of a schema registry that is
// down: values starting with "uncached" name a schema that is not in its
// cache, values starting with "unknown" a schema id the registry does not
// have; the rest decode as json, as cached schemas keep decoding.
type outageSerde struct{ serde.Serde }

func (s outageSerde) AppendJSON(dst, b []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(b, []byte("uncached")):
		return dst, &registry.UnavailableError{What: "schema id 7", Err: errors.New("connection refused")}
	case bytes.HasPrefix(b, []byte("unknown")):
		return dst, &registry.UnknownSchemaError{What: "schema id 8", Record: true}
	}
	return s.Serde.AppendJSON(dst, b)
}

// TestRegistryOutageFailsScanPage: a scan whose page holds a record whose
// schema cannot be fetched (the registry is down, and the schema is not
// cached) answers 503 registry-unavailable rather than rendering the
// record with an error, since the record is not at fault; a record naming
// an id the registry does not have is, and renders inline with its error;
// pages of records whose schemas are cached answer as before.
func TestRegistryOutageFailsScanPage(t *testing.T) {
	f, h := newFakeNode(t)
	for i := range f.stores {
		if f.stores[i].Name == "orders" {
			f.stores[i].Value = outageSerde{f.stores[i].Value}
		}
	}
	f.put(t, "orders", "o-50", "unknown id", 50)

	const ts = `"timestamp":"2026-01-02T03:04:05.006Z"`
	target := "/v1/stores/orders/keys?from=o-29&to=o-50"
	want := `{"items":[` +
		`{"key":"o-29","value":{"id":"o-29","n":29},"partition":0,"offset":29,` + ts + `},` +
		`{"key":"o-50","value":null,"error":"value does not decode as json: the record names schema id 8, which the schema registry does not have","partition":0,"offset":50,` + ts + `}` +
		`],"next_cursor":null` + labels(f, "orders", 0, 1, 2, 3) + `}` + "\n"
	if a := get(h, target); a.status != http.StatusOK || string(a.body) != want {
		t.Fatalf("GET %s:\n got %d %s\nwant 200 %s", target, a.status, a.body, want)
	}

	f.put(t, "orders", "o-40", "uncached schema", 40)
	detail := "schema registry unavailable: cannot fetch schema id 7: connection refused"
	for _, target := range []string{target, "/v1/stores/orders/keys?from=o-40&to=o-40", "/v1/stores/orders/keys?prefix=o-4"} {
		for _, accept := range []string{"application/json", "application/x-ndjson"} {
			a := get(h, target, "Accept", accept)
			wantProblem(t, a, target, http.StatusServiceUnavailable, probRegistryUnavailable, detail)
			if ra := a.header.Get("Retry-After"); ra == "" {
				t.Errorf("GET %s (Accept %s): no Retry-After", target, accept)
			}
		}
	}
	// A page without the record answers.
	if a := get(h, "/v1/stores/orders/keys"); a.status != http.StatusOK {
		t.Errorf("a page of cached schemas: %d %s", a.status, a.body)
	}
	// So does a lookup of a cached record, and a lookup of the record
	// answers the same problem.
	if a := get(h, "/v1/stores/orders/keys/o-29"); a.status != http.StatusOK {
		t.Errorf("a lookup of a cached schema: %d %s", a.status, a.body)
	}
	wantProblem(t, get(h, "/v1/stores/orders/keys/o-40"), "/v1/stores/orders/keys/o-40", http.StatusServiceUnavailable, probRegistryUnavailable,
		"value at offset 40 does not decode as json: "+detail)
}

// TestPluginFailingOnARegistryOutage: a plugin that fails after iq.schema
// told it the registry was unavailable (its error unwraps to
// registry.ErrRegistryUnavailable) answers 503 registry-unavailable, as a
// built-in registry serde does; any other plugin failure stays
// plugin-failed.
func TestPluginFailingOnARegistryOutage(t *testing.T) {
	failed := &plugins.Error{Plugin: "avro-value", Op: "iq_value_to_json", Kind: plugins.KindFailed, Msg: "schema registry unavailable"}
	for _, tc := range []struct {
		err    error
		status int
		kind   string
	}{
		{errors.Join(failed, registry.ErrRegistryUnavailable), 503, probRegistryUnavailable},
		{failed, 500, probPluginFailed},
	} {
		w := httptest.NewRecorder()
		if !pluginProblem(w, httptest.NewRequest(http.MethodGet, "/v1/stores/s/keys/k", nil), tc.err) {
			t.Fatalf("%v: not answered", tc.err)
		}
		var p problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if w.Code != tc.status || p.Type != problemTypePrefix+tc.kind {
			t.Errorf("%v: %d %s, want %d %s", tc.err, w.Code, p.Type, tc.status, tc.kind)
		}
	}
}
