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
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-retry"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/iqengine/iqengine/internal/lograte"
	"github.com/iqengine/iqengine/internal/store"
	"github.com/iqengine/iqengine/state"
)

// Config configures an Engine.
type Config struct {
	// ApplicationID is the consumer group id.
	ApplicationID string
	// NodeID names this node in logs and answers.
	NodeID string
	// Stores are the stores to materialise. Stores may share a topic.
	Stores []state.Store
	// Kafka are the client options that reach the brokers (seeds, TLS,
	// SASL, timeouts). The engine adds the consumer group options.
	Kafka []kgo.Opt
	// Balancer assigns partitions in the group (default: franz-go's
	// cooperative-sticky). The cluster package's balancer also tells every
	// member who owns what and which nodes keep standbys: hand the engine
	// its tables (UseTable) and give it the engine's Positions.
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
	// StallTimeout is how long one store write may take before the engine
	// fails (default 60s): records are applied one fetch at a time, so a
	// write that does not return is a store that applies nothing more.
	StallTimeout time.Duration
	// MinFreeSpace, when above 0, fails the engine once the file system
	// holding the store has less room than this, in bytes: Pebble cannot
	// go on from some failed writes (a WAL that cannot be closed panics),
	// so the node leaves while the disk still has room.
	MinFreeSpace int64
	// ExpireInterval is how often keys are expired on topics whose
	// cleanup.policy deletes records (default 1m): a key whose last record
	// is below its partition's log start is deleted, so that every owner of
	// the partition agrees with a node that restores it from the log start.
	ExpireInterval time.Duration
	// UnservedRetention is how long the store keeps the data of a partition
	// this node no longer serves (revoked, or found in the store at start
	// and not assigned) before it wipes it; a partition assigned again
	// within it resumes from its checkpoint instead of restoring from the
	// log start. 0 (the default) keeps such data until the partition
	// returns. See unserved.go.
	UnservedRetention time.Duration
	// Store configures the local Pebble store.
	Store store.Options
	// Logger receives the engine's logs (default slog.Default()).
	Logger *slog.Logger
	// Registerer receives the engine's metrics (default: none).
	Registerer prometheus.Registerer
}

// partition is the engine's view of one partition it consumes: assigned by
// the group (active) or kept as a standby replica. A partition that changes
// role gets a new partition value; the old one is dropped by the consumer
// that fed it.
type partition struct {
	id      state.Partition
	topicID [16]byte
	kind    state.ReplicaKind

	// The fields below are set at assignment and again when the partition
	// is rebuilt from the log start; queries read them concurrently.
	assigned atomic.Int64 // unix nanoseconds
	// target is the end of the log (the last stable offset when reading
	// committed) when the partition was assigned or rebuilt; reaching it
	// ends restoration.
	target atomic.Int64
	// startOffset is the offset consumption started from.
	startOffset atomic.Int64

	state atomic.Int32
	next  atomic.Int64 // offset after the last record or marker applied
	// upto is next, or the end of the batch being committed: set before
	// the commit, as next is after it, so a read sees nothing at or above
	// upto and everything below next.
	upto    atomic.Int64
	hwm     atomic.Int64 // latest end of the log seen in a fetch (LSO when reading committed)
	applied atomic.Int64 // records applied since assignment
	// malformed counts the records skipped since assignment because their
	// key is too short for the window or session key schema.
	malformed atomic.Int64
	// caughtUp is when next last reached hwm (unix nanoseconds), or when the
	// partition was assigned or rebuilt: see staleness.
	caughtUp atomic.Int64
	// rebuild, when not empty, says why the partition must be wiped and
	// restored from the log start; records fetched meanwhile are dropped.
	rebuild string
	// progress is closed, and replaced, each time next moves: WaitApplied
	// waits on it.
	progress atomic.Pointer[chan struct{}]
}

func newPartition(id state.Partition, topicID [16]byte, kind state.ReplicaKind) *partition {
	p := &partition{id: id, topicID: topicID, kind: kind}
	ch := make(chan struct{})
	p.progress.Store(&ch)
	return p
}

// advance sets next (and upto) and wakes the reads waiting for a position.
func (p *partition) advance(next int64) {
	p.upto.Store(next)
	p.next.Store(next)
	ch := make(chan struct{})
	close(*p.progress.Swap(&ch))
}

// restart points the partition at offset from with target as the end of
// restoration.
func (p *partition) restart(from, target int64) {
	now := time.Now().UnixNano()
	p.assigned.Store(now)
	p.caughtUp.Store(now)
	p.startOffset.Store(from)
	p.target.Store(target)
	p.advance(from)
	p.hwm.Store(target)
	p.applied.Store(0)
	if from >= target {
		p.state.Store(int32(state.Serving))
	} else {
		p.state.Store(int32(state.Restoring))
	}
}

