package plugins

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// ABIVersion is the newest plugin ABI version this host supports, and
// ABIMinorVersion the newest minor version of it: a minor version adds host
// functions a module may import (1.1: iq.schema), and a module that
// imports one says so with the marker export iq_abi_v1_1 beside iq_abi_v1,
// so that a host without it refuses the module with the version it needs
// rather than an unknown import.
const (
	ABIVersion      = 1
	ABIMinorVersion = 1
)

// SchemaImport is the host function of ABI 1.1 that gives a plugin granted
// the registry capability the schema registry's schema for an id
// (sdk/ABI.md, The schema registry).
const SchemaImport = "iq.schema"

// Capability is one thing a module can do, given by the presence of its
// exports (sdk/ABI.md).
type Capability string

// Capabilities.
const (
	CapKeyToJSON   Capability = "key_to_json"
	CapValueToJSON Capability = "value_to_json"
	CapKeyFromText Capability = "key_from_text"
	CapPartition   Capability = "partition"
	CapTransform   Capability = "transform"
)

// CapRegistry is the one host capability a module asks for by an import
// rather than by its exports: it imports iq.schema. The store's config
// grants it (allow_registry); a module that imports it without the grant,
// or on a node without a schema registry, is refused at load time.
const CapRegistry Capability = "registry"

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

type signature struct{ params, results []api.ValueType }

func (s signature) String() string {
	name := func(ts []api.ValueType) string {
		var n []string
		for _, t := range ts {
			n = append(n, api.ValueTypeName(t))
		}
		return "(" + strings.Join(n, ", ") + ")"
	}
	return name(s.params) + " -> " + name(s.results)
}

// exports are the ABI v1 function exports and their signatures.
var exports = map[string]signature{
	"iq_abi_v1":           {nil, nil},
	"iq_alloc":            {[]api.ValueType{i32}, []api.ValueType{i32}},
	"_initialize":         {nil, nil},
	"iq_init":             {[]api.ValueType{i32, i32}, []api.ValueType{i32}},
	"iq_last_error":       {nil, []api.ValueType{i64}},
	"iq_key_to_json":      {[]api.ValueType{i32, i32}, []api.ValueType{i64}},
	"iq_value_to_json":    {[]api.ValueType{i32, i32}, []api.ValueType{i64}},
	"iq_key_from_text":    {[]api.ValueType{i32, i32}, []api.ValueType{i64}},
	"iq_partition":        {[]api.ValueType{i32, i32, i32}, []api.ValueType{i32}},
	"iq_transform_begin":  {[]api.ValueType{i32, i32}, []api.ValueType{i32}},
	"iq_transform_record": {[]api.ValueType{i32, i32}, []api.ValueType{i64}},
	"iq_transform_end":    {nil, nil},
}

var transformExports = []string{"iq_transform_begin", "iq_transform_record", "iq_transform_end"}

// allowedImports is the vetted import list of sdk/ABI.md. Filesystem,
// socket and every other host function are refused at load time.
var allowedImports = map[string]bool{
	"wasi_snapshot_preview1.args_get":          true,
	"wasi_snapshot_preview1.args_sizes_get":    true,
	"wasi_snapshot_preview1.environ_get":       true,
	"wasi_snapshot_preview1.environ_sizes_get": true,
	"wasi_snapshot_preview1.fd_write":          true,
	"wasi_snapshot_preview1.fd_close":          true,
	"wasi_snapshot_preview1.fd_fdstat_get":     true,
	"wasi_snapshot_preview1.fd_seek":           true,
	// Go's os and syscall packages (linked by fmt, time, encoding/json...)
	// ask for preopened directories at start-up; there are none, so these
	// only ever answer "none" (TestGoPluginMayUseTheStandardLibrary).
	"wasi_snapshot_preview1.fd_prestat_get":      true,
	"wasi_snapshot_preview1.fd_prestat_dir_name": true,
	"wasi_snapshot_preview1.fd_fdstat_set_flags": true,
	"wasi_snapshot_preview1.proc_exit":           true,
	"wasi_snapshot_preview1.random_get":          true,
	"wasi_snapshot_preview1.clock_time_get":      true,
	"wasi_snapshot_preview1.clock_res_get":       true,
	"wasi_snapshot_preview1.poll_oneoff":         true,
	"wasi_snapshot_preview1.sched_yield":         true,
	"env.abort":                                  true,
	// ABI 1.1, granted by allow_registry (Host.Load checks the grant).
	SchemaImport: true,
}

// importSignatures are the signatures of the host's own functions
// (WASI's are wazero's business).
var importSignatures = map[string]signature{
	SchemaImport: {[]api.ValueType{i32, i32, i32}, []api.ValueType{i64}},
}

// minorImports are the imports a minor version added, by the minor
// version that added them: a module importing one must declare it.
var minorImports = map[string]int{SchemaImport: 1}

var (
	markerName      = regexp.MustCompile(`^iq_abi_v([0-9]+)$`)
	minorMarkerName = regexp.MustCompile(`^iq_abi_v([0-9]+)_([0-9]+)$`)
)

// Info is what a module declares: its ABI version, capabilities, imports
// and memory. Inspect returns it without running any of the module's code.
type Info struct {
	ABIVersion int
	// ABIMinor is the minor version its iq_abi_vN_M marker declares (0
	// without one): it needs the host functions that version added.
	ABIMinor     int
	Capabilities []Capability
	Imports      []string // module.name
	Exports      []string // the ABI functions it exports, sorted
	MemoryMin    uint32   // pages of 64 KiB
	MemoryMax    uint32   // pages; 0 when unbounded
}

