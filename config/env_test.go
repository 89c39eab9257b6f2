package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Each variable sets its field from text written as in the file; a bad
// value is an error that names the variable.
func TestEnv(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(c Config) bool
		err   string // every line of the error, in order, joined by "\n"
	}{
		{
			name:  "a duration",
			env:   map[string]string{"IQENGINE_QUERY_TIMEOUT": "2500ms"},
			check: func(c Config) bool { return c.Query.Timeout.D() == 2500*time.Millisecond },
		},
		{
			name:  "a size with a unit",
			env:   map[string]string{"IQENGINE_STORAGE_CACHE_SIZE": "512MiB"},
			check: func(c Config) bool { return c.Storage.CacheSize == 512<<20 },
		},
		{
			name:  "a size in bytes",
			env:   map[string]string{"IQENGINE_PLUGINS_MAX_OUTPUT": "4096"},
			check: func(c Config) bool { return c.Plugins.MaxOutput == 4096 },
		},
		{
			name:  "an integer, as YAML writes them",
			env:   map[string]string{"IQENGINE_QUERY_MAX_LIMIT": "0x100", "IQENGINE_QUERY_DEFAULT_LIMIT": "1_000"},
			check: func(c Config) bool { return c.Query.MaxLimit == 256 && c.Query.DefaultLimit == 1000 },
		},
		{
			name:  "a boolean, as YAML reads them",
			env:   map[string]string{"IQENGINE_KAFKA_TLS_ENABLED": "true", "IQENGINE_KAFKA_TLS_INSECURE_SKIP_VERIFY": "yes"},
			check: func(c Config) bool { return c.Kafka.TLS.Enabled && c.Kafka.TLS.InsecureSkipVerify },
		},
		{
			name:  "a list, comma separated",
			env:   map[string]string{"IQENGINE_KAFKA_BROKERS": "kafka-1:9092, kafka-2:9092,"},
			check: func(c Config) bool { return slices.Equal(c.Kafka.Brokers, []string{"kafka-1:9092", "kafka-2:9092"}) },
		},
		{
			name:  "the old name of the brokers' variable",
			env:   map[string]string{"IQENGINE_BROKERS": "kafka-1:9092,kafka-2:9092"},
			check: func(c Config) bool { return slices.Equal(c.Kafka.Brokers, []string{"kafka-1:9092", "kafka-2:9092"}) },
		},
		{
			name: "the other variables that predate the derived names",
			env: map[string]string{"IQENGINE_LISTEN": "0.0.0.0:7071", "IQENGINE_ADVERTISE": "http://n2:7071", "IQENGINE_DATA_DIR": "/data",
				"IQENGINE_NODE_ID": "n2", "IQENGINE_APPLICATION_ID": "app"},
			check: func(c Config) bool {
				return c.Listen == "0.0.0.0:7071" && c.Advertise == "http://n2:7071" && c.DataDir == "/data" && c.NodeID == "n2" && c.ApplicationID == "app"
			},
		},
		{
			name: "strings are taken as they are",
			env: map[string]string{"IQENGINE_KAFKA_SASL_PASSWORD": `"null: #1 ${X} '`, "IQENGINE_NODE_ID": "007",
				"IQENGINE_KAFKA_SASL_USERNAME": "null"},
			check: func(c Config) bool {
				return c.Kafka.SASL.Password == `"null: #1 ${X} '` && c.NodeID == "007" && c.Kafka.SASL.Username == "null"
			},
		},
		{
			name:  "empty is unset",
			env:   map[string]string{"IQENGINE_LISTEN": "", "IQENGINE_QUERY_TIMEOUT": ""},
			check: func(c Config) bool { return c.Listen == Default().Listen && c.Query.Timeout == Default().Query.Timeout },
		},
		{
			name: "bad values, each named",
			env: map[string]string{"IQENGINE_QUERY_TIMEOUT": "5 seconds", "IQENGINE_STORAGE_CACHE_SIZE": "64 mb",
				"IQENGINE_QUERY_MAX_LIMIT": "lots", "IQENGINE_KAFKA_TLS_ENABLED": "maybe"},
			err: `IQENGINE_KAFKA_TLS_ENABLED: "maybe" is not true or false` + "\n" +
				`IQENGINE_QUERY_TIMEOUT: "5 seconds" is not a duration (like 5s or 250ms)` + "\n" +
				`IQENGINE_QUERY_MAX_LIMIT: "lots" is not an integer` + "\n" +
				`IQENGINE_STORAGE_CACHE_SIZE: "64 mb" is not a size (like 64MiB, 512KiB or 1048576)`,
		},
		{
			name: "an old name and its new one together",
			env:  map[string]string{"IQENGINE_BROKERS": "a:1", "IQENGINE_KAFKA_BROKERS": "b:1"},
			err:  "IQENGINE_BROKERS and IQENGINE_KAFKA_BROKERS are both set (IQENGINE_BROKERS is the older name of IQENGINE_KAFKA_BROKERS): set one",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			err := c.Env(func(k string) string { return tt.env[k] })
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("Env: %v\nwant %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Env: %v", err)
			}
			if !tt.check(c) {
				t.Errorf("Env(%v) did not set it: %+v", tt.env, c)
			}
		})
	}
}

// Every field but the stores has a variable named after its YAML path,
// and reads its own YAML text: setting each variable to the text of the
// default's field gives back the defaults. A field added without a text
// form fails here, rather than silently having no variable.
func TestEveryFieldHasAVariable(t *testing.T) {
	var doc yaml.Node
	if err := doc.Encode(Default()); err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{} // variable → the field's text in YAML
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			var items []string
			for _, c := range n.Content {
				items = append(items, c.Value)
			}
			texts[envPrefix+strings.ToUpper(strings.ReplaceAll(path, ".", "_"))] = strings.Join(items, ",")
		default:
			texts[envPrefix+strings.ToUpper(strings.ReplaceAll(path, ".", "_"))] = n.Value
		}
	}
	walk(&doc, "")
	// File only: lists of mappings.
	for _, name := range []string{"IQENGINE_STORES", "IQENGINE_AUTH_TOKENS", "IQENGINE_AUTH_CLIENT_CERTS"} {
		delete(texts, name)
	}

	var names []string
	for _, f := range envFields() {
		names = append(names, f.name)
	}
	slices.Sort(names)
	var want []string
	for name := range texts {
		want = append(want, name)
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("variables:\n got  %v\n want %v", names, want)
	}

	var c Config
	if err := c.Env(func(k string) string { return texts[k] }); err != nil {
		t.Fatal(err)
	}
	if d := Default(); !reflect.DeepEqual(c, d) {
		t.Fatalf("the defaults' texts through the environment:\n got  %+v\n want %+v", c, d)
	}
}
