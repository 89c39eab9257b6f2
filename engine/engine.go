// Package engine materialises Kafka topics into the node's local store and
// answers local queries about them.
//
// The engine joins the application's consumer group and, for every
// partition the group assigns it, applies records to the store: a record
// with a value sets its key, a tombstone deletes it. Each apply batch
// commits the data and the partition's offset together, and consumption
// always resumes from the store's own offset, never from the group's
// committed one: the store is the source of truth for what it holds.
//
// A partition is restoring until it has caught up with the high watermark
// seen when it was assigned, then serving; only serving partitions answer
// queries. The engine knows nothing about HTTP or other nodes.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-retry"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/iqengine/iqengine/engine/store"
	"github.com/iqengine/iqengine/serde"
)

// StoreSpec is one queryable store: a topic and how to read its records.
type StoreSpec struct {
	Name  string
	Topic string
	Key   serde.Serde
	Value serde.Serde
}

// Config configures an Engine.
type Config struct {
	// ApplicationID is the consumer group id.
	ApplicationID string
	// NodeID names this node in logs and answers.
	NodeID string
	// Stores are the stores to materialise. Stores may share a topic.
	Stores []StoreSpec
	// Kafka are the client options that reach the brokers (seeds, TLS,
	// SASL, timeouts). The engine adds the consumer group options.
	Kafka []kgo.Opt
	// Balancer assigns partitions in the group (default: franz-go's
	// cooperative-sticky). The cluster package's balancer also tells every
	// member who owns what.
	Balancer kgo.GroupBalancer
	// InstanceID, when set, makes this node a static member of the group
	// (KIP-345): a restart within the session timeout keeps its partitions
	// in place. Stop still leaves the group explicitly, so a planned stop
	// moves the partitions at once; a crash keeps them until the session
	// timeout.
	InstanceID string
	// SessionTimeout is the group session timeout (default 45s).
	SessionTimeout time.Duration
	// ReadUncommitted applies every record written, committed or not. By
	// default only committed records are applied (read_committed): records
	// of aborted transactions never reach the store, and restoration ends at
	// the last stable offset.
	ReadUncommitted bool
	// StallTimeout is how long the store may make no progress before the
	// engine fails (default 60s): a partition with records to apply that
	// applies none, or one store write that does not return.
	StallTimeout time.Duration
	// Store configures the local Pebble store.
	Store store.Options
	// Logger receives the engine's logs (default slog.Default()).
	Logger *slog.Logger
	// Registerer receives the engine's metrics (default: none).
	Registerer prometheus.Registerer
}

// State is the state of one partition on this node.
type State int32

const (
	// Restoring: assigned, catching up with the high watermark seen at
	// assignment. Queries wait.
	Restoring State = iota + 1
	// Serving: caught up; queries are answered.
	Serving
	// Revoked: no longer assigned to this node. The data stays, so a sticky
	// return restores only what it missed.
	Revoked
)

func (s State) String() string {
	switch s {
	case Restoring:
		return "restoring"
	case Serving:
		return "serving"
	case Revoked:
		return "revoked"
	}
	return "unassigned"
}

// Errors a query can return. Callers tell them apart with errors.Is/As.
var (
	// ErrNotFound: the partition serves, and the key is absent.
	ErrNotFound = errors.New("key not found")
	// ErrUnknownTopic: the topic is not materialised by this engine.
	ErrUnknownTopic = errors.New("unknown topic")
)

// NotServingError says that a partition cannot answer here now: it is
// restoring, or not assigned to this node.
type NotServingError struct {
	Partition store.Partition
	State     State // 0 when not assigned here
}

func (e *NotServingError) Error() string {
	return fmt.Sprintf("partition %s is %s on this node", e.Partition, e.State)
}