func (p *partition) Status() state.Status { return state.Status(p.state.Load()) }

// Engine materialises topics into a store and answers local queries.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	db     *store.DB
	stores map[string]state.Store
	topics []string
	// timed are the topics of window and session stores, with one of their
	// stores: its key schema gives each record's time, which moves the
	// partition's stream time.
	timed map[string]state.Store
	m     *metrics

	mu    sync.RWMutex
	parts map[state.Partition]*partition // active: assigned by the group
	// standbys are the partitions consumed here as standby replicas (see
	// standby.go).
	standbys map[state.Partition]*partition
	counts   map[string]int32 // partitions per topic
	// pending are partitions the group assigned whose starting offsets
	// assign has not set yet: the node is not ready while there are any.
	pending map[state.Partition]bool

	joined  atomic.Bool // set by the first completed group join
	leaving atomic.Bool // set when Leave begins: never ready again

	// applyMu orders the store's writers: a fetch being applied, a
	// partition being wiped and a chunk of keys being expired never
	// interleave (a key set again while it is expired must stay). Tests
	// hold it to stop the world between two batches.
	applyMu sync.Mutex
	// writing is when the store write under way began (unix nanoseconds),
	// 0 when none is: the stall watchdog reads it.
	writing atomic.Int64
	// holdApply, when set (tests), is called before each fetch is applied:
	// a test holds a node behind while the log moves.
	holdApply func()
	// toRebuild are the partitions fetchError took out of service, to be
	// wiped and restored from the log start. Only the poll goroutine uses it.
	toRebuild []*partition
	// brokerAnswers, when set (tests), may change what the brokers
	// answered about the assigned partitions, as a lagging or failing
	// broker might, before the engine decides anything from it.
	brokerAnswers func(*logBounds)

	logs *lograte.Limiter // repeated warnings, at most once per key and interval
	// unserved are the partitions the store holds but this node does not
	// serve, and since when (see unserved.go).
	unserved unserved
	// retained are the topics whose cleanup.policy deletes records by age
	// or size: their keys expire (see expire). Set by Start.
	retained []string

	sb standbyState

	cl    *kgo.Client
	adm   *kadm.Client
	admCl *kgo.Client                           // adm's client, for metadata read past its cache
	final atomic.Pointer[[]state.PartitionInfo] // set by Stop

	stopOnce  sync.Once
	stopErr   error
	leaveOnce sync.Once
	leaveErr  error
	cancel    context.CancelFunc
	done      chan struct{} // closed when the poll loop has returned
	pollErr   error         // what it returned; read after done

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
	if cfg.ExpireInterval == 0 {
		cfg.ExpireInterval = time.Minute
	}
	e := &Engine{
		failed:   make(chan struct{}),
		logs:     lograte.New(10 * time.Second),
		cfg:      cfg,
		log:      cfg.Logger,
		stores:   map[string]state.Store{},
		timed:    map[string]state.Store{},
		parts:    map[state.Partition]*partition{},
		standbys: map[state.Partition]*partition{},
		sb:       standbyState{wake: make(chan struct{}, 1)},
		pending:  map[state.Partition]bool{},
		counts:   map[string]int32{},
	}
	seen := map[string]bool{}
	for _, s := range cfg.Stores {
		if _, dup := e.stores[s.Name]; dup {
			return nil, fmt.Errorf("engine: store %q is defined twice", s.Name)
		}
		e.stores[s.Name] = s
		if o, ok := e.timed[s.Topic]; (ok || seen[s.Topic]) && (o.Kind != s.Kind || o.Window.Key != s.Window.Key) {
			return nil, fmt.Errorf("engine: stores of topic %q disagree on its kind (%s and %s) or window key layout", s.Topic, o.Kind, s.Kind)
		}
		if s.Kind.Timed() {
			e.timed[s.Topic] = s
		}
		if !seen[s.Topic] {
			seen[s.Topic] = true
			e.topics = append(e.topics, s.Topic)
		}
	}
	if len(e.topics) == 0 {
		return nil, errors.New("engine: no stores")
	}
	sort.Strings(e.topics)
	e.m = newMetrics(e, cfg.Registerer)
	so := cfg.Store
	so.OnFatal = func(err error) { e.fail(fmt.Errorf("engine: the store failed: %w", err)) }
	so.OnBackgroundError = func(err error) {
		e.m.storeErrors.Inc()
		e.warn("store background error", "store background work failed; Pebble retries it", "err", err)
	}
	so.OnWriteStall = func(reason string) {
		e.m.writeStalls.Inc()
		e.warn("store write stall", "store writes stalled", "reason", reason)
	}
	if so.Logger == nil {
		so.Logger = e.log.With("component", "pebble")
	}
	db, err := store.Open(so)
	if err != nil {
		return nil, err
	}
	e.db = db
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
	opts = append(opts, kafkaMetrics(e.cfg.Registerer)...)
	opts = append(opts,
		kgo.ConsumerGroup(e.cfg.ApplicationID),
		kgo.ConsumeTopics(e.topics...),
		kgo.SessionTimeout(e.cfg.SessionTimeout),
		kgo.Balancers(balancer),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(e.onAssigned),
		kgo.AdjustFetchOffsetsFn(e.assign),
		kgo.OnPartitionsRevoked(e.revoke),
		kgo.OnPartitionsLost(e.lost),
		kgo.FetchMaxWait(500*time.Millisecond),
		// Never jump over a gap: an offset out of range (the log start
		// passed this node) is an error the poll loop answers with a
		// rebuild, never a silent reset.
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		// Commit and abort markers are offsets too: applying them moves
		// the checkpoint, so a log that ends in a marker is caught up.
		kgo.KeepControlRecords(),
	)
	if !e.cfg.ReadUncommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
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
	e.checkRetention(ctx)
	// The standby consumer exists before the group client: a rebalance
	// callback may hand it partitions.
	sb, err := e.standbyClient()
	if err != nil {
		admCl.Close()
		return fmt.Errorf("engine: kafka client: %w", err)
	}
	e.sb.cl = sb
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		sb.Close()
		admCl.Close()
		return fmt.Errorf("engine: kafka client: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	e.cl, e.cancel, e.done = cl, cancel, make(chan struct{})
	e.sb.done = make(chan struct{})
	go func() {
		err := e.poll(runCtx)
		if err != nil {
			e.fail(err)
		}
		e.pollErr = err
		close(e.done)
	}()
	go func() {
		defer close(e.sb.done)
		if err := e.pollStandby(runCtx); err != nil {
			e.fail(err)
		}
	}()
	go e.standbyLoop(runCtx)
	go e.watch(runCtx)
	if len(e.retained) > 0 {
		go e.expireLoop(runCtx)
	}
	go e.unservedLoop(runCtx)
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
	e.leaving.Store(true)
	if e.cl == nil {
		return nil
	}
	var errs []error
	e.cancel()
	<-e.done
	<-e.sb.done
	e.sb.cl.Close()
	if err := e.pollErr; err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, err)
	}
	// Nothing is applied any more: remember where each partition stopped,
	// for Partitions after Leave.
	final := e.Partitions()
	for i := range final {
		final[i].State = state.Revoked.String()
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

// revokeAll marks every partition revoked, standbys included: after
// leaving, none serves here.
func (e *Engine) revokeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range []map[state.Partition]*partition{e.parts, e.standbys} {
		for id, part := range m {
			part.state.Store(int32(state.Revoked))
			delete(m, id)
		}
	}
	clear(e.pending)
}

