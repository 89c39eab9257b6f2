package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ${VAR} references in the file's values expand from the environment
// before the values are decoded; an unset one is an error with its line.
func TestLoadExpandsReferences(t *testing.T) {
	env := map[string]string{"HOST": "10.0.0.7", "PORT": "7071", "LIMIT": "50", "TIMEOUT": "2s",
		"PASSWORD": `a: b # c, "d" ${HOST} [e]`, "TOPIC": "orders-v2", "CLOCK": "true"}
	tests := []struct {
		name  string
		yaml  string
		check func(c Config) bool
		err   string // in the error, after "config PATH: "
	}{
		{
			name:  "several in one value",
			yaml:  "listen: ${HOST}:${PORT}\n",
			check: func(c Config) bool { return c.Listen == "10.0.0.7:7071" },
		},
		{
			name:  "a plain value takes the type of what it expands to",
			yaml:  "query:\n  max_limit: ${LIMIT}\n  timeout: ${TIMEOUT}\n",
			check: func(c Config) bool { return c.Query.MaxLimit == 50 && c.Query.Timeout.D() == 2*time.Second },
		},
		{
			name:  "a value is never read as YAML",
			yaml:  "kafka:\n  sasl:\n    password: ${PASSWORD}\n",
			check: func(c Config) bool { return c.Kafka.SASL.Password == env["PASSWORD"] },
		},
		{
			name:  "in quotes",
			yaml:  "node_id: \"${PORT}\"\nkafka: {client_id: 'id-${PORT}'}\n",
			check: func(c Config) bool { return c.NodeID == "7071" && c.Kafka.ClientID == "id-7071" },
		},
		{
			name:  "in a list",
			yaml:  "kafka:\n  brokers: [\"${HOST}:9092\", other:9092]\n",
			check: func(c Config) bool { return len(c.Kafka.Brokers) == 2 && c.Kafka.Brokers[0] == "10.0.0.7:9092" },
		},
		{
			name: "in stores and plugin configs",
			yaml: "stores:\n  - name: a\n    topic: ${TOPIC}\n    value:\n      wasm: v\n      config: {host: '${HOST}'}\n      allow_clock: ${CLOCK}\n",
			check: func(c Config) bool {
				s := c.Stores[0]
				return s.Topic == "orders-v2" && string(s.Value.ConfigJSON()) == `{"host":"10.0.0.7"}` && s.Value.AllowClock
			},
		},
		{
			name:  "a default",
			yaml:  "listen: ${NOPE:-127.0.0.1:7070}\nnode_id: ${HOST:-unused}\n",
			check: func(c Config) bool { return c.Listen == "127.0.0.1:7070" && c.NodeID == "10.0.0.7" },
		},
		{
			name:  "an empty default",
			yaml:  "advertise: \"${NOPE:-}\"\n",
			check: func(c Config) bool { return c.Advertise == "" },
		},
		{
			name:  "an escaped reference and a lone $",
			yaml:  "kafka:\n  sasl: {password: 'pa$$word $${HOST}'}\n",
			check: func(c Config) bool { return c.Kafka.SASL.Password == "pa$$word ${HOST}" },
		},
		{
			name:  "comments and keys are not expanded",
			yaml:  "# listen: ${NOPE}\nlisten: 127.0.0.1:1 # ${NOPE}\n",
			check: func(c Config) bool { return c.Listen == "127.0.0.1:1" },
		},
		{
			name:  "an anchor expands once",
			yaml:  "stores:\n  - &s {name: a, topic: '$${X}'}\n  - <<: *s\n    name: b\n",
			check: func(c Config) bool { return c.Stores[0].Topic == "${X}" && c.Stores[1].Topic == "${X}" },
		},
		{
			name: "unset",
			yaml: "listen: 127.0.0.1:1\nkafka:\n  sasl: {password: '${KAFKA_PASSWORD}'}\n",
			err:  "line 3: ${KAFKA_PASSWORD}: KAFKA_PASSWORD is not set (give it a value, or a default: ${KAFKA_PASSWORD:-default})",
		},
		{
			name: "each unset one",
			yaml: "listen: ${A}\nnode_id: ${B:-b}\ndata_dir: ${C}\n",
			err:  "line 1: ${A}: A is not set (give it a value, or a default: ${A:-default})\nline 3: ${C}: C is not set",
		},
		{
			name: "not closed",
			yaml: "\nlisten: x${HOST\n",
			err:  `line 2: "${HOST" has a ${ with no closing } (write $${ for a literal ${)`,
		},
		{
			name: "not a name",
			yaml: "listen: ${HOST NAME}\n",
			err:  `line 1: ${HOST NAME}: "HOST NAME" is not a variable name`,
		},
		{
			name: "an expanded value of the wrong type",
			yaml: "query:\n  timeout: ${HOST}\n",
			err:  `line 2: "10.0.0.7" is not a duration`,
		},
		{
			name: "unknown fields are still refused, with their line",
			yaml: "listen: ${HOST}:1\nquery:\n  defualt_limit: 5\nstores:\n  - {name: a, topic: t, vaule: json}\n",
			err:  "line 3: field defualt_limit not found in type config.Query\nline 5: field vaule not found in type config.Store",
		},
		{
			name: "in a merged mapping too",
			yaml: "stores:\n  - &s {name: a, topic: t, tpoic: x}\n  - <<: *s\n    name: b\n",
			err:  "line 2: field tpoic not found in type config.Store",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadEnv(path, func(k string) string { return env[k] })
			if tt.err != "" {
				// As many errors as wanted, the last one possibly longer.
				if err == nil || !strings.HasPrefix(err.Error(), "config "+path+": "+tt.err) ||
					strings.Count(err.Error(), "\n") != strings.Count(tt.err, "\n") {
					t.Fatalf("err = %v\nwant it to start %q", err, "config "+path+": "+tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("got %+v", c)
			}
		})
	}
}