// partition is the engine's view of one assigned partition.
type partition struct {
	id       store.Partition
	topicID  [16]byte
	assigned time.Time
	// hwmAtAssign is the high watermark when the partition was assigned;
	// reaching it ends restoration.
	hwmAtAssign int64
	// startOffset is the offset consumption started from.
	startOffset int64

	state   atomic.Int32
	next    atomic.Int64 // offset of the next record to apply
	hwm     atomic.Int64 // latest high watermark seen in a fetch
	applied atomic.Int64 // records applied since assignment
}

func (p *partition) State() State { return State(p.state.Load()) }

// Engine materialises topics into a store and answers local queries.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	db     *store.DB
	stores map[string]StoreSpec
	topics []string
	m      *metrics

	mu     sync.RWMutex
	parts  map[store.Partition]*partition
	counts map[string]int32 // partitions per topic
	// pending are partitions the group assigned whose starting offsets
	// assign has not set yet: the node is not ready while there are any.
	pending map[store.Partition]bool

	joined atomic.Bool // set by the first completed group join

	// applyMu is held while a fetch is applied, so tests can stop the
	// world between two batches (to simulate a crash at a known point).
	applyMu sync.Mutex

	cl    *kgo.Client
	adm   *kadm.Client
	admCl *kgo.Client                     // adm's client, for metadata read past its cache
	final atomic.Pointer[[]PartitionInfo] // set by Stop

	stopOnce  sync.Once
	stopErr   error
	leaveOnce sync.Once
	leaveErr  error
	cancel    context.CancelFunc
	done      chan error

	// The first failure is kept: Err returns it and failed is closed.
	failOnce sync.Once
	failErr  atomic.Pointer[error]
	failed   chan struct{}
}

// Open opens the store. Call Start to begin consuming.
func Open(cfg Config) (*Engine, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 45 * time.Second
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = 60 * time.Second
	}
	e := &Engine{
		failed:  make(chan struct{}),
		cfg:     cfg,
		log:     cfg.Logger,
		stores:  map[string]StoreSpec{},
		parts:   map[store.Partition]*partition{},
		pending: map[store.Partition]bool{},
		counts:  map[string]int32{},
	}
	seen := map[string]bool{}
	for _, s := range cfg.Stores {
		if _, dup := e.stores[s.Name]; dup {
			return nil, fmt.Errorf("engine: store %q is defined twice", s.Name)
		}
		e.stores[s.Name] = s
		if !seen[s.Topic] {
			seen[s.Topic] = true
			e.topics = append(e.topics, s.Topic)
		}
	}
	if len(e.topics) == 0 {
		return nil, errors.New("engine: no stores")
	}
	sort.Strings(e.topics)
	db, err := store.Open(cfg.Store)
	if err != nil {
		return nil, err
	}
	e.db = db
	e.m = newMetrics(e, cfg.Registerer)
	return e, nil
}

