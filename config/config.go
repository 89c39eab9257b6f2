// Package config is the node's configuration: the YAML file format (with
// ${VAR} references), its defaults, the IQENGINE_* environment variables
// derived from the fields' YAML paths, and validation.
//
// Everything a user can get wrong is checked here, in one place, before any
// connection is opened or any file is written, and every error names the
// field it is about (for example "stores[1].key: unknown serde \"int128\"").
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/iqengine/iqengine/internal/nodeurl"
	"github.com/iqengine/iqengine/serde"
	"github.com/iqengine/iqengine/serde/registry"
)

// Config is one node's configuration. The zero value is not valid; start from
// Default or Load.
type Config struct {
	// ApplicationID is the Kafka consumer group id shared by every node of one
	// application. Default "iqengine".
	ApplicationID string `yaml:"application_id"`
	// NodeID names this node in the cluster; it is also the static group
	// instance id. Default: the host name.
	NodeID string `yaml:"node_id"`
	// Listen is the HTTP listen address. Default "127.0.0.1:7070".
	Listen string `yaml:"listen"`
	// Advertise is the URL other nodes use to reach this one. Default
	// "http://" + Listen.
	Advertise string `yaml:"advertise"`
	// DataDir holds the node's Pebble store. Default "./iqengine-data".
	DataDir string `yaml:"data_dir"`

	Kafka Kafka `yaml:"kafka"`
	Query Query `yaml:"query"`
	// Replication says how many nodes hold each partition.
	Replication Replication `yaml:"replication"`
	Storage     Storage     `yaml:"storage"`
	Shutdown    Shutdown    `yaml:"shutdown"`
	Plugins     Plugins     `yaml:"plugins"`
	Log         Log         `yaml:"log"`
	Tracing     Tracing     `yaml:"tracing"`
	// SchemaRegistry is where the avro, protobuf and json-schema serdes
	// find their schemas.
	SchemaRegistry SchemaRegistry `yaml:"schema_registry"`
	// Server is the HTTP listener: TLS, a separate internal listener, and
	// the bounds on concurrent work.
	Server Server `yaml:"server"`
	// Auth says who may call the HTTP API and what each caller may read.
	Auth Auth `yaml:"auth"`
	// Cluster authenticates the nodes to each other.
	Cluster Cluster `yaml:"cluster"`
	Stores  []Store `yaml:"stores"`
}

