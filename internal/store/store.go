// Package store is the node's local Pebble database: the latest value of
// every key of every assigned topic partition, and each partition's
// checkpoint (the offset of the last record applied, stored in the same
// batch as the data it describes).
//
// Key layout. Every key starts with a kind byte, the topic (length-prefixed)
// and the partition (4 bytes, big-endian):
//
//	'd' len(topic) topic partition key   → varint offset, varint timestamp, value
//	'm' len(topic) topic partition       → checkpoint (offset, leader epoch, topic id)
//	't' len(topic) topic partition       → stream time (8 bytes), of window and session stores' topics
//
// so one partition's records are one contiguous span that can be scanned in
// key order, dropped with a single range deletion, or shipped elsewhere.
// Stores that read the same topic share its data: serdes run at query time.
//
// This package knows nothing of Kafka clients, serdes or HTTP.
package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/iqengine/iqengine/internal/lograte"
	"github.com/iqengine/iqengine/state"
)

const (
	kindData       = 'd'
	kindMeta       = 'm'
	kindStreamTime = 't'
)

// Options configures Open. Zero fields take the defaults shown.
type Options struct {
	// Dir is the database directory.
	Dir string
	// FS is the file system; nil means the operating system's. Tests use a
	// crashable in-memory FS to simulate power loss.
	FS vfs.FS
	// CacheSize is the shared block cache in bytes (default 128 MiB).
	CacheSize int64
	// MemTableSize is one memtable in bytes (default 64 MiB). Large
	// memtables make restoration faster: fewer flushes and compactions.
	MemTableSize int64
	// SyncInterval is how often the WAL is synced (default 1s). Batches are
	// committed without fsync, so a crash loses at most this much applied
	// work, which is re-read from Kafka because the offsets are lost with it.
	SyncInterval time.Duration
	// OnFatal is called once when Pebble meets an error it cannot go on
	// from (a WAL write on a full disk): the store is then unusable, and
	// the goroutine that met the error is parked for good, as Pebble
	// requires (it must not return). Default: log it.
	OnFatal func(error)
	// OnBackgroundError is called for each error of Pebble's background
	// work (a flush or compaction that failed and will be retried), and
	// OnWriteStall when Pebble starts holding writes back (too many
	// memtables or level-0 files waiting), with the reason: the signs of a
	// disk that fills or cannot keep up. Default: nothing.
	OnBackgroundError func(error)
	OnWriteStall      func(reason string)
	// Logger receives Pebble's errors, at most one line per message a
	// minute with a count of those held back, and its large compactions
	// (default slog.Default()).
	Logger *slog.Logger
	// A compaction that takes longer than LargeCompactionTime (default
	// 10s) or writes more than LargeCompactionBytes (default 256 MiB) is
	// logged at info, at most one line a minute with the count of those
	// held back: what a slow read or a busy disk then may come from.
	LargeCompactionTime  time.Duration
	LargeCompactionBytes int64
}

// ErrClosed is state.ErrClosed: returned by reads and writes of a store
// that is closing or closed.
var ErrClosed = state.ErrClosed

// DB is the node's store. It is safe for concurrent use, Close included:
// no read or write ever runs against a closed Pebble database, which would
// panic or read freed memory.
type DB struct {
	db    *pebble.DB
	cache *pebble.Cache
	stop  chan struct{}
	done  sync.WaitGroup
	fs    vfs.FS
	dir   string

	// ops counts the operations in flight (a Get, a Count, a commit, an
	// open Iterator), plus closing once Close has begun. An operation that
	// finds closing set backs out with ErrClosed; Close waits until only
	// closing is left. Two atomic adds on the hot path, and Next costs
	// nothing: an open iterator holds its count until its Close.
	ops       atomic.Int64
	drained   chan struct{} // closed when ops falls to closing
	drainOnce sync.Once
	closeOnce sync.Once
	// closeWait bounds how long Close waits for operations in flight
	// (defaultCloseWait; tests shorten it).
	closeWait time.Duration
}

// closing is the bit of DB.ops set by Close, far above any count of
// operations in flight.
const closing = 1 << 62

// defaultCloseWait is how long Close waits for operations in flight before
// it gives up. A read ends within milliseconds, and callers stop their
// readers before they close the store, so what is still in flight then is
// an iterator a caller leaked, or a read or write stuck on a failing disk.
const defaultCloseWait = 5 * time.Second