// Has reports whether the module has the capability.
func (i Info) Has(c Capability) bool {
	for _, have := range i.Capabilities {
		if have == c {
			return true
		}
	}
	return false
}

// check validates a compiled module against ABI v1 and the import
// allow-list and describes it. The reason it returns is one line that says
// exactly what is wrong.
func check(cm wazero.CompiledModule, memoryLimitPages uint32) (Info, error) {
	var info Info
	fns := cm.ExportedFunctions()

	// The version marker: the highest supported one wins; only unknown
	// markers is an unsupported version.
	var unknown []int
	for name := range fns {
		m := markerName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		v, _ := strconv.Atoi(m[1])
		if v >= 1 && v <= ABIVersion {
			if v > info.ABIVersion {
				info.ABIVersion = v
			}
		} else {
			unknown = append(unknown, v)
		}
	}
	if info.ABIVersion == 0 {
		if len(unknown) > 0 {
			sort.Ints(unknown)
			return info, fmt.Errorf("unsupported ABI version %d (this host supports version %d; export iq_abi_v%d)", unknown[len(unknown)-1], ABIVersion, ABIVersion)
		}
		return info, fmt.Errorf("not an iqengine plugin: no ABI marker export (want iq_abi_v%d; see sdk/ABI.md)", ABIVersion)
	}
	// Minor markers of the version in use are requirements, not
	// alternatives: the module needs what the newest one added.
	for name, def := range fns {
		m := minorMarkerName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		major, _ := strconv.Atoi(m[1])
		minor, _ := strconv.Atoi(m[2])
		if major != info.ABIVersion {
			continue
		}
		if minor > ABIMinorVersion {
			return info, fmt.Errorf("needs ABI version %d.%d (its export %s); this host supports up to %d.%d", major, minor, name, ABIVersion, ABIMinorVersion)
		}
		if len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 0 {
			return info, fmt.Errorf("export %s has signature %s, want () -> ()", name, signature{def.ParamTypes(), def.ResultTypes()})
		}
		info.ABIMinor = max(info.ABIMinor, minor)
		info.Exports = append(info.Exports, name)
	}

	for name, want := range exports {
		def, ok := fns[name]
		if !ok {
			continue
		}
		got := signature{def.ParamTypes(), def.ResultTypes()}
		if !sameTypes(got.params, want.params) || !sameTypes(got.results, want.results) {
			return info, fmt.Errorf("export %s has signature %s, want %s", name, got, want)
		}
		info.Exports = append(info.Exports, name)
	}
	sort.Strings(info.Exports)
	if _, ok := fns["iq_alloc"]; !ok {
		return info, fmt.Errorf("missing required export iq_alloc %s", exports["iq_alloc"])
	}
	mems := cm.ExportedMemories()
	mem, ok := mems["memory"]
	if !ok {
		return info, fmt.Errorf("missing required export memory")
	}
	if len(cm.ImportedMemories()) > 0 {
		return info, fmt.Errorf("imports a memory; a plugin must define and export its own")
	}
	info.MemoryMin = mem.Min()
	if max, ok := mem.Max(); ok {
		info.MemoryMax = max
	}
	if memoryLimitPages > 0 && info.MemoryMin > memoryLimitPages {
		return info, fmt.Errorf("memory starts at %d pages (%d MiB), over the cap of %d pages (plugins.memory_limit)", info.MemoryMin, uint64(info.MemoryMin)*65536>>20, memoryLimitPages)
	}

	for _, def := range cm.ImportedFunctions() {
		module, name, _ := def.Import()
		full := module + "." + name
		if !allowedImports[full] {
			return info, fmt.Errorf("forbidden import %s: plugins may import only the WASI subset listed in sdk/ABI.md (no filesystem, no sockets)", full)
		}
		if want, ok := importSignatures[full]; ok {
			got := signature{def.ParamTypes(), def.ResultTypes()}
			if !sameTypes(got.params, want.params) || !sameTypes(got.results, want.results) {
				return info, fmt.Errorf("import %s has signature %s, want %s", full, got, want)
			}
		}
		if minor := minorImports[full]; minor > info.ABIMinor {
			return info, fmt.Errorf("imports %s, which ABI version %d.%d added, without declaring that version: export iq_abi_v%d_%d as well (see sdk/ABI.md)", full, ABIVersion, minor, ABIVersion, minor)
		}
		info.Imports = append(info.Imports, full)
	}
	sort.Strings(info.Imports)

	has := func(n string) bool { _, ok := fns[n]; return ok }
	if has("iq_key_to_json") {
		info.Capabilities = append(info.Capabilities, CapKeyToJSON)
	}
	if has("iq_value_to_json") {
		info.Capabilities = append(info.Capabilities, CapValueToJSON)
	}
	if has("iq_key_from_text") {
		info.Capabilities = append(info.Capabilities, CapKeyFromText)
	}
	if has("iq_partition") {
		info.Capabilities = append(info.Capabilities, CapPartition)
	}
	n := 0
	for _, e := range transformExports {
		if has(e) {
			n++
		}
	}
	switch n {
	case len(transformExports):
		info.Capabilities = append(info.Capabilities, CapTransform)
	case 0:
	default:
		return info, fmt.Errorf("a transform exports all of %s, or none", strings.Join(transformExports, ", "))
	}
	if len(info.Capabilities) == 0 {
		return info, fmt.Errorf("exports no capability (iq_key_to_json, iq_value_to_json, iq_key_from_text, iq_partition or iq_transform_*)")
	}
	if slices.Contains(info.Imports, SchemaImport) {
		info.Capabilities = append(info.Capabilities, CapRegistry)
	}
	return info, nil
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
