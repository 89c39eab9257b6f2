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

// keyMetadata says where a key lives: its partition, that partition's
// active owner in the current routing table (null while it moves) and its
// standbys, each with its state and lag as the node itself reports it.
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
		Store      string        `json:"store"`
		Topic      string        `json:"topic"`
		Key        string        `json:"key"`
		Partition  int32         `json:"partition"`
		Owner      *replicaView  `json:"owner"`
		Standbys   []replicaView `json:"standbys"`
		Generation int32         `json:"generation"`
	}{Store: s.Name, Topic: s.Topic, Key: text, Partition: p, Generation: t.Generation(), Standbys: []replicaView{}}
	owner, hasOwner := t.Owner(s.Topic, p)
	members := t.Standbys(s.Topic, p)
	if hasOwner {
		members = append([]cluster.Member{owner}, members...)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	states, failed := h.replicaStates(ctx, members)
	for i, m := range members {
		v := replicaView{Member: m, Replica: "standby"}
		if hasOwner && i == 0 {
			v.Replica = "active"
		}
		if e, ok := failed[m.NodeID]; ok {
			v.Error = e
		}
		for _, in := range states[m.NodeID] {
			if in.Topic == s.Topic && in.Partition == p {
				v.State, v.Lag, v.Offset = in.State, &in.Lag, &in.Offset
			}
		}
		if v.State == "" && v.Error == "" {
			v.State = "pending" // named by the table, not started there yet
		}
		if hasOwner && i == 0 {
			out.Owner = &v
		} else {
			out.Standbys = append(out.Standbys, v)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// replicaView is one replica of a partition as its node reports it.
type replicaView struct {
	cluster.Member
	Replica string `json:"replica"` // active or standby, as the routing table says
	State   string `json:"state,omitempty"`
	Offset  *int64 `json:"offset,omitempty"`
	Lag     *int64 `json:"lag,omitempty"`
	Error   string `json:"error,omitempty"`
}

// replicaStates asks members (this node locally) for their partitions'
// states, in parallel; failed says why a member did not answer.
func (h *Handler) replicaStates(ctx context.Context, members []cluster.Member) (states map[string][]state.PartitionInfo, failed map[string]string) {
	states, failed = map[string][]state.PartitionInfo{}, map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	asked := map[string]bool{}
	for _, m := range members {
		if asked[m.NodeID] {
			continue
		}
		asked[m.NodeID] = true
		wg.Go(func() {
			infos, err := h.memberPartitions(ctx, m)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[m.NodeID] = err.Error()
				return
			}
			states[m.NodeID] = infos
		})
	}
	wg.Wait()
	return states, failed
}

// localPartitions is the internal view of this node's partitions, which
// /v1/metadata/partitions gathers from every member.
func (h *Handler) localPartitions(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, h.e.Partitions())
}

type partitionView struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Owner is the routing table's active owner; empty while the
	// partition moves.
	Owner string `json:"owner"`
	// The active owner's view of the partition.
	state.PartitionInfo
	// Error says why the owner's state is missing.
	Error string `json:"error,omitempty"`
	// Standbys are the partition's standby replicas, each as its node
	// reports it.
	Standbys []standbyView `json:"standbys"`
	// WarmUp names the node the partition is warming up on, to become its
	// active owner once caught up (one of Standbys).
	WarmUp string `json:"warm_up,omitempty"`
}

type standbyView struct {
	Node string `json:"node_id"`
	state.PartitionInfo
	Error string `json:"error,omitempty"`
}

// partitions lists every partition of every store's topic with its active
// owner and standbys, and each one's own view of its state, offset and lag.
func (h *Handler) partitions(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	t := h.table()
	type key struct {
		topic string
		p     int32
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	byNode, failed := h.replicaStates(ctx, t.Members())
	// What each node says of each partition it holds.
	held := map[key]map[string]state.PartitionInfo{}
	note := func(node string, in state.PartitionInfo) {
		k := key{in.Topic, in.Partition}
		if held[k] == nil {
			held[k] = map[string]state.PartitionInfo{}
		}
		held[k][node] = in
	}
	for node, infos := range byNode {
		for _, in := range infos {
			note(node, in)
		}
	}
	if _, member := t.Member(h.e.NodeID()); !member {
		for _, in := range h.e.Partitions() {
			note(h.e.NodeID(), in)
		}
	}
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
			v := partitionView{Topic: s.Topic, Partition: p, Standbys: []standbyView{}}
			on := held[key{s.Topic, p}]
			if o, ok := t.Owner(s.Topic, p); ok {
				v.Owner = o.NodeID
				if e, ok := failed[o.NodeID]; ok {
					v.Error = e
				}
				if in, ok := on[o.NodeID]; ok {
					v.PartitionInfo = in
				}
			} else if in, ok := on[h.e.NodeID()]; ok && in.Replica == state.Active.String() {
				v.Owner, v.PartitionInfo = h.e.NodeID(), in // outside the table: a node alone
			} else {
				v.Error = "no owner (moving between nodes)"
			}
			if m, ok := t.WarmingUp(s.Topic, p); ok {
				v.WarmUp = m.NodeID
			}
			for _, m := range t.Standbys(s.Topic, p) {
				sv := standbyView{Node: m.NodeID, Error: failed[m.NodeID]}
				if in, ok := on[m.NodeID]; ok {
					sv.PartitionInfo = in
				}
				v.Standbys = append(v.Standbys, sv)
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