// acquire registers an operation; it fails with ErrClosed once Close has
// begun. Every successful acquire is paired with one release.
func (d *DB) acquire() error {
	if d.ops.Add(1)&closing != 0 {
		d.release()
		return ErrClosed
	}
	return nil
}

func (d *DB) release() {
	if d.ops.Add(-1) == closing {
		d.drainOnce.Do(func() { close(d.drained) })
	}
}

// MaxMemTables is how many memtables the store holds at most: Pebble
// stalls writes beyond it (MemTableStopWritesThreshold), so the memtables
// take at most MaxMemTables × MemTableSize of memory, which a deployment
// sizes the process's memory by.
const MaxMemTables = 4

// Open opens or creates the store.
func Open(o Options) (*DB, error) {
	if o.CacheSize == 0 {
		o.CacheSize = 128 << 20
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = 64 << 20
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = time.Second
	}
	cache := pebble.NewCache(o.CacheSize)
	opts := &pebble.Options{
		FS:                          o.FS,
		Cache:                       cache,
		MemTableSize:                uint64(o.MemTableSize),
		MemTableStopWritesThreshold: MaxMemTables,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		CompactionConcurrencyRange:  func() (int, int) { return 1, 2 },
		Logger:                      newPebbleLogger(o.Logger, o.OnFatal),
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) {
				if o.OnBackgroundError != nil {
					o.OnBackgroundError(err)
				}
			},
			WriteStallBegin: func(i pebble.WriteStallBeginInfo) {
				if o.OnWriteStall != nil {
					o.OnWriteStall(i.Reason)
				}
			},
			CompactionEnd: newCompactionLog(o).end,
		},
	}
	// Bloom filters on every level: a point lookup of an absent key then
	// rarely touches a data block.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		opts.Levels[i].BlockSize = 32 << 10
	}
	db, err := pebble.Open(o.Dir, opts)
	cache.Unref() // the DB holds its own reference
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", o.Dir, err)
	}
	d := &DB{db: db, cache: cache, stop: make(chan struct{}), drained: make(chan struct{}), closeWait: defaultCloseWait, fs: o.FS, dir: o.Dir}
	if d.fs == nil {
		d.fs = vfs.Default
	}
	d.done.Add(1)
	go d.syncLoop(o.SyncInterval)
	return d, nil
}

func (d *DB) syncLoop(every time.Duration) {
	defer d.done.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			_ = d.Sync()
		}
	}
}

// Sync makes every committed batch durable.
func (d *DB) Sync() error {
	if err := d.acquire(); err != nil {
		return err
	}
	defer d.release()
	return d.db.LogData(nil, pebble.Sync)
}

// Close syncs and closes the store. Operations that start once it has begun
// fail with ErrClosed; it waits for those in flight, including iterators
// opened before it, which keep working until their Close. Later calls
// return ErrClosed.
//
// The wait is bounded (5 s), so Close returns even when a caller leaked an
// iterator or a read or write is stuck on a failing disk. Closing Pebble
// under either would crash the process or let it read freed memory, and
// syncing on a stuck disk would hang, so past the bound Close does neither:
// it leaves Pebble open and returns an error that says how many operations
// were left. The caller is about to exit, and its exit releases the
// database as a crash would: what the last sync did not cover is re-read
// from Kafka at the next start.
func (d *DB) Close() error {
	err := ErrClosed
	d.closeOnce.Do(func() { err = d.close() })
	return err
}

func (d *DB) close() error {
	if d.ops.Add(closing) == closing {
		d.drainOnce.Do(func() { close(d.drained) })
	}
	close(d.stop)
	t := time.NewTimer(d.closeWait)
	defer t.Stop()
	select {
	case <-d.drained:
	case <-t.C:
		left := d.ops.Load() &^ closing
		return fmt.Errorf("store: %d operations still in flight after %s (an iterator not closed, or a stuck disk); the database was left open", left, d.closeWait)
	}
	d.done.Wait()
	return errors.Join(d.db.LogData(nil, pebble.Sync), d.db.Close())
}

// appendPrefix appends the span prefix of p's records of the given kind.
func appendPrefix(dst []byte, kind byte, p state.Partition) []byte {
	dst = append(dst, kind, byte(len(p.Topic)))
	dst = append(dst, p.Topic...)
	return binary.BigEndian.AppendUint32(dst, uint32(p.Partition))
}

// Checkpoint is where a partition's data stands: the last applied record.
type Checkpoint struct {
	Offset      int64
	LeaderEpoch int32
	TopicID     [16]byte
}

const checkpointLen = 8 + 4 + 16

