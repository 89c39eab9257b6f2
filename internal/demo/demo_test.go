package demo

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/iqengine/iqengine/internal/config"
	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/serde"
)

func TestDefaults(t *testing.T) {
	want := []Topic{{"orders", 12}, {"sensors", 12}}
	if got := Topics(); !slices.Equal(got, want) {
		t.Errorf("Topics() = %v, want %v", got, want)
	}
	wantStores := []config.Store{
		{Name: "orders", Topic: "orders", Key: config.Builtin("string"), Value: config.Builtin("json")},
		{Name: "sensors", Topic: "sensors", Key: config.Builtin("int64"), Value: config.Builtin("json")},
	}
	if got := Stores(); !slices.Equal(got, wantStores) {
		t.Errorf("Stores() = %v, want %v", got, wantStores)
	}
	o := Options{OrdersTopic: "t-o", SensorsTopic: "t-s"}
	if got := o.Stores(); got[0].Name != "orders" || got[0].Topic != "t-o" || got[1].Name != "sensors" || got[1].Topic != "t-s" {
		t.Errorf("Options.Stores() = %v", got)
	}
	c := config.Default()
	c.Stores = Stores()
	if err := c.Validate(); err != nil {
		t.Errorf("demo stores do not validate: %v", err)
	}
	if SampleOrderKey() != "o-00001" || SampleSensorID() != 1 {
		t.Errorf("samples = %q, %d", SampleOrderKey(), SampleSensorID())
	}
}

func TestRunRejectsBadRate(t *testing.T) {
	p := NewProducer(nil, 1, Options{})
	if err := p.Run(context.Background(), 0); err == nil {
		t.Fatal("Run with rate 0: no error")
	}
}

// setup creates uniquely named demo topics on a test broker.
func setup(t *testing.T, b *testkafka.Broker) Options {
	t.Helper()
	o := Options{OrdersTopic: testkafka.Name(t, "orders"), SensorsTopic: testkafka.Name(t, "sensors")}
	adm := kadm.NewClient(b.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for range 2 { // the second time finds the topics there
		if err := CreateTopics(ctx, adm, o.Topics()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), o.OrdersTopic, o.SensorsTopic) })
	md, err := adm.ListTopics(ctx, o.OrdersTopic, o.SensorsTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range o.Topics() {
		if n := len(md[tp.Name].Partitions); n != 12 {
			t.Fatalf("topic %s has %d partitions, want 12", tp.Name, n)
		}
	}
	return o
}

// consume reads every record of the topics from the start, in partition
// order.
func consume(t *testing.T, b *testkafka.Broker, topics ...string) []*kgo.Record {
	t.Helper()
	type tp struct {
		topic string
		part  int32
	}
	end := map[tp]int64{}
	for _, topic := range topics {
		for p, o := range b.EndOffsets(t, topic) {
			end[tp{topic, p}] = o
		}
	}
	cl := b.Client(t, kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	next := map[tp]int64{}
	done := func() bool {
		for k, e := range end {
			if next[k] < e {
				return false
			}
		}
		return true
	}
	var out []*kgo.Record
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume: timed out with %d records", len(out))
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("consume %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			next[tp{r.Topic, r.Partition}] = r.Offset + 1
		})
	}
	return out
}

// fields returns the sorted top-level field names of a JSON object.
func fields(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("value %s: %v", b, err)
	}
	return slices.Sorted(maps.Keys(m))
}

var (
	orderFields   = []string{"created_at", "currency", "customer", "id", "items", "status", "total", "updated_at"}
	readingFields = []string{"kind", "sensor_id", "site", "ts", "unit", "value"}
	// moves are the status changes Run makes.
	moves = map[string][]string{
		"created": {"paid", "cancelled"},
		"paid":    {"shipped", "cancelled"},
		"shipped": {"delivered"},
	}
)

