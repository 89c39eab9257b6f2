package router

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/iqengine/iqengine/cluster"
	"github.com/iqengine/iqengine/plugins"
	"github.com/iqengine/iqengine/state"
)

// scanRequest is a validated range, prefix or full scan.
type scanRequest struct {
	store state.Store
	// lower and upper bound the keys k returned: lower <= k < upper; nil
	// is open.
	lower, upper []byte
	limit        int
	after        *cursor
	query        uint64 // identity of the scan, bound into its cursors
	// want is what the scan accepts of the replicas that answer.
	want *want
}

// cursor is where the previous page ended: the last key returned and its
// partition. Pages are merged in (key, partition) order, so this one
// position is every partition's position: partitions up to and including
// Partition resume after Key, later ones at Key. It names no node, so it
// stays valid while partitions move.
type cursor struct {
	Partition int32
	Key       []byte
}

const cursorVersion = 1

func (c cursor) encode(query uint64) string {
	b := make([]byte, 0, 1+8+4+len(c.Key))
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint64(b, query)
	b = binary.BigEndian.AppendUint32(b, uint32(c.Partition))
	b = append(b, c.Key...)
	return base64.RawURLEncoding.EncodeToString(b)
}

var errBadCursor = errors.New("cursor is malformed or belongs to another scan")

// decodeCursor reads what encode wrote, and nothing else: base64 decoding
// alone would also take unused bits set in the last character and skip
// line breaks, giving one position several cursors.
func decodeCursor(s string, query uint64) (*cursor, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errBadCursor
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) < 13 || b[0] != cursorVersion || binary.BigEndian.Uint64(b[1:]) != query {
		return nil, errBadCursor
	}
	return &cursor{Partition: int32(binary.BigEndian.Uint32(b[9:])), Key: b[13:]}, nil
}

// start is where partition p resumes after c.
func (c *cursor) start(p int32) []byte {
	if p <= c.Partition {
		return append(bytes.Clone(c.Key), 0) // the smallest key after Key
	}
	return c.Key
}

// lowerOf is where partition p's records of the scan start: the scan's
// lower bound, or after the cursor when that is later.
func (req *scanRequest) lowerOf(p int32) []byte {
	lower := req.lower
	if req.after != nil {
		if s := req.after.start(p); lower == nil || bytes.Compare(s, lower) > 0 {
			lower = s
		}
	}
	return lower
}