// checkRetention finds the topics whose records are deleted by age or size
// (a cleanup.policy with delete): their keys expire as their records leave
// the log (see expire). A topic whose policy cannot be read is treated as
// compacted, with a warning.
func (e *Engine) checkRetention(ctx context.Context) {
	rcs, err := e.adm.DescribeTopicConfigs(ctx, e.topics...)
	if err != nil {
		e.log.Warn("could not read the topics' cleanup.policy; their keys will not expire", "err", err)
		return
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			e.log.Warn("could not read the topic's cleanup.policy; its keys will not expire", "topic", rc.Name, "err", rc.Err)
			continue
		}
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil && strings.Contains(*c.Value, "delete") {
				e.retained = append(e.retained, rc.Name)
				e.log.Info("topic deletes records by retention: a key expires when its last record leaves the log",
					"topic", rc.Name, "cleanup.policy", *c.Value, "checked_every", e.cfg.ExpireInterval.String())
			}
		}
	}
}

// expireLoop expires keys of the retained topics every ExpireInterval.
func (e *Engine) expireLoop(ctx context.Context) {
	swept := map[state.Partition]int64{} // the log start each partition was last expired to
	e.every(ctx, e.cfg.ExpireInterval, func() bool {
		if err := e.expire(ctx, swept); err != nil && ctx.Err() == nil {
			e.warn("expire", "expiring keys below the log start failed; trying again later", "err", err)
		}
		return true
	})
}

// every calls f every d until ctx ends, the engine fails, or f returns
// false.
func (e *Engine) every(ctx context.Context, d time.Duration, f func() bool) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.failed:
			return
		case <-t.C:
		}
		if !f() {
			return
		}
	}
}

