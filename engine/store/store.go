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
//
// so one partition's records are one contiguous span that can be scanned in
// key order, dropped with a single range deletion, or shipped elsewhere.
// Stores that read the same topic share its data: serdes run at query time.
//
// This package knows nothing of Kafka clients, serdes or HTTP.
package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

const (
	kindData = 'd'
	kindMeta = 'm'
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
}

// ErrClosed is returned by reads and writes of a store that is closing or
// closed.
var ErrClosed = errors.New("store: closed")

// DB is the node's store. It is safe for concurrent use.
type DB struct {
	db    *pebble.DB
	cache *pebble.Cache
	stop  chan struct{}
	done  sync.WaitGroup
}

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
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		CompactionConcurrencyRange:  func() (int, int) { return 1, 2 },
		Logger:                      slogLogger{},
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
	d := &DB{db: db, cache: cache, stop: make(chan struct{})}
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
func (d *DB) Sync() error { return d.db.LogData(nil, pebble.Sync) }

// Close syncs and closes the store.
func (d *DB) Close() error {
	close(d.stop)
	d.done.Wait()
	return errors.Join(d.Sync(), d.db.Close())
}

// Partition names one topic partition.
type Partition struct {
	Topic     string
	Partition int32
}

func (p Partition) String() string { return fmt.Sprintf("%s/%d", p.Topic, p.Partition) }

// appendPrefix appends the span prefix of p's records of the given kind.
func appendPrefix(dst []byte, kind byte, p Partition) []byte {
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
func (d *DB) Checkpoint(p Partition) (c Checkpoint, ok bool, err error) {
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

// Wipe drops every record and the checkpoint of p, atomically.
func (d *DB) Wipe(p Partition) error {
	b := d.db.NewBatch()
	defer b.Close()
	lo := appendPrefix(nil, kindData, p)
	if err := b.DeleteRange(lo, PrefixEnd(lo), nil); err != nil {
		return err
	}
	if err := b.Delete(appendPrefix(nil, kindMeta, p), nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// Batch collects the writes of one partition. Commit writes them together
// with the partition's new checkpoint, so the data and the offset it
// reflects can never disagree after a crash.
type Batch struct {
	db     *DB
	p      Partition
	b      *pebble.Batch
	prefix int // length of the data prefix in key
	key    []byte
	val    []byte
	n      int
}

// NewBatch starts a batch for p.
func (d *DB) NewBatch(p Partition) *Batch {
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

// Len is the number of writes in the batch.
func (b *Batch) Len() int { return b.n }

// Commit writes the batch and the checkpoint atomically, without waiting for
// fsync (see Options.SyncInterval), and releases the batch.
func (b *Batch) Commit(c Checkpoint) error {
	defer b.b.Close()
	if err := b.b.Set(appendPrefix(b.key[:0], kindMeta, b.p), c.encode(b.val[:0]), nil); err != nil {
		return err
	}
	return b.b.Commit(pebble.NoSync)
}

// Record is one key's latest state.
type Record struct {
	Key       []byte
	Value     []byte
	Offset    int64
	Timestamp int64 // Unix milliseconds
}

func decodeRecord(key, v []byte) (Record, error) {
	off, n := binary.Uvarint(v)
	if n <= 0 {
		return Record{}, errors.New("store: corrupt record offset")
	}
	ts, m := binary.Varint(v[n:])
	if m <= 0 {
		return Record{}, errors.New("store: corrupt record timestamp")
	}
	return Record{Key: key, Value: v[n+m:], Offset: int64(off), Timestamp: ts}, nil
}

// Get returns the latest record of key in p; ok is false when the key is
// absent.
func (d *DB) Get(p Partition, key []byte) (r Record, ok bool, err error) {
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
// the current Record are valid until the next call to Next or Close.
type Iterator struct {
	it      *pebble.Iterator
	prefix  int
	started bool
	err     error
}

// NewIterator returns an iterator over the keys k of p with lower <= k <
// upper; a nil bound is open. It starts before the first key: call Next.
func (d *DB) NewIterator(p Partition, lower, upper []byte) (*Iterator, error) {
	pre := appendPrefix(nil, kindData, p)
	lo := append(bytes.Clone(pre), lower...)
	hi := PrefixEnd(pre)
	if upper != nil {
		hi = append(bytes.Clone(pre), upper...)
	}
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	return &Iterator{it: it, prefix: len(pre)}, nil
}

// Next moves to the next record and returns it; ok is false at the end or
// on error (see Err).
func (i *Iterator) Next() (r Record, ok bool) {
	if i.err != nil {
		return r, false
	}
	var valid bool
	if i.started {
		valid = i.it.Next()
	} else {
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

// Close releases the iterator.
func (i *Iterator) Close() error { return errors.Join(i.err, i.it.Close()) }

// Count counts p's keys. It walks the partition, so it costs time in
// proportion to the partition's size.
func (d *DB) Count(p Partition) (int64, error) {
	pre := appendPrefix(nil, kindData, p)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: pre, UpperBound: PrefixEnd(pre)})
	if err != nil {
		return 0, err
	}
	var n int64
	for valid := it.First(); valid; valid = it.Next() {
		n++
	}
	return n, errors.Join(it.Error(), it.Close())
}

// PrefixEnd is the smallest key greater than every key with prefix p, or
// nil when there is none (p is empty or all 0xff).
func PrefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// Metrics exposes Pebble's own metrics, for diagnostics.
func (d *DB) Metrics() *pebble.Metrics { return d.db.Metrics() }

// slogLogger sends Pebble's errors to the node's log and drops its
// informational chatter (flushes, compactions), which is in Metrics.
type slogLogger struct{}

func (slogLogger) Infof(string, ...any) {}
func (slogLogger) Errorf(format string, args ...any) {
	slog.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (slogLogger) Fatalf(format string, args ...any) {
	panic("pebble: " + fmt.Sprintf(format, args...))
}
