// Package router is the HTTP layer: it parses and validates requests, turns
// key text into Kafka key bytes with the store's serde, finds the key's
// partition as Kafka's producer does, waits (retrying with backoff) while
// that partition restores, asks the partition's owner when it is another
// node, and writes answers and RFC 9457 problems. It reads this node's
// partitions through the Engine interface and knows nothing of Pebble or of
// how partitions are materialised.
package router

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/iqengine/iqengine/cluster"
	"github.com/iqengine/iqengine/plugins"
	"github.com/iqengine/iqengine/state"
)

// Engine is what the HTTP layer needs of the node's engine: its stores,
// reads of the partitions that serve on this node, and its health.
// *engine.Engine implements it; the router's tests use an in-memory fake, so
// that parsing, validation, cursors and rendering are tested without a
// broker or Pebble.
//
// A read of a partition that does not serve here fails with a
// *state.NotServingError (Status Restoring when it restores here, 0 when it
// is not assigned here), a read of an absent key with state.ErrNotFound, and
// any read once the node's store has closed with state.ErrClosed; the router
// waits, forwards or answers according to which.
type Engine interface {
	// NodeID is this node's id, as the routing table names it.
	NodeID() string
	// Store is the store of that name; Stores is every store, sorted by
	// name.
	Store(name string) (state.Store, bool)
	Stores() []state.Store
	// PartitionCount is the number of partitions of a store's topic.
	PartitionCount(topic string) (int32, error)
	// Get reads key's record in partition p.
	Get(p state.Partition, key []byte) (state.Record, error)
	// NewIterator walks p's records with lower <= key < upper in key
	// order; a nil bound is open.
	NewIterator(p state.Partition, lower, upper []byte) (state.Iterator, error)
	// NewReverseIterator is NewIterator in descending key order.
	NewReverseIterator(p state.Partition, lower, upper []byte) (state.Iterator, error)
	// StreamTime is partition p's stream time, of a window or session
	// store's topic: the greatest window start or session end applied
	// (state.NoStreamTime before any), from which retention is counted.
	StreamTime(p state.Partition) (int64, error)
	// Count counts p's keys; it walks the partition, and stops with ctx's
	// error when ctx ends.
	Count(ctx context.Context, p state.Partition) (int64, error)
	// Replica says how p is held here (active or standby), how far it has
	// applied and how far behind it is, or fails with a
	// *state.NotServingError when p cannot be read here. Get, NewIterator
	// and Count read any replica Replica describes; the router chooses.
	Replica(p state.Partition) (state.Replica, error)
	// WaitApplied waits until p's replica here has applied every offset
	// below next (nil), or ctx ends (its error).
	WaitApplied(ctx context.Context, p state.Partition, next int64) error
	// Partitions describes the partitions assigned to this node, sorted by
	// topic and partition.
	Partitions() []state.PartitionInfo
	// Ready reports whether the node has joined its group and every
	// partition assigned to it serves (/readyz).
	Ready() bool
	// Err is why the node failed, or nil while it runs (/healthz).
	Err() error
}

