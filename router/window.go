package router

import (
	"bytes"
	"encoding/base64"
	"errors"
	"hash/fnv"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/iqengine/iqengine/state"
)

// Window and session stores (state.WindowKind, state.SessionKind) hold a
// Kafka Streams window or session store's changelog: each record key is
// an inner key followed by its times. Their queries are scans of those
// record keys, filtered by inner key and time where the partition is read,
// which is also where the partition's stream time is known, and so where
// retention is applied:
//
//	GET /v1/stores/{store}/keys/{key}/windows   one key's windows (fetch, backwardFetch)
//	GET /v1/stores/{store}/keys/{key}/sessions  one key's sessions (findSessions)
//	GET /v1/stores/{store}/windows              every key's windows (fetchAll, fetch(keyFrom, keyTo, ...))
//	GET /v1/stores/{store}/sessions             every key's sessions
//
// They answer pages like a key-value scan, with each item's start and end.

// windowQuery selects the windows or sessions of a scan.
type windowQuery struct {
	// one: the windows of inner key key only; else those of the inner keys
	// in [keyFrom, keyTo] (nil bounds are open).
	one            bool
	key            []byte
	keyFrom, keyTo []byte
	r              state.TimeRange
	// reverse walks the records in descending key order: one key's
	// windows, newest first.
	reverse bool
}

// match reports whether sp, visible from oldest on, is selected.
func (wq *windowQuery) match(s state.Store, sp state.Span, oldest int64) bool {
	if wq.one {
		if !bytes.Equal(sp.Key, wq.key) {
			return false
		}
	} else if wq.keyFrom != nil && bytes.Compare(sp.Key, wq.keyFrom) < 0 || wq.keyTo != nil && bytes.Compare(sp.Key, wq.keyTo) > 0 {
		return false
	}
	return s.Match(sp, wq.r, oldest)
}

// bounds are the record keys [lower, upper) the query's records lie in.
// (An inner key that is a prefix of keyTo, with times whose first byte is
// above keyTo's next one, would fall after upper: times before 2^56 ms, the
// year 2 million, never do.)
func (wq *windowQuery) bounds(s state.Store) (lower, upper []byte) {
	if wq.one {
		return s.KeyBounds(wq.key, wq.r)
	}
	if wq.keyTo != nil {
		upper = state.PrefixEnd(wq.keyTo)
	}
	return bytes.Clone(wq.keyFrom), upper
}

// Parameters of the calls between nodes that carry a window query.
const (
	winParamOne     = "w_key"
	winParamFrom    = "w_key_from"
	winParamTo      = "w_key_to"
	winParamTimes   = "w_times"
	winParamReverse = "reverse"
)

// encode adds the query to the parameters of a call to another node.
func (wq *windowQuery) encode(q url.Values) {
	if wq.one {
		q.Set(winParamOne, b64(wq.key))
	}
	if wq.keyFrom != nil {
		q.Set(winParamFrom, b64(wq.keyFrom))
	}
	if wq.keyTo != nil {
		q.Set(winParamTo, b64(wq.keyTo))
	}
	q.Set(winParamTimes, strconv.FormatInt(wq.r.From, 10)+","+strconv.FormatInt(wq.r.To, 10))
	if wq.reverse {
		q.Set(winParamReverse, "1")
	}
}

// decodeWindowQuery reads what encode wrote: nil when the call carries no
// window query.
func decodeWindowQuery(q url.Values) (*windowQuery, error) {
	if !q.Has(winParamTimes) {
		return nil, nil
	}
	wq := &windowQuery{reverse: q.Get(winParamReverse) == "1"}
	from, to, ok := strings.Cut(q.Get(winParamTimes), ",")
	var err1, err2 error
	wq.r.From, err1 = strconv.ParseInt(from, 10, 64)
	wq.r.To, err2 = strconv.ParseInt(to, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return nil, errors.New("w_times must be two integers")
	}
	dec := func(name string) ([]byte, error) {
		if !q.Has(name) {
			return nil, nil
		}
		b, err := base64.RawURLEncoding.DecodeString(q.Get(name))
		if b == nil {
			b = []byte{} // present and empty is not open
		}
		return b, err
	}
	var err3, err4, err5 error
	wq.key, err3 = dec(winParamOne)
	wq.one = q.Has(winParamOne)
	wq.keyFrom, err4 = dec(winParamFrom)
	wq.keyTo, err5 = dec(winParamTo)
	if err := errors.Join(err3, err4, err5); err != nil {
		return nil, errors.New("w_key, w_key_from and w_key_to must be base64url")
	}
	return wq, nil
}

// windowIter yields the records of an iterator that a window query
// selects and the partition's stream time has not expired.
type windowIter struct {
	state.Iterator
	s      state.Store
	wq     *windowQuery
	oldest int64
}

func (w *windowIter) Next() (state.Record, bool) {
	for {
		r, ok := w.Iterator.Next()
		if !ok {
			return r, false
		}
		if sp, ok := w.s.SplitKey(r.Key); ok && w.wq.match(w.s, sp, w.oldest) {
			return r, true
		}
	}
}

