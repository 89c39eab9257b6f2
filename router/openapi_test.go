package router

// The OpenAPI document (openapi.json) against the handler it describes: it
// is a valid OpenAPI 3.1 document, it names exactly the routes New
// registers (less the calls between nodes) and exactly the query
// parameters each endpoint accepts, its problem types are problem.go's, and
// the handler's answers, successes and problems, conform to it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/iqengine/iqengine/internal/wasmgen"
	"github.com/iqengine/iqengine/plugins"
	"github.com/iqengine/iqengine/state"
)

// internalRoutes are the routes the document leaves out on purpose: the
// calls between nodes, which carry raw Kafka bytes in a format of their
// own (peer.go) and are not part of the public API.
var internalRoutes = []string{
	"/v1/internal/stores/{store}/partitions/{partition}/get",
	"/v1/internal/stores/{store}/partitions/{partition}/scan",
	"/v1/internal/stores/{store}/partitions/{partition}/count",
	"/v1/internal/partitions",
}

// openAPIModel parses the embedded document into libopenapi's model, with
// every reference resolved.
func openAPIModel(t *testing.T) (libopenapi.Document, *v3.Document) {
	t.Helper()
	doc, err := libopenapi.NewDocument(openAPIDocument)
	if err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("openapi.json does not build into a model: %v", err)
	}
	return doc, &m.Model
}

// openAPIPath turns an httprouter path into the document's form:
// /v1/stores/:store/keys/*key is /v1/stores/{store}/keys/{key}.
func openAPIPath(route string) string {
	segs := strings.Split(route, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

// operations are the document's operations by "METHOD path".
func operations(m *v3.Document) map[string]*v3.Operation {
	out := map[string]*v3.Operation{}
	for path, item := range m.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			out[strings.ToUpper(method)+" "+path] = op
		}
	}
	return out
}

// TestOpenAPIDocumentIsValid: openapi.json is an OpenAPI 3.1 document that
// validates against the specification's schema, every reference in it
// resolves (BuildV3Model fails on one that does not), and it declares the
// bearer and mutual TLS security schemes.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, m := openAPIModel(t)
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi %q, want 3.1.x", v)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("openapi.json: %s", e.Error())
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  at %s (line %d): %s", se.FieldPath, se.Line, se.Reason)
			}
		}
	}
	if m.Components.SecuritySchemes.Len() != 2 {
		t.Errorf("security schemes: %d, want bearer and mutual TLS", m.Components.SecuritySchemes.Len())
	}
}