// expire deletes the keys of the retained topics' assigned partitions whose
// last record is below the partition's log start. A node that has held a
// partition for long would otherwise keep keys whose records retention
// deleted, while a node restoring the partition from the log start does not
// have them: the answer would depend on who owns the partition. Keys are
// chosen from a snapshot, then checked again and deleted with applying held
// off, chunk by chunk, so a key written meanwhile is kept and ingest pauses
// only for the deletes.
func (e *Engine) expire(ctx context.Context, swept map[state.Partition]int64) error {
	starts, err := e.adm.ListStartOffsets(ctx, e.retained...)
	if err != nil {
		return err
	}
	e.mu.RLock()
	var parts []state.Partition
	for part := range e.allParts() {
		if slices.Contains(e.retained, part.id.Topic) && part.Status() != state.Revoked {
			parts = append(parts, part.id)
		}
	}
	e.mu.RUnlock()
	for _, id := range parts {
		o, ok := starts.Lookup(id.Topic, id.Partition)
		if !ok || o.Err != nil || o.Offset <= swept[id] {
			continue
		}
		n, err := e.expireBelow(id, o.Offset)
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		swept[id] = o.Offset
		if n > 0 {
			e.m.expired.WithLabelValues(id.Topic).Add(float64(n))
			e.log.Debug("keys expired", "partition", id.String(), "keys", n, "log_start", o.Offset)
		}
	}
	return nil
}

// expireBelow deletes p's keys whose record is below logStart.
func (e *Engine) expireBelow(p state.Partition, logStart int64) (int, error) {
	it, err := e.db.NewIterator(p, nil, nil)
	if err != nil {
		return 0, err
	}
	defer it.Close()
	const chunk = 4096
	var keys [][]byte
	expired := 0
	flush := func() error {
		e.applyMu.Lock()
		n, err := e.db.DeleteOlder(p, keys, logStart)
		e.applyMu.Unlock()
		expired += n
		keys = keys[:0]
		return err
	}
	for {
		r, ok := it.Next()
		if !ok {
			break
		}
		if r.Offset >= logStart {
			continue
		}
		keys = append(keys, bytes.Clone(r.Key))
		if len(keys) == chunk {
			if err := flush(); err != nil {
				return expired, err
			}
		}
	}
	if err := it.Err(); err != nil {
		return expired, err
	}
	if len(keys) > 0 {
		return expired, flush()
	}
	return expired, nil
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

// Close stops the engine without leaving the group, as a restart in place
// wants: it stops consuming, closes its connections and closes the store.
// With InstanceID set the group keeps this node's partitions until the
// session timeout, so a node that is back within it resumes them without a
// rebalance, and reads of them wait meanwhile (without InstanceID,
// franz-go's close leaves the group). Stop is the planned stop that moves
// the partitions at once. Later calls, and Stop after Close, return the
// first call's result.
func (e *Engine) Close() error {
	e.stopOnce.Do(func() {
		if e.cl != nil {
			e.cancel()
			<-e.done
			<-e.sb.done
			e.sb.cl.Close()
			e.cl.Close() // a static member does not leave on close
			e.adm.Close()
		}
		e.stopErr = e.db.Close()
	})
	return e.stopErr
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

// logBounds is what the brokers said about the log of each assigned
// partition, read fresh for every decision that could wipe stored state.
type logBounds struct {
	meta map[string]topicMeta
	// start is the log start offset, end the high watermark, and stable
	// the last stable offset (end when reading uncommitted), by partition.
	start, end, stable map[state.Partition]int64
	// failed names the partitions the answers said nothing sure about.
	failed map[state.Partition]string
}

// readBounds asks the brokers for the topic ids and the log bounds of the
// given partitions. A partition whose answer carries an error, is missing,
// or names no topic id is listed in failed: nothing is decided from it.
func (e *Engine) readBounds(ctx context.Context, parts []state.Partition) (*logBounds, error) {
	topics := map[string]bool{}
	for _, p := range parts {
		topics[p.Topic] = true
	}
	names := slices.Sorted(maps.Keys(topics))
	b := &logBounds{
		start: map[state.Partition]int64{}, end: map[state.Partition]int64{},
		stable: map[state.Partition]int64{}, failed: map[state.Partition]string{},
	}
	var err error
	if b.meta, err = e.describeTopics(ctx, names); err != nil {
		return nil, fmt.Errorf("topic metadata: %w", err)
	}
	starts, err := e.adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("log start offsets: %w", err)
	}
	ends, err := e.adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("high watermarks: %w", err)
	}
	stables := ends
	if !e.cfg.ReadUncommitted {
		if stables, err = e.adm.ListCommittedOffsets(ctx, names...); err != nil {
			return nil, fmt.Errorf("last stable offsets: %w", err)
		}
	}
	answers := map[string]kadm.ListedOffsets{"start": starts, "end": ends, "stable": stables}
	for _, p := range parts {
		for what, l := range answers {
			o, ok := l.Lookup(p.Topic, p.Partition)
			switch {
			case !ok:
				b.failed[p] = "no " + what + " offset in the answer"
			case o.Err != nil:
				b.failed[p] = what + " offset: " + o.Err.Error()
			case what == "start":
				b.start[p] = o.Offset
			case what == "end":
				b.end[p] = o.Offset
			default:
				b.stable[p] = o.Offset
			}
		}
	}
	if e.brokerAnswers != nil {
		e.brokerAnswers(b)
	}
	for _, p := range parts {
		d, ok := b.meta[p.Topic]
		switch {
		case !ok:
			b.failed[p] = "topic missing from the metadata answer"
		case d.err != nil:
			b.failed[p] = "topic metadata: " + d.err.Error()
		case d.id == [16]byte{}:
			b.failed[p] = "metadata names no topic id"
		}
	}
	return b, nil
}