// Start loads the topics' metadata (failing if a topic does not exist),
// joins the consumer group and starts consuming in the background.
func (e *Engine) Start(ctx context.Context) error {
	balancer := e.cfg.Balancer
	if balancer == nil {
		balancer = kgo.CooperativeStickyBalancer()
	}
	opts := append([]kgo.Opt{}, e.cfg.Kafka...)
	opts = append(opts,
		kgo.ConsumerGroup(e.cfg.ApplicationID),
		kgo.ConsumeTopics(e.topics...),
		kgo.SessionTimeout(e.cfg.SessionTimeout),
		kgo.Balancers(balancer),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(e.onAssigned),
		kgo.AdjustFetchOffsetsFn(e.assign),
		kgo.OnPartitionsRevoked(e.revoke),
		kgo.OnPartitionsLost(e.revoke),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if e.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(e.cfg.InstanceID))
	}
	// Metadata and offsets go through a client of their own: the group
	// callbacks that use it can run before NewClient below returns.
	admCl, err := kgo.NewClient(e.cfg.Kafka...)
	if err != nil {
		return fmt.Errorf("engine: kafka client: %w", err)
	}
	e.adm, e.admCl = kadm.NewClient(admCl), admCl
	if err := e.loadTopics(ctx); err != nil {
		admCl.Close()
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		admCl.Close()
		return fmt.Errorf("engine: kafka client: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	e.cl, e.cancel, e.done = cl, cancel, make(chan error, 1)
	go func() { e.done <- e.poll(runCtx) }()
	return nil
}

// topicWait is how long Start waits for a topic that the broker it asks
// does not know: a topic created just before the node starts reaches every
// broker of a cluster a moment later, and a misspelt one should not make
// startup hang.
const topicWait = 3 * time.Second

// topicMeta is what the engine reads of a topic's metadata.
type topicMeta struct {
	id         [16]byte
	partitions int32
	err        error // the broker's error for the topic, e.g. unknown
}

// describeTopics asks a broker for the topics' metadata every time: kadm's
// ListTopics may answer from the client's metadata cache, which for seconds
// would repeat "unknown topic" after a topic was created, or the old topic id
// after it was recreated. A topic missing from the answer is absent.
func (e *Engine) describeTopics(ctx context.Context, topics []string) (map[string]topicMeta, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, e.admCl)
	if err != nil {
		return nil, err
	}
	out := make(map[string]topicMeta, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic != nil {
			out[*t.Topic] = topicMeta{id: t.TopicID, partitions: int32(len(t.Partitions)), err: kerr.ErrorForCode(t.ErrorCode)}
		}
	}
	return out, nil
}

// loadTopics records the partition count of every topic.
func (e *Engine) loadTopics(ctx context.Context) error {
	var missing error
	b := retry.WithMaxDuration(topicWait, retry.NewConstant(200*time.Millisecond))
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		md, err := e.describeTopics(ctx, e.topics)
		if err != nil {
			return fmt.Errorf("engine: topic metadata: %w", err)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, t := range e.topics {
			d, ok := md[t]
			if !ok || d.err != nil || d.partitions == 0 {
				missing = fmt.Errorf("engine: topic %q does not exist (create it, or fix the store's topic)", t)
				return retry.RetryableError(missing)
			}
			e.counts[t] = d.partitions
		}
		return nil
	})
	if err != nil && ctx.Err() != nil && missing != nil {
		return missing // the startup deadline ended the wait
	}
	return err
}

// Leave stops consuming and leaves the group, so the partitions move to
// other nodes at once. Afterwards no partition serves here, but the store
// and the admin client stay open (queries in flight finish, routing can
// still be refreshed) until Stop. Later calls return the first call's
// result.
func (e *Engine) Leave(ctx context.Context) error {
	e.leaveOnce.Do(func() { e.leaveErr = e.leave(ctx) })
	return e.leaveErr
}

func (e *Engine) leave(ctx context.Context) error {
	if e.cl == nil {
		return nil
	}
	var errs []error
	e.cancel()
	if err := <-e.done; err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, err)
	}
	// Nothing is applied any more: remember where each partition stopped,
	// for Partitions after Leave.
	final := e.Partitions()
	for i := range final {
		final[i].State = Revoked.String()
	}
	e.final.Store(&final)
	if err := e.cl.LeaveGroupContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("engine: leave group: %w", err))
	}
	e.cl.Close()
	if e.cfg.InstanceID != "" {
		// A static member's client does not leave on close: remove it by
		// its instance id, so its partitions move now, not after the
		// session timeout.
		if err := e.leaveStatic(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	e.revokeAll()
	return errors.Join(errs...)
}

// revokeAll marks every partition revoked: after leaving, none serves here.
func (e *Engine) revokeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, part := range e.parts {
		part.state.Store(int32(Revoked))
		delete(e.parts, id)
	}
	clear(e.pending)
}

// Stop leaves the group (see Leave), then closes the store after a final
// sync. Later calls return the first call's result.
func (e *Engine) Stop(ctx context.Context) error {
	e.stopOnce.Do(func() { e.stopErr = e.stop(ctx) })
	return e.stopErr
}

