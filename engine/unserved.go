package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iqengine/iqengine/state"
)

// A partition that moves to another node keeps its data here: if it comes
// back (the other node leaves, a rolling restart moves it around) it
// resumes from its checkpoint instead of restoring from the log start. But
// most partitions that leave do not come back soon (a node was added), and
// their data would hold the disk forever. So the engine notes since when
// each partition the store holds has not been served here (from its
// revocation, or from the first sweep after the node joined for data
// left from an earlier run or a store no longer configured) and wipes it
// once Config.UnservedRetention has passed, unless the partition was
// assigned here again.
//
// The wipe is taken under the same locks as assignment (which reads the
// checkpoint) and applying (which writes it), so a partition is never
// wiped between the moment it is assigned again and the moment it resumes:
// it is either wiped first and restored from the log start, or kept.

// unserved are the partitions the store holds that this node does not
// serve, with since when.
type unserved struct {
	mu    sync.Mutex
	since map[state.Partition]time.Time
}

// revoked notes that p stopped being served here at now. The caller holds
// Engine.mu.
func (u *unserved) revoked(p state.Partition, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.since == nil {
		u.since = map[state.Partition]time.Time{}
	}
	u.since[p] = now
}

// unservedPartitions lists the partitions noted unserved that are not
// assigned here again (the next sweep forgets those).
func (e *Engine) unservedPartitions() []state.Partition {
	e.mu.RLock()
	defer e.mu.RUnlock()
	e.unserved.mu.Lock()
	defer e.unserved.mu.Unlock()
	out := make([]state.Partition, 0, len(e.unserved.since))
	for p := range e.unserved.since {
		if !e.held(p) {
			out = append(out, p)
		}
	}
	return out
}

// sweepInterval is how often the store is checked for partitions to wipe:
// a quarter of the retention, between 10ms and a minute, which is how late
// a wipe may come. With no retention the sweep only notes what is held,
// once a minute.
func sweepInterval(retention time.Duration) time.Duration {
	if retention <= 0 {
		return time.Minute
	}
	return min(max(retention/4, 10*time.Millisecond), time.Minute)
}

// unservedLoop sweeps the store every sweepInterval until ctx ends.
func (e *Engine) unservedLoop(ctx context.Context) {
	e.every(ctx, sweepInterval(e.cfg.UnservedRetention), func() bool {
		if err := e.sweepUnserved(time.Now()); err != nil && ctx.Err() == nil {
			e.warn("unserved", "cleaning up partitions not served here failed; trying again later", "err", err)
		}
		return true
	})
}

// sweepUnserved notes the partitions the store holds that are not assigned
// here, forgets those assigned again or gone, and wipes those unserved for
// the retention or longer. Before the first join nothing is known of the
// assignment, so nothing is noted.
func (e *Engine) sweepUnserved(now time.Time) error {
	if !e.joined.Load() || e.leaving.Load() {
		return nil
	}
	stored, err := e.db.Partitions()
	if err != nil {
		return err
	}
	retention := e.cfg.UnservedRetention
	var expired []state.Partition
	e.mu.RLock()
	e.unserved.mu.Lock()
	if e.unserved.since == nil {
		e.unserved.since = map[state.Partition]time.Time{}
	}
	held := map[state.Partition]bool{}
	for _, p := range stored {
		if e.held(p) {
			continue
		}
		held[p] = true
		since, ok := e.unserved.since[p]
		switch {
		case !ok:
			e.unserved.since[p] = now
		case retention > 0 && now.Sub(since) >= retention:
			expired = append(expired, p)
		}
	}
	for p := range e.unserved.since {
		if !held[p] {
			delete(e.unserved.since, p)
		}
	}
	e.unserved.mu.Unlock()
	e.mu.RUnlock()
	for _, p := range expired {
		if err := e.wipeUnserved(p, now); err != nil {
			return err
		}
	}
	return nil
}

// wipeUnserved wipes p's data unless p was assigned here again, or revoked
// again (its time restarts), since the sweep chose it.
func (e *Engine) wipeUnserved(p state.Partition, now time.Time) error {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.held(p) {
		return nil
	}
	e.unserved.mu.Lock()
	since, ok := e.unserved.since[p]
	e.unserved.mu.Unlock()
	if !ok || now.Sub(since) < e.cfg.UnservedRetention {
		return nil
	}
	size, _ := e.db.EstimateDiskUsage(p) // for the log line only
	if err := e.db.Wipe(p); err != nil {
		return fmt.Errorf("wipe %s: %w", p, err)
	}
	e.unserved.mu.Lock()
	delete(e.unserved.since, p)
	e.unserved.mu.Unlock()
	e.m.unservedWipes.WithLabelValues(p.Topic).Inc()
	e.log.Info("partition not served here for storage.unserved_retention: its data is wiped", "partition", p.String(),
		"unserved_for", now.Sub(since).Round(time.Second).String(), "estimated_bytes", size)
	return nil
}

var (
	unservedPartitionsDesc = prometheus.NewDesc("iqengine_unserved_partitions",
		"Partitions whose data the store holds but this node does not serve (revoked, or left from an earlier run), by topic.",
		[]string{"topic"}, nil)
	unservedBytesDesc = prometheus.NewDesc("iqengine_unserved_bytes",
		"Estimated disk held by the data of partitions this node does not serve, by topic (flushed tables only: records still in the memtable are not counted).",
		[]string{"topic"}, nil)
)

// unservedCollector exports the partitions held but not served, by topic:
// every configured topic, 0 when it has none.
type unservedCollector struct{ e *Engine }

func (c unservedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- unservedPartitionsDesc
	ch <- unservedBytesDesc
}

func (c unservedCollector) Collect(ch chan<- prometheus.Metric) {
	type held struct {
		partitions int
		bytes      uint64
	}
	byTopic := map[string]*held{}
	for _, t := range c.e.topics {
		byTopic[t] = &held{}
	}
	for _, p := range c.e.unservedPartitions() {
		h := byTopic[p.Topic]
		if h == nil {
			h = &held{}
			byTopic[p.Topic] = h
		}
		h.partitions++
		if c.e.db != nil {
			if n, err := c.e.db.EstimateDiskUsage(p); err == nil {
				h.bytes += n
			}
		}
	}
	for t, h := range byTopic {
		ch <- prometheus.MustNewConstMetric(unservedPartitionsDesc, prometheus.GaugeValue, float64(h.partitions), t)
		ch <- prometheus.MustNewConstMetric(unservedBytesDesc, prometheus.GaugeValue, float64(h.bytes), t)
	}
}