// boundsOf reads the log bounds of parts, retrying until every partition's
// answer is complete and error-free or ctx ends: stored state is only ever
// wiped on evidence from a successful answer.
func (e *Engine) boundsOf(ctx context.Context, parts []state.Partition) (*logBounds, error) {
	var got *logBounds
	b := retry.WithCappedDuration(2*time.Second, retry.NewExponential(50*time.Millisecond))
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		lb, err := e.readBounds(ctx, parts)
		if err == nil && len(lb.failed) > 0 {
			ids := slices.SortedFunc(maps.Keys(lb.failed), comparePartitions)
			err = fmt.Errorf("%s: %s", ids[0], lb.failed[ids[0]])
		}
		if err != nil {
			e.warn("bounds", "broker answers incomplete; asking again before deciding anything", "err", err)
			return retry.RetryableError(err)
		}
		got = lb
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("engine: log bounds: %w", err)
	}
	return got, nil
}

func comparePartitions(a, b state.Partition) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return int(a.Partition) - int(b.Partition)
}

// assign runs when the group assigns partitions, before fetching starts. It
// replaces the group's committed offsets with the store's own: the offset
// after the last applied record, with that record's leader epoch so the
// client detects a log truncated below it, or the log start when the store
// holds nothing. Stored state that cannot continue the log is wiped first
// (see resumeAt), and only on evidence from a complete, error-free broker
// answer: errors are retried.
//
// It only decides where to start; restoring happens in the poll loop.
func (e *Engine) assign(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var parts []state.Partition
	for t, ps := range offsets {
		for p := range ps {
			parts = append(parts, state.Partition{Topic: t, Partition: p})
		}
	}
	// A partition held here as a standby becomes active. Its standby
	// consumer stops first, before the log's bounds are read: a standby
	// still applying would move its checkpoint past the bounds read, and
	// that looks like a truncated log. Until assign has set where it
	// starts, the partition is pending: neither consumer applies it.
	e.applyMu.Lock()
	e.mu.Lock()
	tookOver, unconsume := e.takeOverStandbys(parts)
	e.mu.Unlock()
	e.applyMu.Unlock()
	unconsume()
	lb, err := e.boundsOf(ctx, parts)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for t := range offsets {
		e.counts[t] = lb.meta[t].partitions
	}
	for _, id := range parts {
		topicID := lb.meta[id.Topic].id
		next, epoch, err := e.resumeAt(id, topicID, lb.start[id], lb.end[id])
		if err != nil {
			return nil, err
		}
		part := newPartition(id, topicID, state.Active)
		part.restart(next, lb.stable[id])
		if tookOver[id] {
			e.m.promotions.WithLabelValues(id.Topic).Inc()
		}
		e.parts[id] = part
		delete(e.pending, id)
		offsets[id.Topic][id.Partition] = kgo.NewOffset().At(next).WithEpoch(epoch)
		e.log.Info("partition assigned", "partition", id.String(), "state", part.Status().String(),
			"from", next, "to", lb.stable[id], "high_watermark", lb.end[id], "was_standby", tookOver[id])
	}
	return offsets, nil
}

