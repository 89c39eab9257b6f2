package router

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/iqengine/iqengine/cluster"
)

// Who may call what. Every endpoint has an access class, from its name:
//
//   - open: the health probes and the API description, for anyone;
//   - store: lookups, scans and counts of the :store parameter, for an
//     identity that may read that store (403 otherwise, before the store
//     is even looked up, so a caller learns nothing of stores it may not
//     read);
//   - listing: /v1/stores, for any identity (it lists only the stores the
//     identity may read);
//   - metadata: the cluster's metadata and /v1/info (and /metrics unless it
//     is open), for an identity with metadata access;
//   - internal: calls between nodes, only with the cluster's signature
//     (when a cluster key is set), never with a client's credentials.
//
// With no Authenticate, every class but internal is open.
type access int

const (
	accessOpen access = iota
	accessStore
	accessListing
	accessMetadata
	accessMetrics // metadata, unless Options.OpenMetrics
	accessInternal
)

// accessOf is the access class of an endpoint, by name.
func accessOf(name string) access {
	switch {
	case name == "healthz" || name == "readyz" || name == "openapi":
		return accessOpen
	case strings.HasPrefix(name, "internal-"):
		return accessInternal
	case name == "stores":
		return accessListing
	case name == "metrics":
		return accessMetrics
	case name == "partitions" || name == "instances" || name == "key-metadata" || name == "info":
		return accessMetadata
	}
	return accessStore
}

// Identity is a caller that Authenticate recognised: what it may read.
type Identity interface {
	// CanRead reports whether it may read the store of that name.
	CanRead(store string) bool
	// Metadata reports whether it may see the cluster's metadata.
	Metadata() bool
}

// Authenticate recognises the caller of a request. It returns nil and no
// error when the request presents no credentials at all, and an error whose
// text is safe to show the caller (it never repeats a credential) when it
// presents credentials that do not verify.
type Authenticate func(r *http.Request) (Identity, error)

type identityKey struct{}

// identityOf is the request's identity, nil when auth is off.
func identityOf(ctx context.Context) Identity {
	id, _ := ctx.Value(identityKey{}).(Identity)
	return id
}

