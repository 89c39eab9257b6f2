//go:build unix

package node

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testregistry"
	"github.com/iqengine/iqengine/internal/testutil"
)

const orderValueV1 = `{"type": "record", "name": "Order", "namespace": "com.acme", "fields": [
  {"name": "id", "type": "string"},
  {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
  {"name": "placed", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
    {"name": "name", "type": "string"},
    {"name": "email", "type": ["null", "string"], "default": null}]}},
  {"name": "discount", "type": ["null", "int", "double"], "default": null},
  {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}}
]}`

// orderValueV2 adds a field with a default, as a compatible evolution does.
var orderValueV2 = strings.Replace(orderValueV1, `
]}`, `,
  {"name": "channel", "type": "string", "default": "web"}
]}`, 1)

// orderJSON is the answer for record i that AvroProducer.java wrote, in
// its writer's schema (withChannel false: as version 1 wrote it) or in
// version 2's.
func orderJSON(i int, withChannel bool) string {
	cents := i*100 + 5
	email := "null"
	if i%3 != 0 {
		email = fmt.Sprintf(`"c%d@example.com"`, i)
	}
	discount := "null"
	switch i % 4 {
	case 1:
		discount = fmt.Sprint(i)
	case 2, 3:
		discount = fmt.Sprint(float64(i) + 0.5)
	}
	s := fmt.Sprintf(`{"id":"o-%05d","total":%d.%02d,"placed":"2026-12-02T10:30:%02d.000Z","customer":{"name":"c-%d","email":%s},"discount":%s,"status":"%s"`,
		i, cents/100, cents%100, i, i, email, discount, []string{"NEW", "PAID", "SHIPPED"}[i%3])
	if withChannel {
		channel := "web"
		if i%2 == 1 && i%5 == 0 {
			channel = "app"
		}
		s += fmt.Sprintf(`,"channel":"%s"`, channel)
	}
	return s + "}"
}

const shopProtoSchema = `syntax = "proto3";
package shop;
message Order {
  string id = 1;
  int64 total_cents = 2;
  Customer customer = 3;
  repeated Line lines = 4;
  message Line { string sku = 1; int32 qty = 2; }
}
message Customer { string name = 1; Address address = 2; message Address { string city = 1; } }
`

