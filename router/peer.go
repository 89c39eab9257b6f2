package router

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
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
	// The replica that answered, its lag, and (between nodes) its position
	// after the read, or (on a 503) how far it had applied.
	replicaHeader = "Iqengine-Replica"
	lagHeader     = "Iqengine-Lag"
	uptoHeader    = "Iqengine-Upto"
	appliedHeader = "Iqengine-Applied"
	recordsType   = "application/x-iqengine-records"
	probNotOwner  = "not-owner"
)

// newPeerClient is the keep-alive pool for calls to other nodes.
func newPeerClient(tlsConfig *tls.Config) *http.Client {
	t := &http.Transport{
		TLSClientConfig:     tlsConfig,
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

// lateError says the deadline passed before a partition's replica was
// asked: a retry that started too close to the deadline, not a partition
// that does not serve.
type lateError struct{ waitError }

// notOwnerError answers a forwarded request for a partition this node does
// not own: it is not forwarded again.
type notOwnerError struct {
	p          state.Partition
	generation int32
}

func (e *notOwnerError) Error() string {
	return fmt.Sprintf("this node does not own partition %s (routing generation %d)", e.p, e.generation)
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
// 200 returns the body and which replica answered, 404 state.ErrNotFound,
// 421/503 and transport errors a *waitError (or a *behindError when the
// peer's replica had not applied far enough): the caller asks another
// replica, or its retry loop refreshes and tries again. An answer longer
// than the handler's PeerAnswerLimit is an error, never cut: a page cut
// between two records would read as a whole one.
//
// A call that may not wait (c.wait false: another replica could answer
// instead) gets half of what is left of the deadline, so that a peer that
// does not answer at all leaves time to ask the next.
func (h *Handler) call(ctx context.Context, deadline time.Time, owner cluster.Member, p state.Partition, path string, q url.Values, c replicaCall) ([]byte, served, error) {
	left := time.Until(deadline)
	if left <= 0 {
		return nil, served{}, &lateError{waitError{p, "deadline passed before " + owner.NodeID + " was asked"}}
	}
	if !c.wait {
		left /= 2
		deadline = time.Now().Add(left)
		q.Set("timeout", "1ms")
	} else {
		q.Set("timeout", ownerTimeout(left).String())
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if c.activeOnly {
		q.Set("replica", "active")
	}
	if c.maxLag >= 0 {
		q.Set("max_lag", strconv.FormatInt(c.maxLag, 10))
	}
	if c.minNext > 0 {
		q.Set("min_next", strconv.FormatInt(c.minNext, 10))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerURL(owner, path)+"?"+q.Encode(), nil)
	if err != nil {
		return nil, served{}, err
	}
	req.Header.Set(hopsHeader, "1")
	req.Header.Set(partitionHeader, strconv.Itoa(int(p.Partition)))
	req.Header.Set(generationHeader, strconv.Itoa(int(h.table().Generation())))
	h.signCall(req, owner.NodeID)
	// The span's op is the internal route's last segment: get, scan or count.
	span := h.tr.startCall(ctx, req, owner, path[strings.LastIndexByte(path, '/')+1:], &p)
	start := time.Now()
	body, by, outcome, err := h.send(ctx, req, owner, p, span, c)
	h.m.forwarded(owner.NodeID, outcome, time.Since(start))
	return body, by, err
}

// send makes the request of call and maps its answer, saying how it ended
// for the metrics; span (nil when not traced) ends with the answer.
func (h *Handler) send(ctx context.Context, req *http.Request, owner cluster.Member, p state.Partition, span trace.Span, c replicaCall) ([]byte, served, forwardOutcome, error) {
	// broken is a transport failure: the deadline, or the peer.
	broken := func(what string, err error) ([]byte, served, forwardOutcome, error) {
		if ctx.Err() != nil {
			return nil, served{}, forwardTimeout, &waitError{p, owner.NodeID + " did not answer in time"}
		}
		return nil, served{}, forwardUnreachable, &waitError{p, what + ": " + err.Error()}
	}
	resp, err := h.client.Do(req)
	if err != nil {
		endCall(span, 0, err)
		return broken(owner.NodeID+" unreachable", err)
	}
	defer resp.Body.Close()
	limit := h.o.PeerAnswerLimit
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	endCall(span, resp.StatusCode, err)
	if err != nil {
		return broken("reading from "+owner.NodeID, err)
	}
	if int64(len(body)) > limit {
		return nil, served{}, forwardError, fmt.Errorf("node %s answered more than %d bytes (the limit of one answer between nodes) for partition %s", owner.NodeID, limit, p)
	}
	by, byErr := servedBy(owner.NodeID, resp.Header)
	switch resp.StatusCode {
	case http.StatusOK:
		if byErr != nil {
			return nil, served{}, forwardError, byErr
		}
		return body, by, forwardOK, nil
	case http.StatusNotFound:
		if byErr != nil {
			return nil, served{}, forwardError, byErr
		}
		return nil, by, forwardOK, state.ErrNotFound
	case http.StatusMisdirectedRequest:
		h.refreshSoon() // our view is older than the owner's
		return nil, served{}, forwardNotOwner, &waitError{p, owner.NodeID + " does not hold it (routing generation " + resp.Header.Get(generationHeader) + ")"}
	case http.StatusServiceUnavailable:
		if applied, err := strconv.ParseInt(resp.Header.Get(appliedHeader), 10, 64); err == nil {
			if c.minNext > applied {
				return nil, served{}, forwardUnavailable, &behindError{p: p, node: owner.NodeID, have: applied, wantNext: c.minNext}
			}
			lag, _ := strconv.ParseInt(resp.Header.Get(lagHeader), 10, 64)
			return nil, served{}, forwardUnavailable, &behindError{p: p, node: owner.NodeID, have: lag, lag: true, wantLag: c.maxLag}
		}
		return nil, served{}, forwardUnavailable, &waitError{p, owner.NodeID + " answered 503"}
	default:
		// What a peer says is for this node's log, never for the client:
		// a member's answer is untrusted input.
		h.log.Warn("a call to another node failed", "node", owner.NodeID, "partition", p.String(),
			"status", resp.StatusCode, "answer", string(bytes.ToValidUTF8(body[:min(len(body), 512)], nil)))
		return nil, served{}, forwardError, fmt.Errorf("node %s answered %d for partition %s (its answer is in this node's log)", owner.NodeID, resp.StatusCode, p)
	}
}

// servedBy reads which replica answered a call, from the answer's
// headers; a peer that does not say is an error (an older or foreign node).
func servedBy(node string, hd http.Header) (served, error) {
	s := served{node: node}
	switch hd.Get(replicaHeader) {
	case "active":
		s.kind = state.Active
	case "standby":
		s.kind = state.Standby
	default:
		return s, fmt.Errorf("node %s did not say which replica answered (%s)", node, replicaHeader)
	}
	var err1, err2 error
	s.lag, err1 = strconv.ParseInt(hd.Get(lagHeader), 10, 64)
	s.upto, err2 = strconv.ParseInt(hd.Get(uptoHeader), 10, 64)
	if err1 != nil || err2 != nil || s.lag < 0 || s.upto < 0 {
		return s, fmt.Errorf("node %s answered a malformed %s or %s", node, lagHeader, uptoHeader)
	}
	return s, nil
}

// setServed writes which replica answered an internal call.
func setServed(hd http.Header, s served) {
	hd.Set(replicaHeader, s.kind.String())
	hd.Set(lagHeader, strconv.FormatInt(s.lag, 10))
	hd.Set(uptoHeader, strconv.FormatInt(s.upto, 10))
}

// Records travel between nodes as: a flags byte (bit 0: more records
// follow this page; the other bits 0), then per record uvarint key length,
// key, uvarint value length, value, varint offset, varint timestamp, each
// varint in its shortest form. decodeRecords takes nothing else, so a page
// has one encoding.
func appendRecord(dst []byte, r state.Record) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(r.Key)))
	dst = append(dst, r.Key...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Value)))
	dst = append(dst, r.Value...)
	dst = binary.AppendVarint(dst, r.Offset)
	return binary.AppendVarint(dst, r.Timestamp)
}

