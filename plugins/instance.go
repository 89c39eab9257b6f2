package plugins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// Result statuses of sdk/ABI.md.
const (
	statusReject = -1
	statusFail   = -2
	statusSkip   = -3
)

const (
	opKeyToJSON = iota
	opValueToJSON
	opKeyFromText
	opPartition
	opBegin
	opRecord
	opEnd
	opInit
	opInitialize
	opLastError
	nOps
)

var opNames = [nOps]string{
	opKeyToJSON:   "iq_key_to_json",
	opValueToJSON: "iq_value_to_json",
	opKeyFromText: "iq_key_from_text",
	opPartition:   "iq_partition",
	opBegin:       "iq_transform_begin",
	opRecord:      "iq_transform_record",
	opEnd:         "iq_transform_end",
	opInit:        "iq_init",
	opInitialize:  "_initialize",
	opLastError:   "iq_last_error",
}

// instance is one instantiated module with its cached function handles and
// call stack. Only the goroutine that borrowed it from the pool uses it.
type instance struct {
	v     *version
	ctx   context.Context // of every call: carries the instance to host functions
	mod   api.Module
	mem   api.Memory
	alloc api.Function
	fns   [nOps]api.Function
	stack [3]uint64

	buf, bufCap uint32 // the input region from iq_alloc

	busySince atomic.Int64 // nanotime when the current call began; 0 when idle
	spent     atomic.Int64 // plugin time already used by the current batch
	timedOut  atomic.Bool
	broken    bool // faulted: close it instead of reusing it
	// registryDown is set when iq.schema answered that the registry is
	// unavailable during the current call: a failure of that call is
	// then the registry's (Error.Unwrap), not the plugin's.
	registryDown bool

	stderr stderrBuf
}

func (v *version) newInstance(ctx context.Context) (*instance, error) {
	in := &instance{v: v}
	in.ctx = context.WithValue(context.Background(), instanceKey{}, in)
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithStdout(io.Discard).
		WithStderr(&in.stderr)
	if v.m.spec.AllowClock {
		cfg = cfg.WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	}
	mod, err := v.rt.InstantiateModule(ctx, v.cm, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %v", firstLine(err.Error()))
	}
	in.mod = mod
	in.mem = mod.ExportedMemory("memory")
	in.alloc = mod.ExportedFunction("iq_alloc")
	for op, name := range opNames {
		in.fns[op] = mod.ExportedFunction(name)
	}
	v.mu.Lock()
	v.live[in] = struct{}{}
	v.mu.Unlock()
	v.m.metrics.instances.Inc()

	fail := func(err error) (*instance, error) {
		v.mu.Lock()
		delete(v.live, in)
		v.mu.Unlock()
		v.m.metrics.instances.Dec()
		mod.Close(ctx)
		return nil, err
	}
	in.spent.Store(0)
	if fn := in.fns[opInitialize]; fn != nil {
		if err := in.invoke(opInitialize); err != nil {
			return fail(fmt.Errorf("_initialize: %v", err))
		}
	}
	if in.fns[opInit] != nil {
		in.spent.Store(0)
		st, err := in.callIn(opInit, v.m.spec.Config)
		if err != nil {
			return fail(fmt.Errorf("iq_init: %v", err))
		}
		if int32(st) != 0 {
			msg := in.lastError()
			if msg == "" {
				msg = fmt.Sprintf("status %d", int32(st))
			}
			return fail(fmt.Errorf("iq_init refused the config %s: %s", v.m.spec.Config, msg))
		}
	}
	return in, nil
}

// invoke calls fns[op] with the params already on the stack, under the
// watchdog. A failed call marks the instance broken and says why.
func (in *instance) invoke(op int) error {
	in.stderr.n = 0
	in.registryDown = false
	in.busySince.Store(nanotime())
	err := in.fns[op].CallWithStack(in.ctx, in.stack[:])
	start := in.busySince.Swap(0)
	in.spent.Add(nanotime() - start)
	if err == nil {
		if in.timedOut.Load() {
			// The watchdog closed the instance just as the call ended: the
			// answer stands, the instance does not.
			in.broken = true
		}
		return nil
	}
	in.broken = true
	return in.classify(op, err)
}

// classify turns a failed call into an Error of the right kind.
func (in *instance) classify(op int, err error) *Error {
	e := &Error{Plugin: in.v.m.name, Op: opNames[op], Kind: KindTrap, Msg: firstLine(err.Error()), registryDown: in.registryDown}
	var exit *sys.ExitError
	switch {
	case in.timedOut.Load():
		e.Kind, e.Msg = KindTimeout, fmt.Sprintf("ran past the %s deadline (plugins.timeout)", in.v.m.h.opts.Timeout)
	case errors.As(err, &exit):
		e.Msg = fmt.Sprintf("exited with code %d", exit.ExitCode())
	}
	if e.Kind != KindTimeout && in.mem != nil && uint64(in.mem.Size())+65536 > uint64(in.v.m.h.pages)*65536 {
		e.Kind = KindMemory
		e.Msg = fmt.Sprintf("used its whole memory cap of %d MiB (plugins.memory_limit): %s", uint64(in.v.m.h.pages)*65536>>20, e.Msg)
	}
	if s := in.stderr.String(); s != "" {
		e.Msg += "; stderr: " + s
	}
	return e
}