// windowIterator opens a window query's iterator on partition p here, in
// [lower, upper). The stream time is read first, as Kafka Streams' own
// fetches read it before they open their iterators.
func (h *Handler) windowIterator(s state.Store, p state.Partition, wq *windowQuery, lower, upper []byte) (state.Iterator, error) {
	st, err := h.e.StreamTime(p)
	if err != nil {
		return nil, err
	}
	var it state.Iterator
	if wq.reverse {
		it, err = h.e.NewReverseIterator(p, lower, upper)
	} else {
		it, err = h.e.NewIterator(p, lower, upper)
	}
	if err != nil {
		return nil, err
	}
	return &windowIter{Iterator: it, s: s, wq: wq, oldest: s.Oldest(st)}, nil
}

// timeParams are a window or session query's time parameters: the bounds
// of the windows' start, or the session's earliest end and latest start.
func timeParams(k state.Kind) (from, to string) {
	if k == state.SessionKind {
		return "earliest_end", "latest_start"
	}
	return "from", "to"
}

// kindPath is the path segment of a kind's queries.
func kindPath(k state.Kind) string {
	if k == state.SessionKind {
		return "sessions"
	}
	return "windows"
}

// parseTime reads a time parameter: epoch milliseconds, or RFC 3339.
func parseTime(w http.ResponseWriter, r *http.Request, name, v string) (int64, bool) {
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return ms, true
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UnixMilli(), true
	}
	writeProblem(w, r, http.StatusBadRequest, probBadTime,
		name+" "+strconv.Quote(v)+" is not a time: give milliseconds since the epoch (1796205600000) or RFC 3339 (2026-12-02T10:00:00Z)")
	return 0, false
}

// parseTimeRange reads the query's time bounds (both optional, inclusive).
func parseTimeRange(w http.ResponseWriter, r *http.Request, q url.Values, k state.Kind) (state.TimeRange, bool) {
	tr := state.AllTime
	fromName, toName := timeParams(k)
	var ok bool
	if v := q.Get(fromName); q.Has(fromName) {
		if tr.From, ok = parseTime(w, r, fromName, v); !ok {
			return tr, false
		}
	}
	if v := q.Get(toName); q.Has(toName) {
		if tr.To, ok = parseTime(w, r, toName, v); !ok {
			return tr, false
		}
	}
	// A session that ends at or after earliest_end may start before a
	// latest_start that is earlier: only windows' bounds can be reversed.
	if k == state.WindowKind && tr.From > tr.To {
		writeProblem(w, r, http.StatusBadRequest, probBadTimeRange,
			"from "+strconv.Quote(q.Get(fromName))+" is after to "+strconv.Quote(q.Get(toName)))
		return tr, false
	}
	return tr, true
}

// wrongKind answers a query that the store's kind does not have.
func wrongKind(w http.ResponseWriter, r *http.Request, s state.Store, asked string) {
	var hint string
	switch s.Kind {
	case state.KeyValue:
		hint = "ask GET /v1/stores/" + s.Name + "/keys/{key} for a key's value"
	default:
		hint = "ask GET /v1/stores/" + s.Name + "/keys/{key}/" + kindPath(s.Kind) + " for a key's " + kindPath(s.Kind) + ", or GET /v1/stores/" + s.Name + "/" + kindPath(s.Kind)
	}
	writeProblem(w, r, http.StatusBadRequest, probWrongKind, "store "+strconv.Quote(s.Name)+" is a "+s.Kind.String()+" store, which has no "+asked+": "+hint)
}

// timedSuffix splits a key path that ends in /windows or /sessions.
func timedSuffix(path string) (key string, k state.Kind, ok bool) {
	for _, kind := range []state.Kind{state.WindowKind, state.SessionKind} {
		suffix := "/" + kindPath(kind)
		if key, ok := strings.CutSuffix(path, suffix); ok {
			return key, kind, true
		}
	}
	return path, 0, false
}

// windowParams are the parameters a window or session query may have.
func windowParams(k state.Kind, gathered bool) []string {
	from, to := timeParams(k)
	known := []string{from, to, "limit", "cursor", "timeout"}
	if gathered {
		return withReplicaParams(append(known, "key_from", "key_to")...)
	}
	return withReplicaParams(append(known, "order")...)
}