var errCorrupt = errors.New("corrupt records from peer")

// shortest reports whether the k bytes of a varint read from b are its
// shortest form: one byte, or a last byte that is not 0.
func shortest(b []byte, k int) bool { return k == 1 || k > 1 && b[k-1] != 0 }

func decodeRecords(b []byte) (recs []state.Record, more bool, err error) {
	if len(b) < 1 || b[0] > 1 {
		return nil, false, errCorrupt
	}
	more, b = b[0] == 1, b[1:]
	for len(b) > 0 {
		var r state.Record
		n, k := binary.Uvarint(b)
		if !shortest(b, k) || uint64(len(b)-k) < n {
			return nil, false, errCorrupt
		}
		r.Key, b = b[k:k+int(n)], b[k+int(n):]
		n, k = binary.Uvarint(b)
		if !shortest(b, k) || uint64(len(b)-k) < n {
			return nil, false, errCorrupt
		}
		r.Value, b = b[k:k+int(n)], b[k+int(n):]
		if r.Offset, k = binary.Varint(b); !shortest(b, k) {
			return nil, false, errCorrupt
		}
		b = b[k:]
		if r.Timestamp, k = binary.Varint(b); !shortest(b, k) {
			return nil, false, errCorrupt
		}
		b = b[k:]
		recs = append(recs, r)
	}
	return recs, more, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// remoteGet reads key from partition p on owner.
func (h *Handler) remoteGet(ctx context.Context, deadline time.Time, owner cluster.Member, s state.Store, p state.Partition, key []byte, c replicaCall) (state.Record, served, error) {
	path := "/v1/internal/stores/" + url.PathEscape(s.Name) + "/partitions/" + strconv.Itoa(int(p.Partition)) + "/get"
	body, by, err := h.call(ctx, deadline, owner, p, path, url.Values{"key": {b64(key)}}, c)
	if err != nil {
		return state.Record{}, by, err
	}
	recs, _, err := decodeRecords(body)
	if err != nil || len(recs) != 1 {
		return state.Record{}, by, fmt.Errorf("node %s: %w", owner.NodeID, errCorrupt)
	}
	return recs[0], by, nil
}

// remotePage reads up to limit records of partition p in [lower, upper),
// and up to the one whose encoding reaches maxBytes.
func (h *Handler) remotePage(ctx context.Context, deadline time.Time, owner cluster.Member, s state.Store, p state.Partition, lower, upper []byte, limit, maxBytes int, wq *windowQuery, c replicaCall) ([]state.Record, bool, served, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}, "max_bytes": {strconv.Itoa(maxBytes)}}
	if wq != nil {
		wq.encode(q)
	}
	if lower != nil {
		q.Set("lower", b64(lower))
	}
	if upper != nil {
		q.Set("upper", b64(upper))
	}
	body, by, err := h.call(ctx, deadline, owner, p, "/v1/internal/stores/"+url.PathEscape(s.Name)+"/partitions/"+strconv.Itoa(int(p.Partition))+"/scan", q, c)
	if err != nil {
		return nil, false, by, err
	}
	recs, more, err := decodeRecords(body)
	if err == nil && more && len(recs) == 0 {
		err = errCorrupt // more, but nothing to resume after
	}
	if err != nil {
		return nil, false, by, fmt.Errorf("node %s: %w", owner.NodeID, err)
	}
	return recs, more, by, nil
}

