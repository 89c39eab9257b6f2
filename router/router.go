// Package router is the HTTP layer: it parses and validates requests, turns
// key text into Kafka key bytes with the store's serde, finds the key's
// partition as Kafka's producer does, waits (retrying with backoff) while
// that partition restores, and writes answers and RFC 9457 problems.
package router

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/iqengine/iqengine/cluster"
	"github.com/iqengine/iqengine/engine"
	"github.com/iqengine/iqengine/state"
)

// Options configures the handler.
type Options struct {
	Engine *engine.Engine
	// Timeout is how long a query waits for a partition that does not serve
	// yet; MaxTimeout caps what ?timeout= may ask for.
	Timeout    time.Duration
	MaxTimeout time.Duration
	// DefaultLimit and MaxLimit bound scan pages.
	DefaultLimit int
	MaxLimit     int
	// Registry receives the HTTP metrics and is served on /metrics.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Routing gives the cluster's current routing table; nil means a
	// single node that never forwards.
	Routing Routing
	// Client makes the calls to other nodes (default: a keep-alive pool).
	Client *http.Client
	// Refresh, when set, asks Kafka for the group's current routing table;
	// it is called (at most twice a second) when a route misses.
	Refresh func(context.Context) error
	// Transforms are the stores' query transforms, by store name.
	Transforms map[string]Transform
	// PeerAnswerLimit bounds the bytes read from one answer of another
	// node (default 256 MiB); a longer answer fails its partition.
	PeerAnswerLimit int64
}

// Routing is where the current routing table comes from: the cluster
// balancer, swapped once per group generation.
type Routing interface {
	Table() *cluster.Table
}

// Handler serves the HTTP API of one node.
type Handler struct {
	o      Options
	e      *engine.Engine
	log    *slog.Logger
	mux    *httprouter.Router
	m      *httpMetrics
	client *http.Client

	lastRefresh atomic.Int64 // unix nanoseconds of the last refresh started
}

// New returns the node's HTTP handler.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Client == nil {
		o.Client = newPeerClient()
	}
	if o.PeerAnswerLimit <= 0 {
		o.PeerAnswerLimit = 256 << 20
	}
	h := &Handler{o: o, e: o.Engine, log: o.Logger, mux: httprouter.New(), m: newHTTPMetrics(o.Registry), client: o.Client}
	h.handle("/v1/stores", "stores", h.listStores)
	h.handle("/v1/stores/:store/keys", "scan", h.scan)
	h.handle("/v1/stores/:store/keys/*key", "get", h.get)
	h.handle("/v1/stores/:store/count", "count", h.count)
	h.handle("/v1/metadata/partitions", "partitions", h.partitions)
	h.handle("/v1/metadata/instances", "instances", h.instances)
	h.handle("/v1/metadata/stores/:store/keys/*key", "key-metadata", h.keyMetadata)
	h.handle("/v1/internal/stores/:store/partitions/:partition/get", "internal-get", h.internalGet)
	h.handle("/v1/internal/stores/:store/partitions/:partition/scan", "internal-scan", h.internalScan)
	h.handle("/v1/internal/stores/:store/partitions/:partition/count", "internal-count", h.internalCount)
	h.handle("/v1/internal/partitions", "internal-partitions", h.localPartitions)
	h.handle("/healthz", "healthz", h.healthz)
	h.handle("/readyz", "readyz", h.readyz)
	metrics := promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{})
	h.mux.Handler(http.MethodGet, "/metrics", metrics)
	h.mux.RedirectTrailingSlash = false
	h.mux.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusNotFound, probNoRoute, "no endpoint at "+r.URL.Path)
	})
	h.mux.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusMethodNotAllowed, probMethod, r.Method+" is not allowed on "+r.URL.Path)
	})
	h.mux.PanicHandler = func(w http.ResponseWriter, r *http.Request, v any) {
		h.log.Error("handler panic", "path", r.URL.Path, "panic", v)
		writeProblem(w, r, http.StatusInternalServerError, probInternal, "internal error")
	}
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type handlerFunc func(w http.ResponseWriter, r *http.Request, ps httprouter.Params)

