package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceOptions configures Produce.
type ProduceOptions struct {
	Brokers []string
	Topic   string
	// Partitions is the topic's partition count. With Create, a missing
	// topic is created with it; an existing topic must have it.
	Partitions int32
	Create     bool
	// ReplicationFactor of a created topic; 0 or -1 is the broker's default.
	ReplicationFactor int16
	// Records is how many records to write: one per key, key i being
	// Keys.Key(i) (Keys.N is set to Records).
	Records int
	// ValueSize is the approximate size of each JSON value in bytes
	// (default 200).
	ValueSize int
	// KeyFormat formats the keys (default DefaultKeyFormat).
	KeyFormat string
	// Seed makes the values reproducible.
	Seed int64
	// Opts are extra franz-go options (tests).
	Opts []kgo.Opt
}

// ProduceResult is what Produce wrote. LastKeys holds the key of the last
// record written to each partition: once a system answers all of them, it
// holds every record (the keys are unique and a partition is applied in
// order), which is how the restore benchmark decides that a system that has
// no readiness of its own is done.
type ProduceResult struct {
	Kind             string           `json:"kind"` // "produce"
	Topic            string           `json:"topic"`
	Partitions       int32            `json:"partitions"`
	Records          int              `json:"records"`
	KeyFormat        string           `json:"key_format"`
	ValueSize        int              `json:"value_size"`
	Bytes            int64            `json:"bytes"`
	Seconds          float64          `json:"seconds"`
	RecordsPerSecond float64          `json:"records_per_second"`
	LastKeys         map[int32]string `json:"last_keys"`
	LastOffsets      map[int32]int64  `json:"last_offsets"`
}

// Value is the JSON value of the benchmark's record i: its key, number and
// a random printable payload that brings it to about size bytes.
func Value(r *rand.Rand, key string, i, size int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 0, size+16)
	b = append(b, `{"id":"`...)
	b = append(b, key...)
	b = append(b, `","n":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `,"payload":"`...)
	for pad := size - len(b) - 2; pad > 0; pad-- {
		b = append(b, alphabet[r.Intn(len(alphabet))])
	}
	return append(b, `"}`...)
}

// Produce writes the benchmark's records: key i is KeyFormat applied to i,
// partitioned as Kafka's Java producer does (murmur2 of the key).
func Produce(ctx context.Context, o ProduceOptions) (*ProduceResult, error) {
	if len(o.Brokers) == 0 || o.Topic == "" {
		return nil, errors.New("produce: brokers and topic are required")
	}
	if o.Records < 1 {
		return nil, fmt.Errorf("produce: %d records: want at least 1", o.Records)
	}
	if o.Partitions < 1 {
		return nil, fmt.Errorf("produce: %d partitions: want at least 1", o.Partitions)
	}
	if o.ValueSize == 0 {
		o.ValueSize = 200
	}
	if o.KeyFormat == "" {
		o.KeyFormat = DefaultKeyFormat
	}
	keys := KeySpace{N: o.Records, Format: o.KeyFormat}
	if err := keys.Validate(); err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.DefaultProduceTopic(o.Topic),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), // murmur2, as Java's producer
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.MaxBufferedRecords(50_000),
		// A topic created just now is unknown for a moment: look again soon,
		// not after the default 5 s.
		kgo.MetadataMinAge(200 * time.Millisecond),
	}, o.Opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	defer cl.Close()
	if err := ensureTopic(ctx, kadm.NewClient(cl), o); err != nil {
		return nil, err
	}

	res := &ProduceResult{
		Kind: "produce", Topic: o.Topic, Partitions: o.Partitions, Records: o.Records,
		KeyFormat: o.KeyFormat, ValueSize: o.ValueSize,
		LastKeys: map[int32]string{}, LastOffsets: map[int32]int64{},
	}
	var (
		mu       sync.Mutex
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	promise := func(r *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
				cancel()
			}
			return
		}
		if last, ok := res.LastOffsets[r.Partition]; !ok || r.Offset > last {
			res.LastOffsets[r.Partition] = r.Offset
			res.LastKeys[r.Partition] = string(r.Key)
		}
	}
	r := rand.New(rand.NewSource(o.Seed))
	fk := compileKey(o.KeyFormat)
	start := time.Now()
	for i := 0; i < o.Records && ctx.Err() == nil; i++ {
		var key []byte
		if fk.ok {
			key = fk.appendKey(nil, i)
		} else {
			key = []byte(keys.Key(i))
		}
		v := Value(r, string(key), i, o.ValueSize)
		res.Bytes += int64(len(key) + len(v))
		cl.Produce(ctx, &kgo.Record{Key: key, Value: v}, promise)
	}
	if err := cl.Flush(ctx); err != nil && firstErr == nil {
		firstErr = err
	}
	res.Seconds = time.Since(start).Seconds()
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return nil, fmt.Errorf("produce: %w", firstErr)
	}
	res.RecordsPerSecond = float64(o.Records) / res.Seconds
	return res, nil
}

// ensureTopic creates the topic (with Create) or checks that it exists
// with the expected partitions.
func ensureTopic(ctx context.Context, adm *kadm.Client, o ProduceOptions) error {
	if o.Create {
		rf := o.ReplicationFactor
		if rf == 0 {
			rf = -1
		}
		resp, err := adm.CreateTopic(ctx, o.Partitions, rf, nil, o.Topic)
		if err == nil {
			err = resp.Err
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("produce: create topic %s: %w", o.Topic, err)
		}
	}
	details, err := adm.ListTopics(ctx, o.Topic)
	if err != nil {
		return fmt.Errorf("produce: topic %s: %w", o.Topic, err)
	}
	d, ok := details[o.Topic]
	if !ok || d.Err != nil {
		if ok && d.Err != nil {
			err = d.Err
		} else {
			err = errors.New("does not exist")
		}
		return fmt.Errorf("produce: topic %s: %w", o.Topic, err)
	}
	if got := int32(len(d.Partitions)); got != o.Partitions {
		return fmt.Errorf("produce: topic %s has %d partitions, want %d", o.Topic, got, o.Partitions)
	}
	return nil
}
