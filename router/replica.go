package router

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/iqengine/iqengine/state"
)

// Which replica answers, and how fresh it must be. A query may say
// ?replica=active (never a standby) or ?replica=any (the default unless
// query.replica says active), ?max_lag=N (only a replica at most N records
// behind the end of the log it last saw), and wait for a position:
// ?min_offset=O on a key lookup (the record at offset O of the key's
// partition, as the producer got it back, must be applied) or
// ?position=TOKEN on any query (the position token of an earlier answer).
// Every answer says which replica answered, how far behind it was, and
// its own position token.

// replicaParams are the query parameters every read takes.
var replicaParams = []string{"replica", "max_lag", "position"}

// positionHeader carries an answer's position token.
const positionHeader = "Iqengine-Position"

// parseWant reads the replica parameters of a query on topic (n
// partitions), answering 400 when one is malformed.
func (h *Handler) parseWant(w http.ResponseWriter, r *http.Request, q url.Values, topic string, n int32) (*want, bool) {
	wt := &want{activeOnly: h.o.ActiveOnly, maxLag: -1}
	switch v := q.Get("replica"); v {
	case "":
	case "active":
		wt.activeOnly = true
	case "any":
		wt.activeOnly = false
	default:
		writeProblem(w, r, http.StatusBadRequest, probBadReplica, "replica "+strconv.Quote(v)+" must be active or any")
		return nil, false
	}
	if v := q.Get("max_lag"); v != "" {
		lag, err := strconv.ParseInt(v, 10, 64)
		if err != nil || lag < 0 {
			writeProblem(w, r, http.StatusBadRequest, probBadReplica, "max_lag "+strconv.Quote(v)+" must be a whole number of records, 0 or more")
			return nil, false
		}
		wt.maxLag = lag
	}
	if v := q.Get("position"); v != "" {
		pos, err := decodePosition(v, topic, n)
		if err != nil {
			writeProblem(w, r, http.StatusBadRequest, probBadReplica, "position is not a position token of this store's topic: "+err.Error())
			return nil, false
		}
		wt.minNext = pos
	}
	return wt, true
}

// parseMinOffset applies ?min_offset= of a key lookup in partition p.
func parseMinOffset(w http.ResponseWriter, r *http.Request, q url.Values, wt *want, p int32) bool {
	v := q.Get("min_offset")
	if v == "" {
		return true
	}
	o, err := strconv.ParseInt(v, 10, 64)
	if err != nil || o < 0 {
		writeProblem(w, r, http.StatusBadRequest, probBadReplica, "min_offset "+strconv.Quote(v)+" must be an offset, 0 or more (what the producer got back for the key's record)")
		return false
	}
	if wt.minNext == nil {
		wt.minNext = map[int32]int64{}
	}
	wt.minNext[p] = max(wt.minNext[p], o+1)
	return true
}

// A position token names a topic and, for each partition a query read, the
// position of the replica that answered (every record it saw lies below
// it): base64url of a version byte (1), the topic (uvarint length, bytes),
// a uvarint count, then per partition (strictly increasing) uvarint
// partition and uvarint position. Passing it back makes a later query wait
// until its replicas are at least that far: read-your-writes, and
// monotonic reads across nodes.
func encodePosition(topic string, by []served, partitions []int32) string {
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(len(topic)))
	b = append(b, topic...)
	b = binary.AppendUvarint(b, uint64(len(partitions)))
	for i, p := range partitions {
		b = binary.AppendUvarint(b, uint64(p))
		b = binary.AppendUvarint(b, uint64(by[i].upto))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

var (
	errTokenTopic   = errors.New("it is of another topic")
	errTokenCorrupt = errors.New("it is malformed")
)

// decodePosition reads a position token of topic, whose partitions must
// be below n.
func decodePosition(s, topic string, n int32) (map[int32]int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 1 || b[0] != 1 {
		return nil, errTokenCorrupt
	}
	b = b[1:]
	next := func() (uint64, bool) {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, false
		}
		b = b[k:]
		return v, true
	}
	tl, ok := next()
	if !ok || tl > uint64(len(b)) {
		return nil, errTokenCorrupt
	}
	if string(b[:tl]) != topic {
		return nil, errTokenTopic
	}
	b = b[tl:]
	count, ok := next()
	if !ok || count > uint64(len(b)) || count > uint64(n) {
		return nil, errTokenCorrupt
	}
	out := make(map[int32]int64, count)
	prev := int64(-1)
	for range count {
		p, ok1 := next()
		pos, ok2 := next()
		if !ok1 || !ok2 || int64(p) <= prev || p >= uint64(n) || pos > 1<<62 {
			return nil, errTokenCorrupt
		}
		prev = int64(p)
		out[int32(p)] = int64(pos)
	}
	if len(b) > 0 {
		return nil, errTokenCorrupt
	}
	return out, nil
}

// summary is what an answer says of the replicas that answered it: standby
// when any partition was answered by a standby, the largest lag, and the
// position token of every partition read.
type summary struct {
	replica  string
	lag      int64
	position string
}

func summarize(topic string, by []served) summary {
	s := summary{replica: state.Active.String()}
	parts := make([]int32, 0, len(by))
	kept := make([]served, 0, len(by))
	for i, b := range by {
		if b.kind == 0 {
			continue // not read (a scan that did not need it)
		}
		if b.kind == state.Standby {
			s.replica = state.Standby.String()
		}
		s.lag = max(s.lag, b.lag)
		parts = append(parts, int32(i))
		kept = append(kept, b)
	}
	s.position = encodePosition(topic, kept, parts)
	return s
}

// summarizeOne is summarize for a single partition's read.
func summarizeOne(topic string, p int32, b served) summary {
	return summary{replica: b.kind.String(), lag: b.lag, position: encodePosition(topic, []served{b}, []int32{p})}
}

// header sets the answer's replica, lag and position headers.
func (s summary) header(hd http.Header) {
	hd.Set(replicaHeader, s.replica)
	hd.Set(lagHeader, strconv.FormatInt(s.lag, 10))
	hd.Set(positionHeader, s.position)
}

// appendJSON appends `,"replica":R,"lag":L,"position":P`.
func (s summary) appendJSON(buf []byte) []byte {
	buf = append(buf, `,"replica":"`...)
	buf = append(buf, s.replica...)
	buf = append(buf, `","lag":`...)
	buf = strconv.AppendInt(buf, s.lag, 10)
	buf = append(buf, `,"position":"`...)
	buf = append(buf, s.position...)
	return append(buf, '"')
}

// withReplicaParams is known plus the replica parameters.
func withReplicaParams(known ...string) []string {
	return append(slices.Clip(known), replicaParams...)
}