func (c Checkpoint) encode(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(c.Offset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.LeaderEpoch))
	return append(dst, c.TopicID[:]...)
}

// Checkpoint returns the partition's checkpoint; ok is false when the store
// holds no state for it.
func (d *DB) Checkpoint(p state.Partition) (c Checkpoint, ok bool, err error) {
	if err := d.acquire(); err != nil {
		return c, false, err
	}
	defer d.release()
	v, closer, err := d.db.Get(appendPrefix(nil, kindMeta, p))
	if errors.Is(err, pebble.ErrNotFound) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	defer closer.Close()
	if len(v) != checkpointLen {
		return c, false, fmt.Errorf("store: %s: corrupt checkpoint (%d bytes)", p, len(v))
	}
	c.Offset = int64(binary.BigEndian.Uint64(v))
	c.LeaderEpoch = int32(binary.BigEndian.Uint32(v[8:]))
	copy(c.TopicID[:], v[12:])
	return c, true, nil
}

// StreamTime returns the stream time stored with p's last batch (see
// Batch.SetStreamTime); ok is false when none was.
func (d *DB) StreamTime(p state.Partition) (t int64, ok bool, err error) {
	if err := d.acquire(); err != nil {
		return 0, false, err
	}
	defer d.release()
	var buf [64]byte
	v, closer, err := d.db.Get(appendPrefix(buf[:0], kindStreamTime, p))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("store: %s: corrupt stream time (%d bytes)", p, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// Wipe drops every record, the checkpoint and the stream time of p,
// atomically.
func (d *DB) Wipe(p state.Partition) error {
	if err := d.acquire(); err != nil {
		return err
	}
	defer d.release()
	b := d.db.NewBatch()
	defer b.Close()
	lo := appendPrefix(nil, kindData, p)
	if err := b.DeleteRange(lo, state.PrefixEnd(lo), nil); err != nil {
		return err
	}
	if err := b.Delete(appendPrefix(nil, kindMeta, p), nil); err != nil {
		return err
	}
	if err := b.Delete(appendPrefix(nil, kindStreamTime, p), nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// Partitions lists the partitions the store holds state for (those with a
// checkpoint: every batch of data writes one, and Wipe drops both), in key
// order.
func (d *DB) Partitions() ([]state.Partition, error) {
	if err := d.acquire(); err != nil {
		return nil, err
	}
	defer d.release()
	lo := []byte{kindMeta}
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: state.PrefixEnd(lo)})
	if err != nil {
		return nil, err
	}
	var out []state.Partition
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if len(k) < 2 || len(k) != 2+int(k[1])+4 {
			return nil, errors.Join(fmt.Errorf("store: corrupt checkpoint key %q", k), it.Close())
		}
		n := int(k[1])
		out = append(out, state.Partition{Topic: string(k[2 : 2+n]), Partition: int32(binary.BigEndian.Uint32(k[2+n:]))})
	}
	return out, errors.Join(it.Error(), it.Close())
}

// EstimateDiskUsage estimates the bytes of p's records on disk: the tables
// (or the data blocks of tables) that hold its span. Records still in the
// memtable, not yet flushed, are not counted.
func (d *DB) EstimateDiskUsage(p state.Partition) (uint64, error) {
	if err := d.acquire(); err != nil {
		return 0, err
	}
	defer d.release()
	lo := appendPrefix(nil, kindData, p)
	return d.db.EstimateDiskUsage(lo, state.PrefixEnd(lo))
}

// DeleteOlder deletes those of p's keys whose record was written at an
// offset below before, and returns how many it deleted. It reads each key's
// current record first, so a key written again since the caller chose it is
// kept; the caller must keep writes of p out meanwhile. The checkpoint is
// not touched: expiring keys applies no record.
func (d *DB) DeleteOlder(p state.Partition, keys [][]byte, before int64) (int, error) {
	if err := d.acquire(); err != nil {
		return 0, err
	}
	defer d.release()
	b := d.db.NewBatch()
	defer b.Close()
	n := 0
	k := appendPrefix(nil, kindData, p)
	prefix := len(k)
	for _, key := range keys {
		k = append(k[:prefix], key...)
		v, closer, err := d.db.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		r, err := decodeRecord(key, v)
		closer.Close()
		if err != nil {
			return 0, err
		}
		if r.Offset < before {
			if err := b.Delete(k, nil); err != nil {
				return 0, err
			}
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	return n, b.Commit(pebble.NoSync)
}

// Batch collects the writes of one partition. Commit writes them together
// with the partition's new checkpoint, so the data and the offset it
// reflects can never disagree after a crash.
type Batch struct {
	db     *DB
	p      state.Partition
	b      *pebble.Batch
	prefix int // length of the data prefix in key
	key    []byte
	val    []byte
	n      int
}

// NewBatch starts a batch for p.
func (d *DB) NewBatch(p state.Partition) *Batch {
	key := appendPrefix(make([]byte, 0, 64), kindData, p)
	return &Batch{db: d, p: p, b: d.db.NewBatch(), prefix: len(key), key: key}
}

// Set records value as the latest value of key, written at offset and
// timestamp (Unix milliseconds).
func (b *Batch) Set(key, value []byte, offset, timestamp int64) error {
	b.key = append(b.key[:b.prefix], key...)
	b.val = binary.AppendUvarint(b.val[:0], uint64(offset))
	b.val = binary.AppendVarint(b.val, timestamp)
	b.val = append(b.val, value...)
	b.n++
	return b.b.Set(b.key, b.val, nil)
}

// Delete removes key (a tombstone).
func (b *Batch) Delete(key []byte) error {
	b.key = append(b.key[:b.prefix], key...)
	b.n++
	return b.b.Delete(b.key, nil)
}

// SetStreamTime stores t as p's stream time, with the batch: the greatest
// time a window or session store's partition has been written, from which
// its retention is counted.
func (b *Batch) SetStreamTime(t int64) error {
	var k [64]byte
	v := binary.BigEndian.AppendUint64(nil, uint64(t))
	return b.b.Set(appendPrefix(k[:0], kindStreamTime, b.p), v, nil)
}

// Len is the number of writes in the batch.
func (b *Batch) Len() int { return b.n }

// Commit writes the batch and the checkpoint atomically, without waiting for
// fsync (see Options.SyncInterval), and releases the batch. It fails with
// ErrClosed, writing nothing, once the store is closing.
func (b *Batch) Commit(c Checkpoint) error {
	defer b.b.Close()
	if err := b.db.acquire(); err != nil {
		return err
	}
	defer b.db.release()
	if err := b.b.Set(appendPrefix(b.key[:0], kindMeta, b.p), c.encode(b.val[:0]), nil); err != nil {
		return err
	}
	return b.b.Commit(pebble.NoSync)
}

func decodeRecord(key, v []byte) (state.Record, error) {
	off, n := binary.Uvarint(v)
	if n <= 0 {
		return state.Record{}, errors.New("store: corrupt record offset")
	}
	ts, m := binary.Varint(v[n:])
	if m <= 0 {
		return state.Record{}, errors.New("store: corrupt record timestamp")
	}
	return state.Record{Key: key, Value: v[n+m:], Offset: int64(off), Timestamp: ts}, nil
}

// Get returns the latest record of key in p; ok is false when the key is
// absent.
func (d *DB) Get(p state.Partition, key []byte) (r state.Record, ok bool, err error) {
	if err := d.acquire(); err != nil {
		return r, false, err
	}
	defer d.release()
	var buf [128]byte
	k := append(appendPrefix(buf[:0], kindData, p), key...)
	v, closer, err := d.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	defer closer.Close()
	r, err = decodeRecord(bytes.Clone(key), v)
	if err != nil {
		return r, false, err
	}
	r.Value = bytes.Clone(r.Value)
	return r, true, nil
}

// Iterator walks one partition's records in key order. Key and Value of
// the current Record are valid until the next call to Next or Close. An
// open iterator keeps working while the store closes, and the store's Close
// waits for its Close: every iterator must be closed.
type Iterator struct {
	db      *DB // nil once closed
	it      *pebble.Iterator
	prefix  int
	started bool
	reverse bool
	err     error
}

// NewIterator returns an iterator over the keys k of p with lower <= k <
// upper; a nil bound is open. It starts before the first key: call Next.
// It fails with ErrClosed once the store is closing.
func (d *DB) NewIterator(p state.Partition, lower, upper []byte) (*Iterator, error) {
	return d.newIterator(p, lower, upper, false)
}

// NewReverseIterator is NewIterator in descending key order.
func (d *DB) NewReverseIterator(p state.Partition, lower, upper []byte) (*Iterator, error) {
	return d.newIterator(p, lower, upper, true)
}

func (d *DB) newIterator(p state.Partition, lower, upper []byte, reverse bool) (_ *Iterator, err error) {
	if err := d.acquire(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.release()
		}
	}()
	pre := appendPrefix(nil, kindData, p)
	lo := append(bytes.Clone(pre), lower...)
	hi := state.PrefixEnd(pre)
	if upper != nil {
		hi = append(bytes.Clone(pre), upper...)
	}
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	return &Iterator{db: d, it: it, prefix: len(pre), reverse: reverse}, nil
}

// Next moves to the next record and returns it; ok is false at the end or
// on error (see Err).
func (i *Iterator) Next() (r state.Record, ok bool) {
	if i.err != nil {
		return r, false
	}
	var valid bool
	switch {
	case i.started && i.reverse:
		valid = i.it.Prev()
	case i.started:
		valid = i.it.Next()
	case i.reverse:
		i.started = true
		valid = i.it.Last()
	default:
		i.started = true
		valid = i.it.First()
	}
	if !valid {
		return r, false
	}
	v, err := i.it.ValueAndErr()
	if err == nil {
		r, err = decodeRecord(i.it.Key()[i.prefix:], v)
	}
	if err != nil {
		i.err = err
		return r, false
	}
	return r, true
}

// Err is the first error the iterator met.
func (i *Iterator) Err() error {
	if i.err != nil {
		return i.err
	}
	return i.it.Error()
}

// Close releases the iterator. Later calls do nothing.
func (i *Iterator) Close() error {
	if i.db == nil {
		return nil
	}
	err := errors.Join(i.err, i.it.Close())
	i.db.release()
	i.db = nil
	return err
}

// countCheckEvery is how many keys Count walks between two looks at its
// context: a cancelled count stops within this many keys.
const countCheckEvery = 1024

// Count counts p's keys. It walks the partition, so it costs time in
// proportion to the partition's size; it stops with ctx's error when ctx
// ends (checked every countCheckEvery keys).
func (d *DB) Count(ctx context.Context, p state.Partition) (int64, error) {
	if err := d.acquire(); err != nil {
		return 0, err
	}
	defer d.release()
	pre := appendPrefix(nil, kindData, p)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: pre, UpperBound: state.PrefixEnd(pre)})
	if err != nil {
		return 0, err
	}
	var n int64
	for valid := it.First(); valid; valid = it.Next() {
		n++
		if n%countCheckEvery != 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return 0, errors.Join(err, it.Close())
		}
	}
	return n, errors.Join(it.Error(), it.Close())
}