// Options configures the handler.
type Options struct {
	// Engine is the node's engine, which the handler reads its own
	// partitions from.
	Engine Engine
	// Timeout is how long a query waits for a partition that does not serve
	// yet; MaxTimeout caps what ?timeout= may ask for.
	Timeout    time.Duration
	MaxTimeout time.Duration
	// DefaultLimit and MaxLimit bound scan pages.
	DefaultLimit int
	MaxLimit     int
	// ActiveOnly makes queries that do not say (?replica=) refuse
	// standbys: they wait for the active owner instead.
	ActiveOnly bool
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
	// node (default 2 × MaxPageBytes + 1 MiB: a page share is at most
	// MaxPageBytes and one record); a longer answer fails its partition.
	PeerAnswerLimit int64
	// MaxInFlight bounds the requests answered at once, MaxInFlightScans
	// the scans and counts among them (defaults 512 and 16): beyond either
	// a request is refused at once with 429 overloaded and Retry-After. The
	// health probes, /metrics and the calls between nodes are not counted.
	MaxInFlight      int
	MaxInFlightScans int
	// MaxPageBytes bounds the rendered items of one scan page (default 4
	// MiB): a page that reaches it ends early, with a cursor.
	MaxPageBytes int
	// WriteTimeout is how long one write of a scan page may block on a
	// client that does not read (default 10s); past it the connection is
	// dropped and the page's buffers freed.
	WriteTimeout time.Duration
	// Info is GET /v1/info's answer, asked for each request (default: the
	// build, the engine's node id and its stores).
	Info func() Info
	// TracerProvider, when set, records spans: each request (named by its
	// route; not the health probes), each call to another node (whose trace
	// context goes with the call), each read of this node's store, and each
	// plugin call of a key lookup. Nil: no tracing, at no cost.
	TracerProvider trace.TracerProvider
	// Propagator carries the trace context on calls to other nodes, and
	// reads it from requests. Default: W3C Trace Context (traceparent).
	Propagator propagation.TextMapPropagator
	// Authenticate, when set, recognises each request's caller, and every
	// endpoint but the health probes and the API description needs one
	// with the scope it asks for (see access.go). Nil: open to anyone.
	Authenticate Authenticate
	// OpenMetrics serves /metrics without credentials when Authenticate is
	// set.
	OpenMetrics bool
	// ClusterKey, when set, signs this node's calls to other nodes, and the
	// internal endpoints answer only calls it signs, at most ReplayWindow
	// (default 30s) old and never twice.
	ClusterKey   *cluster.Key
	ReplayWindow time.Duration
	// SeparateInternal serves the calls between nodes (/v1/internal/...)
	// only on Internal, a handler of its own for a listener of its own;
	// the handler itself then answers them 404.
	SeparateInternal bool
	// PeerTLS, when set, is the TLS configuration of calls to other nodes
	// (their CAs, this node's client certificate) for the default Client.
	PeerTLS *tls.Config
}

// Routing is where the current routing table comes from: the cluster
// balancer, swapped once per group generation.
type Routing interface {
	Table() *cluster.Table
}

// Handler serves the HTTP API of one node.
type Handler struct {
	o      Options
	e      Engine
	log    *slog.Logger
	mux    *httprouter.Router
	imux   *httprouter.Router // the internal endpoints' (mux, unless SeparateInternal)
	m      *httpMetrics
	client *http.Client
	tr     *tracing // nil: tracing off
	lim    *limits
	counts *countCache
	// routes are the paths registered, in httprouter's syntax (every
	// endpoint answers GET only), for the test that holds the OpenAPI
	// document to them.
	routes []string

	lastRefresh atomic.Int64 // unix nanoseconds of the last refresh started
	nonces      nonceSet     // of the calls from other nodes taken
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
		o.Client = newPeerClient(o.PeerTLS)
	}
	boundDefaults(&o)
	if o.Info == nil {
		o.Info = defaultInfo(o.Engine)
	}
	if o.ReplayWindow <= 0 {
		o.ReplayWindow = 30 * time.Second
	}
	h := &Handler{o: o, e: o.Engine, log: o.Logger, mux: httprouter.New(), m: newHTTPMetrics(o.Registry), client: o.Client, tr: newTracing(o),
		lim: newLimits(o), counts: newCountCache()}
	h.nonces.init(o.ReplayWindow, time.Now())
	h.imux = h.mux
	if o.SeparateInternal {
		h.imux = httprouter.New()
	}
	h.handle("/v1/stores", "stores", h.listStores)
	h.handle("/v1/stores/:store/keys", "scan", h.scan)
	h.handle("/v1/stores/:store/keys/*key", "get", h.get)
	// One key's windows and sessions are answered by the lookup's route
	// (see timedLookup); they are routes of the API all the same.
	h.routes = append(h.routes, "/v1/stores/:store/keys/*key/windows", "/v1/stores/:store/keys/*key/sessions")
	h.handle("/v1/stores/:store/count", "count", h.count)
	h.handle("/v1/stores/:store/windows", "windows", h.gatheredWindows(state.WindowKind))
	h.handle("/v1/stores/:store/sessions", "sessions", h.gatheredWindows(state.SessionKind))
	h.handle("/v1/metadata/partitions", "partitions", h.partitions)
	h.handle("/v1/metadata/instances", "instances", h.instances)
	h.handle("/v1/metadata/stores/:store/keys/*key", "key-metadata", h.keyMetadata)
	h.handle("/v1/internal/stores/:store/partitions/:partition/get", "internal-get", h.internalGet)
	h.handle("/v1/internal/stores/:store/partitions/:partition/scan", "internal-scan", h.internalScan)
	h.handle("/v1/internal/stores/:store/partitions/:partition/count", "internal-count", h.internalCount)
	h.handle("/v1/internal/partitions", "internal-partitions", h.localPartitions)
	h.handle("/v1/info", "info", h.info)
	h.handle("/healthz", "healthz", h.healthz)
	h.handle("/readyz", "readyz", h.readyz)
	h.handle("/v1/openapi.json", "openapi", h.openAPI)
	metrics := promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{})
	h.mux.GET("/metrics", func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if r, ok := h.allowed(w, r, ps, accessMetrics); ok {
			metrics.ServeHTTP(w, r)
		}
	})
	h.routes = append(h.routes, "/metrics")
	for _, mux := range []*httprouter.Router{h.mux, h.imux} {
		mux.RedirectTrailingSlash = false
		mux.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeProblem(w, r, http.StatusNotFound, probNoRoute, "no endpoint at "+r.URL.Path)
		})
		mux.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeProblem(w, r, http.StatusMethodNotAllowed, probMethod, r.Method+" is not allowed on "+r.URL.Path)
		})
		mux.PanicHandler = func(w http.ResponseWriter, r *http.Request, v any) {
			h.log.Error("handler panic", "path", r.URL.Path, "panic", v)
			writeProblem(w, r, http.StatusInternalServerError, probInternal, "internal error")
		}
	}
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Internal is the handler of the calls between nodes: with
// SeparateInternal, for the internal listener (and only it serves them);
// without, the handler itself.
func (h *Handler) Internal() http.Handler { return h.imux }