// Avro records written by a Java producer (Apache Avro, two schema
// versions in one topic, Avro-encoded keys) and Protobuf records of three
// message types, served by a cluster of three nodes reading their schemas
// from a real registry (Apicurio): every key through every node answers
// its value as documented, a lookup by key text finds Avro keys, and
// while the registry hangs, keys whose schemas are cached keep answering,
// a record with a new schema id answers 503 registry-unavailable, and
// answers again once the registry is back.
func TestRegistrySerdesOnACluster(t *testing.T) {
	reg := testregistry.Running(t)
	if !testkafka.Real() {
		t.Skip("needs a real broker (make registry-test)")
	}
	b := testkafka.Start(t)
	ctx := context.Background()
	admin, err := sr.NewClient(sr.URLs(reg.URL))
	if err != nil {
		t.Fatal(err)
	}
	orders, shop := testkafka.Name(t, "orders"), testkafka.Name(t, "shop")
	b.CreateTopic(t, orders, 6)
	b.CreateTopic(t, shop, 3)
	register := func(subject string, s sr.Schema) int {
		t.Helper()
		ss, err := admin.CreateSchema(ctx, subject, s)
		if err != nil {
			t.Fatalf("register %s: %v", subject, err)
		}
		return ss.ID
	}
	keyID := register(orders+"-key", sr.Schema{Schema: `"string"`})
	v1 := register(orders+"-value", sr.Schema{Schema: orderValueV1})
	v2 := register(orders+"-value", sr.Schema{Schema: orderValueV2})
	shopID := register(shop+"-value", sr.Schema{Schema: shopProtoSchema, Type: sr.TypeProtobuf})

	// The Java producer: Apache Avro's encoding, the frame, Kafka's Java client.
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const count = 40
	cmd, err := testregistry.AvroProducer(ctx, strings.Join(b.Addrs, ","), orders, fmt.Sprint(count),
		fmt.Sprint(keyID), write("key.avsc", `"string"`), fmt.Sprint(v1), write("v1.avsc", orderValueV1), fmt.Sprint(v2), write("v2.avsc", orderValueV2))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("AvroProducer.java: %v\n%s", err, out)
	}

	// Protobuf records of three message types of one schema, from Go.
	pb := shopMessages(t)
	cl := b.Client(t)
	shopRecords := []struct {
		key, message, json string
		index              []int
	}{
		{"order-1", "shop.Order", `{"id":"o-1","totalCents":"1234","customer":{"name":"Zoe","address":{"city":"Oslo"}},"lines":[{"sku":"a","qty":2}]}`, []int{0}},
		{"customer-1", "shop.Customer", `{"name":"Ann"}`, []int{1}},
		{"address-1", "shop.Customer.Address", `{"city":"Bergen"}`, []int{1, 0}},
	}
	for _, m := range shopRecords {
		msg := dynamicpb.NewMessage(pb[protoreflect.FullName(m.message)])
		if err := protojson.Unmarshal([]byte(m.json), msg); err != nil {
			t.Fatal(err)
		}
		body, err := proto.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		var h sr.ConfluentHeader
		v, _ := h.AppendEncode(nil, shopID, m.index)
		testkafka.Produce(t, cl, &kgo.Record{Topic: shop, Key: []byte(m.key), Value: append(v, body...)})
	}

	readerFile := write("reader.avsc", orderValueV2)
	group := testkafka.Name(t, "app")
	var bases []string
	for i := range 3 {
		cfg := testutil.NodeConfig(t, group, b.Addrs)
		cfg.NodeID = fmt.Sprintf("n%d", i+1)
		cfg.SchemaRegistry.URL = reg.URL
		cfg.SchemaRegistry.Timeout = config.Duration(time.Second)
		cfg.Stores = []config.Store{
			{Name: "orders", Topic: orders, Key: config.Serde{Registry: config.RegistrySerde{Format: "avro"}}, Value: config.Serde{Registry: config.RegistrySerde{Format: "avro"}}},
			{Name: "orders_v2", Topic: orders, Key: config.Serde{Registry: config.RegistrySerde{Format: "avro", SchemaID: keyID}},
				Value: config.Serde{Registry: config.RegistrySerde{Format: "avro", ReaderSchemaFile: readerFile}}},
			{Name: "shop", Topic: shop, Value: config.Serde{Registry: config.RegistrySerde{Format: "protobuf"}}},
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Advertise = "http://" + l.Addr().String()
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		n, err := Start(ctx, cfg, WithListener(l), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		bases = append(bases, cfg.Advertise)
	}
	for _, base := range bases {
		testutil.WaitForNil(t, 60*time.Second, base+" serves o-00039", func() error {
			status, body, err := testutil.Get(http.DefaultClient, base+"/v1/stores/orders/keys/o-00039")
			if err != nil || status != http.StatusOK {
				return fmt.Errorf("%d %v %s", status, err, body)
			}
			return nil
		})
	}

	t.Run("every key through every node", func(t *testing.T) {
		for _, base := range bases {
			for i := range count {
				key := fmt.Sprintf("o-%05d", i)
				if got, want := lookupValue(t, base, "orders", key), orderJSON(i, i%2 == 1); got != want {
					t.Errorf("%s orders/%s:\n got  %s\n want %s", base, key, got, want)
				}
				if got, want := lookupValue(t, base, "orders_v2", key), orderJSON(i, true); got != want {
					t.Errorf("%s orders_v2/%s (reader schema):\n got  %s\n want %s", base, key, got, want)
				}
			}
		}
	})

	t.Run("protobuf message types", func(t *testing.T) {
		for _, base := range bases {
			for _, m := range shopRecords {
				if got := lookupValue(t, base, "shop", m.key); got != m.json {
					t.Errorf("%s shop/%s: %s, want %s", base, m.key, got, m.json)
				}
			}
		}
	})

	t.Run("scan renders every record", func(t *testing.T) {
		status, body, err := testutil.Get(http.DefaultClient, bases[0]+"/v1/stores/orders/keys?limit=100")
		if err != nil || status != http.StatusOK || strings.Count(string(body), `"key":"o-`) != count {
			t.Errorf("scan: %d %v %s", status, err, body)
		}
		for i := range count {
			if !strings.Contains(string(body), orderJSON(i, i%2 == 1)) {
				t.Errorf("scan: record %d missing or rendered otherwise", i)
			}
		}
	})

	t.Run("registry hangs", func(t *testing.T) {
		v3 := register(orders+"-value", sr.Schema{Schema: strings.Replace(orderValueV2, `
]}`, `,
  {"name": "note", "type": "string", "default": ""}
]}`, 1)})
		if err := reg.Pause(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = reg.Resume() })
		schema := avro.MustParse(strings.Replace(orderValueV2, `
]}`, `,
  {"name": "note", "type": "string", "default": ""}
]}`, 1))
		rec, err := avro.Marshal(schema, map[string]any{
			"id": "o-new", "total": big.NewRat(1, 1), "placed": time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC),
			"customer": map[string]any{"name": "n", "email": nil}, "discount": nil, "status": "NEW", "channel": "web", "note": "hi",
		})
		if err != nil {
			t.Fatal(err)
		}
		keyBytes := append(binary.BigEndian.AppendUint32([]byte{0}, uint32(keyID)), append([]byte{byte(len("o-new") * 2)}, "o-new"...)...)
		value := append(binary.BigEndian.AppendUint32([]byte{0}, uint32(v3)), rec...)
		testkafka.Produce(t, cl, &kgo.Record{Topic: orders, Key: keyBytes, Value: value})
		for _, base := range bases {
			testutil.WaitForNil(t, 30*time.Second, base+" answers o-new 503 registry-unavailable", func() error {
				status, body, err := testutil.Get(http.DefaultClient, base+"/v1/stores/orders/keys/o-new")
				if err != nil {
					return err
				}
				var p problemDoc
				_ = json.Unmarshal(body, &p)
				if status != http.StatusServiceUnavailable || p.Type != "urn:iqengine:problem:registry-unavailable" || !strings.Contains(p.Detail, fmt.Sprintf("schema id %d", v3)) {
					return fmt.Errorf("%d %s", status, body)
				}
				return nil
			})
			for _, i := range []int{0, 1, 39} {
				key := fmt.Sprintf("o-%05d", i)
				if got, want := lookupValue(t, base, "orders", key), orderJSON(i, i%2 == 1); got != want {
					t.Errorf("registry hanging, %s orders/%s: %s, want %s", base, key, got, want)
				}
			}
		}
		if err := reg.Resume(); err != nil {
			t.Fatal(err)
		}
		for _, base := range bases {
			testutil.WaitForNil(t, 30*time.Second, base+" answers o-new once the registry is back", func() error {
				status, body, err := testutil.Get(http.DefaultClient, base+"/v1/stores/orders/keys/o-new")
				if err != nil || status != http.StatusOK || !strings.Contains(string(body), `"note":"hi"`) {
					return fmt.Errorf("%d %v %s", status, err, body)
				}
				return nil
			})
		}
	})
}

