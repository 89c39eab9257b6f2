package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A registry serde is a format name or a mapping with its settings; the
// registry's own fields come from the file, ${VAR} references or IQENGINE_*
// variables; mistakes name the field.
func TestRegistrySerdes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(`
schema_registry:
  url: https://registry:8081
  basic_auth: {username: iq, password: "${REG_PASSWORD}"}
stores:
  - name: payments
    topic: payments
    key: {format: avro, schema_id: 7}
    value: {format: avro, subject_strategy: record, record: com.acme.Payment, reader_schema_file: payment.avsc}
  - name: shop
    topic: shop
    key: string
    value: protobuf
`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadEnv(p, func(k string) string { return map[string]string{"REG_PASSWORD": "s3cret"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Env(func(k string) string {
		return map[string]string{"IQENGINE_SCHEMA_REGISTRY_CACHE_TTL": "1m", "IQENGINE_SCHEMA_REGISTRY_TLS_CA_FILE": "ca.pem"}[k]
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := c.SchemaRegistry
	if r.BasicAuth.Password != "s3cret" || r.CacheTTL.D().String() != "1m0s" || r.TLS.CAFile != "ca.pem" || r.CacheSize != 1000 {
		t.Errorf("schema_registry = %+v", r)
	}
	k, v := c.Stores[0].Key, c.Stores[0].Value
	if k.Registry != (RegistrySerde{Format: "avro", SchemaID: 7}) || k.String() != "avro" {
		t.Errorf("key = %+v", k)
	}
	if v.Registry != (RegistrySerde{Format: "avro", SubjectStrategy: "record", Record: "com.acme.Payment", ReaderSchemaFile: "payment.avsc"}) {
		t.Errorf("value = %+v", v)
	}
	if got := v.RegistryConfig("payments", false, "").Subject(); got != "com.acme.Payment" {
		t.Errorf("value subject %q", got)
	}
	if s := c.Stores[1].Value; s.Registry.Format != "protobuf" || !s.IsRegistry() {
		t.Errorf("value: protobuf = %+v", s)
	}
}

func TestRegistrySerdeErrors(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want []string
	}{
		{`
stores: [{name: s, topic: t, value: avro}]`, []string{"schema_registry.url: is required: stores[0] reads avro values"}},
		{`
schema_registry: {url: "registry:8081", cache_size: 0, timeout: 0s}
stores: [{name: s, topic: t, key: {format: avro, schema_id: 1, version: 2}, value: {format: avro, schema_id: 3, subject_strategy: record}}]`, []string{
			`schema_registry.url: "registry:8081" is not an http(s) URL`,
			"schema_registry.cache_size: must be positive",
			"schema_registry.timeout: must be positive",
			"stores[0].key.schema_id and version: pin one or the other",
			"stores[0].value.record: is required with subject_strategy record",
			"stores[0].value.schema_id and version: only a key serde encodes",
		}},
		{`
schema_registry: {url: "http://r", basic_auth: {username: u}, bearer_token: t}
stores: [{name: s, topic: t, value: {format: protobuf, wasm: x, reader_schema_file: a.avsc}}]`, []string{
			"schema_registry.bearer_token: and basic_auth: one or the other",
			"stores[0].value: names both a plugin (wasm) and a registry format (format)",
		}},
		{`
schema_registry: {url: "http://r"}
stores: [{name: s, topic: t, value: {format: protobuf, reader_schema_file: a.avsc}}]`, []string{
			"stores[0].value.reader_schema_file: only avro has reader schemas",
		}},
		{`
stores: [{name: s, topic: t, value: {format: avro, subject: x}}]`, []string{"field subject not found"}},
		{`
stores: [{name: s, topic: t, value: avr}]`, []string{`stores[0].value: unknown serde "avr"`, "schema registry format: avro, json-schema, protobuf"}},
	} {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte(tc.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p)
		if err == nil {
			err = c.Validate()
		}
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s\n: %v\nwant it to say %q", tc.yaml, err, w)
			}
		}
	}
}