// TestOpenAPIDescribesEveryRoute: the document's operations are exactly
// the routes New registers, each with GET, less internalRoutes (which must
// still be registered routes, so that the list does not go stale); open
// routes (health, readiness, the document itself) need no credentials and
// every other one does.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	_, h := newFakeNode(t)
	_, m := openAPIModel(t)
	registered := map[string]bool{}
	for _, r := range h.routes {
		registered["GET "+openAPIPath(r)] = true
	}
	for _, r := range internalRoutes {
		if !registered["GET "+r] {
			t.Errorf("internalRoutes names %s, which New does not register", r)
		}
		delete(registered, "GET "+r)
	}
	documented := map[string]bool{}
	for op := range operations(m) {
		documented[op] = true
	}
	for r := range registered {
		if !documented[r] {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for op := range documented {
		if !registered[op] {
			t.Errorf("openapi.json documents %s, which New does not register", op)
		}
	}
	open := []string{"GET /healthz", "GET /readyz", "GET /v1/openapi.json"}
	for name, op := range operations(m) {
		isOpen := op.Security != nil && len(op.Security) == 0
		if isOpen != slices.Contains(open, name) {
			t.Errorf("%s: open to anyone %v, want %v", name, isOpen, !isOpen)
		}
	}
	if len(m.Security) == 0 {
		t.Error("no global security requirement")
	}
}

// TestOpenAPIProblemTypes: the Problem schema's type enum is every problem
// kind of problem.go (its titles), as a URN, and nothing else.
func TestOpenAPIProblemTypes(t *testing.T) {
	_, m := openAPIModel(t)
	pt, ok := m.Components.Schemas.Get("ProblemType")
	if !ok {
		t.Fatal("no ProblemType schema")
	}
	var enum []string
	for _, n := range pt.Schema().Enum {
		enum = append(enum, n.Value)
	}
	var kinds []string
	for kind := range titles {
		kinds = append(kinds, problemTypePrefix+kind)
	}
	sort.Strings(enum)
	sort.Strings(kinds)
	if !slices.Equal(enum, kinds) {
		t.Errorf("ProblemType enum:\n%v\nproblem.go's kinds:\n%v", enum, kinds)
	}
	problem, ok := m.Components.Schemas.Get("Problem")
	if !ok {
		t.Fatal("no Problem schema")
	}
	typ, ok := problem.Schema().Properties.Get("type")
	if !ok || typ.GetReference() != "#/components/schemas/ProblemType" {
		t.Errorf("Problem.type is not a ProblemType")
	}
}

// samplePath fills an operation's path parameters with a store and key
// the fake node has.
func samplePath(path string) string {
	store := "orders"
	switch {
	case strings.HasSuffix(path, "/windows"):
		store = "hourly"
	case strings.HasSuffix(path, "/sessions"):
		store = "visits"
	}
	return strings.NewReplacer("{store}", store, "{key}", "o-01").Replace(path)
}

// TestOpenAPIQueryParameters: each operation documents exactly the query
// parameters its handler accepts, as the handler itself says: a request
// with an unknown parameter is refused with the list of those it knows
// (knownParams), or answered as if it had none when the endpoint does not
// check; and transform (t.) parameters are documented where the handler
// takes them (on a store without a transform, it refuses them for that
// reason rather than as unknown).
func TestOpenAPIQueryParameters(t *testing.T) {
	f, h := newFakeNode(t)
	addTimedStores(t, f)
	_, m := openAPIModel(t)
	for name, op := range operations(m) {
		t.Run(name, func(t *testing.T) {
			var documented []string
			transform := false
			for _, p := range op.Parameters {
				switch {
				case p.In != "query":
				case p.Name == "t" && p.Style == "form" && p.Explode != nil && *p.Explode:
					transform = true
				default:
					documented = append(documented, p.Name)
				}
			}
			path := samplePath(strings.TrimPrefix(name, "GET "))
			a := get(h, path+"?no-such-parameter=1")
			var known []string
			if a.status == http.StatusBadRequest {
				var p problem
				a.decode(t, &p)
				_, list, found := strings.Cut(p.Detail, "(known: ")
				if p.Type != problemTypePrefix+probBadParameter || !found && !strings.HasSuffix(p.Detail, "(this endpoint takes none)") {
					t.Fatalf("GET %s with an unknown parameter: %s", path, a.body)
				}
				if found {
					known = strings.Split(strings.TrimSuffix(list, ")"), ", ")
				}
			} else if a.status != http.StatusOK {
				t.Fatalf("GET %s with an unknown parameter: %d %s", path, a.status, a.body)
			}
			sort.Strings(known)
			sort.Strings(documented)
			if !slices.Equal(known, documented) {
				t.Errorf("query parameters: the handler knows %v, openapi.json documents %v", known, documented)
			}
			a = get(h, path+"?t.x=1")
			takesTransform := a.status == http.StatusBadRequest && strings.Contains(string(a.body), "has no transform")
			if takesTransform != transform {
				t.Errorf("transform parameters: the handler takes them %v, openapi.json documents them %v (%d %s)", takesTransform, transform, a.status, a.body)
			}
		})
	}
}

// TestOpenAPIServed: GET /v1/openapi.json serves the document as JSON.
func TestOpenAPIServed(t *testing.T) {
	_, h := newFakeNode(t)
	a := get(h, "/v1/openapi.json")
	if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/openapi.json: %d %s", a.status, a.header.Get("Content-Type"))
	}
	if !bytes.Equal(a.body, openAPIDocument) {
		t.Error("GET /v1/openapi.json does not serve openapi.json")
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
	}
	a.decode(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
}

// openAPINode is the fake node of newFakeNode with a store whose values go
// through a WebAssembly transform (the echo module of wasmgen, which keeps
// every record), for the answers of stores with transforms.
func openAPINode(t *testing.T) (*fakeEngine, *Handler) {
	t.Helper()
	host, err := plugins.NewHost(plugins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Close(context.Background()) })
	echo, err := host.Load(context.Background(), plugins.Spec{Name: "echo", Binary: wasmgen.EchoWith(wasmgen.EchoOptions{Transform: true})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(echo.Close)
	f, _ := newFakeNode(t)
	addTimedStores(t, f)
	f.addStore(t, "readings", "readings", 2, "string", "json")
	for i := range 5 {
		f.put(t, "readings", fmt.Sprintf("r-%d", i), fmt.Sprintf(`{"n":%d}`, i), int64(i))
	}
	h := New(Options{
		Engine: f, Timeout: time.Second, MaxTimeout: 2 * time.Second,
		DefaultLimit: 10, MaxLimit: 25,
		Transforms: map[string]Transform{"readings": {Module: echo, Params: map[string]string{"unit": "c"}}, "hourly": {Module: echo}},
		Info: func() Info {
			i := defaultInfo(f)()
			i.ApplicationID = "app"
			i.Features = map[string]any{"tracing": false, "standby_replicas": 1, "kafka_sasl": "none", "plugins": []string{"echo"}}
			i.Plugins = []PluginInfo{{Module: "echo", SHA256: "0123abcd", ABIVersion: 1, Capabilities: []string{"transform"}}}
			return i
		},
	})
	return f, h
}

// TestOpenAPIAnswersConform: the handler's answers, successes and problems
// alike, conform to the document (status documented for the operation,
// content type, headers, body schema), for requests that reach every
// operation and every status the fake engine can produce; and every
// operation is reached.
func TestOpenAPIAnswersConform(t *testing.T) {
	f, h := openAPINode(t)
	doc, m := openAPIModel(t)
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	f.setStatus(state.Partition{Topic: "sensors", Partition: 2}, state.Restoring)
	f.setStatus(state.Partition{Topic: "sensors", Partition: 1}, 0) // not assigned here
	f.setReplica(state.Partition{Topic: "orders", Partition: 0}, state.Standby, 3)
	f.failReads(state.Partition{Topic: "orders", Partition: 3}, errors.New("disk on fire"))

	cases := []struct {
		target string
		header []string
		status int
	}{
		{"/v1/stores", nil, 200},
		{"/v1/stores/orders/keys", nil, 500},
		{"/v1/stores/docs/keys", nil, 200},
		{"/v1/stores/blobs/keys?limit=1", nil, 200},
		{"/v1/stores/ids/keys", nil, 200},
		{"/v1/stores/readings/keys?t.unit=f&limit=2", nil, 200},
		{"/v1/stores/orders/keys?limit=0", nil, 400},
		{"/v1/stores/orders/keys?cursor=nope", nil, 400},
		{"/v1/stores/orders/keys?from=b&to=a", nil, 400},
		{"/v1/stores/orders/keys?replica=both", nil, 400},
		{"/v1/stores/nope/keys", nil, 404},
		{"/v1/stores/sensors/keys?timeout=1ms", nil, 503},
		{"/v1/stores/orders/keys/o-01", nil, 200},
		{"/v1/stores/orders/keys/o-00", nil, 200}, // a standby answers
		{"/v1/stores/sensors/keys/1", nil, 200},
		{"/v1/stores/blobs/keys/AA", nil, 200},
		{"/v1/stores/readings/keys/r-1?t.unit=f", nil, 200},
		{"/v1/stores/orders/keys/o-99", nil, 404},
		{"/v1/stores/orders/keys/o-07", nil, 500},
		{"/v1/stores/docs/keys/bad", nil, 500},
		{"/v1/stores/sensors/keys/x", nil, 400},
		{"/v1/stores/orders/keys/o-01?timeout=1h", nil, 400},
		{"/v1/stores/orders/keys/o-01?t.unit=f", nil, 400},
		{"/v1/stores/sensors/keys/7?timeout=1ms", nil, 503},
		{"/v1/stores/orders/keys/o-01?min_offset=1000&timeout=1ms", nil, 503},
		{"/v1/stores/sensors/keys/3", []string{hopsHeader, "1"}, 421},
		{"/v1/stores/orders/count", nil, 500},
		{"/v1/stores/docs/count", nil, 200},
		{"/v1/stores/docs/count?max_lag=-1", nil, 400},
		{"/v1/stores/sensors/count?timeout=1ms", nil, 503},
		{"/v1/stores/hourly/keys/o-01/windows", nil, 200},
		{"/v1/stores/hourly/keys/o-01/windows?t.unit=f", nil, 200},
		{"/v1/stores/hourly/keys/o-01/windows?from=0&to=2026-01-02T03:00:00Z&order=desc&limit=1", nil, 200},
		{"/v1/stores/hourly/keys/o-01/windows?from=5&to=4", nil, 400},
		{"/v1/stores/hourly/keys/o-01/windows?from=yesterday", nil, 400},
		{"/v1/stores/hourly/keys/o-01", nil, 400},
		{"/v1/stores/orders/keys/o-01/windows?from=1", nil, 400},
		{"/v1/stores/hourly/keys/o-01/windows", []string{hopsHeader, "1"}, 200},
		{"/v1/stores/visits/keys/v-1/sessions?earliest_end=0", nil, 200},
		{"/v1/stores/visits/keys/v-1/windows", nil, 400},
		{"/v1/stores/hourly/windows?from=0&key_from=a&key_to=z", nil, 200},
		{"/v1/stores/hourly/windows?limit=1", nil, 200},
		{"/v1/stores/orders/windows", nil, 400},
		{"/v1/stores/hourly/keys", nil, 400},
		{"/v1/stores/nope/windows", nil, 404},
		{"/v1/stores/visits/sessions", nil, 200},
		{"/v1/stores/visits/sessions?latest_start=soon", nil, 400},
		{"/v1/metadata/partitions", nil, 200},
		{"/v1/metadata/instances", nil, 200},
		{"/v1/metadata/stores/orders/keys/o-01", nil, 200},
		{"/v1/metadata/stores/sensors/keys/x", nil, 400},
		{"/v1/metadata/stores/nope/keys/x", nil, 404},
		{"/v1/info", nil, 200},
		{"/healthz", nil, 200},
		{"/readyz", nil, 200},
		{"/metrics", nil, 200},
		{"/v1/openapi.json", nil, 200},
	}
	reached := map[string]bool{}
	check := func(t *testing.T, target string, header []string, status int) {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		resp := rec.Result()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != status {
			t.Fatalf("GET %s: %d %s, want %d", target, resp.StatusCode, body, status)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if ok, verrs := v.ValidateHttpResponse(req, resp); !ok {
			for _, e := range verrs {
				t.Errorf("GET %s: %d %s\n%s", target, resp.StatusCode, body, e.Error())
				for _, se := range e.SchemaValidationErrors {
					t.Errorf("  at %s (line %d): %s", se.FieldPath, se.Line, se.Reason)
				}
			}
		}
		reached[operationOf(m, req.URL.Path)] = true
	}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) { check(t, c.target, c.header, c.status) })
	}
	// A node that failed is neither healthy nor ready.
	f.setHealth(false, errors.New("store stalled for 1m0s"))
	t.Run("failed node", func(t *testing.T) {
		check(t, "/healthz", nil, 503)
		check(t, "/readyz", nil, 503)
	})
	// An NDJSON page is not one JSON document, which the validator would
	// want: its lines are each what the document says they are.
	a := get(h, "/v1/stores/readings/keys", "Accept", ndjsonContentType)
	if a.status != http.StatusOK || a.header.Get("Content-Type") != ndjsonContentType {
		t.Fatalf("NDJSON page: %d %s", a.status, a.header.Get("Content-Type"))
	}
	if _, ok := m.Paths.PathItems.GetOrZero("/v1/stores/{store}/keys").Get.Responses.Codes.GetOrZero("200").Content.Get(ndjsonContentType); !ok {
		t.Errorf("the scan's 200 does not document %s", ndjsonContentType)
	}
	lines := strings.Split(strings.TrimSuffix(string(a.body), "\n"), "\n")
	for i, line := range lines {
		schema := "ScanItem"
		if i == len(lines)-1 {
			schema = "ScanTrailer"
		}
		checkSchema(t, schema, line)
	}
	for op := range operations(m) {
		if !reached[op] {
			t.Errorf("no case reaches %s", op)
		}
	}
}

