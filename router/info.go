package router

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/iqengine/iqengine/internal/buildinfo"
)

// Info is the answer to GET /v1/info: which build a node runs and how it is
// set up, for a bug report or to follow a rolling upgrade node by node.
type Info struct {
	// The build: version, commit, modified, go_version, plugin_abi.
	buildinfo.Info
	NodeID        string   `json:"node_id"`
	ApplicationID string   `json:"application_id"`
	Stores        []string `json:"stores"` // names, sorted
	// Features says which optional parts of the node are on, by name, each
	// a boolean or a short string (the README lists them). New parts add
	// their own names; a client ignores the names it does not know.
	Features map[string]any `json:"features"`
	// Plugins are the WebAssembly modules the node's stores use, as now
	// serving (a module reloaded from its file shows its new hash).
	Plugins []PluginInfo `json:"plugins"`
}

// PluginInfo describes one loaded WebAssembly module.
type PluginInfo struct {
	Module       string   `json:"module"`
	SHA256       string   `json:"sha256"` // a short prefix of the module file's hash
	ABIVersion   int      `json:"abi_version"`
	Capabilities []string `json:"capabilities"`
}

// defaultInfo is what a handler without Options.Info knows of itself: the
// build, its node id and its stores.
func defaultInfo(e Engine) func() Info {
	return func() Info {
		i := Info{Info: buildinfo.Get(), NodeID: e.NodeID(), Stores: []string{}, Features: map[string]any{}, Plugins: []PluginInfo{}}
		for _, s := range e.Stores() {
			i.Stores = append(i.Stores, s.Name)
		}
		return i
	}
}

func (h *Handler) info(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, h.o.Info())
}
