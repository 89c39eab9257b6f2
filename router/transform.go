package router

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/iqengine/iqengine/plugins"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/state"
)

// Transform is a store's query transform: a WebAssembly module and its
// default parameters, which a query's t. parameters override.
type Transform struct {
	Module *plugins.Module
	Params map[string]string
}

// transformParam is the prefix of the query parameters that go to a
// store's transform.
const transformParam = "t."

// transformOf returns the store's transform and the JSON of its parameters
// for this query (nil when the store has none). A t. parameter on a store
// without a transform is a 400: it would otherwise be silently ignored.
func (h *Handler) transformOf(w http.ResponseWriter, r *http.Request, s state.Store, q url.Values) (*plugins.Module, []byte, bool) {
	t, ok := h.o.Transforms[s.Name]
	params := map[string]string{}
	if ok {
		for k, v := range t.Params {
			params[k] = v
		}
	}
	var given []string
	for name, vs := range q {
		if p, found := strings.CutPrefix(name, transformParam); found {
			given = append(given, name)
			if p == "" {
				writeProblem(w, r, http.StatusBadRequest, probBadParameter, "transform parameter "+strconv.Quote(name)+" has no name after t.")
				return nil, nil, false
			}
			params[p] = vs[len(vs)-1]
		}
	}
	if !ok {
		if len(given) > 0 {
			sort.Strings(given)
			writeProblem(w, r, http.StatusBadRequest, probBadParameter, "store "+strconv.Quote(s.Name)+" has no transform, so "+strings.Join(given, ", ")+" would be ignored")
			return nil, nil, false
		}
		return nil, nil, true
	}
	b, err := json.Marshal(params)
	if err != nil {
		writeProblem(w, r, http.StatusInternalServerError, probInternal, err.Error())
		return nil, nil, false
	}
	return t.Module, b, true
}

// withoutTransformParams returns the parameter names of q that are not t.
// parameters, for knownParams.
func withoutTransformParams(q url.Values) url.Values {
	if q == nil {
		return nil
	}
	out := url.Values{}
	for k, v := range q {
		if !strings.HasPrefix(k, transformParam) {
			out[k] = v
		}
	}
	return out
}

// pluginProblem answers a plugin's error: 422 when it rejected the input,
// 500 naming the plugin and the reason when it failed. It reports whether
// err was a plugin error.
func pluginProblem(w http.ResponseWriter, r *http.Request, err error) bool {
	var pe *plugins.Error
	if !errors.As(err, &pe) {
		return false
	}
	if isRegistryOutage(err) {
		// It failed because the schema registry could not answer
		// iq.schema: the registry's problem, as for the built-in serdes.
		return registryProblem(w, r, err)
	}
	if pe.Rejected() {
		writeProblem(w, r, http.StatusUnprocessableEntity, probPluginRejected, pe.Error())
		return true
	}
	writeProblem(w, r, http.StatusInternalServerError, probPluginFailed, pe.Error())
	return true
}

// partitionOf is the key's partition, with the store's partitioner.
func partitionOf(w http.ResponseWriter, r *http.Request, s state.Store, key []byte, n int32) (int32, bool) {
	p, err := serde.PartitionOf(plugins.WithContext(r.Context(), s.Key), key, n)
	if err != nil {
		if !pluginProblem(w, r, err) {
			writeProblem(w, r, http.StatusInternalServerError, probInternal, err.Error())
		}
		return 0, false
	}
	return p, true
}

// transformOne runs a batch of one record: the key JSON is
// buf[keyStart:keyEnd], the value JSON buf[valueStart:]; the value is
// replaced by the transform's output.
func transformOne(ctx context.Context, tr *plugins.Module, params, buf []byte, keyStart, keyEnd, valueStart int) ([]byte, bool, error) {
	b, err := tr.Begin(ctx, params)
	if err != nil {
		return buf, false, err
	}
	defer b.End()
	// The output replaces the value in place (Record reads its inputs
	// before it writes dst).
	return b.Record(buf[:valueStart], buf[keyStart:keyEnd], buf[valueStart:])
}