// resumeAt returns the offset to consume id from and the leader epoch of
// the record before it (-1: none), wiping stored state that cannot continue
// the log: a different topic id (the topic was recreated), a stored offset
// below the log start (retention deleted records this node never saw), or
// one at or past the high watermark (the log was truncated or replaced). A
// truncation that the log has grown back over is caught by the client, from
// the epoch, and rebuilt by the poll loop.
func (e *Engine) resumeAt(id state.Partition, topicID [16]byte, logStart, hwm int64) (int64, int32, error) {
	cp, ok, err := e.db.Checkpoint(id)
	if err != nil {
		return 0, -1, err
	}
	if !ok {
		return logStart, -1, nil
	}
	_, timed := e.timed[id.Topic]
	hasStreamTime := false
	if timed {
		if _, hasStreamTime, err = e.db.StreamTime(id); err != nil {
			return 0, -1, err
		}
	}
	var reason string
	switch {
	case timed && !hasStreamTime:
		reason = "the store holds no stream time for it: it was applied as a key-value topic, and is now a window or session store's"
	case cp.TopicID != topicID:
		reason = "topic id changed (topic recreated)"
	case cp.Offset+1 < logStart:
		reason = fmt.Sprintf("stored offset %d is below the log start %d", cp.Offset, logStart)
	case cp.Offset >= hwm:
		reason = fmt.Sprintf("stored offset %d is at or past the high watermark %d", cp.Offset, hwm)
	default:
		return cp.Offset + 1, cp.LeaderEpoch, nil
	}
	e.log.Warn("wiping partition to rebuild it", "partition", id.String(), "reason", reason)
	if err := e.db.Wipe(id); err != nil {
		return 0, -1, fmt.Errorf("engine: wipe %s: %w", id, err)
	}
	e.m.wipes.WithLabelValues(id.Topic).Inc()
	return logStart, -1, nil
}

// revoke forgets partitions that moved away in a rebalance. One that the
// new routing table keeps here as a standby goes on as a standby, from where
// it stands; the data of the others stays, for Config.UnservedRetention (see
// unserved.go).
func (e *Engine) revoke(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	e.demote(revoked, false)
}

// lost keeps partitions whose group session ended (the coordinator was
// unreachable, or the session timed out) as standbys, until a newer routing
// table gives them to someone else: the data is still here and still
// consumable, and the rest of the cluster may have no better replica.
func (e *Engine) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	e.demote(lost, true)
}

// poll applies what the group consumer fetches until ctx ends or the store
// fails.
func (e *Engine) poll(ctx context.Context) error {
	return e.consume(ctx, e.cl, e.parts, &e.toRebuild, true)
}

// consume applies what cl fetches to parts (the partitions of its role),
// rebuilding those whose log no longer continues the store (toRebuild, its
// own list), until ctx ends or the store fails. A group consumer (group)
// blocks rebalances while it applies a fetch.
func (e *Engine) consume(ctx context.Context, cl *kgo.Client, parts map[state.Partition]*partition, toRebuild *[]*partition, group bool) error {
	allow := func() {
		if group {
			cl.AllowRebalance()
		}
	}
	for {
		pctx := ctx
		var cancel context.CancelFunc = func() {}
		if len(*toRebuild) > 0 {
			// A rebuild waits for the brokers: come back to it soon even
			// when nothing is fetched.
			pctx, cancel = context.WithTimeout(ctx, time.Second)
		}
		fetches := cl.PollRecords(pctx, 10000)
		cancel()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			// A poll blocks rebalances until allowed, and leaving the
			// group is one.
			allow()
			return nil
		}
		if e.holdApply != nil {
			e.holdApply()
		}
		fetches.EachError(func(t string, p int32, err error) { e.fetchError(parts, toRebuild, t, p, err) })
		err := e.rebuild(ctx, cl, parts, toRebuild)
		e.applyMu.Lock()
		fetches.EachPartition(func(f kgo.FetchTopicPartition) {
			if err == nil {
				err = e.apply(parts, f)
			}
		})
		e.applyMu.Unlock()
		allow()
		if err != nil {
			return err
		}
	}
}

// fetchError takes a partition out of service when its fetch says the log
// no longer continues what the store holds: the log start passed the
// node (offset out of range; the client never resets on its own), or the
// log was truncated below what was applied (data loss, found from the
// leader epochs). Other errors are the client's to retry.
func (e *Engine) fetchError(parts map[state.Partition]*partition, toRebuild *[]*partition, topic string, p int32, err error) {
	var loss *kgo.ErrDataLoss
	var reason string
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return
	case errors.Is(err, kerr.OffsetOutOfRange):
		reason = "offset out of range: the log start passed this node"
	case errors.As(err, &loss):
		reason = fmt.Sprintf("log truncated: this node applied up to offset %d in leader epoch %d, and the log now has that epoch end at %d",
			loss.ConsumedTo, loss.ConsumedToEpoch, loss.ResetTo)
	default:
		e.warn("fetch "+topic+"/"+strconv.Itoa(int(p)), "fetch error", "topic", topic, "partition", p, "err", err)
		return
	}
	e.mu.RLock()
	part := parts[state.Partition{Topic: topic, Partition: p}]
	e.mu.RUnlock()
	if part == nil {
		return
	}
	part.state.Store(int32(state.Restoring))
	part.rebuild = reason
	*toRebuild = append(*toRebuild, part)
}

