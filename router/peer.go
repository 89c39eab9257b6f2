package router

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	"go.opentelemetry.io/otel/trace"

	"github.com/iqengine/iqengine/cluster"
	"github.com/iqengine/iqengine/state"
)

// Calls between nodes go to /v1/internal/...: one partition's record, page
// or count, in raw Kafka bytes, so the node that took the request decodes
// and merges. The callee never forwards: it answers from its own store, or
// says it does not own the partition (421, with its routing generation), and
// the caller refreshes its view and retries. A node only ever calls the
// advertised URL of a member of its current routing table; nothing in a
// request chooses the address.

const (
	hopsHeader       = "Iqengine-Hops"
	generationHeader = "Iqengine-Generation"
	partitionHeader  = "Iqengine-Partition"
	recordsType      = "application/x-iqengine-records"
	probNotOwner     = "not-owner"
)

// newPeerClient is the keep-alive pool for calls to other nodes.
func newPeerClient() *http.Client {
	t := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // never follow a peer elsewhere
	}}
}

// waitError says a partition has no serving owner yet: it is restoring,
// moving between nodes, or its owner could not be reached. Queries retry it
// until their deadline.
type waitError struct {
	p      state.Partition
	reason string
}

func (e *waitError) Error() string { return fmt.Sprintf("partition %s: %s", e.p, e.reason) }

// notOwnerError answers a forwarded request for a partition this node does
// not own: it is not forwarded again.
type notOwnerError struct {
	p          state.Partition
	generation int32
}

func (e *notOwnerError) Error() string {
	return fmt.Sprintf("this node does not own partition %s (routing generation %d)", e.p, e.generation)
}

// route decides where partition p is read: ok=true means here. Otherwise it
// returns the owner to call, or a *waitError, or a *notOwnerError when the
// request was already forwarded once. A closed store (state.ErrClosed: the
// node is shutting down) serves nothing here, whatever the routing table
// says, so its partitions are asked of their next owner, or waited for.
func (h *Handler) route(p state.Partition, localErr error, hops int) (owner cluster.Member, local bool, err error) {
	var ns *state.NotServingError
	closed := errors.Is(localErr, state.ErrClosed)
	if !closed && !errors.As(localErr, &ns) {
		return owner, true, nil
	}
	if ns != nil && ns.Status == state.Restoring {
		return owner, false, &waitError{p, "restoring on " + h.e.NodeID()}
	}
	t := h.table()
	if hops > 0 {
		return owner, false, &notOwnerError{p, t.Generation()}
	}
	o, ok := t.Owner(p.Topic, p.Partition)
	if !ok {
		h.refreshSoon()
		return owner, false, &waitError{p, "no owner (moving between nodes)"}
	}
	if o.NodeID == h.e.NodeID() {
		h.refreshSoon() // or this node lost its membership and its table is stale
		if closed {
			return owner, false, &waitError{p, o.NodeID + " is shutting down (its store is closed)"}
		}
		return owner, false, &waitError{p, "assigned to " + o.NodeID + ", not started yet"}
	}
	return o, false, nil
}

func (h *Handler) table() *cluster.Table {
	if h.o.Routing == nil {
		return cluster.EmptyTable()
	}
	return h.o.Routing.Table()
}

// refreshSoon asks Kafka for the current routing table in the background,
// at most twice a second, when a route missed: the sync round normally
// brings every member the new table at once, and this covers a node whose
// round is late.
func (h *Handler) refreshSoon() {
	if h.o.Refresh == nil {
		return
	}
	now := time.Now().UnixNano()
	last := h.lastRefresh.Load()
	if now-last < int64(500*time.Millisecond) || !h.lastRefresh.CompareAndSwap(last, now) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := h.o.Refresh(ctx); err != nil {
			h.log.Debug("routing table refresh failed", "err", err)
		}
	}()
}

// hops reads the hop counter of a request.
func hops(r *http.Request) int {
	n, _ := strconv.Atoi(r.Header.Get(hopsHeader))
	return max(n, 0)
}