// allowed checks a request against its endpoint's access class, answering
// 401 or 403 when it may not go on; it returns the request with its
// identity in its context.
func (h *Handler) allowed(w http.ResponseWriter, r *http.Request, ps httprouter.Params, class access) (*http.Request, bool) {
	switch class {
	case accessOpen:
		return r, true
	case accessInternal:
		if err := h.verifyCall(r); err != nil {
			w.Header().Set("WWW-Authenticate", `IqengineCluster realm="iqengine"`)
			writeProblem(w, r, http.StatusUnauthorized, probUnauthenticated, err.Error())
			return r, false
		}
		return r, true
	}
	if h.o.Authenticate == nil || (class == accessMetrics && h.o.OpenMetrics) {
		return r, true
	}
	id, err := h.o.Authenticate(r)
	if err != nil || id == nil {
		detail := "this endpoint needs credentials: Authorization: Bearer <token or JWT>, or a client certificate"
		challenge := `Bearer realm="iqengine"`
		if err != nil {
			detail = "credentials refused: " + err.Error()
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		writeProblem(w, r, http.StatusUnauthorized, probUnauthenticated, detail)
		return r, false
	}
	switch class {
	case accessStore:
		if store := ps.ByName("store"); !id.CanRead(store) {
			writeProblem(w, r, http.StatusForbidden, probForbidden, "this identity may not read store "+strconv.Quote(store))
			return r, false
		}
	case accessMetadata, accessMetrics:
		if !id.Metadata() {
			writeProblem(w, r, http.StatusForbidden, probForbidden, "this identity may not see the cluster's metadata")
			return r, false
		}
	}
	return r.WithContext(context.WithValue(r.Context(), identityKey{}, id)), true
}

// Calls between nodes are signed with the cluster key: the caller sets
// callNodeHeader (itself), callToHeader (the node it calls),
// callTimeHeader (unix milliseconds) and callNonceHeader (random), and
// callSigHeader, the key's MAC over the request's method, its request URI
// and those and the hop, partition and generation headers. The callee
// refuses a call whose signature does not verify, that is meant for
// another node (a call captured on its way to one node and replayed to
// another), whose time is further than the replay window from its own
// clock, or whose nonce it has seen within the window.
const (
	callNodeHeader  = "Iqengine-Node"
	callToHeader    = "Iqengine-To"
	callTimeHeader  = "Iqengine-Time"
	callNonceHeader = "Iqengine-Nonce"
	callSigHeader   = "Iqengine-Signature"
	purposeCall     = "call"
)

// signedParts are what a call's signature covers.
func signedParts(method, uri string, hd http.Header) [][]byte {
	parts := [][]byte{[]byte(method), []byte(uri)}
	for _, name := range []string{callNodeHeader, callToHeader, callTimeHeader, callNonceHeader, hopsHeader, partitionHeader, generationHeader} {
		parts = append(parts, []byte(hd.Get(name)))
	}
	return parts
}

// signCall signs a call to node to (nothing without a cluster key).
func (h *Handler) signCall(req *http.Request, to string) {
	key := h.o.ClusterKey
	if key == nil {
		return
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	req.Header.Set(callNodeHeader, h.e.NodeID())
	req.Header.Set(callToHeader, to)
	req.Header.Set(callTimeHeader, strconv.FormatInt(time.Now().UnixMilli(), 10))
	req.Header.Set(callNonceHeader, base64.RawURLEncoding.EncodeToString(nonce[:]))
	mac := key.MAC(purposeCall, signedParts(req.Method, req.URL.RequestURI(), req.Header)...)
	req.Header.Set(callSigHeader, base64.RawURLEncoding.EncodeToString(mac))
}

// callError is why a call between nodes is refused; its text is safe to
// show (it says what is wrong, never what was expected).
type callError string

func (e callError) Error() string { return string(e) }

// verifyCall checks the signature of a call from another node; without a
// cluster key every call is taken.
func (h *Handler) verifyCall(r *http.Request) error {
	key := h.o.ClusterKey
	if key == nil {
		return nil
	}
	sig, err := base64.RawURLEncoding.DecodeString(r.Header.Get(callSigHeader))
	if err != nil || len(sig) == 0 {
		return callError("internal endpoints answer only calls signed with the cluster secret by another node")
	}
	if !key.Verify(sig, purposeCall, signedParts(r.Method, r.RequestURI, r.Header)...) {
		return callError("the call's cluster signature does not verify")
	}
	if r.Header.Get(callToHeader) != h.e.NodeID() {
		return callError("the call is meant for another node")
	}
	ms, err := strconv.ParseInt(r.Header.Get(callTimeHeader), 10, 64)
	window := h.o.ReplayWindow
	if age := time.Since(time.UnixMilli(ms)); err != nil || age > window || age < -window {
		return callError("the call's time is outside the replay window of " + window.String() + " (replayed, or the nodes' clocks disagree)")
	}
	if !h.nonces.fresh(r.Header.Get(callNonceHeader), time.Now()) {
		return callError("the call was replayed")
	}
	return nil
}

// nonceSet remembers the nonces of the calls taken within the last two to
// three replay windows: generations of one window each, the oldest dropped
// at each turn. A call is taken only within a window of its time on either
// side, so its nonce is remembered for as long as it could be taken again.
// Its size is the calls between nodes of that long.
type nonceSet struct {
	mu     sync.Mutex
	window time.Duration
	turned time.Time
	seen   [3]map[string]struct{} // [0] the current generation
}

// init empties s, with generations of window from now.
func (s *nonceSet) init(window time.Duration, now time.Time) {
	s.window, s.turned = window, now
	for i := range s.seen {
		s.seen[i] = map[string]struct{}{}
	}
}

// fresh reports whether nonce is new, and remembers it.
func (s *nonceSet) fresh(nonce string, now time.Time) bool {
	if nonce == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; now.Sub(s.turned) >= s.window && i < len(s.seen); i++ {
		s.seen[2], s.seen[1], s.seen[0] = s.seen[1], s.seen[0], map[string]struct{}{}
		s.turned = s.turned.Add(s.window)
	}
	if now.Sub(s.turned) >= s.window { // idle for longer: all three turned
		s.turned = now
	}
	for _, gen := range s.seen {
		if _, ok := gen[nonce]; ok {
			return false
		}
	}
	s.seen[0][nonce] = struct{}{}
	return true
}

// peerURL is the URL of path on a member.
func peerURL(m cluster.Member, path string) string {
	return strings.TrimSuffix(m.URL, "/") + path
}
