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
	partitions   int32 // of the store's topic
	after        *cursor
	query        uint64 // identity of the scan, bound into its cursors
	// want is what the scan accepts of the replicas that answer.
	want *want
	// win, when set, makes it a window or session store's query: records
	// are filtered by it where they are read (see window.go).
	win *windowQuery
	// single reads only partition part (one key's windows).
	single bool
	part   int32
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

// reverse reports whether the scan walks keys in descending order.
func (req *scanRequest) reverse() bool { return req.win != nil && req.win.reverse }

// boundsOf are partition p's bounds of the scan: lower is where its records
// start, the scan's lower bound or after the cursor when that is later;
// upper where they end (a reverse scan resumes before the cursor).
func (req *scanRequest) boundsOf(p int32) (lower, upper []byte) {
	if !req.reverse() {
		return req.lowerOf(p), req.upper
	}
	upper = req.upper
	if req.after != nil && (upper == nil || bytes.Compare(req.after.Key, upper) < 0) {
		upper = req.after.Key
	}
	return req.lower, upper
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
	req, ok := h.newScanRequest(w, r, s, q)
	if !ok {
		return nil, false
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

// newScanRequest starts a scan of store s: its partitions, the replicas it
// accepts and its limit.
func (h *Handler) newScanRequest(w http.ResponseWriter, r *http.Request, s state.Store, q url.Values) (*scanRequest, bool) {
	req := &scanRequest{store: s}
	n, err := h.e.PartitionCount(s.Topic)
	if err != nil {
		writeProblem(w, r, http.StatusInternalServerError, probInternal, err.Error())
		return nil, false
	}
	req.partitions = n
	var ok bool
	if req.want, ok = h.parseWant(w, r, q, s.Topic, n); !ok {
		return nil, false
	}
	if req.limit, ok = h.parseLimit(w, r, q); !ok {
		return nil, false
	}
	return req, true
}

// parseLimit reads ?limit=: the default limit when absent.
func (h *Handler) parseLimit(w http.ResponseWriter, r *http.Request, q url.Values) (int, bool) {
	v := q.Get("limit")
	if v == "" {
		return h.o.DefaultLimit, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > h.o.MaxLimit {
		writeProblem(w, r, http.StatusBadRequest, probBadLimit, "limit "+strconv.Quote(v)+" must be a whole number from 1 to "+strconv.Itoa(h.o.MaxLimit))
		return 0, false
	}
	return n, true
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

// page is a share of a remote partition's records for one scan request,
// which the replica that answered bounds by records and bytes (see
// remoteShare). When the page runs out while that replica has more, and
// the scan follows up (follow is set), the records after it are read from
// the partition's replicas again, as the first page was, so that a merged
// page never ends early for want of one partition's records.
type page struct {
	recs []state.Record
	i    int
	more bool // the replica has records after the page
	// follow reads the partition's records after key: a local iterator
	// when the partition serves here now, else the next page.
	follow func(key []byte) (source, error)
	rest   source // what follow gave, once the page ran out
	err    error
}

func (p *page) Next() (state.Record, bool) {
	if p.rest != nil {
		return p.rest.Next()
	}
	if p.i < len(p.recs) {
		p.i++
		return p.recs[p.i-1], true
	}
	if !p.more || p.follow == nil || p.err != nil {
		return state.Record{}, false
	}
	last := p.recs[len(p.recs)-1].Key
	p.recs = nil // the page's body is garbage once the next one is read
	if p.rest, p.err = p.follow(last); p.err != nil {
		p.rest = nil
		return state.Record{}, false
	}
	return p.rest.Next()
}

// pending says whether a source has records after those it returned, when
// it knows without reading on (a page, from what its replica said).
func pending(s source) (more, known bool) {
	p, ok := s.(*page)
	switch {
	case !ok:
		return false, false
	case p.rest != nil:
		return pending(p.rest)
	case p.i < len(p.recs):
		return true, true
	}
	return p.more, true
}

func (p *page) Err() error {
	if p.rest != nil {
		return p.rest.Err()
	}
	return p.err
}

func (p *page) Close() error {
	if p.rest != nil {
		return p.rest.Close()
	}
	return nil
}

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
// parallel) that follows up through fu (nil: pages that end where they
// end). It fails with the joined errors of the partitions it could not
// open, so the caller can wait for them and name them.
func (h *Handler) openAll(ctx context.Context, deadline time.Time, req *scanRequest, nhops int, fu *followUps) (opened, error) {
	if req.single {
		p := state.Partition{Topic: req.store.Topic, Partition: req.part}
		it, by1, err := readPartition(ctx, deadline, h, nhops, pageRead{h: h, req: req, fu: fu}, p, req.want)
		if err != nil {
			return opened{}, err
		}
		by := make([]served, req.partitions)
		by[req.part] = by1
		return opened{[]*partIter{it}, by}, nil
	}
	iters, by, err := gatherPartitions(ctx, deadline, h, nhops, pageRead{h: h, req: req, fu: fu}, req.store.Topic, req.partitions, req.want)
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
	fu  *followUps
	// grow doubles the share asked of a remote replica: the n-th follow-up
	// of a partition asks for 2^n shares (up to the page's own bounds).
	grow int
}

func (rd pageRead) op() string { return "scan" }

func (rd pageRead) local(p state.Partition) (*partIter, error) {
	lower, upper := rd.req.boundsOf(p.Partition)
	var it state.Iterator
	var err error
	if rd.req.win != nil {
		it, err = rd.h.windowIterator(rd.req.store, p, rd.req.win, lower, upper)
	} else {
		it, err = rd.h.e.NewIterator(p, lower, upper)
	}
	if err != nil {
		return nil, err
	}
	return &partIter{p: p.Partition, it: it}, nil
}

func (rd pageRead) remote(ctx context.Context, deadline time.Time, m cluster.Member, p state.Partition, c replicaCall) (*partIter, served, error) {
	req := rd.req
	limit, maxBytes := rd.h.remoteShare(req, rd.grow)
	lower, upper := req.boundsOf(p.Partition)
	recs, more, by, err := rd.h.remotePage(ctx, deadline, m, req.store, p, lower, upper, limit, maxBytes, req.win, c)
	if err != nil {
		return nil, by, err
	}
	pg := &page{recs: recs, more: more}
	if rd.fu != nil {
		fu, grow := rd.fu, rd.grow+1
		pg.follow = func(key []byte) (source, error) { return fu.after(p.Partition, key, grow) }
	}
	return &partIter{p: p.Partition, it: pg}, by, nil
}

// remoteShare is what a scan page asks of one remote partition: a share of
// the page's records and bytes, about twice the partition's even part of
// the page with a floor, so that n partitions buffer about two pages
// rather than n; grow doubles it for each follow-up of a partition whose
// records the page takes more of.
func (h *Handler) remoteShare(req *scanRequest, grow int) (limit, maxBytes int) {
	n := max(int(req.partitions), 1)
	if req.single {
		n = 1
	}
	grow = min(grow, 20)
	limit = min(req.limit, (2*((req.limit+n-1)/n)+16)<<grow)
	maxBytes = min(h.o.MaxPageBytes, (2*h.o.MaxPageBytes/n+64<<10)<<grow)
	return limit, maxBytes
}

// followUps reads the rest of a scan's remote partitions when their first
// pages run out, for the request that took the scan.
type followUps struct {
	h       *Handler
	ctx     context.Context // the request's
	req     *scanRequest
	hops    int
	timeout time.Duration // of each follow-up, as of the scan's first read
	// by is which replicas answered each partition: a follow-up's merges
	// into its partition's, for the answer's labels.
	by []served
}

// errPageCut says a follow-up found no replica to answer it: the page ends
// before the records it would have read, and its cursor resumes there.
type errPageCut struct{ err error }

func (e *errPageCut) Error() string { return "the page ends here: " + e.err.Error() }
func (e *errPageCut) Unwrap() error { return e.err }

// after reads partition p's records of the scan after key, from a replica
// chosen as for the first page, asking for the grow-th larger share.
func (fu *followUps) after(p int32, key []byte, grow int) (source, error) {
	if err := fu.ctx.Err(); err != nil {
		return nil, err
	}
	req := *fu.req
	if req.reverse() {
		req.upper, req.after = bytes.Clone(key), nil
	} else {
		req.lower, req.after = append(bytes.Clone(key), 0), nil
	}
	part := state.Partition{Topic: req.store.Topic, Partition: p}
	pi, by, err := readPartition(fu.ctx, time.Now().Add(fu.timeout), fu.h, fu.hops, pageRead{h: fu.h, req: &req, fu: fu, grow: grow}, part, req.want)
	if err != nil {
		if waiting, hard := classify(err); waiting != nil && hard == nil {
			return nil, &errPageCut{err}
		}
		return nil, err
	}
	fu.h.m.answered(by)
	if fu.by != nil {
		fu.by[p] = mergeServed(fu.by[p], by)
	}
	return pi.it, nil
}

// mergeServed is what an answer says of a partition read from two
// replicas: standby if either was, the larger lag, and the later position
// (the token must cover what either read saw).
func mergeServed(a, b served) served {
	if a.kind == 0 {
		return b
	}
	if b.kind == state.Standby {
		a.kind = state.Standby
	}
	a.lag, a.upto = max(a.lag, b.lag), max(a.upto, b.upto)
	return a
}

func closeAll(iters []*partIter) {
	for _, pi := range iters {
		_ = pi.it.Close()
	}
}

// ctxCheckEvery is how many records a page merges between two looks at
// its request's context.
const ctxCheckEvery = 64

// collect merges records from the iterators in key order, renders each
// one and hands its JSON to emit, until limit records are kept (a
// transform may filter records out) or their JSON reaches maxBytes (at
// least one record: a cursor always advances). It reports how many were
// kept, whether more remain, and the last record examined, where the next
// page starts. A plugin fault fails the whole page, as does ctx ending (the
// client went away) or emit failing (it could not write).
func collect(ctx context.Context, iters []*partIter, limit, maxBytes int, rd *renderer, emit func([]byte) error) (kept int, last *cursor, more bool, err error) {
	m := make(mergeHeap, 0, len(iters))
	for _, pi := range iters {
		if r, ok := pi.it.Next(); ok {
			pi.cur = r
			m = append(m, pi)
		} else if err := pi.it.Err(); err != nil {
			return 0, nil, false, err
		}
	}
	heap.Init(&m)
	// With a transform, a page may filter out most records; bound the work
	// of one page and let the cursor carry on.
	maxExamined := max(10000, 10*limit)
	examined, size := 0, 0
	var lastKey []byte
	lastP := int32(-1)
	at := func() *cursor {
		if lastP < 0 {
			return nil
		}
		return &cursor{Partition: lastP, Key: lastKey}
	}
	for len(m) > 0 && kept < limit && size < maxBytes {
		if examined == maxExamined {
			return kept, at(), true, nil
		}
		if examined%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return kept, nil, false, err
			}
		}
		examined++
		pi := m[0]
		it := item{partition: pi.p, rec: pi.cur}
		keep, err := rd.render(&it)
		if err != nil {
			return kept, nil, false, err
		}
		if keep {
			if err := emit(it.out); err != nil {
				return kept, nil, false, err
			}
			kept++
			size += len(it.out) + 1
		}
		// Key is only valid until Next: keep a copy of the last one.
		lastKey, lastP = append(lastKey[:0], pi.cur.Key...), pi.p
		if kept == limit || size >= maxBytes {
			// The page is full. Whether more records remain is known
			// without reading on, which for a remote page that ran out
			// would be a follow-up call for nothing.
			if len(m) > 1 {
				return kept, at(), true, nil
			}
			if more, known := pending(pi.it); known {
				return kept, at(), more, nil
			}
		}
		if r, ok := pi.it.Next(); ok {
			pi.cur = r
			heap.Fix(&m, 0)
			continue
		}
		if err := pi.it.Err(); err != nil {
			var cut *errPageCut
			if errors.As(err, &cut) {
				// No replica could give the rest of this partition now:
				// the page ends, and the cursor resumes it.
				return kept, at(), true, nil
			}
			return kept, nil, false, err
		}
		heap.Pop(&m)
	}
	return kept, at(), len(m) > 0, nil
}

// renderer renders scan items with the store's serdes and transform.
type renderer struct {
	s     state.Store
	batch *plugins.Batch // nil without a transform
	buf   []byte
}

// render sets it.out to the item's JSON (valid until the next render), or
// reports keep == false when the transform filters it out. A record a serde
// cannot decode is rendered with its error (so one bad record does not make
// the rest unreadable); a plugin fault, or a schema registry that cannot be
// reached for a schema not cached (not the record's fault), is an error
// that fails the page.
func (rd *renderer) render(it *item) (bool, error) {
	s := rd.s
	buf := append(rd.buf[:0], `{"key":`...)
	keyStart := len(buf)
	key := it.rec.Key
	var sp state.Span
	if s.Kind.Timed() {
		sp, _ = s.SplitKey(key) // the window query took only keys that split
		key = sp.Key
	}
	var err error
	if buf, err = s.Key.AppendJSON(buf, key); err != nil {
		if isPluginFault(err) || isRegistryOutage(err) {
			return false, err
		}
		buf = append(buf[:keyStart-len(`{"key":`)], `{"key":null`...)
		buf = append(buf, `,"key_base64":`...)
		buf = strconv.AppendQuote(buf, base64.StdEncoding.EncodeToString(key))
	}
	keyEnd := len(buf)
	keyOK := err == nil
	if s.Kind.Timed() {
		buf = appendSpan(buf, sp)
	}
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
	it.out = buf // valid until the next render
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
	if s.Kind.Timed() {
		wrongKind(w, r, s, "key scans")
		return
	}
	q := query(r)
	req, ok := h.parseScan(w, r, s, q)
	if !ok {
		return
	}
	h.runScan(w, r, s, q, req)
}

// runScan answers one page of a validated scan.
func (h *Handler) runScan(w http.ResponseWriter, r *http.Request, s state.Store, q url.Values, req *scanRequest) {
	tr, params, ok := h.transformOf(w, r, s, q)
	if !ok {
		return
	}
	timeout, ok := h.deadline(w, r, q)
	if !ok {
		return
	}
	nhops := hops(r)
	fu := &followUps{h: h, ctx: r.Context(), req: req, hops: nhops, timeout: timeout}
	op, waited, err := await(r.Context(), timeout, func(ctx context.Context, deadline time.Time) (opened, error) {
		return h.openAll(ctx, deadline, req, nhops, fu)
	})
	h.m.waited("scan", waited)
	w.Header().Set(waitedHeader, strconv.FormatInt(waited.Milliseconds(), 10))
	if err != nil {
		h.queryError(w, r, err, "scan")
		return
	}
	iters := op.iters
	fu.by = op.by
	h.m.answered(op.by...)
	// The headers say which replicas the page opened on; follow-ups may
	// add to that, which the page's end (its last NDJSON line) says.
	summarize(s.Topic, op.by).header(w.Header())
	w.Header().Set(servedByHeader, h.e.NodeID())
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
	ans := h.newPageAnswer(w, r)
	kept, last, more, err := collect(r.Context(), iters, req.limit, h.o.MaxPageBytes, rd, ans.item)
	closeAll(iters)
	if rd.batch != nil {
		rd.batch.End()
	}
	endRender(span, kept, err)
	if err != nil {
		ans.fail(err)
		return
	}
	next := ""
	if more && last != nil {
		next = last.encode(req.query)
	}
	ans.end(next, summarize(s.Topic, op.by))
}

// scanError answers a scan page that failed.
func (h *Handler) scanError(w http.ResponseWriter, r *http.Request, err error) {
	if !pluginProblem(w, r, err) && !registryProblem(w, r, err) {
		h.queryError(w, r, err, "scan")
	}
}

// ndjsonFlushBytes is how much of an NDJSON page is written at a time.
const ndjsonFlushBytes = 32 << 10

// pageAnswer writes a scan page as the merge produces its items: in JSON,
// into one buffer written at the end (with its length); in NDJSON (Accept:
// application/x-ndjson), one line per item, written and flushed every
// ndjsonFlushBytes, so that a long page streams and only that much of it
// is held.
type pageAnswer struct {
	h      *Handler
	w      http.ResponseWriter
	r      *http.Request
	out    *answerWriter
	ndjson bool
	buf    []byte
	items  int
}

func (h *Handler) newPageAnswer(w http.ResponseWriter, r *http.Request) *pageAnswer {
	a := &pageAnswer{h: h, w: w, r: r, out: h.newAnswerWriter(w), ndjson: wantsNDJSON(r)}
	if a.ndjson {
		a.buf = make([]byte, 0, ndjsonFlushBytes+4096)
	} else {
		a.buf = append(make([]byte, 0, 4096), `{"items":[`...)
	}
	return a
}

// item adds an item's JSON to the page.
func (a *pageAnswer) item(js []byte) error {
	a.items++
	if !a.ndjson {
		if a.items > 1 {
			a.buf = append(a.buf, ',')
		}
		a.buf = append(a.buf, js...)
		return nil
	}
	a.buf = append(a.buf, js...)
	a.buf = append(a.buf, '\n')
	if len(a.buf) < ndjsonFlushBytes {
		return nil
	}
	return a.flushLines()
}

// flushLines writes the NDJSON lines buffered so far.
func (a *pageAnswer) flushLines() error {
	if !a.out.started {
		a.w.Header().Set("Content-Type", ndjsonContentType)
	}
	err := a.out.write(a.buf)
	a.buf = a.buf[:0]
	return err
}

// end writes the rest of the page: the cursor of the next page (none when
// next is "") and which replicas answered.
func (a *pageAnswer) end(next string, sum summary) {
	if !a.out.started {
		sum.header(a.w.Header())
	}
	if a.ndjson {
		a.buf = append(a.buf, `{"next_cursor":`...)
		a.buf = appendCursor(a.buf, next)
		a.buf = sum.appendJSON(a.buf)
		a.buf = append(a.buf, "}\n"...)
		if a.flushLines() == nil {
			a.out.done()
		}
		return
	}
	a.buf = append(a.buf, `],"next_cursor":`...)
	a.buf = appendCursor(a.buf, next)
	a.buf = sum.appendJSON(a.buf)
	a.buf = append(a.buf, "}\n"...)
	a.w.Header().Set("Content-Type", jsonContentType)
	a.w.Header().Set("Content-Length", strconv.Itoa(len(a.buf)))
	if a.out.write(a.buf) == nil {
		a.out.done()
	}
}

// fail answers a page that failed: with its problem while nothing was
// written; once NDJSON lines were (the status is sent), with the lines
// still buffered and then a last line {"error": problem}, so that a client
// cannot take the page for a whole one: it has no next_cursor line.
func (a *pageAnswer) fail(err error) {
	if a.out.broken {
		return // the client stopped reading or went away
	}
	if !a.out.started {
		a.h.scanError(a.w, a.r, err)
		return
	}
	c := &capturedProblem{header: http.Header{}}
	a.h.scanError(c, a.r, err)
	if len(c.body) == 0 {
		return // the client went away: nobody reads it
	}
	a.buf = append(a.buf, `{"error":`...)
	a.buf = append(a.buf, bytes.TrimSpace(c.body)...)
	a.buf = append(a.buf, "}\n"...)
	if a.flushLines() == nil {
		a.out.done()
	}
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
		counts, by, err := gatherPartitions(ctx, deadline, h, nhops, countRead{h, s, r.Context()}, s.Topic, n, wt)
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

// countRead counts one partition's keys, for a request whose context is
// ctx: here through the handler's count cache, which stops the walk when
// the request goes away.
type countRead struct {
	h   *Handler
	s   state.Store
	ctx context.Context
}

func (rd countRead) op() string { return "count" }

func (rd countRead) local(p state.Partition) (int64, error) { return rd.h.countOf(rd.ctx, p) }

func (rd countRead) remote(ctx context.Context, deadline time.Time, m cluster.Member, p state.Partition, c replicaCall) (int64, served, error) {
	return rd.h.remoteCount(ctx, deadline, m, rd.s, p, c)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