// remoteCount counts partition p's keys on owner.
func (h *Handler) remoteCount(ctx context.Context, deadline time.Time, owner cluster.Member, s state.Store, p state.Partition, c replicaCall) (int64, served, error) {
	body, by, err := h.call(ctx, deadline, owner, p, "/v1/internal/stores/"+url.PathEscape(s.Name)+"/partitions/"+strconv.Itoa(int(p.Partition))+"/count", url.Values{}, c)
	if err != nil {
		return 0, by, err
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(body)), 10, 64)
	if err != nil || n < 0 {
		return 0, by, fmt.Errorf("node %s answered a count that is not a number", owner.NodeID)
	}
	return n, by, nil
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

// internalWant reads what an internal call asks of this node's replica:
// ?replica=active, ?max_lag=, ?min_next=. Malformed values are the
// caller's bug, answered 400.
func internalWant(w http.ResponseWriter, r *http.Request, q url.Values, p state.Partition) (*want, bool) {
	wt := &want{activeOnly: q.Get("replica") == "active", maxLag: -1}
	var err error
	if v := q.Get("max_lag"); v != "" {
		if wt.maxLag, err = strconv.ParseInt(v, 10, 64); err != nil || wt.maxLag < 0 {
			writeProblem(w, r, http.StatusBadRequest, probBadReplica, "max_lag must be a whole number >= 0")
			return nil, false
		}
	}
	if v := q.Get("min_next"); v != "" {
		m, err := strconv.ParseInt(v, 10, 64)
		if err != nil || m < 0 {
			writeProblem(w, r, http.StatusBadRequest, probBadReplica, "min_next must be a whole number >= 0")
			return nil, false
		}
		wt.minNext = map[int32]int64{p.Partition: m}
	}
	return wt, true
}