// ownerTimeout is how long the owner may wait for its partition: a little
// less than what is left of the caller's deadline, so that its 503 (or its
// answer, when the partition serves at the last moment) gets back before
// the deadline ends the call: a tenth of it, at most 50ms, for the way back.
func ownerTimeout(left time.Duration) time.Duration {
	d := left - min(left/10, 50*time.Millisecond)
	return max(d.Truncate(time.Millisecond), time.Millisecond)
}

// call makes one request to a peer's internal endpoint and maps its answer:
// 200 returns the body, 404 state.ErrNotFound, 421/503 and transport
// errors a *waitError (the caller's retry loop refreshes and tries again).
// An answer longer than the handler's PeerAnswerLimit is an error, never
// cut: a page cut between two records would read as a whole one.
func (h *Handler) call(ctx context.Context, deadline time.Time, owner cluster.Member, p state.Partition, path string, q url.Values) ([]byte, error) {
	left := time.Until(deadline)
	if left <= 0 {
		return nil, &waitError{p, "deadline passed before owner " + owner.NodeID + " was asked"}
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	q.Set("timeout", ownerTimeout(left).String())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, owner.URL+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(hopsHeader, "1")
	req.Header.Set(partitionHeader, strconv.Itoa(int(p.Partition)))
	req.Header.Set(generationHeader, strconv.Itoa(int(h.table().Generation())))
	// The span's op is the internal route's last segment: get, scan or count.
	span := h.tr.startCall(ctx, req, owner, path[strings.LastIndexByte(path, '/')+1:], &p)
	start := time.Now()
	body, outcome, err := h.send(ctx, req, owner, p, span)
	h.m.forwarded(owner.NodeID, outcome, time.Since(start))
	return body, err
}

// send makes the request of call and maps its answer, saying how it ended
// for the metrics; span (nil when not traced) ends with the answer.
func (h *Handler) send(ctx context.Context, req *http.Request, owner cluster.Member, p state.Partition, span trace.Span) ([]byte, forwardOutcome, error) {
	// broken is a transport failure: the deadline, or the peer.
	broken := func(what string, err error) ([]byte, forwardOutcome, error) {
		if ctx.Err() != nil {
			return nil, forwardTimeout, &waitError{p, "owner " + owner.NodeID + " did not answer before the deadline"}
		}
		return nil, forwardUnreachable, &waitError{p, what + ": " + err.Error()}
	}
	resp, err := h.client.Do(req)
	if err != nil {
		endCall(span, 0, err)
		return broken("owner "+owner.NodeID+" unreachable", err)
	}
	defer resp.Body.Close()
	limit := h.o.PeerAnswerLimit
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	endCall(span, resp.StatusCode, err)
	if err != nil {
		return broken("reading from owner "+owner.NodeID, err)
	}
	if int64(len(body)) > limit {
		return nil, forwardError, fmt.Errorf("node %s answered more than %d bytes (the limit of one answer between nodes) for partition %s", owner.NodeID, limit, p)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return body, forwardOK, nil
	case http.StatusNotFound:
		return nil, forwardOK, state.ErrNotFound
	case http.StatusMisdirectedRequest:
		h.refreshSoon() // our view is older than the owner's
		return nil, forwardNotOwner, &waitError{p, owner.NodeID + " does not own it (routing generation " + resp.Header.Get(generationHeader) + ")"}
	case http.StatusServiceUnavailable:
		return nil, forwardUnavailable, &waitError{p, "owner " + owner.NodeID + " answered 503"}
	default:
		return nil, forwardError, fmt.Errorf("node %s answered %d: %s", owner.NodeID, resp.StatusCode, bytes.TrimSpace(body))
	}
}

// Records travel between nodes as: a flags byte (bit 0: more records
// follow this page), then per record uvarint key length, key, uvarint value
// length, value, varint offset, varint timestamp.
func appendRecord(dst []byte, r state.Record) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(r.Key)))
	dst = append(dst, r.Key...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Value)))
	dst = append(dst, r.Value...)
	dst = binary.AppendVarint(dst, r.Offset)
	return binary.AppendVarint(dst, r.Timestamp)
}

var errCorrupt = errors.New("corrupt records from peer")