// timedLookup answers a key path of a window or session store, and a key
// path ending in /windows or /sessions that names no key of a key-value
// store; it reports false for a key lookup to go on with.
func (h *Handler) timedLookup(w http.ResponseWriter, r *http.Request, ps httprouter.Params) bool {
	s, ok := h.e.Store(ps.ByName("store"))
	if !ok {
		return false // the lookup's own 404
	}
	path := strings.TrimPrefix(ps.ByName("key"), "/")
	text, asked, suffixed := timedSuffix(path)
	switch {
	case !suffixed && !s.Kind.Timed():
		return false
	case !suffixed:
		wrongKind(w, r, s, "key lookups")
		return true
	case !s.Kind.Timed():
		// A key-value store's key may end in /windows: it is looked up,
		// unless the query has a window query's parameters.
		q := query(r)
		for _, name := range windowParams(asked, false) {
			if name != "timeout" && !isReplicaParam(name) && q.Has(name) {
				wrongKind(w, r, s, kindPath(asked))
				return true
			}
		}
		return false
	case s.Kind != asked:
		wrongKind(w, r, s, kindPath(asked))
		return true
	}
	if text == "" {
		writeProblem(w, r, http.StatusBadRequest, probEmptyKey, "the key in the path is empty")
		return true
	}
	q := query(r)
	if !knownParams(w, r, withoutTransformParams(q), windowParams(s.Kind, false)...) {
		return true
	}
	key, ok := keyBytes(w, r, s, "key", text)
	if !ok {
		return true
	}
	wq := &windowQuery{one: true, key: key}
	switch o := q.Get("order"); o {
	case "", "asc":
	case "desc":
		wq.reverse = true
	default:
		writeProblem(w, r, http.StatusBadRequest, probBadParameter, "order "+strconv.Quote(o)+" must be asc or desc")
		return true
	}
	if wq.r, ok = parseTimeRange(w, r, q, s.Kind); !ok {
		return true
	}
	req, ok := h.windowRequest(w, r, s, q, wq)
	if !ok {
		return true
	}
	n := req.partitions
	part, ok := partitionOf(w, r, s, key, n)
	if !ok {
		return true
	}
	req.single, req.part = true, part
	h.runScan(w, r, s, q, req)
	return true
}

// isReplicaParam reports whether name is one of the replica parameters.
func isReplicaParam(name string) bool {
	for _, p := range replicaParams {
		if p == name {
			return true
		}
	}
	return false
}

// gatheredWindows answers GET /v1/stores/{store}/windows and /sessions:
// every key's windows or sessions in a time range (and a key range).
func (h *Handler) gatheredWindows(kind state.Kind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		s, ok := h.storeOf(w, r, ps)
		if !ok {
			return
		}
		if s.Kind != kind {
			wrongKind(w, r, s, kindPath(kind))
			return
		}
		q := query(r)
		if !knownParams(w, r, withoutTransformParams(q), windowParams(kind, true)...) {
			return
		}
		wq := &windowQuery{}
		if wq.r, ok = parseTimeRange(w, r, q, kind); !ok {
			return
		}
		for _, b := range []struct {
			name string
			dst  *[]byte
		}{{"key_from", &wq.keyFrom}, {"key_to", &wq.keyTo}} {
			if q.Has(b.name) {
				if *b.dst, ok = keyBytes(w, r, s, b.name, q.Get(b.name)); !ok {
					return
				}
			}
		}
		if wq.keyFrom != nil && wq.keyTo != nil && bytes.Compare(wq.keyFrom, wq.keyTo) > 0 {
			writeProblem(w, r, http.StatusBadRequest, probBadRange, "key_from "+strconv.Quote(q.Get("key_from"))+" sorts after key_to "+strconv.Quote(q.Get("key_to")))
			return
		}
		req, ok := h.windowRequest(w, r, s, q, wq)
		if !ok {
			return
		}
		h.runScan(w, r, s, q, req)
	}
}

// windowRequest is the scan of a window query: its bounds, limit, cursor
// and the replicas it accepts.
func (h *Handler) windowRequest(w http.ResponseWriter, r *http.Request, s state.Store, q url.Values, wq *windowQuery) (*scanRequest, bool) {
	req, ok := h.newScanRequest(w, r, s, q)
	if !ok {
		return nil, false
	}
	req.win = wq
	req.lower, req.upper = wq.bounds(s)
	hash := fnv.New64a()
	for _, part := range []string{s.Name, kindPath(s.Kind), string(wq.key), strconv.FormatBool(wq.one), string(wq.keyFrom), string(wq.keyTo),
		strconv.FormatInt(wq.r.From, 10), strconv.FormatInt(wq.r.To, 10), strconv.FormatBool(wq.reverse)} {
		hash.Write([]byte(strconv.Quote(part)))
	}
	req.query = hash.Sum64()
	if v := q.Get("cursor"); v != "" {
		c, err := decodeCursor(v, req.query)
		if err != nil {
			writeProblem(w, r, http.StatusBadRequest, probBadCursor, err.Error())
			return nil, false
		}
		req.after = c
	}
	return req, true
}

// appendSpan appends a window's or session's `,"start":S,"end":E`.
func appendSpan(buf []byte, sp state.Span) []byte {
	buf = append(buf, `,"start":`...)
	buf = appendTime(buf, sp.Start)
	buf = append(buf, `,"end":`...)
	return appendTime(buf, sp.End)
}

// appendTime appends ms as a quoted RFC 3339 time with milliseconds, or as
// a number when it is beyond what RFC 3339 writes (a window that ends past
// the year 9999).
func appendTime(buf []byte, ms int64) []byte {
	t := time.UnixMilli(ms).UTC()
	if ms == math.MaxInt64 || t.Year() < 0 || t.Year() > 9999 {
		return strconv.AppendInt(buf, ms, 10)
	}
	buf = append(buf, '"')
	buf = t.AppendFormat(buf, timestampLayout)
	return append(buf, '"')
}