// operationOf is the document's operation of a request path.
func operationOf(m *v3.Document, path string) string {
	best := ""
	for p := range m.Paths.PathItems.KeysFromOldest() {
		re := "^" + strings.NewReplacer("{store}", "[^/]+", "{key}", ".+", ".", `\.`).Replace(p) + "$"
		// The longest template that matches: /keys/{key}/windows, not
		// /keys/{key} with a key that ends in /windows.
		if ok, _ := regexp.MatchString(re, path); ok && len(p) > len(best) {
			best = p
		}
	}
	if best == "" {
		return ""
	}
	return "GET " + best
}

// checkSchema checks that doc (JSON) is valid against a component schema,
// by validating it as the 200 answer of a request the document does not
// constrain otherwise: it wraps the schema in a one-operation document.
func checkSchema(t *testing.T, schema, doc string) {
	t.Helper()
	var full map[string]any
	if err := json.Unmarshal(openAPIDocument, &full); err != nil {
		t.Fatal(err)
	}
	full["paths"] = map[string]any{"/check": map[string]any{"get": map[string]any{
		"responses": map[string]any{"200": map[string]any{
			"description": "check",
			"content": map[string]any{"application/json": map[string]any{
				"schema": map[string]any{"$ref": "#/components/schemas/" + schema},
			}},
		}},
	}}}
	b, _ := json.Marshal(full)
	d, err := libopenapi.NewDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	req := httptest.NewRequest(http.MethodGet, "/check", nil)
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(doc)), Request: req}
	if ok, verrs := v.ValidateHttpResponse(req, resp); !ok {
		for _, e := range verrs {
			t.Errorf("%s is not a %s: %s", doc, schema, e.Error())
		}
	}
}
