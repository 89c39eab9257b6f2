package router

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Problem types. Each kind of error has one stable type URI
// (problemTypePrefix + kind), so a client can branch on it without parsing
// the human-readable detail.
const (
	probUnknownStore = "unknown-store"
	probKeyNotFound  = "key-not-found"
	probBadKey       = "bad-key"
	probEmptyKey     = "empty-key"
	probKeyTooLong   = "key-too-long"
	probBadLimit     = "bad-limit"
	probBadCursor    = "bad-cursor"
	probBadRange     = "bad-range"
	probBadTimeout   = "bad-timeout"
	probBadParameter = "bad-parameter"
	probUnavailable  = "partition-unavailable"
	// probNotReached: replicas answer, but none had applied the query's
	// ?min_offset= / ?position= (or was within ?max_lag=) by its deadline.
	probNotReached  = "position-not-reached"
	probBadReplica  = "bad-replica-parameter"
	probUndecodable = "undecodable-value"
	probInternal    = "internal"
	probNoRoute     = "no-such-endpoint"
	probMethod      = "method-not-allowed"
	probFiltered    = "filtered"
	// probWrongKind: a window or session query of a store of another kind,
	// or a key lookup of a window or session store.
	probWrongKind = "wrong-store-kind"
	// probBadTime: a time parameter that is neither epoch milliseconds nor
	// RFC 3339; probBadTimeRange: from after to.
	probBadTime      = "bad-time"
	probBadTimeRange = "bad-time-range"
	// probPluginRejected: a plugin refused its input (422);
	// probPluginFailed: a plugin failed or faulted (500).
	probPluginRejected = "plugin-rejected"
	probPluginFailed   = "plugin-failed"
	// Schema registry serdes (registryProblem): the registry cannot be
	// reached for a schema not cached (503); a record names a schema id,
	// or a key serde a subject version, the registry does not have (500).
	probRegistryUnavailable = "registry-unavailable"
	probSchemaUnknown       = "schema-unknown"
	// Who may call (see auth): no or invalid credentials (401, with
	// WWW-Authenticate), credentials without the scope the request needs
	// (403), and a node at its bound of requests in flight (429, with
	// Retry-After).
	probUnauthenticated = "unauthenticated"
	probForbidden       = "forbidden"
	probOverloaded      = "overloaded"

	problemTypePrefix  = "urn:iqengine:problem:"
	problemContentType = "application/problem+json"
)

const (
	// retryAfterSeconds is the Retry-After of a 503: partitions move in
	// about a second once the group has rebalanced.
	retryAfterSeconds = 1
	// maxKeyLen bounds key text and key bytes: 64 KiB.
	maxKeyLen = 64 << 10

	waitedHeader      = "Iqengine-Waited-Ms"
	servedByHeader    = "Iqengine-Served-By"
	ndjsonContentType = "application/x-ndjson"
	jsonContentType   = "application/json"
	timestampLayout   = "2006-01-02T15:04:05.000Z07:00"
)

var titles = map[string]string{
	probUnknownStore:    "Unknown store",
	probKeyNotFound:     "Key not found",
	probBadKey:          "Key does not parse",
	probEmptyKey:        "Empty key",
	probKeyTooLong:      "Key too long",
	probBadLimit:        "Bad limit",
	probBadCursor:       "Bad cursor",
	probBadRange:        "Bad range",
	probBadTimeout:      "Bad timeout",
	probBadParameter:    "Bad parameter",
	probUnavailable:     "No serving owner before the deadline",
	probNotReached:      "Position not reached before the deadline",
	probBadReplica:      "Bad replica parameter",
	probUndecodable:     "Stored value does not decode",
	probInternal:        "Internal error",
	probNoRoute:         "No such endpoint",
	probNotOwner:        "Not the owner of the partition",
	probMethod:          "Method not allowed",
	probFiltered:        "Filtered out by the store's transform",
	probWrongKind:       "Not a query of this kind of store",
	probBadTime:         "Time does not parse",
	probBadTimeRange:    "Time range is empty",
	probUnauthenticated: "Authentication required",
	probForbidden:       "Not allowed for this identity",
	probOverloaded:      "Too many requests in flight",
	probPluginRejected:  "A plugin rejected the input",
	probPluginFailed:    "A plugin failed",

	probRegistryUnavailable: "Schema registry unavailable",
	probSchemaUnknown:       "Schema unknown to the registry",
}

// problem is an RFC 9457 problem document.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Partitions lists the partitions a 503 is about.
	Partitions []unavailablePartition `json:"partitions,omitempty"`
}

type unavailablePartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Reason    string `json:"reason"`
	behind    bool   // a replica answers, but not as far as the query wants
	// late: the attempt ran out of time before it asked the partition,
	// which says nothing of the partition (see keepEarlier).
	late bool
}

// Unavailable answers 503 partition-unavailable with Retry-After: the data
// is there, but this node cannot serve it now, so ask again (clients retry,
// and a peer that forwarded the request tries the partition's owner again).
// The node answers it for requests its shutdown cancelled.
func Unavailable(w http.ResponseWriter, r *http.Request, detail string) {
	writeProblem(w, r, http.StatusServiceUnavailable, probUnavailable, detail)
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, kind, detail string) {
	writeProblemDoc(w, r, problem{Status: status, Type: kind, Detail: detail})
}

func writeProblemDoc(w http.ResponseWriter, r *http.Request, p problem) {
	p.Title = titles[p.Type]
	p.Type = problemTypePrefix + p.Type
	p.Instance = r.URL.RequestURI()
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	w.Header().Set("Content-Type", problemContentType)
	w.WriteHeader(p.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // details quote plugins and keys: "<=" stays "<="
	_ = enc.Encode(p)
}