func decodeRecords(b []byte) (recs []state.Record, more bool, err error) {
	if len(b) < 1 {
		return nil, false, errCorrupt
	}
	more, b = b[0]&1 == 1, b[1:]
	for len(b) > 0 {
		var r state.Record
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, false, errCorrupt
		}
		r.Key, b = b[k:k+int(n)], b[k+int(n):]
		n, k = binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, false, errCorrupt
		}
		r.Value, b = b[k:k+int(n)], b[k+int(n):]
		if r.Offset, k = binary.Varint(b); k <= 0 {
			return nil, false, errCorrupt
		}
		b = b[k:]
		if r.Timestamp, k = binary.Varint(b); k <= 0 {
			return nil, false, errCorrupt
		}
		b = b[k:]
		recs = append(recs, r)
	}
	return recs, more, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// remoteGet reads key from partition p on owner.
func (h *Handler) remoteGet(ctx context.Context, deadline time.Time, owner cluster.Member, s state.Store, p state.Partition, key []byte) (state.Record, error) {
	path := "/v1/internal/stores/" + url.PathEscape(s.Name) + "/partitions/" + strconv.Itoa(int(p.Partition)) + "/get"
	body, err := h.call(ctx, deadline, owner, p, path, url.Values{"key": {b64(key)}})
	if err != nil {
		return state.Record{}, err
	}
	recs, _, err := decodeRecords(body)
	if err != nil || len(recs) != 1 {
		return state.Record{}, fmt.Errorf("node %s: %w", owner.NodeID, errCorrupt)
	}
	return recs[0], nil
}

// remotePage reads up to limit records of partition p in [lower, upper).
func (h *Handler) remotePage(ctx context.Context, deadline time.Time, owner cluster.Member, s state.Store, p state.Partition, lower, upper []byte, limit int) ([]state.Record, bool, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if lower != nil {
		q.Set("lower", b64(lower))
	}
	if upper != nil {
		q.Set("upper", b64(upper))
	}
	body, err := h.call(ctx, deadline, owner, p, "/v1/internal/stores/"+url.PathEscape(s.Name)+"/partitions/"+strconv.Itoa(int(p.Partition))+"/scan", q)
	if err != nil {
		return nil, false, err
	}
	recs, more, err := decodeRecords(body)
	if err != nil {
		return nil, false, fmt.Errorf("node %s: %w", owner.NodeID, err)
	}
	return recs, more, nil
}

// remoteCount counts partition p's keys on owner.
func (h *Handler) remoteCount(ctx context.Context, deadline time.Time, owner cluster.Member, s state.Store, p state.Partition) (int64, error) {
	body, err := h.call(ctx, deadline, owner, p, "/v1/internal/stores/"+url.PathEscape(s.Name)+"/partitions/"+strconv.Itoa(int(p.Partition))+"/count", url.Values{})
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(bytes.TrimSpace(body)), 10, 64)
}

// internalDeadline is what is left of the caller's deadline, capped by this
// node's query.max_timeout; it never fails, so nodes configured differently
// still work together.
func (h *Handler) internalDeadline(q url.Values) time.Duration {
	d, err := time.ParseDuration(q.Get("timeout"))
	if err != nil || d <= 0 {
		return time.Millisecond
	}
	return min(d, h.o.MaxTimeout)
}

// internalPartition resolves the store and partition of an internal call.
func (h *Handler) internalPartition(w http.ResponseWriter, r *http.Request, ps httprouter.Params) (state.Store, state.Partition, bool) {
	s, ok := h.storeOf(w, r, ps)
	if !ok {
		return s, state.Partition{}, false
	}
	n, _ := h.e.PartitionCount(s.Topic)
	p, err := strconv.Atoi(ps.ByName("partition"))
	if err != nil || p < 0 || int32(p) >= n {
		writeProblem(w, r, http.StatusBadRequest, probBadParameter, "no partition "+strconv.Quote(ps.ByName("partition"))+" in topic "+s.Topic)
		return s, state.Partition{}, false
	}
	return s, state.Partition{Topic: s.Topic, Partition: int32(p)}, true
}