// rebuild wipes every partition that fetchError took out of service and
// restores it from the log start: what the store held may include records
// that no longer exist, and deletes that were never seen. The partition
// waits (queries wait, then 503) while the brokers cannot say where the log
// starts. It runs in the poll goroutine, before AllowRebalance, as
// SetOffsets requires.
//
// The active partitions and the standbys each have their own consumer (cl),
// map of partitions (parts, read under e.mu) and list (toRebuild).
func (e *Engine) rebuild(ctx context.Context, cl *kgo.Client, parts map[state.Partition]*partition, toRebuild *[]*partition) error {
	if len(*toRebuild) == 0 {
		return nil
	}
	// Only partitions still held here in the same role, once each.
	e.mu.RLock()
	var todo []*partition
	for _, part := range *toRebuild {
		if parts[part.id] == part && !slices.Contains(todo, part) {
			todo = append(todo, part)
		}
	}
	e.mu.RUnlock()
	*toRebuild = todo
	if len(todo) == 0 {
		return nil
	}
	ids := make([]state.Partition, len(todo))
	for i, part := range todo {
		ids[i] = part.id
	}
	bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lb, err := e.boundsOf(bctx, ids)
	if err != nil {
		return nil // asked again at the next poll
	}
	set := map[string]map[int32]kgo.EpochOffset{}
	for _, part := range todo {
		id := part.id
		e.applyMu.Lock()
		err := e.db.Wipe(id)
		e.applyMu.Unlock()
		if err != nil {
			return fmt.Errorf("engine: wipe %s: %w", id, err)
		}
		if set[id.Topic] == nil {
			set[id.Topic] = map[int32]kgo.EpochOffset{}
		}
		set[id.Topic][id.Partition] = kgo.EpochOffset{Epoch: -1, Offset: lb.start[id]}
		part.topicID = lb.meta[id.Topic].id
		part.restart(lb.start[id], lb.stable[id])
		e.m.rebuilds.WithLabelValues(id.Topic).Inc()
		e.log.Warn("partition wiped and restoring from the log start", "partition", id.String(),
			"reason", part.rebuild, "from", lb.start[id], "to", lb.stable[id])
		part.rebuild = ""
	}
	*toRebuild = nil
	cl.SetOffsets(set)
	return nil
}

// apply writes one fetched partition's records in one batch, together with
// the partition's new checkpoint. Control records (transaction markers)
// are not data, but they advance the checkpoint.
//
// parts are the partitions of the consumer that fetched f (the active ones
// or the standbys, read under e.mu); the caller holds applyMu, so a
// partition that changed role since the fetch is not found and its records
// are dropped: its new consumer reads them again from the checkpoint.
func (e *Engine) apply(parts map[state.Partition]*partition, f kgo.FetchTopicPartition) error {
	e.mu.RLock()
	part := parts[state.Partition{Topic: f.Topic, Partition: f.Partition}]
	e.mu.RUnlock()
	if part == nil || part.rebuild != "" {
		return nil // revoked while buffered (the next owner reads it), or to be rebuilt
	}
	end := f.HighWatermark
	if !e.cfg.ReadUncommitted && f.LastStableOffset >= 0 {
		end = f.LastStableOffset
	}
	part.hwm.Store(end)
	if len(f.Records) == 0 {
		part.noteProgress()
		return nil
	}
	e.writing.Store(time.Now().UnixNano())
	defer e.writing.Store(0)
	b := e.db.NewBatch(part.id)
	var nullKeys, malformed, data int
	ts, timed := e.timed[f.Topic]
	st := state.NoStreamTime
	if timed {
		var err error
		if st, _, err = e.streamTime(part.id); err != nil {
			return fmt.Errorf("engine: %s: %w", part.id, err)
		}
	}
	for _, r := range f.Records {
		var err error
		if timed && r.Key != nil && !r.Attrs.IsControl() {
			t, ok := ts.StreamTimeOf(r.Key)
			if !ok {
				malformed++ // counted and reported; the offset still advances
				continue
			}
			st = max(st, t)
		}
		switch {
		case r.Attrs.IsControl():
			continue
		case r.Key == nil:
			nullKeys++ // cannot be looked up; the offset still advances
		case r.Value == nil:
			err = b.Delete(r.Key)
		default:
			err = b.Set(r.Key, r.Value, r.Offset, r.Timestamp.UnixMilli())
		}
		data++
		if err != nil {
			return fmt.Errorf("engine: %s: %w", part.id, err)
		}
	}
	if timed {
		if err := b.SetStreamTime(st); err != nil {
			return fmt.Errorf("engine: %s: %w", part.id, err)
		}
	}
	last := f.Records[len(f.Records)-1]
	part.upto.Store(last.Offset + 1)
	if err := b.Commit(store.Checkpoint{Offset: last.Offset, LeaderEpoch: last.LeaderEpoch, TopicID: part.topicID}); err != nil {
		return fmt.Errorf("engine: %s: commit: %w", part.id, err)
	}
	part.advance(last.Offset + 1)
	part.noteProgress()
	part.applied.Add(int64(data))
	e.m.applied.WithLabelValues(f.Topic).Add(float64(data))
	if nullKeys > 0 {
		e.m.nullKeys.WithLabelValues(f.Topic).Add(float64(nullKeys))
	}
	if malformed > 0 {
		part.malformed.Add(int64(malformed))
		e.m.malformed.WithLabelValues(f.Topic).Add(float64(malformed))
		e.warn("malformed key "+f.Topic, "records skipped: their key is too short for the store's key schema",
			"partition", part.id.String(), "records", malformed, "kind", ts.Kind.String(), "min_key_bytes", ts.MinKeyLen())
	}
	if part.Status() == state.Restoring && last.Offset+1 >= part.target.Load() {
		part.state.Store(int32(state.Serving))
		e.log.Info("partition serving", "partition", part.id.String(), "replica", part.kind.String(), "restored", part.applied.Load(),
			"took", time.Since(time.Unix(0, part.assigned.Load())).Round(time.Millisecond).String())
	}
	return nil
}

