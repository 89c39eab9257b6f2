//go:build unix

package registry_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/iqengine/iqengine/internal/testregistry"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/serde/registry"
)

// The same behaviour as against the fake, against a real registry
// (Apicurio Registry through its Confluent-compatible API): ids it hands
// out, evolution, references, Protobuf with several messages, JSON Schema,
// key subjects' latest and pinned versions, a registry that hangs.
func TestAgainstApicurio(t *testing.T) {
	reg := testregistry.Running(t)
	ctx := context.Background()
	admin, err := sr.NewClient(sr.URLs(reg.URL))
	if err != nil {
		t.Fatal(err)
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	topic := "orders-" + hex.EncodeToString(r[:])
	create := func(subject string, s sr.Schema) int {
		t.Helper()
		ss, err := admin.CreateSchema(ctx, subject, s)
		if err != nil {
			t.Fatalf("register %s: %v", subject, err)
		}
		return ss.ID
	}
	c, err := registry.NewClient(registry.Options{URLs: []string{reg.URL}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("avro versions and keys", func(t *testing.T) {
		v1 := create(topic+"-value", sr.Schema{Schema: orderV1})
		v2 := create(topic+"-value", sr.Schema{Schema: orderV2})
		if v1 == v2 {
			t.Fatalf("two versions got one id %d", v1)
		}
		rec2, err := avro.Marshal(avro.MustParse(orderV2), map[string]any{"id": "o-2", "total": big.NewRat(-5, 100), "channel": "app"})
		if err != nil {
			t.Fatal(err)
		}
		s := newSerde(t, c, registry.Config{Format: registry.Avro, Topic: topic})
		if got, err := s.AppendJSON(nil, frame(v1, nil, order1(t, "o-1"))); err != nil || string(got) != order1JSON {
			t.Errorf("v1: %s, %v", got, err)
		}
		if got, err := s.AppendJSON(nil, frame(v2, nil, rec2)); err != nil || string(got) != `{"id":"o-2","total":-0.05,"channel":"app"}` {
			t.Errorf("v2: %s, %v", got, err)
		}
		_, err = s.AppendJSON(nil, frame(1<<30, nil, rec2))
		if !errors.Is(err, registry.ErrUnknownSchema) || !errors.Is(err, serde.ErrInvalid) {
			t.Errorf("unknown id: %v", err)
		}

		k1 := create(topic+"-key", sr.Schema{Schema: `"string"`})
		k2 := create(topic+"-key", sr.Schema{Schema: `{"type":"record","name":"K","fields":[{"name":"id","type":"string"}]}`})
		latest := newSerde(t, c, registry.Config{Format: registry.Avro, Topic: topic, Key: true})
		if b, err := latest.FromText(`{"id":"o-1"}`); err != nil || !bytes.Equal(b, frame(k2, nil, []byte("\x06o-1"))) {
			t.Errorf("latest key schema: %x, %v", b, err)
		}
		pinned := newSerde(t, c, registry.Config{Format: registry.Avro, Topic: topic, Key: true, Version: 1})
		if b, err := pinned.FromText("o-1"); err != nil || !bytes.Equal(b, frame(k1, nil, []byte("\x06o-1"))) {
			t.Errorf("version 1: %x, %v", b, err)
		}
	})

	t.Run("protobuf", func(t *testing.T) {
		id := create(topic+"-pb-value", sr.Schema{Schema: shopProto, Type: sr.TypeProtobuf})
		s := newSerde(t, c, registry.Config{Format: registry.Protobuf, Topic: topic + "-pb"})
		if got, err := s.AppendJSON(nil, frame(id, []byte{4, 2, 0}, unhex(t, "0a044f736c6f"))); err != nil || string(got) != `{"city":"Oslo"}` {
			t.Errorf("nested message: %s, %v", got, err)
		}
	})

	t.Run("json schema", func(t *testing.T) {
		id := create(topic+"-js-value", sr.Schema{Type: sr.TypeJSON,
			Schema: `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"id":{"type":"integer"}}}`})
		s := newSerde(t, c, registry.Config{Format: registry.JSONSchema, Topic: topic + "-js"})
		if got, err := s.AppendJSON(nil, frame(id, nil, []byte(`{"id":1}`))); err != nil || string(got) != `{"id":1}` {
			t.Errorf("json schema: %s, %v", got, err)
		}
	})

	t.Run("a registry that hangs", func(t *testing.T) {
		id := create(topic+"-h-value", sr.Schema{Schema: `{"type":"string","doc":"known"}`})
		unseen := create(topic+"-h-value", sr.Schema{Schema: `{"type":"record","name":"Unseen","fields":[{"name":"x","type":"string"}]}`})
		s := newSerde(t, c, registry.Config{Format: registry.Avro, Topic: topic + "-h"})
		if _, err := s.AppendJSON(nil, frame(id, nil, []byte("\x02x"))); err != nil {
			t.Fatal(err)
		}
		if err := reg.Pause(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = reg.Resume() }()
		if got, err := s.AppendJSON(nil, frame(id, nil, []byte("\x02x"))); err != nil || string(got) != `"x"` {
			t.Errorf("cached schema while the registry hangs: %s, %v", got, err)
		}
		_, err := s.AppendJSON(nil, frame(unseen, nil, []byte("\x02x")))
		if !errors.Is(err, registry.ErrRegistryUnavailable) || errors.Is(err, serde.ErrInvalid) {
			t.Errorf("new schema while the registry hangs: %v", err)
		}
		if err := reg.Resume(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, err := s.AppendJSON(nil, frame(unseen, nil, []byte("\x02x")))
			if err == nil && string(got) == `{"x":"x"}` {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the registry is back, still %s, %v", got, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}
