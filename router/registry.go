package router

import (
	"errors"
	"net/http"

	"github.com/iqengine/iqengine/serde/registry"
)

// registryProblem answers the errors of schema registry serdes: 503
// registry-unavailable (with Retry-After) when the registry could not be
// reached for a schema that is not cached, so clients retry; 500
// schema-unknown when a stored record names a schema id the registry does
// not have, or a key serde's pinned or latest subject version is missing.
// It reports whether err was one of them. It is asked where pluginProblem
// is, for a serde's errors (encoding key text, rendering a record or a
// scan's page), before the generic answers.
func registryProblem(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case errors.Is(err, registry.ErrRegistryUnavailable):
		writeProblem(w, r, http.StatusServiceUnavailable, probRegistryUnavailable, err.Error())
	case errors.Is(err, registry.ErrUnknownSchema):
		writeProblem(w, r, http.StatusInternalServerError, probSchemaUnknown, err.Error())
	default:
		return false
	}
	return true
}

// isRegistryOutage reports whether err is a schema registry that could not
// be reached: a scan fails its page with it (registryProblem's 503) rather
// than rendering the record with an error, since the record may well be fine.
func isRegistryOutage(err error) bool {
	return errors.Is(err, registry.ErrRegistryUnavailable)
}