// localOnly waits while p restores here, and answers 421 at once when p is
// not assigned here (the caller has a stale view) or this node's store is
// closed (it is shutting down): the caller refreshes its view and retries.
func localOnly[T any](h *Handler, r *http.Request, endpoint string, p state.Partition, timeout time.Duration, f func() (T, error)) (T, error) {
	op := strings.TrimPrefix(endpoint, "internal-") // the store read's span: get, scan or count
	v, waited, err := await(r.Context(), timeout, func(ctx context.Context, _ time.Time) (T, error) {
		start := h.tr.now()
		v, err := f()
		var ns *state.NotServingError
		if errors.Is(err, state.ErrClosed) || errors.As(err, &ns) && ns.Status != state.Restoring {
			return v, &notOwnerError{p, h.table().Generation()}
		}
		if ns == nil {
			h.tr.storeRead(ctx, op, p, start, err)
		}
		return v, err
	})
	h.m.waited(endpoint, waited)
	return v, err
}

func (h *Handler) internalGet(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	_, p, ok := h.internalPartition(w, r, ps)
	if !ok {
		return
	}
	q := query(r)
	key, err := base64.RawURLEncoding.DecodeString(q.Get("key"))
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, probBadKey, "key must be base64url")
		return
	}
	timeout := h.internalDeadline(q)
	rec, err := localOnly(h, r, "internal-get", p, timeout, func() (state.Record, error) { return h.e.Get(p, key) })
	if err != nil {
		h.queryError(w, r, err, "key")
		return
	}
	writeRecords(w, h.e.NodeID(), false, rec)
}

func (h *Handler) internalScan(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	_, p, ok := h.internalPartition(w, r, ps)
	if !ok {
		return
	}
	q := query(r)
	var lower, upper []byte
	var err1, err2 error
	if q.Has("lower") {
		lower, err1 = base64.RawURLEncoding.DecodeString(q.Get("lower"))
	}
	if q.Has("upper") {
		upper, err2 = base64.RawURLEncoding.DecodeString(q.Get("upper"))
	}
	limit, err3 := strconv.Atoi(q.Get("limit"))
	if err1 != nil || err2 != nil || err3 != nil || limit <= 0 || limit > h.o.MaxLimit {
		writeProblem(w, r, http.StatusBadRequest, probBadParameter, "lower and upper must be base64url and limit 1 to "+strconv.Itoa(h.o.MaxLimit))
		return
	}
	timeout := h.internalDeadline(q)
	it, err := localOnly(h, r, "internal-scan", p, timeout, func() (state.Iterator, error) { return h.e.NewIterator(p, lower, upper) })
	if err != nil {
		h.queryError(w, r, err, "scan")
		return
	}
	defer it.Close()
	buf := make([]byte, 1, 4096)
	n := 0
	for ; n < limit; n++ {
		rec, ok := it.Next()
		if !ok {
			break
		}
		buf = appendRecord(buf, rec)
	}
	if n == limit {
		if _, ok := it.Next(); ok {
			buf[0] = 1
		}
	}
	if err := it.Err(); err != nil {
		h.queryError(w, r, err, "scan")
		return
	}
	w.Header().Set("Content-Type", recordsType)
	w.Header().Set(servedByHeader, h.e.NodeID())
	_, _ = w.Write(buf)
}

func (h *Handler) internalCount(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	_, p, ok := h.internalPartition(w, r, ps)
	if !ok {
		return
	}
	q := query(r)
	timeout := h.internalDeadline(q)
	n, err := localOnly(h, r, "internal-count", p, timeout, func() (int64, error) { return h.e.Count(p) })
	if err != nil {
		h.queryError(w, r, err, "count")
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write(strconv.AppendInt(nil, n, 10))
}

func writeRecords(w http.ResponseWriter, servedBy string, more bool, recs ...state.Record) {
	buf := make([]byte, 1, 256)
	if more {
		buf[0] = 1
	}
	for _, r := range recs {
		buf = appendRecord(buf, r)
	}
	w.Header().Set("Content-Type", recordsType)
	w.Header().Set(servedByHeader, servedBy)
	_, _ = w.Write(buf)
}
