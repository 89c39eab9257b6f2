package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iqengine/iqengine/config"
	"github.com/iqengine/iqengine/sdk/go/iq/vectors"
)

// CheckResult is one thing Check looked at: a line of `iqengine check`.
type CheckResult struct {
	// What was checked: "config", "plugin stores[0].value", "vectors
	// stores[0].value", "brokers", "topic orders (stores[0])", "group
	// iqengine".
	What string
	// Found is what a check that passed found.
	Found string
	// Err is why the check failed. It is a *ConfigError for what Start
	// would refuse before reaching Kafka (the configuration, a plugin that
	// does not load or fails its vectors), anything else for what the
	// brokers answered.
	Err error
}

// CheckOptions says what Check looks at.
type CheckOptions struct {
	// Kafka also checks the brokers, every store's topic and the group,
	// and the schema registry when a store uses it. Default false: nothing
	// leaves the process.
	Kafka bool
	// Result, if set, receives each result as soon as it is known (Check
	// also returns them all), so that a slow broker check does not hide
	// the others.
	Result func(CheckResult)
	// Logger receives the plugin host's logs. Default: discarded, as the
	// results say what matters.
	Logger *slog.Logger
}

// Check checks cfg as Start would run it, without running anything: it
// validates cfg and loads every plugin exactly as Start does, and runs a
// plugin's conformance vectors when a vectors file sits beside its module
// (see vectorsFile). With o.Kafka it then checks that the brokers answer
// and accept the credentials, that every store's topic exists (with its
// partition count and cleanup.policy) and may be read, and that the group
// may be described and joined, without joining it: Check never becomes a
// member, so a running application sees no rebalance. Check writes no
// file and creates nothing on the brokers.
//
// The results are in that order; a configuration that does not validate
// is the only result, and a broker that does not answer is the last.
func Check(ctx context.Context, cfg config.Config, o CheckOptions) []CheckResult {
	var out []CheckResult
	report := func(what, found string, err error) {
		r := CheckResult{What: what, Found: found, Err: err}
		out = append(out, r)
		if o.Result != nil {
			o.Result(r)
		}
	}
	if err := cfg.Validate(); err != nil {
		report("config", "", &ConfigError{err})
		return out
	}
	topics, _ := storeTopics(cfg)
	report("config", fmt.Sprintf("valid: application %s, node %s, %s on %s",
		cfg.ApplicationID, cfg.NodeID, plural(len(cfg.Stores), "store"), plural(len(topics), "topic")), nil)
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	checkPlugins(ctx, cfg, log, report)
	if o.Kafka {
		checkRegistry(ctx, cfg, report)
		checkKafka(ctx, cfg, report)
	}
	return out
}

type reportFunc func(what, found string, err error)

// checkPlugins loads the stores' plugins as Start does and runs their
// vectors. They compile in memory: a check writes nothing, not even
// plugins.cache_dir, which may not be writable where the check runs.
func checkPlugins(ctx context.Context, cfg config.Config, log *slog.Logger, report reportFunc) {
	cfg.Plugins.CacheDir = ""
	sp, err := loadStores(ctx, cfg, prometheus.NewRegistry(), log, nil)
	if err != nil {
		// One line per field that failed (loadStores joins them).
		errs := []error{err}
		var ce *ConfigError
		if errors.As(err, &ce) {
			if j, ok := ce.Err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
		}
		for _, e := range errs {
			report("plugin", "", &ConfigError{e})
		}
		return
	}
	defer sp.close()
	for _, m := range sp.modules {
		what := "plugin " + m.field
		info := m.Info()
		caps := make([]string, len(info.Capabilities))
		for i, c := range info.Capabilities {
			caps[i] = string(c)
		}
		found := fmt.Sprintf("%s loads (ABI v%d: %s)", m.path, info.ABIVersion, strings.Join(caps, ", "))
		file := vectorsFile(m.path)
		if file == "" {
			report(what, found+"; no vectors beside it", nil)
			continue
		}
		report(what, found, nil)
		n, err := runVectors(ctx, sp, m, file)
		if err != nil {
			report("vectors "+m.field, "", &ConfigError{err})
		} else {
			report("vectors "+m.field, fmt.Sprintf("%s: %d vectors pass", file, n), nil)
		}
	}
}

// vectorsFile is the conformance vectors file (sdk/conformance/README.md)
// that sits beside a module, or "" when there is none: NAME.vectors.jsonl
// beside NAME.wasm, or else vectors.jsonl in the module's directory, for a
// module in a directory of its own as examples/plugins/NAME/ is.
func vectorsFile(module string) string {
	for _, f := range []string{
		strings.TrimSuffix(module, ".wasm") + ".vectors.jsonl",
		filepath.Join(filepath.Dir(module), "vectors.jsonl"),
	} {
		if _, err := os.Stat(f); !errors.Is(err, fs.ErrNotExist) {
			return f // an unreadable one is reported when it is read
		}
	}
	return ""
}

// runVectors runs a vectors file against a module as it was loaded for its
// store (its config, clock and capabilities), and returns how many passed,
// or an error that names the first that failed.
func runVectors(ctx context.Context, sp *storePlugins, m loadedModule, file string) (int, error) {
	vs, err := vectors.Load(file)
	if err != nil {
		return 0, err
	}
	bad, err := sp.host.Conform(ctx, m.spec, vs)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", m.path, err)
	}
	if len(bad) > 0 {
		v := bad[0].Vector
		label := fmt.Sprintf("%s:%d: %s", file, v.Line, v.Op)
		if v.Name != "" {
			label += " (" + v.Name + ")"
		}
		return 0, fmt.Errorf("%d of %d vectors fail; the first: %s: %s", len(bad), len(vs), label, bad[0].Problem)
	}
	return len(vs), nil
}

// storeTopics lists the stores' topics once each, in the stores' order,
// with the stores that read each.
func storeTopics(cfg config.Config) ([]string, map[string][]string) {
	var topics []string
	stores := map[string][]string{}
	for i, s := range cfg.Stores {
		if _, ok := stores[s.Topic]; !ok {
			topics = append(topics, s.Topic)
		}
		stores[s.Topic] = append(stores[s.Topic], fmt.Sprintf("stores[%d]", i))
	}
	return topics, stores
}

// plural is n and noun, in the plural unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