// input writes the concatenation of parts into the plugin's input region,
// growing it with iq_alloc when needed, and leaves ptr, len on the stack.
func (in *instance) input(op int, a, b, c []byte) error {
	n := len(a) + len(b) + len(c)
	if uint64(n) > 1<<31 {
		return &Error{Plugin: in.v.m.name, Op: opNames[op], Kind: KindTooLarge, Msg: "input over 2 GiB"}
	}
	if uint32(n) > in.bufCap || in.buf == 0 && in.bufCap == 0 {
		size := uint32(1024)
		for size < uint32(n) {
			size *= 2
		}
		in.stack[0] = uint64(size)
		in.stderr.n = 0
		in.busySince.Store(nanotime())
		err := in.alloc.CallWithStack(in.ctx, in.stack[:])
		start := in.busySince.Swap(0)
		in.spent.Add(nanotime() - start)
		if err != nil {
			in.broken = true
			e := in.classify(op, err)
			e.Op = "iq_alloc"
			return e
		}
		ptr := uint32(in.stack[0])
		if uint64(ptr)+uint64(size) > uint64(in.mem.Size()) {
			in.broken = true
			return in.fault(KindBadResult, "iq_alloc", fmt.Sprintf("iq_alloc(%d) returned [%d, %d), outside memory of %d bytes", size, ptr, uint64(ptr)+uint64(size), in.mem.Size()))
		}
		in.buf, in.bufCap = ptr, size
	}
	off := in.buf
	for _, p := range [3][]byte{a, b, c} {
		if len(p) > 0 {
			in.mem.Write(off, p)
			off += uint32(len(p))
		}
	}
	in.stack[0], in.stack[1] = uint64(in.buf), uint64(n)
	return nil
}

// callIn writes the input, calls op and returns its raw result.
func (in *instance) callIn(op int, input []byte) (uint64, error) {
	if err := in.input(op, input, nil, nil); err != nil {
		return 0, err
	}
	if err := in.invoke(op); err != nil {
		return 0, err
	}
	return in.stack[0], nil
}

// region reads an i64 result: the output bytes (a view into the plugin's
// memory, valid until the next call), or the status.
func (in *instance) region(op int, r uint64, skipOK bool) (out []byte, skip bool, err error) {
	if s := int64(r); s < 0 {
		switch s {
		case statusReject, statusFail:
			return nil, false, in.status(op, s)
		case statusSkip:
			if skipOK {
				return nil, true, nil
			}
		}
		in.broken = true
		return nil, false, in.fault(KindBadResult, opNames[op], fmt.Sprintf("unknown status %d", s))
	}
	ptr, n := uint32(r>>32), uint32(r)
	if n == 0 {
		return nil, false, nil
	}
	if max := in.v.m.h.opts.MaxOutput; uint64(n) > uint64(max) {
		in.broken = true
		return nil, false, in.fault(KindTooLarge, opNames[op], fmt.Sprintf("a result of %d bytes is over the %d-byte cap (plugins.max_output)", n, max))
	}
	b, ok := in.mem.Read(ptr, n)
	if !ok {
		in.broken = true
		return nil, false, in.fault(KindBadResult, opNames[op], fmt.Sprintf("result [%d, %d) is outside memory of %d bytes", ptr, uint64(ptr)+uint64(n), in.mem.Size()))
	}
	return b, false, nil
}

// status turns a reject or fail status into its Error, with the plugin's
// message.
func (in *instance) status(op int, s int64) *Error {
	down := in.registryDown // before iq_last_error, a call of its own
	e := &Error{Plugin: in.v.m.name, Op: opNames[op], Kind: KindRejected, Msg: in.lastError()}
	if s == statusFail {
		e.Kind = KindFailed
		e.registryDown = down
		in.v.m.metrics.faults[KindFailed].Inc()
	} else {
		in.v.m.metrics.rejected.Inc()
	}
	return e
}

// fault is an Error of the given kind, counted.
func (in *instance) fault(kind Kind, op, msg string) *Error {
	in.v.m.metrics.faults[kind].Inc()
	in.v.m.h.opts.Logger.Warn("plugin fault; instance replaced", "plugin", in.v.m.name, "op", op, "kind", kind, "err", msg)
	return &Error{Plugin: in.v.m.name, Op: op, Kind: kind, Msg: msg, counted: true}
}

// countFault counts an Error from invoke or input.
func (in *instance) count(err error) error {
	var e *Error
	if errors.As(err, &e) && !e.counted && e.Kind != KindRejected && e.Kind != KindFailed {
		e.counted = true
		if c, ok := in.v.m.metrics.faults[e.Kind]; ok {
			c.Inc()
		}
		in.v.m.h.opts.Logger.Warn("plugin fault; instance replaced", "plugin", e.Plugin, "op", e.Op, "kind", e.Kind, "err", e.Msg)
	}
	return err
}

// lastError is the plugin's message for its last failed call, if it
// exports iq_last_error; at most 512 bytes.
func (in *instance) lastError() string {
	if in.fns[opLastError] == nil {
		return ""
	}
	if err := in.invoke(opLastError); err != nil {
		return ""
	}
	r := in.stack[0]
	ptr, n := uint32(r>>32), uint32(r)
	if int64(r) < 0 || n == 0 {
		return ""
	}
	n = min(n, 512)
	b, ok := in.mem.Read(ptr, n)
	if !ok {
		return ""
	}
	return strings.ToValidUTF8(string(b), "?")
}

// stderrBuf keeps the first KiB a plugin writes to stderr during one call,
// to explain a trap (a Go panic prints there).
type stderrBuf struct {
	b [1024]byte
	n int
}

func (s *stderrBuf) Write(p []byte) (int, error) {
	s.n += copy(s.b[s.n:], p)
	return len(p), nil
}

func (s *stderrBuf) String() string {
	return firstLine(strings.ToValidUTF8(strings.TrimSpace(string(s.b[:s.n])), "?"))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