// handle registers a GET endpoint, counting its requests and latency under
// the given name.
func (h *Handler) handle(path, name string, f handlerFunc) {
	m := h.m.endpoint(name)
	h.mux.GET(path, func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		f(sw, r, ps)
		m.observe(sw.status, time.Since(start))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// query parses the query string; most lookups have none.
func query(r *http.Request) url.Values {
	if r.URL.RawQuery == "" {
		return nil
	}
	return r.URL.Query()
}

// knownParams answers 400 when the query has a parameter not in known, so
// that a typo (form= for from=) is an error, not an ignored filter.
func knownParams(w http.ResponseWriter, r *http.Request, q url.Values, known ...string) bool {
	for name := range q {
		if !slices.Contains(known, name) {
			writeProblem(w, r, http.StatusBadRequest, probBadParameter,
				"unknown query parameter "+strconv.Quote(name)+" (known: "+strings.Join(known, ", ")+")")
			return false
		}
	}
	return true
}

// storeOf resolves the :store parameter, answering 404 when unknown.
func (h *Handler) storeOf(w http.ResponseWriter, r *http.Request, ps httprouter.Params) (state.Store, bool) {
	name := ps.ByName("store")
	s, ok := h.e.Store(name)
	if !ok {
		writeProblem(w, r, http.StatusNotFound, probUnknownStore, "no store named "+strconv.Quote(name))
	}
	return s, ok
}

// keyBytes turns key text into Kafka key bytes with the store's key serde,
// answering 400 when it cannot.
func keyBytes(w http.ResponseWriter, r *http.Request, s state.Store, param, text string) ([]byte, bool) {
	if len(text) > maxKeyLen {
		writeProblem(w, r, http.StatusBadRequest, probKeyTooLong, param+" is "+strconv.Itoa(len(text))+" bytes; the limit is 65536")
		return nil, false
	}
	b, err := s.Key.FromText(text)
	if err != nil {
		if pluginProblem(w, r, err) {
			return nil, false
		}
		writeProblem(w, r, http.StatusBadRequest, probBadKey, param+" is not a valid "+s.Key.Name()+" key: "+err.Error())
		return nil, false
	}
	if len(b) > maxKeyLen {
		writeProblem(w, r, http.StatusBadRequest, probKeyTooLong, param+" serializes to "+strconv.Itoa(len(b))+" bytes; the limit is 65536")
		return nil, false
	}
	return b, true
}

// pathKey reads the {key} path parameter, as text and as Kafka key bytes,
// answering 400 when it is empty or does not parse.
func pathKey(w http.ResponseWriter, r *http.Request, ps httprouter.Params, s state.Store) (string, []byte, bool) {
	text := strings.TrimPrefix(ps.ByName("key"), "/")
	if text == "" {
		writeProblem(w, r, http.StatusBadRequest, probEmptyKey, "the key in the path is empty")
		return "", nil, false
	}
	key, ok := keyBytes(w, r, s, "key", text)
	return text, key, ok
}

// deadline reads ?timeout= (Go duration syntax), answering 400 when it is
// not a positive duration up to the maximum.
func (h *Handler) deadline(w http.ResponseWriter, r *http.Request, q url.Values) (time.Duration, bool) {
	v := q.Get("timeout")
	if v == "" {
		return h.o.Timeout, true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > h.o.MaxTimeout {
		writeProblem(w, r, http.StatusBadRequest, probBadTimeout,
			"timeout "+strconv.Quote(v)+" must be a duration like 250ms or 2s, above 0 and at most "+h.o.MaxTimeout.String())
		return 0, false
	}
	return d, true
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	s, ok := h.storeOf(w, r, ps)
	if !ok {
		return
	}
	q := query(r)
	if !knownParams(w, r, withoutTransformParams(q), "timeout") {
		return
	}
	tr, params, ok := h.transformOf(w, r, s, q)
	if !ok {
		return
	}
	text, key, ok := pathKey(w, r, ps, s)
	if !ok {
		return
	}
	timeout, ok := h.deadline(w, r, q)
	if !ok {
		return
	}
	n, err := h.e.PartitionCount(s.Topic)
	if err != nil {
		writeProblem(w, r, http.StatusInternalServerError, probInternal, err.Error())
		return
	}
	part, ok := partitionOf(w, r, s, key, n)
	if !ok {
		return
	}
	p := state.Partition{Topic: s.Topic, Partition: part}
	nhops := hops(r)
	type found struct {
		rec      state.Record
		servedBy string
	}
	got, waited, err := await(r.Context(), timeout, func(ctx context.Context, deadline time.Time) (found, error) {
		rec, err := h.e.Get(p, key)
		owner, local, rerr := h.route(p, err, nhops)
		if local {
			return found{rec, h.e.NodeID()}, err
		}
		if rerr != nil {
			return found{}, rerr
		}
		rec, err = h.remoteGet(ctx, deadline, owner, s, p, key)
		return found{rec, owner.NodeID}, err
	})
	rec := got.rec
	w.Header().Set(waitedHeader, strconv.FormatInt(waited.Milliseconds(), 10))
	if err != nil {
		h.queryError(w, r, err, "key "+strconv.Quote(text))
		return
	}
	buf := make([]byte, 0, 256+len(rec.Value))
	buf = append(buf, `{"key":`...)
	keyStart := len(buf)
	if buf, err = s.Key.AppendJSON(buf, rec.Key); err != nil {
		if !pluginProblem(w, r, err) {
			writeProblem(w, r, http.StatusInternalServerError, probUndecodable, "stored key at offset "+strconv.FormatInt(rec.Offset, 10)+" does not decode as "+s.Key.Name()+": "+err.Error())
		}
		return
	}
	keyEnd := len(buf)
	buf = append(buf, `,"value":`...)
	valueStart := len(buf)
	if buf, err = s.Value.AppendJSON(buf, rec.Value); err != nil {
		if !pluginProblem(w, r, err) {
			writeProblem(w, r, http.StatusInternalServerError, probUndecodable, "value at offset "+strconv.FormatInt(rec.Offset, 10)+" does not decode as "+s.Value.Name()+": "+err.Error())
		}
		return
	}
	if tr != nil {
		var keep bool
		if buf, keep, err = transformOne(tr, params, buf, keyStart, keyEnd, valueStart); err != nil {
			pluginProblem(w, r, err)
			return
		}
		if !keep {
			writeProblem(w, r, http.StatusNotFound, probFiltered, "key "+strconv.Quote(text)+" is in the store, but the transform "+tr.Name()+" filtered it out")
			return
		}
	}
	buf = appendMeta(buf, p.Partition, rec)
	buf = append(buf, `,"served_by":`...)
	buf = strconv.AppendQuote(buf, got.servedBy)
	buf = append(buf, "}\n"...)
	w.Header().Set(servedByHeader, got.servedBy)
	w.Header().Set("Content-Type", jsonContentType)
	_, _ = w.Write(buf)
}

// appendMeta appends the partition, offset and timestamp fields of rec.
func appendMeta(buf []byte, partition int32, rec state.Record) []byte {
	buf = append(buf, `,"partition":`...)
	buf = strconv.AppendInt(buf, int64(partition), 10)
	buf = append(buf, `,"offset":`...)
	buf = strconv.AppendInt(buf, rec.Offset, 10)
	buf = append(buf, `,"timestamp":"`...)
	buf = time.UnixMilli(rec.Timestamp).UTC().AppendFormat(buf, timestampLayout)
	return append(buf, '"')
}

// queryError answers a failed query: 404 for an absent key, 503 when the
// partition had no serving owner before the deadline, else 500.
func (h *Handler) queryError(w http.ResponseWriter, r *http.Request, err error, what string) {
	var ue *unavailableError
	var no *notOwnerError
	switch {
	case errors.As(err, &no):
		w.Header().Set(generationHeader, strconv.Itoa(int(no.generation)))
		writeProblem(w, r, http.StatusMisdirectedRequest, probNotOwner, no.Error())
	case errors.Is(err, state.ErrNotFound):
		writeProblem(w, r, http.StatusNotFound, probKeyNotFound, what+" is not in the store")
	case errors.As(err, &ue):
		writeProblemDoc(w, r, problem{
			Status:     http.StatusServiceUnavailable,
			Type:       probUnavailable,
			Detail:     ue.Error(),
			Partitions: ue.partitions,
		})
	case r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
	default:
		h.log.Error("query failed", "path", r.URL.Path, "err", err)
		writeProblem(w, r, http.StatusInternalServerError, probInternal, err.Error())
	}
}

type transformInfo struct {
	Module string            `json:"module"`
	Params map[string]string `json:"params,omitempty"`
}

func (h *Handler) listStores(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	type storeInfo struct {
		Name       string `json:"name"`
		Topic      string `json:"topic"`
		Partitions int32  `json:"partitions"`
		Key        string `json:"key_serde"`
		Value      string `json:"value_serde"`
		// Transform names the store's transform module and its default
		// parameters; absent when the store has none.
		Transform *transformInfo `json:"transform,omitempty"`
	}
	out := struct {
		Stores []storeInfo `json:"stores"`
	}{Stores: []storeInfo{}}
	for _, s := range h.e.Stores() {
		n, _ := h.e.PartitionCount(s.Topic)
		info := storeInfo{Name: s.Name, Topic: s.Topic, Partitions: n, Key: s.Key.Name(), Value: s.Value.Name()}
		if t, ok := h.o.Transforms[s.Name]; ok {
			info.Transform = &transformInfo{Module: "wasm:" + t.Module.Name(), Params: t.Params}
		}
		out.Stores = append(out.Stores, info)
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if err := h.e.Err(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "failed", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !h.e.Ready() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "restoring"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