// parseScan validates the scan parameters: from and to (inclusive, as in
// Kafka Streams' range queries), prefix, limit and cursor.
func (h *Handler) parseScan(w http.ResponseWriter, r *http.Request, s state.Store, q url.Values) (*scanRequest, bool) {
	if !knownParams(w, r, withoutTransformParams(q), withReplicaParams("from", "to", "prefix", "limit", "cursor", "timeout")...) {
		return nil, false
	}
	req := &scanRequest{store: s, limit: h.o.DefaultLimit}
	n, err := h.e.PartitionCount(s.Topic)
	if err != nil {
		writeProblem(w, r, http.StatusInternalServerError, probInternal, err.Error())
		return nil, false
	}
	var ok bool
	if req.want, ok = h.parseWant(w, r, q, s.Topic, n); !ok {
		return nil, false
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > h.o.MaxLimit {
			writeProblem(w, r, http.StatusBadRequest, probBadLimit, "limit "+strconv.Quote(v)+" must be a whole number from 1 to "+strconv.Itoa(h.o.MaxLimit))
			return nil, false
		}
		req.limit = n
	}
	bound := func(name string) ([]byte, bool) {
		if !q.Has(name) {
			return nil, true
		}
		return keyBytes(w, r, s, name, q.Get(name))
	}
	from, ok := bound("from")
	if !ok {
		return nil, false
	}
	to, ok := bound("to")
	if !ok {
		return nil, false
	}
	prefix, ok := bound("prefix")
	if !ok {
		return nil, false
	}
	if from != nil && to != nil && bytes.Compare(from, to) > 0 {
		writeProblem(w, r, http.StatusBadRequest, probBadRange, "from "+strconv.Quote(q.Get("from"))+" sorts after to "+strconv.Quote(q.Get("to")))
		return nil, false
	}
	req.lower = from
	if to != nil {
		req.upper = append(bytes.Clone(to), 0) // to is inclusive
	}
	if prefix != nil {
		if req.lower == nil || bytes.Compare(prefix, req.lower) > 0 {
			req.lower = prefix
		}
		if end := state.PrefixEnd(prefix); end != nil && (req.upper == nil || bytes.Compare(end, req.upper) < 0) {
			req.upper = end
		}
	}
	hash := fnv.New64a()
	for _, part := range []string{s.Name, q.Get("from"), q.Get("to"), q.Get("prefix")} {
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

// item is one scanned record with its partition, and its rendered JSON.
type item struct {
	partition int32
	rec       state.Record
	out       []byte
}

// source yields one partition's records in key order: a local iterator, or
// a page fetched from the partition's owner.
type source interface {
	Next() (state.Record, bool)
	Err() error
	Close() error
}

// page is a remote partition's records for one scan request. Limits are
// pushed down: a page holds at most the request's limit, which is all a
// merged page of that limit can take from one partition.
type page struct {
	recs []state.Record
	i    int
	more bool // the owner has records after the page
}

func (p *page) Next() (state.Record, bool) {
	if p.i >= len(p.recs) {
		return state.Record{}, false
	}
	p.i++
	return p.recs[p.i-1], true
}
func (p *page) Err() error   { return nil }
func (p *page) Close() error { return nil }

// mergeHeap merges per-partition sources in (key, partition) order.
type mergeHeap []*partIter

type partIter struct {
	p   int32
	it  source
	cur state.Record
}

func (m mergeHeap) Len() int { return len(m) }
func (m mergeHeap) Less(i, j int) bool {
	if c := bytes.Compare(m[i].cur.Key, m[j].cur.Key); c != 0 {
		return c < 0
	}
	return m[i].p < m[j].p
}
func (m mergeHeap) Swap(i, j int) { m[i], m[j] = m[j], m[i] }
func (m *mergeHeap) Push(x any)   { *m = append(*m, x.(*partIter)) }
func (m *mergeHeap) Pop() any {
	old := *m
	x := old[len(old)-1]
	*m = old[:len(old)-1]
	return x
}

// opened are the sources of a scan's partitions and which replica
// answered each.
type opened struct {
	iters []*partIter
	by    []served
}

// openAll opens a source on every partition of the topic: a local iterator
// where the partition serves here, else a page from a replica (fetched in
// parallel). It fails with the joined errors of the partitions it could not
// open, so the caller can wait for them and name them.
func (h *Handler) openAll(ctx context.Context, deadline time.Time, req *scanRequest, nhops int) (opened, error) {
	n, err := h.e.PartitionCount(req.store.Topic)
	if err != nil {
		return opened{}, err
	}
	iters, by, err := gatherPartitions(ctx, deadline, h, nhops, pageRead{h, req}, req.store.Topic, n, req.want)
	open := iters[:0]
	for _, it := range iters {
		if it != nil {
			open = append(open, it)
		}
	}
	if err != nil {
		closeAll(open)
		return opened{}, err
	}
	return opened{open, by}, nil
}

// pageRead opens one partition's records of a scan.
type pageRead struct {
	h   *Handler
	req *scanRequest
}

func (rd pageRead) op() string { return "scan" }

func (rd pageRead) local(p state.Partition) (*partIter, error) {
	it, err := rd.h.e.NewIterator(p, rd.req.lowerOf(p.Partition), rd.req.upper)
	if err != nil {
		return nil, err
	}
	return &partIter{p: p.Partition, it: it}, nil
}

func (rd pageRead) remote(ctx context.Context, deadline time.Time, m cluster.Member, p state.Partition, c replicaCall) (*partIter, served, error) {
	req := rd.req
	recs, more, by, err := rd.h.remotePage(ctx, deadline, m, req.store, p, req.lowerOf(p.Partition), req.upper, req.limit, c)
	if err != nil {
		return nil, by, err
	}
	return &partIter{p: p.Partition, it: &page{recs: recs, more: more}}, by, nil
}

func closeAll(iters []*partIter) {
	for _, pi := range iters {
		_ = pi.it.Close()
	}
}

// collect merges records from the iterators in key order and renders each
// one, until limit records are kept (a transform may filter records out),
// and reports whether more remain and the last record examined, where the
// next page starts. A plugin fault fails the whole page.
func collect(iters []*partIter, limit int, rd *renderer) ([]item, *item, bool, error) {
	m := make(mergeHeap, 0, len(iters))
	for _, pi := range iters {
		if r, ok := pi.it.Next(); ok {
			pi.cur = r
			m = append(m, pi)
		} else if err := pi.it.Err(); err != nil {
			return nil, nil, false, err
		}
	}
	heap.Init(&m)
	// With a transform, a page may filter out most records; bound the work
	// of one page and let the cursor carry on.
	maxExamined := max(10000, 10*limit)
	examined := 0
	var last *item
	out := make([]item, 0, min(limit, 1024))
	for len(m) > 0 && len(out) < limit {
		if examined == maxExamined {
			return out, last, true, nil
		}
		examined++
		pi := m[0]
		it := item{partition: pi.p, rec: pi.cur}
		keep, err := rd.render(&it)
		if err != nil {
			return nil, nil, false, err
		}
		if keep {
			// Key and Value are only valid until Next: copy them once.
			it.rec.Key, it.rec.Value = bytes.Clone(it.rec.Key), nil
			out = append(out, it)
			last = &out[len(out)-1]
		} else {
			last = &item{partition: it.partition, rec: state.Record{Key: bytes.Clone(it.rec.Key)}}
		}
		if r, ok := pi.it.Next(); ok {
			pi.cur = r
			heap.Fix(&m, 0)
			continue
		}
		if err := pi.it.Err(); err != nil {
			return nil, nil, false, err
		}
		if pg, ok := pi.it.(*page); ok && pg.more {
			// A remote page (which holds at most limit records) ran out
			// with more behind it: records of its partition after it are
			// not here, so the page ends now and the cursor resumes it.
			return out, last, true, nil
		}
		heap.Pop(&m)
	}
	return out, last, len(m) > 0, nil
}

// renderer renders scan items with the store's serdes and transform.
type renderer struct {
	s     state.Store
	batch *plugins.Batch // nil without a transform
	buf   []byte
}

// render sets it.out to the item's JSON, or reports keep == false when the
// transform filters it out. A record a serde cannot decode is rendered with
// its error (so one bad record does not make the rest unreadable); a plugin
// fault, or a schema registry that cannot be reached for a schema not cached
// (not the record's fault), is an error that fails the page.
func (rd *renderer) render(it *item) (bool, error) {
	s := rd.s
	buf := append(rd.buf[:0], `{"key":`...)
	keyStart := len(buf)
	var err error
	if buf, err = s.Key.AppendJSON(buf, it.rec.Key); err != nil {
		if isPluginFault(err) || isRegistryOutage(err) {
			return false, err
		}
		buf = append(buf[:keyStart-len(`{"key":`)], `{"key":null`...)
		buf = append(buf, `,"key_base64":`...)
		buf = strconv.AppendQuote(buf, base64.StdEncoding.EncodeToString(it.rec.Key))
	}
	keyEnd := len(buf)
	keyOK := err == nil
	buf = append(buf, `,"value":`...)
	valueStart := len(buf)
	if buf, err = s.Value.AppendJSON(buf, it.rec.Value); err != nil {
		if isPluginFault(err) || isRegistryOutage(err) {
			return false, err
		}
		buf = append(buf[:valueStart], `null,"error":`...)
		buf = strconv.AppendQuote(buf, "value does not decode as "+s.Value.Name()+": "+err.Error())
	} else if rd.batch != nil && keyOK {
		var keep bool
		// The transform's output replaces the value in place (Record reads
		// its inputs before it writes dst).
		buf, keep, err = rd.batch.Record(buf[:valueStart], buf[keyStart:keyEnd], buf[valueStart:])
		if err != nil {
			return false, err
		}
		if !keep {
			rd.buf = buf
			return false, nil
		}
	}
	buf = appendMeta(buf, it.partition, it.rec)
	buf = append(buf, '}')
	rd.buf = buf
	it.out = bytes.Clone(buf)
	return true, nil
}

// isPluginFault reports whether err is a plugin failing (not rejecting).
func isPluginFault(err error) bool {
	var pe *plugins.Error
	return errors.As(err, &pe) && !pe.Rejected()
}

func (h *Handler) scan(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	s, ok := h.storeOf(w, r, ps)
	if !ok {
		return
	}
	q := query(r)
	req, ok := h.parseScan(w, r, s, q)
	if !ok {
		return
	}
	tr, params, ok := h.transformOf(w, r, s, q)
	if !ok {
		return
	}
	timeout, ok := h.deadline(w, r, q)
	if !ok {
		return
	}
	nhops := hops(r)
	op, waited, err := await(r.Context(), timeout, func(ctx context.Context, deadline time.Time) (opened, error) {
		return h.openAll(ctx, deadline, req, nhops)
	})
	h.m.waited("scan", waited)
	w.Header().Set(waitedHeader, strconv.FormatInt(waited.Milliseconds(), 10))
	if err != nil {
		h.queryError(w, r, err, "scan")
		return
	}
	iters := op.iters
	h.m.answered(op.by...)
	sum := summarize(s.Topic, op.by)
	sum.header(w.Header())
	rd := &renderer{s: s}
	ctx, span := h.tr.startRender(r.Context())
	if tr != nil {
		if rd.batch, err = tr.Begin(ctx, params); err != nil {
			endRender(span, 0, err)
			closeAll(iters)
			pluginProblem(w, r, err)
			return
		}
	}
	items, last, more, err := collect(iters, req.limit, rd)
	closeAll(iters)
	if rd.batch != nil {
		rd.batch.End()
	}
	endRender(span, len(items), err)
	if err != nil {
		if !pluginProblem(w, r, err) && !registryProblem(w, r, err) {
			h.queryError(w, r, err, "scan")
		}
		return
	}
	next := ""
	if more && last != nil {
		next = cursor{Partition: last.partition, Key: last.rec.Key}.encode(req.query)
	}
	w.Header().Set(servedByHeader, h.e.NodeID())
	if wantsNDJSON(r) {
		h.writeNDJSON(w, s, items, next, sum)
		return
	}
	buf := make([]byte, 0, 64+len(items)*160)
	buf = append(buf, `{"items":[`...)
	for i, it := range items {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, it.out...)
	}
	buf = append(buf, `],"next_cursor":`...)
	buf = appendCursor(buf, next)
	buf = sum.appendJSON(buf)
	buf = append(buf, "}\n"...)
	w.Header().Set("Content-Type", jsonContentType)
	_, _ = w.Write(buf)
}

func appendCursor(buf []byte, next string) []byte {
	if next == "" {
		return append(buf, "null"...)
	}
	return strconv.AppendQuote(buf, next)
}

func wantsNDJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), ndjsonContentType)
}