func TestProducer(t *testing.T) {
	b := testkafka.Start(t)
	o := setup(t, b)
	p := NewProducer(b.Client(t), 42, o)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	seeded, _ := p.Stats()
	if seeded != seedOrders+seedSensors {
		t.Fatalf("Seed produced %d records, want %d", seeded, seedOrders+seedSensors)
	}
	runCtx, stop := context.WithTimeout(ctx, time.Second)
	defer stop()
	if err := p.Run(runCtx, 2000); err != nil {
		t.Fatalf("Run: %v", err)
	}
	produced, deleted := p.Stats()
	t.Logf("produced %d records (%d by Run), %d tombstones", produced, produced-seeded, deleted)
	if produced-seeded < 500 {
		t.Errorf("Run produced %d records in 1s at rate 2000", produced-seeded)
	}

	recs := consume(t, b, o.OrdersTopic, o.SensorsTopic)
	if int64(len(recs)) != produced {
		t.Errorf("consumed %d records, Stats says %d produced", len(recs), produced)
	}

	orderState := map[string]string{} // key -> status, or "deleted"
	lastReading := map[int64]readingValue{}
	var tombstones, reused int
	for _, r := range recs {
		if want := serde.Partition(r.Key, 12); r.Partition != want {
			t.Fatalf("%s key %x in partition %d, the default partitioner puts it in %d", r.Topic, r.Key, r.Partition, want)
		}
		switch r.Topic {
		case o.OrdersTopic:
			key := string(r.Key)
			prev := orderState[key]
			if r.Value == nil {
				tombstones++
				if prev != "delivered" && prev != "cancelled" {
					t.Fatalf("order %s deleted in state %q", key, prev)
				}
				if key == SampleOrderKey() {
					t.Fatalf("sample order %s deleted", key)
				}
				orderState[key] = "deleted"
				continue
			}
			checkOrder(t, key, r.Value)
			var v orderValue
			_ = json.Unmarshal(r.Value, &v)
			switch prev {
			case "":
				id, _ := strconv.Atoi(key[2:])
				if id > seedOrders && v.Status != "created" {
					t.Fatalf("new order %s starts as %s", key, v.Status)
				}
			case "deleted":
				reused++
				if v.Status != "created" {
					t.Fatalf("re-created order %s starts as %s", key, v.Status)
				}
			default:
				if !slices.Contains(moves[prev], v.Status) {
					t.Fatalf("order %s moved from %s to %s", key, prev, v.Status)
				}
			}
			orderState[key] = v.Status
		case o.SensorsTopic:
			if len(r.Key) != 8 {
				t.Fatalf("sensor key %x is not 8 bytes", r.Key)
			}
			id := int64(binary.BigEndian.Uint64(r.Key))
			if r.Value == nil {
				t.Fatalf("sensor %d deleted", id)
			}
			v := checkReading(t, id, r.Value)
			if prev, ok := lastReading[id]; ok {
				k := kinds[slices.IndexFunc(kinds, func(k sensorKind) bool { return k.name == v.Kind })]
				if prev.Kind != v.Kind || prev.Site != v.Site {
					t.Fatalf("sensor %d changed from %+v to %+v", id, prev, v)
				}
				if d := math.Abs(v.Value - prev.Value); d > 10*k.step {
					t.Fatalf("sensor %d jumped from %v to %v", id, prev.Value, v.Value)
				}
			}
			lastReading[id] = v
		}
	}
	t.Logf("%d orders seen, %d tombstones, %d re-used ids", len(orderState), tombstones, reused)
	if int64(tombstones) != deleted || tombstones == 0 {
		t.Errorf("%d tombstones consumed, Stats says %d", tombstones, deleted)
	}
	if reused == 0 {
		t.Error("no deleted order id was re-used")
	}
	if s := orderState[SampleOrderKey()]; s == "" || s == "deleted" {
		t.Errorf("sample order %s ends as %q", SampleOrderKey(), s)
	}
	if _, ok := lastReading[SampleSensorID()]; !ok {
		t.Errorf("sample sensor %d has no reading", SampleSensorID())
	}
	if len(lastReading) != seedSensors {
		t.Errorf("%d sensors, want %d", len(lastReading), seedSensors)
	}
}