// lookupValue is the raw JSON of the value a node answers for a key.
func lookupValue(t *testing.T, base, store, key string) string {
	t.Helper()
	status, body, err := testutil.Get(http.DefaultClient, base+"/v1/stores/"+store+"/keys/"+url.PathEscape(key))
	if err != nil || status != http.StatusOK {
		return fmt.Sprintf("(%d %v %s)", status, err, body)
	}
	var ans struct {
		Key   json.RawMessage `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if string(ans.Key) != `"`+key+`"` {
		t.Errorf("%s/%s: key %s", store, key, ans.Key)
	}
	return string(ans.Value)
}

// shopMessages compiles shopProtoSchema, for the Go producer.
func shopMessages(t *testing.T) map[protoreflect.FullName]protoreflect.MessageDescriptor {
	t.Helper()
	c := protocompile.Compiler{Resolver: &protocompile.SourceResolver{Accessor: protocompile.SourceAccessorFromMap(map[string]string{"shop.proto": shopProtoSchema})}}
	fds, err := c.Compile(context.Background(), "shop.proto")
	if err != nil {
		t.Fatal(err)
	}
	out := map[protoreflect.FullName]protoreflect.MessageDescriptor{}
	var walk func(ms protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			out[ms.Get(i).FullName()] = ms.Get(i)
			walk(ms.Get(i).Messages())
		}
	}
	walk(fds[0].Messages())
	return out
}
