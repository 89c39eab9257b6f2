package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/iqengine/iqengine/plugins"
	"github.com/iqengine/iqengine/sdk/go/iq/vectors"
)

const pluginUsage = `usage: iqengine plugin <inspect|test> MODULE.wasm [flags]

  inspect MODULE.wasm                          validate a module, load it, print its ABI version and capabilities
  test MODULE.wasm --vectors FILE.jsonl        run conformance vectors (sdk/conformance/README.md)
`

// pluginCmd is the plugin author's toolbox: inspect and test a module
// exactly as a node would load it.
func pluginCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("plugin: want a subcommand: inspect or test (see iqengine plugin -h)")}
	}
	switch args[0] {
	case "inspect":
		return pluginInspect(ctx, args[1:], stdout, stderr)
	case "test":
		return pluginTest(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, pluginUsage)
		return nil
	default:
		return usageError{fmt.Errorf("plugin: unknown subcommand %q: want inspect or test", args[0])}
	}
}

// moduleArg takes MODULE from before or after the flags.
func moduleArg(fs *flags, args []string) (string, error) {
	var module string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		module, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", fs.parse(args) // the same error, with the usage handling
	}
	if module == "" && fs.NArg() > 0 {
		module = fs.Arg(0)
		if err := fs.parse(fs.Args()[1:]); err != nil {
			return "", err
		}
	} else if fs.NArg() > 0 {
		return "", usageError{fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	if module == "" {
		return "", usageError{fmt.Errorf("%s: want a module: iqengine %s", fs.Name(), fs.synopsis)}
	}
	return module, nil
}

type pluginOpts struct {
	config     *string
	allowClock *bool
	timeout    *string
	memory     *int64
}

func addPluginFlags(fs *flags) pluginOpts {
	return pluginOpts{
		config:     fs.String("config", "{}", "static config passed to iq_init, as JSON"),
		allowClock: fs.Bool("allow-clock", false, "give the module the real clock"),
		timeout:    fs.String("timeout", "1s", "deadline per call (plugins.timeout)"),
		memory:     fs.Int64("memory-limit", plugins.DefaultMemoryLimit, "memory cap per instance, bytes (plugins.memory_limit)"),
	}
}

// loadModule loads a module as a node would, with a quiet logger.
func loadModule(ctx context.Context, path string, o pluginOpts, config []byte) (*plugins.Host, *plugins.Module, error) {
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, usageError{err}
	}
	if !json.Valid(config) {
		return nil, nil, usageError{fmt.Errorf("--config %q is not JSON", config)}
	}
	h, err := newToolHost(o)
	if err != nil {
		return nil, nil, err
	}
	m, err := h.Load(ctx, plugins.Spec{Name: path, Binary: bin, Config: config, AllowClock: *o.allowClock})
	if err != nil {
		h.Close(ctx)
		return nil, nil, err
	}
	return h, m, nil
}

// newToolHost is a plugin host with the tools' flags: one instance per
// module, logs discarded (errors are returned).
func newToolHost(o pluginOpts) (*plugins.Host, error) {
	timeout, err := parseDuration("--timeout", *o.timeout)
	if err != nil {
		return nil, err
	}
	h, err := plugins.NewHost(plugins.Options{
		MemoryLimit: uint64(*o.memory),
		Timeout:     timeout,
		Instances:   1,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, usageError{err}
	}
	return h, nil
}

func pluginInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("plugin inspect", "plugin inspect MODULE.wasm [--config JSON]", stderr)
	o := addPluginFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	path, err := moduleArg(fs, args)
	if err != nil {
		return err
	}
	h, m, err := loadModule(ctx, path, o, []byte(*o.config))
	if err != nil {
		return err
	}
	defer h.Close(ctx)
	defer m.Close()
	info := m.Info()
	if *asJSON {
		b, _ := json.MarshalIndent(struct {
			Module string `json:"module"`
			plugins.Info
			SHA256 string `json:"sha256"`
		}{path, info, m.Hash()}, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return nil
	}
	caps := make([]string, len(info.Capabilities))
	for i, c := range info.Capabilities {
		caps[i] = string(c)
	}
	max := "unbounded"
	if info.MemoryMax > 0 {
		max = strconv.Itoa(int(info.MemoryMax)) + " pages"
	}
	abi := strconv.Itoa(info.ABIVersion)
	if info.ABIMinor > 0 {
		abi += "." + strconv.Itoa(info.ABIMinor)
	}
	fmt.Fprintf(stdout, "module        %s (sha256 %s…)\nabi           v%s\ncapabilities  %s\nexports       %s\nimports       %s\nmemory        %d pages at start, max %s\nloads         ok (iq_init accepted %s)\n",
		path, m.Hash(), abi, strings.Join(caps, ", "), strings.Join(info.Exports, " "),
		orNone(strings.Join(info.Imports, " ")), info.MemoryMin, max, *o.config)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func pluginTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("plugin test", "plugin test MODULE.wasm --vectors FILE.jsonl [--config JSON]", stderr)
	o := addPluginFlags(fs)
	file := fs.String("vectors", "", "the conformance vectors, JSON lines")
	verbose := fs.Bool("v", false, "print every vector, not only failures")
	path, err := moduleArg(fs, args)
	if err != nil {
		return err
	}
	if *file == "" {
		return usageError{errors.New("plugin test: --vectors FILE.jsonl is required")}
	}
	vs, err := vectors.Load(*file)
	if err != nil {
		return usageError{err}
	}

	bin, err := os.ReadFile(path)
	if err != nil {
		return usageError{err}
	}
	h, err := newToolHost(o)
	if err != nil {
		return err
	}
	defer h.Close(ctx)
	if !json.Valid([]byte(*o.config)) {
		return usageError{fmt.Errorf("--config %q is not JSON", *o.config)}
	}
	bad, err := h.Conform(ctx, plugins.Spec{Name: path, Binary: bin, Config: []byte(*o.config), AllowClock: *o.allowClock}, vs)
	if err != nil {
		return usageError{err}
	}
	failed := map[int]string{}
	for _, b := range bad {
		failed[b.Vector.Line] = b.Problem
	}
	for _, v := range vs {
		label := fmt.Sprintf("%s:%d: %s", *file, v.Line, v.Op)
		if v.Name != "" {
			label += " (" + v.Name + ")"
		}
		if problem, ok := failed[v.Line]; ok {
			fmt.Fprintf(stdout, "FAIL %s: %s\n", label, problem)
		} else if *verbose {
			fmt.Fprintf(stdout, "ok   %s\n", label)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("plugin test: %s: %d of %d vectors failed", path, len(bad), len(vs))
	}
	fmt.Fprintf(stdout, "PASS %s: %d vectors from %s\n", path, len(vs), *file)
	return nil
}

func parseDuration(flagName, s string) (d time.Duration, err error) {
	d, err = time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, usageError{fmt.Errorf("%s %q is not a positive duration like 1s or 250ms", flagName, s)}
	}
	return d, nil
}