func checkOrder(t *testing.T, key string, b []byte) {
	t.Helper()
	if f := fields(t, b); !slices.Equal(f, orderFields) {
		t.Fatalf("order %s fields %v, want %v", key, f, orderFields)
	}
	var v orderValue
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("order %s: %v: %s", key, err, b)
	}
	bad := func(what string) { t.Fatalf("order %s: %s: %s", key, what, b) }
	if v.ID != key || len(key) != 7 || !strings.HasPrefix(key, "o-") {
		bad("id does not match the key")
	}
	if !strings.HasPrefix(v.Customer, "c-") {
		bad("customer")
	}
	if !slices.Contains(currencies, v.Currency) {
		bad("currency")
	}
	if _, ok := moves[v.Status]; !ok && v.Status != "delivered" && v.Status != "cancelled" {
		bad("status")
	}
	if len(v.Items) == 0 {
		bad("no items")
	}
	var sum float64
	for _, it := range v.Items {
		if !strings.HasPrefix(it.SKU, "SKU-") || it.Name == "" || it.Qty <= 0 || it.Price <= 0 {
			bad("item")
		}
		sum += float64(it.Qty) * it.Price
	}
	if math.Abs(sum-v.Total) > 0.005 {
		bad("total is not the sum of the items")
	}
	c, err1 := time.Parse(time.RFC3339, v.CreatedAt)
	u, err2 := time.Parse(time.RFC3339, v.UpdatedAt)
	if err1 != nil || err2 != nil || u.Before(c) || u.After(time.Now().Add(time.Minute)) {
		bad("timestamps")
	}
}

func checkReading(t *testing.T, id int64, b []byte) readingValue {
	t.Helper()
	if f := fields(t, b); !slices.Equal(f, readingFields) {
		t.Fatalf("sensor %d fields %v, want %v", id, f, readingFields)
	}
	var v readingValue
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("sensor %d: %v: %s", id, err, b)
	}
	bad := func(what string) { t.Fatalf("sensor %d: %s: %s", id, what, b) }
	if v.SensorID != id || id < 1 || id > seedSensors {
		bad("sensor_id does not match the key")
	}
	if !slices.Contains(sites, v.Site) {
		bad("site")
	}
	i := slices.IndexFunc(kinds, func(k sensorKind) bool { return k.name == v.Kind })
	if i < 0 || kinds[i].unit != v.Unit || v.Value < kinds[i].lo || v.Value > kinds[i].hi {
		bad("kind, unit or value")
	}
	if _, err := time.Parse(time.RFC3339, v.TS); err != nil {
		bad("ts")
	}
	return v
}

// TestSeedReproducible checks that a seed determines the data, apart from
// timestamps.
func TestSeedReproducible(t *testing.T) {
	b := testkafka.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seedData := func(seed uint64) map[string]string {
		o := setup(t, b)
		if err := NewProducer(b.Client(t), seed, o).Seed(ctx); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range consume(t, b, o.OrdersTopic, o.SensorsTopic) {
			var m map[string]any
			if err := json.Unmarshal(r.Value, &m); err != nil {
				t.Fatal(err)
			}
			delete(m, "created_at")
			delete(m, "updated_at")
			delete(m, "ts")
			v, _ := json.Marshal(m)
			kind := "order"
			if r.Topic == o.SensorsTopic {
				kind = "sensor"
			}
			out[kind+string(r.Key)] = string(v)
		}
		return out
	}
	a, a2, c := seedData(7), seedData(7), seedData(8)
	if len(a) != seedOrders+seedSensors {
		t.Fatalf("%d keys seeded, want %d", len(a), seedOrders+seedSensors)
	}
	if !maps.Equal(a, a2) {
		t.Error("the same seed gave different data")
	}
	if maps.Equal(a, c) {
		t.Error("different seeds gave the same data")
	}
}