// watch fails the engine when a store write has not returned within the
// stall timeout, or when the disk is almost full. A full disk does not fail
// Pebble's writes cleanly: a failed flush is retried while the memtables
// fill and writes stall, and a failed WAL write breaks Pebble for good
// (see store.Options.OnFatal), or panics where no caller can recover. A
// node that keeps serving frozen values while its lag grows is worse than
// one that leaves, and leaving before the disk is full is best.
func (e *Engine) watch(ctx context.Context) {
	checkSpace := e.cfg.MinFreeSpace > 0
	e.every(ctx, min(e.cfg.StallTimeout/4, time.Second), func() bool {
		if began := e.writing.Load(); began != 0 {
			if d := time.Since(time.Unix(0, began)); d > e.cfg.StallTimeout {
				e.fail(fmt.Errorf("engine: a store write has not returned for %s (disk full, or the disk stalls; storage.stall_timeout %s)",
					d.Round(time.Second), e.cfg.StallTimeout))
				return false
			}
		}
		if !checkSpace {
			return true
		}
		u, err := e.db.DiskUsage()
		switch {
		case errors.Is(err, vfs.ErrUnsupported):
			checkSpace = false // an in-memory store, in tests
		case err != nil:
			e.warn("disk usage", "cannot read the store's free disk space", "err", err)
		case u.AvailBytes < uint64(e.cfg.MinFreeSpace):
			e.fail(fmt.Errorf("engine: the store's disk is almost full: %d MiB free, below storage.min_free_space (%d MiB)",
				u.AvailBytes>>20, e.cfg.MinFreeSpace>>20))
			return false
		}
		return true
	})
}

// fail records the engine's first failure and takes the node out: it no
// longer reports ready or healthy, and it leaves the group so its
// partitions move. The poll goroutine may be stuck in a store write that
// never returns, so leaving goes around it: a static member is removed by
// its instance id through the admin client.
func (e *Engine) fail(err error) {
	e.failOnce.Do(func() {
		e.failErr.Store(&err)
		close(e.failed)
		e.m.failures.Inc()
		e.log.Error("engine failed: leaving the group", "err", err)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if e.cfg.InstanceID != "" {
				if err := e.leaveStatic(ctx); err != nil {
					e.log.Error("engine failed: could not leave the group", "err", err)
				}
			}
			left := make(chan error, 1)
			go func() { left <- e.Leave(ctx) }()
			select {
			case <-left:
			case <-ctx.Done():
				e.log.Error("engine failed: consumption did not stop (a store write is stuck)")
			}
		}()
	})
}

// warn logs a warning at most once per interval for each key, with the
// number of warnings suppressed since the last one, so that an error
// repeated by every poll does not flood the log.
func (e *Engine) warn(key, msg string, args ...any) {
	if n, ok := e.logs.Allow(key); ok {
		if n > 0 {
			args = append(args, "suppressed", n)
		}
		e.log.Warn(msg, args...)
	}
}
