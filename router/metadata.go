package router

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/iqengine/iqengine/cluster"
	"github.com/iqengine/iqengine/state"
)

// instances lists every node of the current routing table with the
// partitions it owns, per store.
func (h *Handler) instances(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	t := h.table()
	type instance struct {
		cluster.Member
		Stores map[string][]int32 `json:"stores"`
	}
	out := struct {
		Generation int32      `json:"generation"`
		Instances  []instance `json:"instances"`
	}{Generation: t.Generation(), Instances: []instance{}}
	for _, m := range t.Members() {
		owned := t.Partitions(m.NodeID)
		in := instance{Member: m, Stores: map[string][]int32{}}
		for _, s := range h.e.Stores() {
			in.Stores[s.Name] = append([]int32{}, owned[s.Topic]...)
		}
		out.Instances = append(out.Instances, in)
	}
	writeJSON(w, http.StatusOK, out)
}

// keyMetadata says where a key lives: its partition and that partition's
// owner in the current routing table (null while it moves).
func (h *Handler) keyMetadata(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	s, ok := h.storeOf(w, r, ps)
	if !ok {
		return
	}
	if !knownParams(w, r, query(r)) {
		return
	}
	text, key, ok := pathKey(w, r, ps, s)
	if !ok {
		return
	}
	n, err := h.e.PartitionCount(s.Topic)
	if err != nil {
		h.queryError(w, r, err, "key")
		return
	}
	p, ok := partitionOf(w, r, s, key, n)
	if !ok {
		return
	}
	t := h.table()
	out := struct {
		Store      string          `json:"store"`
		Topic      string          `json:"topic"`
		Key        string          `json:"key"`
		Partition  int32           `json:"partition"`
		Owner      *cluster.Member `json:"owner"`
		Generation int32           `json:"generation"`
	}{Store: s.Name, Topic: s.Topic, Key: text, Partition: p, Generation: t.Generation()}
	if o, ok := t.Owner(s.Topic, p); ok {
		out.Owner = &o
	}
	writeJSON(w, http.StatusOK, out)
}

// localPartitions is the internal view of this node's partitions, which
// /v1/metadata/partitions gathers from every member.
func (h *Handler) localPartitions(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, h.e.Partitions())
}

type partitionView struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Owner is the routing table's owner; empty while the partition moves.
	Owner string `json:"owner"`
	state.PartitionInfo
	// Error says why the owner's state is missing.
	Error string `json:"error,omitempty"`
}

// partitions lists every partition of every store's topic with its owner
// and the owner's view of its state, offset and lag.
func (h *Handler) partitions(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	t := h.table()
	type key struct {
		topic string
		p     int32
	}
	// Ask every member (this one locally) for its partitions' state.
	states := map[key]state.PartitionInfo{}
	failed := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	for _, m := range t.Members() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			infos, err := h.memberPartitions(ctx, m)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[m.NodeID] = err.Error()
				return
			}
			for _, in := range infos {
				if o, ok := t.Owner(in.Topic, in.Partition); ok && o.NodeID == m.NodeID {
					states[key{in.Topic, in.Partition}] = in
				}
			}
		}()
	}
	if _, member := t.Member(h.e.NodeID()); !member {
		for _, in := range h.e.Partitions() {
			states[key{in.Topic, in.Partition}] = in
		}
	}
	wg.Wait()
	out := struct {
		Generation int32           `json:"generation"`
		Partitions []partitionView `json:"partitions"`
	}{Generation: t.Generation(), Partitions: []partitionView{}}
	seen := map[string]bool{}
	for _, s := range h.e.Stores() {
		if seen[s.Topic] {
			continue
		}
		seen[s.Topic] = true
		n, _ := h.e.PartitionCount(s.Topic)
		for p := int32(0); p < n; p++ {
			v := partitionView{Topic: s.Topic, Partition: p}
			if o, ok := t.Owner(s.Topic, p); ok {
				v.Owner = o.NodeID
				if e, ok := failed[o.NodeID]; ok {
					v.Error = e
				}
			} else if _, ok := states[key{s.Topic, p}]; !ok {
				v.Error = "no owner (moving between nodes)"
			}
			if in, ok := states[key{s.Topic, p}]; ok {
				v.PartitionInfo = in
				if v.Owner == "" {
					v.Owner = h.e.NodeID()
				}
			}
			out.Partitions = append(out.Partitions, v)
		}
	}
	sort.Slice(out.Partitions, func(i, j int) bool {
		a, b := out.Partitions[i], out.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	writeJSON(w, http.StatusOK, out)
}

// memberPartitions returns one member's view of its partitions.
func (h *Handler) memberPartitions(ctx context.Context, m cluster.Member) ([]state.PartitionInfo, error) {
	if m.NodeID == h.e.NodeID() {
		return h.e.Partitions(), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+"/v1/internal/partitions", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(hopsHeader, "1")
	span := h.tr.startCall(ctx, req, m, "partitions", nil)
	resp, err := h.client.Do(req)
	if err != nil {
		endCall(span, 0, err)
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		endCall(span, resp.StatusCode, nil)
		return nil, &statusError{resp.StatusCode}
	}
	var out []state.PartitionInfo
	err = json.NewDecoder(resp.Body).Decode(&out)
	endCall(span, resp.StatusCode, err)
	return out, err
}

type statusError struct{ code int }

func (e *statusError) Error() string { return "answered " + strconv.Itoa(e.code) }
