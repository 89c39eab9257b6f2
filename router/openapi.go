package router

import (
	_ "embed"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// openAPIDocument is the OpenAPI 3.1 description of the public API: every
// route New registers but the calls between nodes (/v1/internal/...), their
// parameters, answers and problem types. openapi_test.go holds it to the
// handler's routes, the query parameters each endpoint accepts, and
// problem.go's problem types, and checks the handler's answers against it;
// scripts/schemathesis.sh fuzzes a running node with it.
//
//go:embed openapi.json
var openAPIDocument []byte

// openAPI serves GET /v1/openapi.json, open to every caller like /healthz.
func (h *Handler) openAPI(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", jsonContentType)
	_, _ = w.Write(openAPIDocument)
}