// localOnly answers an internal call from this node's replica of p, if it
// may answer: it waits (up to timeout) while p restores here or has not
// reached the wanted position, and answers 421 at once when p is not held
// here, or only as a standby when the caller wants the active replica, or
// this node's store is closed (it is shutting down): the caller asks
// another replica, or refreshes its view and retries.
func localOnly[T any](h *Handler, r *http.Request, endpoint string, p state.Partition, wt *want, timeout time.Duration, f func() (T, error)) (T, served, error) {
	op := strings.TrimPrefix(endpoint, "internal-") // the store read's span: get, scan or count
	var by served
	v, waited, err := await(r.Context(), timeout, func(ctx context.Context, deadline time.Time) (T, error) {
		var zero T
		rep, lerr := h.e.Replica(p)
		if m := wt.minNext[p.Partition]; lerr == nil && rep.Next < m {
			wctx, cancel := context.WithDeadline(ctx, deadline)
			_ = h.e.WaitApplied(wctx, p, m)
			cancel()
			rep, lerr = h.e.Replica(p)
		}
		if lerr == nil && wt.activeOnly && rep.Kind != state.Active {
			return zero, &notOwnerError{p, h.table().Generation()}
		}
		if lerr != nil || !wt.accepts(p.Partition, rep) {
			return zero, h.notHere(p, rep, lerr, wt)
		}
		start := h.tr.now()
		v, err := f()
		if errors.Is(err, state.ErrClosed) || isNotServing(err) {
			return zero, &notOwnerError{p, h.table().Generation()}
		}
		h.tr.storeRead(ctx, op, p, start, err)
		by = served{node: h.e.NodeID(), kind: rep.Kind, lag: rep.Lag, upto: rep.Upto}
		if after, err := h.e.Replica(p); err == nil {
			by.upto = max(by.upto, after.Upto)
		}
		return v, err
	})
	h.m.waited(endpoint, waited)
	return v, by, err
}

// internalError answers a failed internal call; a replica that had not
// applied far enough says how far it had (appliedHeader), so the caller can
// say so.
func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, err error, what string) {
	var ue *unavailableError
	if errors.As(err, &ue) && ue.behind() {
		if rep, rerr := h.e.Replica(state.Partition{Topic: ue.partitions[0].Topic, Partition: ue.partitions[0].Partition}); rerr == nil {
			w.Header().Set(appliedHeader, strconv.FormatInt(rep.Next, 10))
			w.Header().Set(lagHeader, strconv.FormatInt(rep.Lag, 10))
		}
	}
	h.queryError(w, r, err, what)
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
	wt, ok := internalWant(w, r, q, p)
	if !ok {
		return
	}
	timeout := h.internalDeadline(q)
	rec, by, err := localOnly(h, r, "internal-get", p, wt, timeout, func() (state.Record, error) { return h.e.Get(p, key) })
	if by.kind != 0 {
		setServed(w.Header(), by) // a key not found says who did not find it
	}
	if err != nil {
		h.internalError(w, r, err, "key")
		return
	}
	writeRecords(w, h.e.NodeID(), false, rec)
}

func (h *Handler) internalScan(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	s, p, ok := h.internalPartition(w, r, ps)
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
	maxBytes := math.MaxInt // a caller that does not say: the limit alone
	var err4 error
	if q.Has("max_bytes") {
		maxBytes, err4 = strconv.Atoi(q.Get("max_bytes"))
	}
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || limit <= 0 || limit > h.o.MaxLimit || maxBytes <= 0 {
		writeProblem(w, r, http.StatusBadRequest, probBadParameter, "lower and upper must be base64url, limit 1 to "+strconv.Itoa(h.o.MaxLimit)+" and max_bytes above 0")
		return
	}
	wq, err := decodeWindowQuery(q)
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, probBadParameter, err.Error())
		return
	}
	if wq != nil && !s.Kind.Timed() {
		wrongKind(w, r, s, "windows or sessions")
		return
	}
	wt, ok := internalWant(w, r, q, p)
	if !ok {
		return
	}
	timeout := h.internalDeadline(q)
	it, by, err := localOnly(h, r, "internal-scan", p, wt, timeout, func() (state.Iterator, error) {
		if wq != nil {
			return h.windowIterator(s, p, wq, lower, upper)
		}
		return h.e.NewIterator(p, lower, upper)
	})
	if err != nil {
		h.internalError(w, r, err, "scan")
		return
	}
	defer it.Close()
	// The page ends after limit records, or after the record whose
	// encoding reaches max_bytes; it says whether more follow.
	buf := make([]byte, 1, 4096)
	for n := 0; ; {
		rec, ok := it.Next()
		if !ok {
			break
		}
		if n == limit || len(buf)-1 >= maxBytes {
			buf[0] = 1
			break
		}
		buf = appendRecord(buf, rec)
		n++
	}
	if err := it.Err(); err != nil {
		h.queryError(w, r, err, "scan")
		return
	}
	setServed(w.Header(), by)
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
	wt, ok := internalWant(w, r, q, p)
	if !ok {
		return
	}
	timeout := h.internalDeadline(q)
	n, by, err := localOnly(h, r, "internal-count", p, wt, timeout, func() (int64, error) { return h.countOf(r.Context(), p) })
	if err != nil {
		h.internalError(w, r, err, "count")
		return
	}
	setServed(w.Header(), by)
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