// writeNDJSON streams one item per line, then a last line with the cursor
// of the next page.
func (h *Handler) writeNDJSON(w http.ResponseWriter, s state.Store, items []item, next string, sum summary) {
	w.Header().Set("Content-Type", ndjsonContentType)
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 0, 4096)
	for i, it := range items {
		buf = append(buf, it.out...)
		buf = append(buf, '\n')
		if len(buf) > 32<<10 || i == len(items)-1 {
			if _, err := w.Write(buf); err != nil {
				return
			}
			buf = buf[:0]
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
	buf = append(buf[:0], `{"next_cursor":`...)
	buf = appendCursor(buf, next)
	buf = sum.appendJSON(buf)
	buf = append(buf, "}\n"...)
	_, _ = w.Write(buf)
}

func (h *Handler) count(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	s, ok := h.storeOf(w, r, ps)
	if !ok {
		return
	}
	q := query(r)
	if !knownParams(w, r, q, withReplicaParams("timeout")...) {
		return
	}
	timeout, ok := h.deadline(w, r, q)
	if !ok {
		return
	}
	n, err := h.e.PartitionCount(s.Topic)
	if err != nil {
		h.queryError(w, r, err, "count")
		return
	}
	wt, ok := h.parseWant(w, r, q, s.Topic, n)
	if !ok {
		return
	}
	nhops := hops(r)
	type counted struct {
		total int64
		by    []served
	}
	c, waited, err := await(r.Context(), timeout, func(ctx context.Context, deadline time.Time) (counted, error) {
		counts, by, err := gatherPartitions(ctx, deadline, h, nhops, countRead{h, s}, s.Topic, n, wt)
		var total int64
		for _, c := range counts {
			total += c
		}
		return counted{total, by}, err
	})
	h.m.waited("count", waited)
	w.Header().Set(waitedHeader, strconv.FormatInt(waited.Milliseconds(), 10))
	if err != nil {
		h.queryError(w, r, err, "count")
		return
	}
	h.m.answered(c.by...)
	sum := summarize(s.Topic, c.by)
	sum.header(w.Header())
	writeJSON(w, http.StatusOK, map[string]any{"store": s.Name, "count": c.total, "approximate": true,
		"replica": sum.replica, "lag": sum.lag, "position": sum.position})
}

// countRead counts one partition's keys.
type countRead struct {
	h *Handler
	s state.Store
}

func (rd countRead) op() string { return "count" }

func (rd countRead) local(p state.Partition) (int64, error) { return rd.h.e.Count(p) }

func (rd countRead) remote(ctx context.Context, deadline time.Time, m cluster.Member, p state.Partition, c replicaCall) (int64, served, error) {
	return rd.h.remoteCount(ctx, deadline, m, rd.s, p, c)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
