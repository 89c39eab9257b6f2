// Command produce-readings writes sample sensor readings for the example
// plugins: keys in the sensor-key format (u16 site, u32 sensor, big-endian),
// values in the sensor-value format, each record in partition
// site % partitions as sensor-key's iq_partition says. It creates the topic
// when it is missing.
//
//	go run ./examples/plugins/produce-readings --brokers 127.0.0.1:9092
//
// It is not a plugin: scripts/plugins.sh skips it.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// reading is one sample record.
type reading struct {
	site     uint16
	sensor   uint32
	status   byte  // 0 ok, 1 degraded, 2 offline
	temp     int32 // hundredths of a degree Celsius
	humidity uint32
	label    string
}

var readings = []reading{
	{12, 4711, 0, 2137, 451, "hall"},
	{12, 4712, 0, -505, 300, "freezer"},
	{12, 4713, 1, 1950, 620, "café"},
	{7, 1, 0, 2610, 380, "roof"},
	{7, 2, 2, 0, 0, "basement"},
	{65535, 4294967295, 0, -100, 1000, "日本 🌡"},
}

// record encodes a reading as its key and value.
func record(r reading, now time.Time) (key, value []byte) {
	key = binary.BigEndian.AppendUint16(nil, r.site)
	key = binary.BigEndian.AppendUint32(key, r.sensor)
	value = []byte{1, r.status} // version 1
	value = binary.LittleEndian.AppendUint16(value, r.site)
	value = binary.LittleEndian.AppendUint32(value, r.sensor)
	value = binary.LittleEndian.AppendUint64(value, uint64(now.UnixMilli()))
	value = binary.LittleEndian.AppendUint32(value, uint32(r.temp))
	value = binary.LittleEndian.AppendUint32(value, r.humidity)
	return key, append(value, r.label...)
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka bootstrap servers, comma-separated")
	topic := flag.String("topic", "readings", "the topic")
	partitions := flag.Int("partitions", 12, "partitions of the topic when it is created")
	flag.Parse()
	if err := run(*brokers, *topic, int32(*partitions)); err != nil {
		fmt.Fprintln(os.Stderr, "produce-readings:", err)
		os.Exit(1)
	}
}

func run(brokers, topic string, partitions int32) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return err
	}
	if t, ok := topics[topic]; ok && t.Err == nil {
		partitions = int32(len(t.Partitions))
	} else {
		res, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
	}
	now := time.Now()
	for _, r := range readings {
		key, value := record(r, now)
		rec := &kgo.Record{Key: key, Value: value, Partition: int32(r.site) % partitions}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			return err
		}
		log.Printf("%s: %d-%d (partition %d)", topic, r.site, r.sensor, rec.Partition)
	}
	return nil
}