func (e *Engine) stop(ctx context.Context) error {
	err := e.Leave(ctx)
	if e.adm != nil {
		e.adm.Close()
	}
	return errors.Join(err, e.db.Close())
}

func (e *Engine) leaveStatic(ctx context.Context) error {
	resp, err := e.adm.LeaveGroup(ctx, kadm.LeaveGroup(e.cfg.ApplicationID).InstanceIDs(e.cfg.InstanceID))
	if err == nil {
		err = resp.Error()
	}
	// Stopped before it ever joined, or already gone: nothing to leave.
	if errors.Is(err, kerr.GroupIDNotFound) || errors.Is(err, kerr.UnknownMemberID) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("engine: leave group as %s: %w", e.cfg.InstanceID, err)
	}
	return nil
}

// Kill stops the engine as a crash would, for tests: it stops consuming
// and closes its connections without leaving the group, so the group keeps
// its partitions until the session timeout (with InstanceID set; without
// it, franz-go's close still leaves), and closes the store.
func (e *Engine) Kill() {
	e.stopOnce.Do(func() {
		if e.cl != nil {
			e.cancel()
			<-e.done
			e.cl.Close() // a static member does not leave on close
			e.adm.Close()
		}
		e.stopErr = e.db.Close()
	})
}

// Err returns the error that made the engine fail (a store that fails or
// stalls, see Config.StallTimeout), or nil. It does not block.
func (e *Engine) Err() error {
	if p := e.failErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Failed is closed when the engine has failed: Err says why. A failed
// engine applies nothing more and has left the group (or is leaving it);
// the process should exit.
func (e *Engine) Failed() <-chan struct{} { return e.failed }

// assign runs when the group assigns partitions, before fetching starts. It
// replaces the group's committed offsets with the store's own: the offset
// after the last applied record, or the log start when the store holds
// nothing. Stored state that cannot continue the log is wiped first: an
// offset that leaves a gap below the log start (retention deleted records
// it never saw), an offset at or past the high watermark (the log was
// truncated or replaced), or a different topic id (the topic was recreated).
//
// It only decides where to start; restoring happens in the poll loop.
func (e *Engine) assign(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	topics := make([]string, 0, len(offsets))
	for t := range offsets {
		topics = append(topics, t)
	}
	adm := e.adm
	md, err := e.describeTopics(ctx, topics)
	if err != nil {
		return nil, fmt.Errorf("engine: metadata of assigned topics: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("engine: log start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("engine: high watermarks: %w", err)
	}
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for t, ps := range offsets {
		if d, ok := md[t]; ok && d.err == nil && d.partitions > 0 {
			e.counts[t] = d.partitions
		}
		for p := range ps {
			id := store.Partition{Topic: t, Partition: p}
			start, sok := starts.Lookup(t, p)
			end, eok := ends.Lookup(t, p)
			if !sok || !eok || start.Err != nil || end.Err != nil {
				return nil, fmt.Errorf("engine: offsets of %s unavailable", id)
			}
			topicID := md[t].id
			next, err := e.resumeAt(id, topicID, start.Offset, end.Offset)
			if err != nil {
				return nil, err
			}
			part := &partition{id: id, topicID: topicID, assigned: now, hwmAtAssign: end.Offset, startOffset: next}
			part.next.Store(next)
			part.hwm.Store(end.Offset)
			if next >= end.Offset {
				part.state.Store(int32(Serving))
			} else {
				part.state.Store(int32(Restoring))
			}
			e.parts[id] = part
			delete(e.pending, id)
			ps[p] = kgo.NewOffset().At(next).WithEpoch(-1)
			e.log.Info("partition assigned", "partition", id.String(), "state", part.State().String(),
				"from", next, "high_watermark", end.Offset)
		}
	}
	return offsets, nil
}

// resumeAt returns the offset to consume p from, wiping stored state that
// cannot continue the log.
func (e *Engine) resumeAt(id store.Partition, topicID [16]byte, logStart, hwm int64) (int64, error) {
	cp, ok, err := e.db.Checkpoint(id)
	if err != nil {
		return 0, err
	}
	if !ok {
		return logStart, nil
	}
	var reason string
	switch {
	case cp.TopicID != topicID:
		reason = "topic id changed (topic recreated)"
	case cp.Offset+1 < logStart:
		reason = fmt.Sprintf("stored offset %d is below the log start %d", cp.Offset, logStart)
	case cp.Offset >= hwm:
		reason = fmt.Sprintf("stored offset %d is at or past the high watermark %d", cp.Offset, hwm)
	default:
		return cp.Offset + 1, nil
	}
	e.log.Warn("wiping partition to rebuild it", "partition", id.String(), "reason", reason)
	if err := e.db.Wipe(id); err != nil {
		return 0, fmt.Errorf("engine: wipe %s: %w", id, err)
	}
	e.m.wipes.WithLabelValues(id.Topic).Inc()
	return logStart, nil
}

// revoke forgets partitions that moved away. Their data stays.
func (e *Engine) revoke(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for t, ps := range lost {
		for _, p := range ps {
			id := store.Partition{Topic: t, Partition: p}
			delete(e.pending, id)
			if part := e.parts[id]; part != nil {
				part.state.Store(int32(Revoked))
				delete(e.parts, id)
				e.log.Info("partition revoked", "partition", id.String())
			}
		}
	}
}

// poll applies fetched records until ctx ends or the store fails.
func (e *Engine) poll(ctx context.Context) error {
	for {
		fetches := e.cl.PollRecords(ctx, 10000)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			// A poll blocks rebalances until allowed, and leaving the
			// group is one.
			e.cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				e.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
			}
		})
		var err error
		e.applyMu.Lock()
		fetches.EachPartition(func(f kgo.FetchTopicPartition) {
			if err == nil {
				err = e.apply(f)
			}
		})
		e.applyMu.Unlock()
		e.cl.AllowRebalance()
		if err != nil {
			e.log.Error("store write failed; consumption stopped", "err", err)
			return err
		}
	}
}

