package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

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