// SchemaRegistry is a Schema Registry with a Confluent-compatible API
// (Confluent's, Apicurio's /apis/ccompat/v7, Redpanda's, Karapace), used
// by stores whose serdes are avro, protobuf or json-schema. Schemas are
// fetched by id once and kept: a registry that goes down costs only
// records whose schema id has not been seen yet (see RATIONALE.md).
type SchemaRegistry struct {
	// URL is the registry's base URL, or several, comma separated, tried
	// in order. Required when a store uses a registry serde. Default "".
	URL string `yaml:"url"`
	// TLS configures https: a CA bundle, a client certificate for mutual
	// TLS. Default: the system roots.
	TLS TLS `yaml:"tls"`
	// BasicAuth is sent when its username is set.
	BasicAuth BasicAuth `yaml:"basic_auth"`
	// BearerToken is sent as "Authorization: Bearer" when set; not with
	// basic_auth. Default "".
	BearerToken string `yaml:"bearer_token"`
	// CacheSize bounds the schemas kept in memory (by id, and by subject
	// version). Default 1000.
	CacheSize int `yaml:"cache_size"`
	// CacheTTL is how long a key subject's latest version is trusted
	// before it is asked again (schemas by id never change). Default 5m.
	CacheTTL Duration `yaml:"cache_ttl"`
	// Timeout bounds one request to the registry. Default 10s.
	Timeout Duration `yaml:"timeout"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username string `yaml:"username"`
	// Password may come from IQENGINE_SCHEMA_REGISTRY_BASIC_AUTH_PASSWORD or
	// a ${VAR} reference, so that it need not be written in the file.
	Password string `yaml:"password"`
}

// URLs are the registry's URLs.
func (r SchemaRegistry) URLs() []string { return splitList(r.URL) }

// Tracing sends OpenTelemetry spans of the node's requests, calls between
// nodes, store reads and plugin calls to an OTLP collector. It is off
// unless an endpoint is set, here or in the OpenTelemetry environment.
type Tracing struct {
	// OTLPEndpoint is the collector's OTLP/HTTP base URL, such as
	// http://otel-collector:4318; spans are sent to <endpoint>/v1/traces.
	// Empty: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
	// OTEL_EXPORTER_OTLP_ENDPOINT when set, else tracing is off. Default "".
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// SampleRatio is the share of requests traced, from 0 to 1. A request
	// that arrives with a trace context (from a peer, or a client that
	// traces) follows its sampling decision instead, so that a trace is
	// whole on every node. Default 1.
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name of the spans; node_id is their
	// service.instance.id. Default "iqengine".
	ServiceName string `yaml:"service_name"`
}

// Shutdown is how a node stops on SIGTERM or SIGINT.
type Shutdown struct {
	// DrainTimeout is how long requests in flight get to finish after the
	// node has left the group and stopped taking new connections; past it
	// they are cancelled (and answer an error) before the store closes.
	// Default 10s.
	DrainTimeout Duration `yaml:"drain_timeout"`
}

// Plugins configures the WebAssembly plugin host (sdk/ABI.md).
type Plugins struct {
	// Dir is where modules named without a path are found, as
	// <dir>/<name>.wasm. Default "./iqengine-plugins".
	Dir string `yaml:"dir"`
	// CacheDir keeps compiled plugin code across restarts. Default
	// <data_dir>/wasm-cache.
	CacheDir string `yaml:"cache_dir"`
	// MemoryLimit caps each plugin instance's memory. Default 64MiB.
	MemoryLimit Size `yaml:"memory_limit"`
	// Timeout bounds one plugin call, or the plugin time of one transform
	// batch. Default 1s.
	Timeout Duration `yaml:"timeout"`
	// MaxOutput is the longest result accepted from a plugin. Default
	// 1MiB.
	MaxOutput Size `yaml:"max_output"`
	// Instances bounds each module's pool of instances. Default: the number
	// of CPUs (0).
	Instances int `yaml:"instances"`
	// ReloadInterval is how often module files are checked for a new
	// version; 0 turns reloading off. Default 1s.
	ReloadInterval Duration `yaml:"reload_interval"`
}

// Plugin names a WebAssembly module and its static config.
type Plugin struct {
	// Wasm is a module: a name (found as <plugins.dir>/<name>.wasm) or a
	// path to a .wasm file (anything with a "/" or ending in ".wasm").
	Wasm string `yaml:"wasm"`
	// Config is passed to the module's iq_init as JSON.
	Config any `yaml:"config"`
	// AllowClock gives the module the real clock instead of a virtual one.
	AllowClock bool `yaml:"allow_clock"`
	// AllowRegistry grants the registry capability: the module may ask
	// schema_registry for schemas by id (iq.schema, sdk/ABI.md).
	AllowRegistry bool `yaml:"allow_registry"`
}

// Serde is a store's key or value format: the name of a built-in serde
// (written as a plain string in YAML: key: int64), a plugin (written as
// a mapping: value: {wasm: sensor-value, config: {...}}), or a schema
// registry format (value: avro, or as a mapping with its settings:
// value: {format: avro, subject_strategy: record, record: com.acme.Order}).
type Serde struct {
	Builtin string
	Plugin
	Registry RegistrySerde
	mapping  bool // written as a mapping: a plugin, even if wasm is missing
}

// RegistrySerde is a serde whose schemas are in schema_registry: the
// Confluent wire format (a zero byte and the schema id before each record).
type RegistrySerde struct {
	// Format is avro, protobuf or json-schema.
	Format string `yaml:"format"`
	// SubjectStrategy names the subject of the key's schema, as Confluent's
	// serializers do: topic (<topic>-key, <topic>-value; the default),
	// record (the record's name) or topic_record (<topic>-<record>).
	SubjectStrategy string `yaml:"subject_strategy"`
	// Record is the fully qualified Avro record or Protobuf message name:
	// required by the record strategies; for Protobuf keys, the message
	// key text is encoded as (default: the schema's first).
	Record string `yaml:"record"`
	// SchemaID (or Version of the subject) pins the schema key text is
	// encoded with; default: the subject's latest version. Keys only.
	SchemaID int `yaml:"schema_id"`
	Version  int `yaml:"version"`
	// ReaderSchemaFile (avro only) is an .avsc file every record is
	// rendered in, whatever schema version wrote it.
	ReaderSchemaFile string `yaml:"reader_schema_file"`
}

// registryFormats are the names of the schema registry serdes, which are
// not in package serde: they need a registry.
var registryFormats = []string{"avro", "json-schema", "protobuf"}

// Builtin returns the Serde of a built-in serde name.
func Builtin(name string) Serde { return Serde{Builtin: name} }

// IsZero reports whether the serde is unset.
func (s Serde) IsZero() bool {
	return s.Builtin == "" && s.Wasm == "" && s.Registry.Format == "" && !s.mapping
}

// IsRegistry reports whether the serde's schemas are in the registry.
func (s Serde) IsRegistry() bool { return s.Registry.Format != "" }

// String is the built-in name, "wasm:" and the module, or the registry
// format.
func (s Serde) String() string {
	switch {
	case s.Wasm != "":
		return "wasm:" + s.Wasm
	case s.IsRegistry():
		return s.Registry.Format
	}
	return s.Builtin
}

// UnmarshalYAML accepts a string (a built-in serde or a registry format),
// a plugin mapping or a registry serde mapping.
func (s *Serde) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = Serde{}
		if err := n.Decode(&s.Builtin); err != nil {
			return err
		}
		if slices.Contains(registryFormats, s.Builtin) {
			s.Registry.Format, s.Builtin = s.Builtin, ""
		}
		return nil
	}
	var m struct {
		Plugin        `yaml:",inline"`
		RegistrySerde `yaml:",inline"`
	}
	if err := decodeStrict(n, &m); err != nil {
		return err
	}
	*s = Serde{Plugin: m.Plugin, Registry: m.RegistrySerde, mapping: true}
	return nil
}

// MarshalYAML writes the form UnmarshalYAML reads.
func (s Serde) MarshalYAML() (any, error) {
	switch {
	case s.IsRegistry() && s.Registry == (RegistrySerde{Format: s.Registry.Format}) && !s.mapping:
		return s.Registry.Format, nil
	case s.IsRegistry():
		return s.Registry, nil
	case s.Wasm == "" && !s.mapping:
		return s.Builtin, nil
	}
	return s.Plugin, nil
}

// RegistryConfig is the serde's settings for package serde/registry, for
// the store's topic, as its key or value.
func (s Serde) RegistryConfig(topic string, key bool, readerSchema string) registry.Config {
	r := s.Registry
	return registry.Config{
		Format: r.Format, Topic: topic, Key: key,
		SubjectStrategy: r.SubjectStrategy, Record: r.Record,
		SchemaID: r.SchemaID, Version: r.Version,
		ReaderSchema: readerSchema,
	}
}

// Transform is a store's query transform: a plugin with default
// parameters, which a query's t. parameters override.
type Transform struct {
	Plugin `yaml:",inline"`
	Params map[string]string `yaml:"params"`
}

// decodeStrict decodes a mapping node refusing unknown fields, as Load does
// for the whole file.
func decodeStrict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("line %d: %s", n.Line, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

// Kafka is how the node connects to the brokers.
type Kafka struct {
	// Brokers are the seed brokers, host:port. Default ["127.0.0.1:9092"].
	Brokers []string `yaml:"brokers"`
	// ClientID is sent to the brokers with every request. Default "iqengine".
	ClientID string `yaml:"client_id"`
	// DialTimeout bounds one connection attempt, and StartupTimeout bounds
	// the first successful request at startup, so that an unreachable
	// cluster or wrong credentials give an error instead of a hang.
	// Defaults 10s and 30s.
	DialTimeout    Duration `yaml:"dial_timeout"`
	StartupTimeout Duration `yaml:"startup_timeout"`
	// SessionTimeout is the consumer group session timeout: how long a
	// crashed node keeps its partitions before the group moves them. Default 45s.
	SessionTimeout Duration `yaml:"session_timeout"`
	// IsolationLevel is read_committed (the default: records of aborted
	// transactions are never applied, and a partition has caught up when it
	// reaches the last stable offset) or read_uncommitted (every record
	// written, committed or not, as Kafka's consumer default).
	IsolationLevel string `yaml:"isolation_level"`
	TLS            TLS    `yaml:"tls"`
	SASL           SASL   `yaml:"sasl"`
}

// TLS configures encrypted broker connections.
type TLS struct {
	// Enabled turns TLS on. It is implied by any of the file fields.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of CAs that sign the brokers' certificates.
	// Default: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key, for brokers
	// that require mutual TLS. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the broker's certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate checks. Never in production.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// On reports whether connections use TLS: Enabled, or any file set.
func (t TLS) On() bool { return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// SASL configures broker authentication.
type SASL struct {
	// Mechanism is "", "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512". Empty
	// means no SASL.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password may also come from IQENGINE_KAFKA_SASL_PASSWORD, so that it
	// need not be written in the file.
	Password string `yaml:"password"`
}

// Query bounds what one HTTP request may ask for.
type Query struct {
	// Timeout is how long a query waits (retrying with backoff) for a
	// partition that is restoring or moving before it answers 503. A request
	// may ask for less or more with ?timeout=, up to MaxTimeout.
	// Defaults 5s and 30s.
	Timeout    Duration `yaml:"timeout"`
	MaxTimeout Duration `yaml:"max_timeout"`
	// DefaultLimit and MaxLimit bound the items of one scan page.
	// Defaults 100 and 10000.
	DefaultLimit int `yaml:"default_limit"`
	MaxLimit     int `yaml:"max_limit"`
	// MaxPageBytes bounds the rendered bytes of one scan page: a page that
	// reaches it ends early, with a cursor to the rest. Default 4MiB.
	MaxPageBytes Size `yaml:"max_page_bytes"`
	// Replica is which replicas answer a query that does not say
	// (?replica=): "any" (the default) asks a key's active owner and, when
	// it cannot answer, a standby at once, whose answer says how far behind
	// it is; "active" never answers from a standby, so a query waits (and
	// then answers 503) while the active owner is down.
	Replica string `yaml:"replica"`
}

// Replication says how many nodes hold each partition, and when a
// partition may move to a node.
type Replication struct {
	// StandbyReplicas is how many nodes besides the active owner keep each
	// partition as a standby replica, consuming it from its topic: a node
	// that fails or leaves hands its partitions to a standby, which has
	// only its lag to apply, and a standby answers reads while the active
	// owner cannot. It costs each node that much more ingest and disk.
	// 0 turns standbys off. Capped by the number of other nodes. Default 1.
	StandbyReplicas int `yaml:"standby_replicas"`
	// AcceptableRecoveryLag is how many records behind the furthest
	// replica a node may be and still take a partition over at once. A
	// partition that must move to a node further behind (a new node, a
	// rebalance for balance) first warms up there as a standby, and moves
	// once within this lag. Default 10000.
	AcceptableRecoveryLag int64 `yaml:"acceptable_recovery_lag"`
}

// Storage tunes the local Pebble store.
type Storage struct {
	// CacheSize is the shared block cache. Default 128MiB.
	CacheSize Size `yaml:"cache_size"`
	// MemTableSize is the size of one memtable: larger ones make
	// restoration faster. Default 64MiB.
	MemTableSize Size `yaml:"memtable_size"`
	// SyncInterval bounds how long applied records may stay unsynced: batches
	// are committed without fsync and the WAL is synced at this interval. A
	// crash loses at most this much applied work, which is then re-read from
	// Kafka. Default 1s.
	SyncInterval Duration `yaml:"sync_interval"`
	// StallTimeout is how long one store write may take before the node
	// takes itself out: records are applied one fetch at a time, so a write
	// that does not return (a full disk stalls writes rather than failing
	// them) is a store that applies nothing more. The node then answers 503 on /healthz and
	// /readyz, leaves the group so its partitions move, and exits non-zero.
	// Default 60s.
	StallTimeout Duration `yaml:"stall_timeout"`
	// MinFreeSpace takes the node out in the same way when the disk holding
	// the store has less room than this: some failed writes break
	// Pebble past repair, so the node leaves while there is still room.
	// 0 turns the check off. Default 256MiB.
	MinFreeSpace Size `yaml:"min_free_space"`
	// ExpireInterval is how often, on topics whose cleanup.policy deletes
	// records, keys whose last record has left the log are deleted, so that
	// every node answers as one restoring from the log start. Default 1m.
	ExpireInterval Duration `yaml:"expire_interval"`
	// UnservedRetention is how long the store keeps the data of a partition
	// this node no longer serves (another node took it, or it was left from
	// an earlier run) before wiping it: a partition assigned here again
	// within it resumes where it stopped instead of restoring from the log
	// start. Raise it where partitions move away and back often and
	// restoring is slow; 0 keeps the data until the partition returns.
	// Default 1h.
	UnservedRetention Duration `yaml:"unserved_retention"`
}

// Store is one materialised topic.
type Store struct {
	// Name is the store's name in URLs: [A-Za-z0-9_.-]{1,64}.
	Name string `yaml:"name"`
	// Topic is the Kafka topic materialised into the store.
	Topic string `yaml:"topic"`
	// Key and Value are the serdes of the record key and value: built-in
	// names or plugins. Defaults "string" and "json".
	Key   Serde `yaml:"key"`
	Value Serde `yaml:"value"`
	// Transform optionally maps and filters answers at query time.
	Transform *Transform `yaml:"transform"`
	// Kind is what the topic holds: "keyvalue" (the default: the latest
	// value of each key), "window" (a Kafka Streams window store's
	// changelog) or "session" (a session store's changelog). Key is then
	// the serde of the inner key, without the times.
	Kind string `yaml:"kind"`
	// WindowSize is the length of a window store's windows (required for
	// kind window): a window's end is its start plus WindowSize.
	WindowSize Duration `yaml:"window_size"`
	// Retention is the window or session store's retention in the Kafka
	// Streams application (required for kinds window and session; by
	// default Kafka Streams retains a window store for its window size plus
	// grace, a session store for its inactivity gap plus grace): a window
	// whose start, or a session whose end, is this far behind the
	// partition's stream time is no longer answered.
	Retention Duration `yaml:"retention"`
	// WindowKey is the layout of a window store's record keys: "changelog"
	// (the default: [key][start: 8 bytes][sequence number: 4 bytes], a
	// window store's changelog) or "plain" ([key][start: 8 bytes], what
	// TimeWindowedSerializer writes).
	WindowKey string `yaml:"window_key"`
}

// Duration is a time.Duration written in YAML as "5s", "250ms" or "1m".
type Duration time.Duration

// UnmarshalYAML parses Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return atLine(n, fmt.Errorf("%q is not a duration (like 5s or 250ms)", s))
	}
	*d = Duration(v)
	return nil
}

// atLine prefixes err with n's line in the file; a node that is not from
// a file (an environment variable's value) has none.
func atLine(n *yaml.Node, err error) error {
	if n.Line == 0 {
		return err
	}
	return fmt.Errorf("line %d: %w", n.Line, err)
}

// MarshalYAML writes Go duration syntax.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a number of bytes, written in YAML as an integer or with a unit:
// "64MiB", "512KiB", "1GiB" (powers of 1024), "100MB", "1GB" (powers of
// 1000) or "4096B".
type Size int64

// sizeUnits are the suffixes ParseSize accepts: the powers of 1024 first,
// largest first (String writes those), and "B" last, so that "MiB" is not
// read as "B".
var sizeUnits = []struct {
	suffix string
	bytes  int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
	{"B", 1},
}

// ParseSize parses an integer number of bytes, optionally followed by a
// unit (see Size).
func ParseSize(text string) (Size, error) {
	t := strings.TrimSpace(text)
	mult := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.bytes
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n > math.MaxInt64/mult || n < math.MinInt64/mult {
		return 0, fmt.Errorf("%q is not a size (like 64MiB, 512KiB or 1048576)", text)
	}
	return Size(n * mult), nil
}

// UnmarshalYAML accepts an integer or a number with a unit.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	var text string
	if err := n.Decode(&text); err != nil {
		return err
	}
	v, err := ParseSize(text)
	if err != nil {
		return atLine(n, err)
	}
	*s = v
	return nil
}

// String writes the size with the largest power-of-1024 unit that divides
// it exactly ("64MiB", "1000B").
func (s Size) String() string {
	for _, u := range sizeUnits[:4] {
		if s != 0 && int64(s)%u.bytes == 0 {
			return strconv.FormatInt(int64(s)/u.bytes, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// MarshalYAML writes the size as String does.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// Default returns the configuration used when a field is not set.
func Default() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "node-1"
	}
	return Config{
		ApplicationID: "iqengine",
		NodeID:        host,
		Listen:        "127.0.0.1:7070",
		DataDir:       "./iqengine-data",
		Kafka: Kafka{
			Brokers:        []string{"127.0.0.1:9092"},
			ClientID:       "iqengine",
			DialTimeout:    Duration(10 * time.Second),
			StartupTimeout: Duration(30 * time.Second),
			SessionTimeout: Duration(45 * time.Second),
			IsolationLevel: "read_committed",
		},
		Query: Query{
			Timeout:      Duration(5 * time.Second),
			MaxTimeout:   Duration(30 * time.Second),
			DefaultLimit: 100,
			MaxLimit:     10000,
			MaxPageBytes: 4 << 20,
			Replica:      "any",
		},
		Replication: Replication{StandbyReplicas: 1, AcceptableRecoveryLag: 10000},
		Storage: Storage{
			CacheSize:      128 << 20,
			MemTableSize:   64 << 20,
			SyncInterval:   Duration(time.Second),
			StallTimeout:   Duration(60 * time.Second),
			MinFreeSpace:   256 << 20,
			ExpireInterval: Duration(time.Minute),

			UnservedRetention: Duration(time.Hour),
		},
		Shutdown: Shutdown{DrainTimeout: Duration(10 * time.Second)},
		Server:   Server{MaxInFlight: 512, MaxInFlightScans: 16, WriteTimeout: Duration(10 * time.Second)},
		Auth:     Auth{JWT: JWTAuth{Leeway: Duration(30 * time.Second)}},
		Cluster:  Cluster{ReplayWindow: Duration(30 * time.Second)},
		Plugins: Plugins{
			Dir:            "./iqengine-plugins",
			MemoryLimit:    64 << 20,
			Timeout:        Duration(time.Second),
			MaxOutput:      1 << 20,
			ReloadInterval: Duration(time.Second),
		},
		Log:     Log{Format: "text", Level: "info", KafkaLevel: "warn"},
		Tracing: Tracing{SampleRatio: 1, ServiceName: "iqengine"},
		SchemaRegistry: SchemaRegistry{
			CacheSize: registry.DefaultCacheSize,
			CacheTTL:  Duration(registry.DefaultCacheTTL),
			Timeout:   Duration(registry.DefaultTimeout),
		},
	}
}

// Load reads a YAML file over the defaults, with ${VAR} references
// expanded from the process environment (see LoadEnv). Unknown fields are
// errors, so a misspelt option is never silently ignored. It does not
// validate: apply overrides (Env) first, then call Validate.
func Load(path string) (Config, error) { return LoadEnv(path, os.Getenv) }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// SplitBrokers parses a comma-separated broker list, as given to --brokers.
func SplitBrokers(s string) []string { return splitList(s) }

var storeName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Validate fills the defaults derived from other fields (see derive), then
// checks every field. The error lists every field that is wrong, each by
// its name.
func (c *Config) Validate() error {
	c.derive()
	var p problems
	c.checkNode(&p)
	c.checkKafka(&p)
	c.checkQuery(&p)
	c.checkReplication(&p)
	c.checkStorage(&p)
	c.checkStores(&p)
	c.checkSchemaRegistry(&p)
	c.checkPlugins(&p)
	c.checkLog(&p)
	c.checkTracing(&p)
	c.checkSecurity(&p)
	return errors.Join(p...)
}

// derive fills the defaults that depend on other fields: the advertised
// URL from the listen address, the stores' serdes, the plugin cache under
// the data directory.
func (c *Config) derive() {
	if c.Advertise == "" {
		c.Advertise = "http://" + c.Listen
	}
	for i := range c.Stores {
		s := &c.Stores[i]
		if s.Key.IsZero() {
			s.Key = Builtin("string")
		}
		if s.Value.IsZero() {
			s.Value = Builtin("json")
		}
		if s.Kind == "" {
			s.Kind = "keyvalue"
		}
		if s.Kind == "window" && s.WindowKey == "" {
			s.WindowKey = "changelog"
		}
	}
	if c.Plugins.CacheDir == "" && c.DataDir != "" {
		c.Plugins.CacheDir = filepath.Join(c.DataDir, "wasm-cache")
	}
}

// problems collects what Validate finds, one error per field.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
}

func (p *problems) positive(field string, d Duration) {
	if d <= 0 {
		p.add(field, "must be positive")
	}
}

func (p *problems) plugin(field string, pl Plugin) {
	if pl.Wasm == "" {
		p.add(field+".wasm", "must name a module")
		return
	}
	if _, err := json.Marshal(jsonable(pl.Config)); err != nil {
		p.add(field+".config", "cannot be written as JSON: %v", err)
	}
}

func (p *problems) serde(field string, sd Serde, topic string, key bool) {
	switch {
	case sd.IsRegistry() && sd.Wasm != "":
		p.add(field, "names both a plugin (wasm) and a registry format (format): one or the other")
	case sd.IsRegistry():
		// The reader schema's file is read, and parsed, when the node
		// loads its stores; here only its presence matters.
		readerSchema := ""
		if sd.Registry.ReaderSchemaFile != "" {
			readerSchema = "(file)"
		}
		for _, err := range unwrapAll(sd.RegistryConfig(topic, key, readerSchema).Check()) {
			sub, msg, _ := strings.Cut(err.Error(), ": ")
			p.add(field+"."+sub, "%s", msg)
		}
	case sd.Wasm != "" || sd.mapping:
		p.plugin(field, sd.Plugin)
	default:
		if _, err := serde.Lookup(sd.Builtin); err != nil {
			p.add(field, "%v (or a schema registry format: %s)", err, strings.Join(registryFormats, ", "))
		}
	}
}

// unwrapAll is the errors joined in err, or err alone.
func unwrapAll(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (c *Config) checkNode(p *problems) {
	if c.ApplicationID == "" {
		p.add("application_id", "must not be empty")
	}
	if c.NodeID == "" {
		p.add("node_id", "must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		p.add("listen", "%q is not host:port", c.Listen)
	}
	if err := nodeurl.Check(c.Advertise); err != nil {
		p.add("advertise", "%v", err)
	}
	if c.DataDir == "" {
		p.add("data_dir", "must not be empty")
	}
	p.positive("shutdown.drain_timeout", c.Shutdown.DrainTimeout)
}

func (c *Config) checkKafka(p *problems) {
	k := c.Kafka
	if len(k.Brokers) == 0 {
		p.add("kafka.brokers", "at least one broker is needed")
	}
	for i, b := range k.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			p.add(fmt.Sprintf("kafka.brokers[%d]", i), "%q is not host:port", b)
		}
	}
	p.positive("kafka.dial_timeout", k.DialTimeout)
	p.positive("kafka.startup_timeout", k.StartupTimeout)
	p.positive("kafka.session_timeout", k.SessionTimeout)
	switch k.IsolationLevel {
	case "read_committed", "read_uncommitted":
	default:
		p.add("kafka.isolation_level", "%q is not read_committed or read_uncommitted", k.IsolationLevel)
	}
	switch k.SASL.Mechanism {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if k.SASL.Username == "" {
			p.add("kafka.sasl.username", "is required with mechanism %s", k.SASL.Mechanism)
		}
	default:
		p.add("kafka.sasl.mechanism", "%q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", k.SASL.Mechanism)
	}
	if (k.TLS.CertFile == "") != (k.TLS.KeyFile == "") {
		p.add("kafka.tls", "cert_file and key_file go together")
	}
}

func (c *Config) checkQuery(p *problems) {
	q := c.Query
	p.positive("query.timeout", q.Timeout)
	p.positive("query.max_timeout", q.MaxTimeout)
	if q.Timeout > q.MaxTimeout {
		p.add("query.timeout", "%s is over query.max_timeout %s", q.Timeout.D(), q.MaxTimeout.D())
	}
	if q.MaxLimit <= 0 {
		p.add("query.max_limit", "must be positive")
	}
	if q.DefaultLimit <= 0 || q.DefaultLimit > q.MaxLimit {
		p.add("query.default_limit", "must be between 1 and query.max_limit (%d)", q.MaxLimit)
	}
	if q.MaxPageBytes < 64<<10 {
		p.add("query.max_page_bytes", "must be at least 64KiB")
	}
	if q.Replica != "any" && q.Replica != "active" {
		p.add("query.replica", "%q is not any or active", q.Replica)
	}
}

func (c *Config) checkReplication(p *problems) {
	r := c.Replication
	if r.StandbyReplicas < 0 || r.StandbyReplicas > 8 {
		p.add("replication.standby_replicas", "%d must be from 0 (no standbys) to 8", r.StandbyReplicas)
	}
	if r.AcceptableRecoveryLag < 0 {
		p.add("replication.acceptable_recovery_lag", "must not be negative")
	}
}

func (c *Config) checkStorage(p *problems) {
	st := c.Storage
	p.positive("storage.sync_interval", st.SyncInterval)
	p.positive("storage.stall_timeout", st.StallTimeout)
	p.positive("storage.expire_interval", st.ExpireInterval)
	if st.MinFreeSpace < 0 {
		p.add("storage.min_free_space", "must not be negative (0: no check)")
	}
	if st.UnservedRetention < 0 {
		p.add("storage.unserved_retention", "must not be negative (0: keep until the partition returns)")
	}
	if st.CacheSize < 0 {
		p.add("storage.cache_size", "must not be negative")
	}
	if st.MemTableSize < 1<<20 {
		p.add("storage.memtable_size", "must be at least 1MiB")
	}
}

func (c *Config) checkStores(p *problems) {
	if len(c.Stores) == 0 {
		p.add("stores", "at least one store is needed")
	}
	names := map[string]bool{}
	topics := map[string]Store{} // the first store of each topic
	for i, s := range c.Stores {
		f := fmt.Sprintf("stores[%d]", i)
		if !storeName.MatchString(s.Name) {
			p.add(f+".name", "%q must be 1-64 of A-Z a-z 0-9 _ . -", s.Name)
		} else if names[s.Name] {
			p.add(f+".name", "%q is used twice", s.Name)
		}
		names[s.Name] = true
		if s.Topic == "" {
			p.add(f+".topic", "must not be empty")
		}
		p.serde(f+".key", s.Key, s.Topic, true)
		p.serde(f+".value", s.Value, s.Topic, false)
		if (s.Key.IsRegistry() || s.Value.IsRegistry()) && len(c.SchemaRegistry.URLs()) == 0 {
			p.add("schema_registry.url", "is required: %s reads %s records", f, registryUser(s))
		}
		if s.Transform != nil {
			p.plugin(f+".transform", s.Transform.Plugin)
		}
		p.storeKind(f, s)
		if s.Topic != "" && s.Kind != "" {
			if o, ok := topics[s.Topic]; ok && (o.Kind != s.Kind || o.WindowKey != s.WindowKey) {
				p.add(f+".kind", "this store (%s) and store %q (%s) read the same topic %q: the stores of a topic must agree on its kind and window_key, which decide how its records are applied", kindOf(s), o.Name, kindOf(o), s.Topic)
			} else if !ok {
				topics[s.Topic] = s
			}
		}
		if len(c.SchemaRegistry.URLs()) == 0 {
			for _, u := range pluginUses(f, s) {
				if u.plugin.AllowRegistry {
					p.add("schema_registry.url", "is required: %s.allow_registry grants its plugin the schema registry", u.field)
				}
			}
		}
	}
}

// kindOf describes a store's kind and window key layout.
func kindOf(s Store) string {
	if s.WindowKey != "" {
		return s.Kind + ", window_key " + s.WindowKey
	}
	return s.Kind
}

// storeKind checks a store's kind and the settings of window and session
// stores.
func (p *problems) storeKind(f string, s Store) {
	switch s.Kind {
	case "keyvalue", "":
		for _, set := range []struct {
			field string
			set   bool
		}{{"window_size", s.WindowSize != 0}, {"retention", s.Retention != 0}, {"window_key", s.WindowKey != ""}} {
			if set.set {
				p.add(f+"."+set.field, "applies to window and session stores only; this store is a keyvalue store (set kind: window or session)")
			}
		}
		return
	case "window":
		if s.WindowSize <= 0 {
			p.add(f+".window_size", "is required for a window store: the windows' size in the Kafka Streams application, like 1h or 5m")
		}
		if s.WindowKey != "changelog" && s.WindowKey != "plain" && s.WindowKey != "" {
			p.add(f+".window_key", "%q must be changelog ([key][start][sequence number], a window store's changelog) or plain ([key][start], TimeWindowedSerializer)", s.WindowKey)
		}
	case "session":
		if s.WindowSize != 0 {
			p.add(f+".window_size", "applies to window stores only; a session's end is in its key")
		}
		if s.WindowKey != "" {
			p.add(f+".window_key", "applies to window stores only; a session store's keys are [key][end][start]")
		}
	default:
		p.add(f+".kind", "%q must be keyvalue, window or session", s.Kind)
		return
	}
	if s.Retention <= 0 {
		p.add(f+".retention", "is required for a %s store: its retention in the Kafka Streams application (by default the window size or inactivity gap plus the grace period), like 3h", s.Kind)
	}
}

// pluginUse is a store field naming a plugin.
type pluginUse struct {
	field  string
	plugin Plugin
}

// pluginUses are the plugins of store s (field f), by field.
func pluginUses(f string, s Store) []pluginUse {
	var uses []pluginUse
	if s.Key.Wasm != "" {
		uses = append(uses, pluginUse{f + ".key", s.Key.Plugin})
	}
	if s.Value.Wasm != "" {
		uses = append(uses, pluginUse{f + ".value", s.Value.Plugin})
	}
	if s.Transform != nil {
		uses = append(uses, pluginUse{f + ".transform", s.Transform.Plugin})
	}
	return uses
}

// registryUser names what of a store uses the registry, for errors.
func registryUser(s Store) string {
	var uses []string
	if s.Key.IsRegistry() {
		uses = append(uses, s.Key.Registry.Format+" keys")
	}
	if s.Value.IsRegistry() {
		uses = append(uses, s.Value.Registry.Format+" values")
	}
	return strings.Join(uses, " and ")
}

func (c *Config) checkSchemaRegistry(p *problems) {
	r := c.SchemaRegistry
	for _, u := range r.URLs() {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			p.add("schema_registry.url", "%q is not an http(s) URL", u)
		}
	}
	if (r.TLS.CertFile == "") != (r.TLS.KeyFile == "") {
		p.add("schema_registry.tls", "cert_file and key_file go together")
	}
	if r.BasicAuth.Username == "" && r.BasicAuth.Password != "" {
		p.add("schema_registry.basic_auth.username", "is required with a password")
	}
	if r.BasicAuth.Username != "" && r.BearerToken != "" {
		p.add("schema_registry.bearer_token", "and basic_auth: one or the other")
	}
	if r.CacheSize <= 0 {
		p.add("schema_registry.cache_size", "must be positive")
	}
	p.positive("schema_registry.cache_ttl", r.CacheTTL)
	p.positive("schema_registry.timeout", r.Timeout)
}

func (c *Config) checkPlugins(p *problems) {
	pl := c.Plugins
	if pl.MemoryLimit < 65536 {
		p.add("plugins.memory_limit", "must be at least 64KiB (one page)")
	}
	p.positive("plugins.timeout", pl.Timeout)
	if pl.MaxOutput <= 0 {
		p.add("plugins.max_output", "must be positive")
	}
	if pl.Instances < 0 {
		p.add("plugins.instances", "must not be negative (0: the number of CPUs)")
	}
	if pl.ReloadInterval < 0 {
		p.add("plugins.reload_interval", "must not be negative (0: no reloading)")
	}
}

func (c *Config) checkTracing(p *problems) {
	tr := c.Tracing
	if tr.OTLPEndpoint != "" {
		u, err := url.Parse(tr.OTLPEndpoint)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			p.add("tracing.otlp_endpoint", "%q is not an http(s) URL", tr.OTLPEndpoint)
		case strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/v1/traces"):
			p.add("tracing.otlp_endpoint", "%q: give the collector's base URL; /v1/traces is added", tr.OTLPEndpoint)
		}
	}
	if !(tr.SampleRatio >= 0 && tr.SampleRatio <= 1) {
		p.add("tracing.sample_ratio", "%v is not between 0 and 1", tr.SampleRatio)
	}
	if tr.ServiceName == "" {
		p.add("tracing.service_name", "must not be empty")
	}
}

// ModulePath is where a plugin's module file is: Wasm itself when it is a
// path, else <dir>/<name>.wasm.
func (c *Config) ModulePath(p Plugin) string {
	if strings.ContainsRune(p.Wasm, '/') || strings.HasSuffix(p.Wasm, ".wasm") {
		return p.Wasm
	}
	return filepath.Join(c.Plugins.Dir, p.Wasm+".wasm")
}

// ConfigJSON is the plugin's static config as the JSON iq_init receives;
// "{}" when none.
func (p Plugin) ConfigJSON() []byte {
	if p.Config == nil {
		return []byte("{}")
	}
	b, err := json.Marshal(jsonable(p.Config))
	if err != nil {
		return []byte("{}") // Validate refuses such configs
	}
	return b
}

// jsonable turns YAML's map[any]any (never produced by yaml.v3 for string
// keys, but possible for others) into values encoding/json accepts.
func jsonable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = jsonable(x)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[fmt.Sprint(k)] = jsonable(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = jsonable(x)
		}
		return out
	}
	return v
}