// apply writes one fetched partition's records in one batch, together with
// the partition's new checkpoint.
func (e *Engine) apply(f kgo.FetchTopicPartition) error {
	e.mu.RLock()
	part := e.parts[store.Partition{Topic: f.Topic, Partition: f.Partition}]
	e.mu.RUnlock()
	if part == nil {
		return nil // revoked while buffered: the next owner reads it
	}
	part.hwm.Store(f.HighWatermark)
	if len(f.Records) == 0 {
		return nil
	}
	b := e.db.NewBatch(part.id)
	var nullKeys int
	for _, r := range f.Records {
		var err error
		switch {
		case r.Key == nil:
			nullKeys++ // cannot be looked up; the offset still advances
		case r.Value == nil:
			err = b.Delete(r.Key)
		default:
			err = b.Set(r.Key, r.Value, r.Offset, r.Timestamp.UnixMilli())
		}
		if err != nil {
			return fmt.Errorf("engine: %s: %w", part.id, err)
		}
	}
	last := f.Records[len(f.Records)-1]
	if err := b.Commit(store.Checkpoint{Offset: last.Offset, LeaderEpoch: last.LeaderEpoch, TopicID: part.topicID}); err != nil {
		return fmt.Errorf("engine: %s: commit: %w", part.id, err)
	}
	part.next.Store(last.Offset + 1)
	part.applied.Add(int64(len(f.Records)))
	e.m.applied.WithLabelValues(f.Topic).Add(float64(len(f.Records)))
	if nullKeys > 0 {
		e.m.nullKeys.WithLabelValues(f.Topic).Add(float64(nullKeys))
	}
	if part.State() == Restoring && last.Offset+1 >= part.hwmAtAssign {
		part.state.Store(int32(Serving))
		e.log.Info("partition serving", "partition", part.id.String(),
			"restored", part.applied.Load(), "took", time.Since(part.assigned).Round(time.Millisecond).String())
	}
	return nil
}
