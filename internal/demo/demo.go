// Package demo is the data behind `iqengine demo`: three Kafka topics, the
// stores that materialise them, and a Producer that seeds them with a
// realistic data set and then keeps it changing, so that a new user can
// query something that moves without writing a producer first.
//
// The topic "orders" is keyed by the order id as a UTF-8 string
// ("o-00042") and holds JSON orders:
//
//	{"id":"o-00042","customer":"c-0815","items":[{"sku":"SKU-1004","name":"USB-C hub","qty":2,"price":34.5}],
//	 "total":69,"currency":"GBP","status":"paid","created_at":"2026-05-04T10:11:12Z","updated_at":"2026-05-04T10:15:40Z"}
//
// An order's status only moves forward: created → paid → shipped →
// delivered, or created/paid → cancelled. Delivered and cancelled orders
// are later deleted with a tombstone, and a deleted id is sometimes used
// again by a new order.
//
// The topic "sensors" is keyed by the sensor id as an 8-byte big-endian
// int64 (what Java's LongSerializer writes) and holds the sensor's latest
// reading, which drifts in a small random walk:
//
//	{"sensor_id":7,"site":"austin-lab","kind":"temperature","value":21.37,"unit":"°C","ts":"2026-05-04T10:15:40.123Z"}
//
// The topic "readings" holds the same kind of data in a compact binary form
// that no built-in serde reads, for the stores' WebAssembly plugins (their
// contracts are in sdk/conformance/README.md). The key is a site (u16) then
// a sensor (u32), both big-endian, written "12-7" in URLs; the value is a
// little-endian record (version, status, site, sensor, time in ms,
// temperature in hundredths of a degree, humidity in tenths of a percent)
// followed by a UTF-8 label. The sensor-value plugin answers it as
//
//	{"sensor":7,"site":12,"time":1778000000000,"status":"ok","temp_c":21.37,"humidity":45.1,"label":"hall"}
//
// Records are not placed by murmur2 of the key: every reading of a site goes
// to partition site % partitions, the partitioner the sensor-key plugin
// declares, so that the node finds a key, or all of a site's keys, in one
// partition.
//
// All topics are compacted, so a demo left running does not fill the disk.
package demo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/config"
)

// Default topic names. They appear in the README: keep them stable.
const (
	OrdersTopic   = "orders"
	SensorsTopic  = "sensors"
	ReadingsTopic = "readings"
)

// partitions is the partition count of every demo topic.
const partitions = 12

// Topic is a topic the demo writes to.
type Topic struct {
	Name       string
	Partitions int32
}

// Options names the topics a Producer writes to. The zero value means the
// default names, "orders", "sensors" and "readings"; tests set unique names
// so that they can share a broker.
type Options struct {
	OrdersTopic   string
	SensorsTopic  string
	ReadingsTopic string
}

func (o Options) withDefaults() Options {
	if o.OrdersTopic == "" {
		o.OrdersTopic = OrdersTopic
	}
	if o.SensorsTopic == "" {
		o.SensorsTopic = SensorsTopic
	}
	if o.ReadingsTopic == "" {
		o.ReadingsTopic = ReadingsTopic
	}
	return o
}

// Topics returns the topics of these options: orders, sensors, readings, 12
// partitions each.
func (o Options) Topics() []Topic {
	o = o.withDefaults()
	return []Topic{
		{Name: o.OrdersTopic, Partitions: partitions},
		{Name: o.SensorsTopic, Partitions: partitions},
		{Name: o.ReadingsTopic, Partitions: partitions},
	}
}

// Stores returns the stores that materialise the topics of these options.
// The store names are always "orders", "sensors" and "readings", whatever
// the topics. The readings store's modules are named without a path, so the
// node's plugins.dir must hold them: see WritePlugins.
func (o Options) Stores() []config.Store {
	o = o.withDefaults()
	return []config.Store{
		{Name: "orders", Topic: o.OrdersTopic, Key: config.Builtin("string"), Value: config.Builtin("json")},
		{Name: "sensors", Topic: o.SensorsTopic, Key: config.Builtin("int64"), Value: config.Builtin("json")},
		{Name: "readings", Topic: o.ReadingsTopic,
			Key:       config.Serde{Plugin: config.Plugin{Wasm: KeyPlugin}},
			Value:     config.Serde{Plugin: config.Plugin{Wasm: ValuePlugin}},
			Transform: &config.Transform{Plugin: config.Plugin{Wasm: TransformPlugin}}},
	}
}

// Partitioner returns the partitioner a Producer's client must use (with
// kgo.RecordPartitioner): readings go to partition site % partitions, as
// the sensor-key plugin's iq_partition says, and every other record goes
// where Kafka's Java producer puts it, by murmur2 of its key, as iqengine's
// built-in key serdes expect.
func (o Options) Partitioner() kgo.Partitioner {
	return partitioner{readings: o.withDefaults().ReadingsTopic, byKey: kgo.StickyKeyPartitioner(nil)}
}

// partitioner places readings by site and everything else by key hash.
type partitioner struct {
	readings string
	byKey    kgo.Partitioner
}

var bySite = kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
	return func(r *kgo.Record, n int) int { return int(siteOf(r.Key)) % n }
})

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == p.readings {
		return bySite.ForTopic(topic)
	}
	return p.byKey.ForTopic(topic)
}

// Topics returns the demo topics under their default names.
func Topics() []Topic { return Options{}.Topics() }

// Stores returns the demo stores over the default topics: "orders" (string
// keys, JSON values), "sensors" (int64 keys, JSON values) and "readings"
// (binary keys and values read by the sensor-key and sensor-value plugins,
// with the project transform).
func Stores() []config.Store { return Options{}.Stores() }

// Partitioner returns the partitioner of a Producer's client over the
// default topics.
func Partitioner() kgo.Partitioner { return Options{}.Partitioner() }

// SampleOrderKey returns an order id that Seed always creates and Run never
// deletes, so that a printed example query always finds it.
func SampleOrderKey() string { return orderKey(sampleOrder) }

// SampleSensorID returns a sensor id that Seed always writes and that is
// never deleted.
func SampleSensorID() int64 { return sampleSensor }

// SampleReadingKey returns the text form of a readings key that Seed always
// writes and that is never deleted: "12-7", site 12, sensor 7.
func SampleReadingKey() string { return fmt.Sprintf("%d-%d", sampleSite, sampleProbe) }

// SampleReadingSite returns the site of SampleReadingKey, a prefix of
// several readings keys.
func SampleReadingSite() int { return sampleSite }

// CreateTopics creates the topics that do not exist yet, compacted, with
// replication factor 1, and waits until the broker reports a leader for
// every partition of each. A topic that already exists is left as it is,
// even if its partition count differs.
func CreateTopics(ctx context.Context, adm *kadm.Client, topics []Topic) error {
	configs := map[string]*string{"cleanup.policy": new("compact")}
	for _, t := range topics {
		resp, err := adm.CreateTopic(ctx, t.Partitions, 1, configs, t.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("demo: create topic %s: %w", t.Name, err)
		}
	}
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	for {
		md, err := adm.ListTopics(ctx, names...)
		if err == nil && ready(md, names) {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("demo: waiting for topics %v: %w", names, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ready reports whether every topic is known with every partition led.
func ready(md kadm.TopicDetails, names []string) bool {
	for _, n := range names {
		d, ok := md[n]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			return false
		}
		for _, p := range d.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return false
			}
		}
	}
	return true
}