type handlerFunc func(w http.ResponseWriter, r *http.Request, ps httprouter.Params)

// handle registers a GET endpoint, counting its requests and latency under
// the given name, within the bounds of requests in flight (bounded).
func (h *Handler) handle(path, name string, f handlerFunc) {
	f = h.bounded(name, f)
	m := h.m.endpoint(name)
	rt := h.tr.route(path, name)
	h.routes = append(h.routes, path)
	class := accessOf(name)
	mux := h.mux
	if class == accessInternal {
		mux = h.imux
	}
	mux.GET(path, func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		var span trace.Span
		if rt != nil {
			r, span = rt.startRequest(r)
		}
		if r, ok := h.allowed(sw, r, ps, class); ok {
			f(sw, r, ps)
		}
		if span != nil {
			endRequest(span, sw.status)
		}
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

// Unwrap lets http.ResponseController reach the connection (write
// deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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
			hint := "known: " + strings.Join(known, ", ")
			if len(known) == 0 {
				hint = "this endpoint takes none"
			}
			writeProblem(w, r, http.StatusBadRequest, probBadParameter,
				"unknown query parameter "+strconv.Quote(name)+" ("+hint+")")
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
	b, err := plugins.WithContext(r.Context(), s.Key).FromText(text)
	if err != nil {
		if pluginProblem(w, r, err) || registryProblem(w, r, err) {
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

// lookup is a validated key lookup.
type lookup struct {
	store   state.Store
	text    string // the key as written in the path
	key     []byte // its Kafka bytes
	p       state.Partition
	timeout time.Duration
	// transform is the store's transform (nil when it has none) and params
	// the JSON of its parameters for this query.
	transform *plugins.Module
	params    []byte
	// want is what the query accepts of the replica that answers.
	want *want
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if h.timedLookup(w, r, ps) {
		return
	}
	req, ok := h.parseLookup(w, r, ps)
	if !ok {
		return
	}
	rec, by, waited, err := h.fetchRecord(r, &req)
	h.m.waited("get", waited)
	w.Header().Set(waitedHeader, strconv.FormatInt(waited.Milliseconds(), 10))
	var sum summary
	if by.kind != 0 { // a key not found says which replica did not find it
		h.m.answered(by)
		sum = summarizeOne(req.p.Topic, req.p.Partition, by)
		sum.header(w.Header())
	}
	if err != nil {
		if _, asked, ok := timedSuffix(req.text); ok && errors.Is(err, state.ErrNotFound) {
			writeProblem(w, r, http.StatusBadRequest, probWrongKind, "store "+strconv.Quote(req.store.Name)+" is a keyvalue store, which has no "+kindPath(asked)+
				", and has no key "+strconv.Quote(req.text)+" either: ask GET /v1/stores/"+req.store.Name+"/keys/{key} for a key's value")
			return
		}
		h.queryError(w, r, err, "key "+strconv.Quote(req.text))
		return
	}
	rd, err := renderRecord(r.Context(), req.store, rec)
	if err != nil {
		if !pluginProblem(w, r, err) && !registryProblem(w, r, err) {
			writeProblem(w, r, http.StatusInternalServerError, probUndecodable, err.Error())
		}
		return
	}
	if req.transform != nil {
		keep, err := rd.transform(r.Context(), req.transform, req.params)
		if err != nil {
			pluginProblem(w, r, err)
			return
		}
		if !keep {
			writeProblem(w, r, http.StatusNotFound, probFiltered, "key "+strconv.Quote(req.text)+" is in the store, but the transform "+req.transform.Name()+" filtered it out")
			return
		}
	}
	buf := appendMeta(rd.buf, req.p.Partition, rec)
	buf = append(buf, `,"served_by":`...)
	buf = strconv.AppendQuote(buf, by.node)
	buf = sum.appendJSON(buf)
	buf = append(buf, "}\n"...)
	w.Header().Set(servedByHeader, by.node)
	w.Header().Set("Content-Type", jsonContentType)
	_, _ = w.Write(buf)
}

// parseLookup validates a key lookup: the store, the query parameters, the
// key and its partition.
func (h *Handler) parseLookup(w http.ResponseWriter, r *http.Request, ps httprouter.Params) (lookup, bool) {
	req := lookup{}
	s, ok := h.storeOf(w, r, ps)
	if !ok {
		return req, false
	}
	req.store = s
	q := query(r)
	if !knownParams(w, r, withoutTransformParams(q), withReplicaParams("timeout", "min_offset")...) {
		return req, false
	}
	if req.transform, req.params, ok = h.transformOf(w, r, s, q); !ok {
		return req, false
	}
	if req.text, req.key, ok = pathKey(w, r, ps, s); !ok {
		return req, false
	}
	if req.timeout, ok = h.deadline(w, r, q); !ok {
		return req, false
	}
	n, err := h.e.PartitionCount(s.Topic)
	if err != nil {
		writeProblem(w, r, http.StatusInternalServerError, probInternal, err.Error())
		return req, false
	}
	part, ok := partitionOf(w, r, s, req.key, n)
	if !ok {
		return req, false
	}
	req.p = state.Partition{Topic: s.Topic, Partition: part}
	if req.want, ok = h.parseWant(w, r, q, s.Topic, n); !ok {
		return req, false
	}
	if !parseMinOffset(w, r, q, req.want, part) {
		return req, false
	}
	return req, true
}

// fetchRecord reads the key's record from one of its partition's replicas,
// waiting while none can answer; it returns which replica answered and how
// long it waited.
func (h *Handler) fetchRecord(r *http.Request, req *lookup) (state.Record, served, time.Duration, error) {
	type found struct {
		rec state.Record
		by  served
	}
	rd, p, nhops := recordRead{h, req.store, req.key}, req.p, hops(r)
	got, waited, err := await(r.Context(), req.timeout, func(ctx context.Context, deadline time.Time) (found, error) {
		rec, by, err := readPartition(ctx, deadline, h, nhops, rd, p, req.want)
		return found{rec, by}, err
	})
	return got.rec, got.by, waited, err
}

// recordRead reads the record of one key of store s.
type recordRead struct {
	h   *Handler
	s   state.Store
	key []byte
}

func (rd recordRead) op() string { return "get" }

func (rd recordRead) local(p state.Partition) (state.Record, error) { return rd.h.e.Get(p, rd.key) }

func (rd recordRead) remote(ctx context.Context, deadline time.Time, m cluster.Member, p state.Partition, c replicaCall) (state.Record, served, error) {
	return rd.h.remoteGet(ctx, deadline, m, rd.s, p, rd.key, c)
}

// renderedRecord is the start of a record's JSON answer, `{"key":K,"value":V`,
// with where K and V are, for the transform.
type renderedRecord struct {
	buf                          []byte
	keyStart, keyEnd, valueStart int
}

// renderRecord renders rec's key and value with the store's serdes, whose
// plugin calls are spans of ctx's trace. A key or value the serde cannot
// decode is an error saying which, at what offset (a plugin's error stays a
// *plugins.Error).
func renderRecord(ctx context.Context, s state.Store, rec state.Record) (renderedRecord, error) {
	rd := renderedRecord{buf: make([]byte, 0, 256+len(rec.Value))}
	var err error
	rd.buf = append(rd.buf, `{"key":`...)
	rd.keyStart = len(rd.buf)
	if rd.buf, err = plugins.WithContext(ctx, s.Key).AppendJSON(rd.buf, rec.Key); err != nil {
		return rd, fmt.Errorf("stored key at offset %d does not decode as %s: %w", rec.Offset, s.Key.Name(), err)
	}
	rd.keyEnd = len(rd.buf)
	rd.buf = append(rd.buf, `,"value":`...)
	rd.valueStart = len(rd.buf)
	if rd.buf, err = plugins.WithContext(ctx, s.Value).AppendJSON(rd.buf, rec.Value); err != nil {
		return rd, fmt.Errorf("value at offset %d does not decode as %s: %w", rec.Offset, s.Value.Name(), err)
	}
	return rd, nil
}

// transform runs tr on the record, replacing its value with the
// transform's output, and reports whether the transform kept it.
func (rd *renderedRecord) transform(ctx context.Context, tr *plugins.Module, params []byte) (bool, error) {
	var keep bool
	var err error
	rd.buf, keep, err = transformOne(ctx, tr, params, rd.buf, rd.keyStart, rd.keyEnd, rd.valueStart)
	return keep, err
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
	case errors.As(err, &ue) && ue.behind():
		writeProblemDoc(w, r, problem{
			Status:     http.StatusServiceUnavailable,
			Type:       probNotReached,
			Detail:     "no replica had applied as far as the query wants before the deadline: " + ue.reasons(),
			Partitions: ue.partitions,
		})
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
		// Kind is keyvalue, window or session; a window store's window
		// size, and a window or session store's retention, in
		// milliseconds.
		Kind       string `json:"kind"`
		WindowSize int64  `json:"window_size_ms,omitempty"`
		Retention  int64  `json:"retention_ms,omitempty"`
		WindowKey  string `json:"window_key,omitempty"`
	}
	out := struct {
		Stores []storeInfo `json:"stores"`
	}{Stores: []storeInfo{}}
	id := identityOf(r.Context())
	for _, s := range h.e.Stores() {
		if id != nil && !id.CanRead(s.Name) {
			continue // what it may not read, it does not see
		}
		n, _ := h.e.PartitionCount(s.Topic)
		info := storeInfo{Name: s.Name, Topic: s.Topic, Partitions: n, Key: s.Key.Name(), Value: s.Value.Name(), Kind: s.Kind.String()}
		if s.Kind.Timed() {
			info.Retention = s.Window.Retention.Milliseconds()
		}
		if s.Kind == state.WindowKind {
			info.WindowSize, info.WindowKey = s.Window.Size.Milliseconds(), s.Window.Key.String()
		}
		if t, ok := h.o.Transforms[s.Name]; ok {
			info.Transform = &transformInfo{Module: "wasm:" + t.Module.Name(), Params: t.Params}
		}
		out.Stores = append(out.Stores, info)
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !h.failed(w) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// failed answers 503 with the engine's failure, if it failed.
func (h *Handler) failed(w http.ResponseWriter) bool {
	err := h.e.Err()
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "failed", "error": err.Error()})
	}
	return err != nil
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if h.failed(w) {
		return
	}
	if !h.e.Ready() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "restoring"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