// DiskUsage says how much room the file system holding the store has left.
// It fails with vfs.ErrUnsupported on a file system that cannot tell.
func (d *DB) DiskUsage() (vfs.DiskUsage, error) { return d.fs.GetDiskUsage(d.dir) }

// Metrics exposes Pebble's own metrics, for diagnostics; nil once the store
// is closing.
func (d *DB) Metrics() *pebble.Metrics {
	if d.acquire() != nil {
		return nil
	}
	defer d.release()
	return d.db.Metrics()
}

// pebbleLogger sends Pebble's errors to the node's log, rate-limited per
// message (a failing disk makes Pebble retry a flush, and log its error, in
// a tight loop), and drops its informational chatter (flushes,
// compactions), which is in Metrics.
type pebbleLogger struct {
	log     *slog.Logger
	onFatal func(error)
	fatal   sync.Once
	rate    *lograte.Limiter // by message format
}

func newPebbleLogger(log *slog.Logger, onFatal func(error)) *pebbleLogger {
	if log == nil {
		log = slog.Default()
	}
	return &pebbleLogger{log: log, onFatal: onFatal, rate: lograte.New(time.Minute)}
}

func (*pebbleLogger) Infof(string, ...any) {}

func (l *pebbleLogger) Errorf(format string, args ...any) {
	held, ok := l.rate.Allow(format)
	if !ok {
		return
	}
	if held > 0 {
		l.log.Error("pebble: "+fmt.Sprintf(format, args...), "repeated", held)
		return
	}
	l.log.Error("pebble: " + fmt.Sprintf(format, args...))
}

// Fatalf must not return: Pebble calls it where it cannot go on (its commit
// pipeline is broken). Panicking would end the process with a stack trace
// and no chance to leave the group; instead the store reports the error,
// and the goroutine that met it waits forever. Every later write blocks
// behind it, so the owner must take the node out (the engine does, and
// exits), never wait for a write to return.
func (l *pebbleLogger) Fatalf(format string, args ...any) {
	err := fmt.Errorf(format, args...)
	l.fatal.Do(func() {
		l.log.Error("store failed: pebble cannot go on", "err", err)
		if l.onFatal != nil {
			l.onFatal(err)
		}
	})
	select {}
}
