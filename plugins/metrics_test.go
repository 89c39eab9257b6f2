package plugins_test

import (
	"context"
	"testing"
	"time"

	"github.com/iqengine/iqengine/internal/testutil"
	"github.com/iqengine/iqengine/internal/wasmgen"
	"github.com/iqengine/iqengine/plugins"
)

// Every call is counted by plugin and operation, and timed, whatever its
// outcome: the calls are the denominator of the faults and rejections. A
// transform batch is one call, timed as a whole; a call that finds no free
// instance is counted but has no plugin time to observe.
func TestCallsAreCountedAndTimed(t *testing.T) {
	h, reg := newHost(t, plugins.Options{Instances: 1, Timeout: 200 * time.Millisecond})
	all := load(t, h, "all", wasmgen.EchoWith(wasmgen.EchoOptions{Partition: true, Transform: true}))
	calls := func(plugin, op string) float64 {
		return testutil.Metric(t, reg, "iqengine_plugin_calls_total", "plugin", plugin, "op", op)
	}
	timed := func(plugin, op string) float64 {
		return testutil.Metric(t, reg, "iqengine_plugin_call_duration_seconds_count", "plugin", plugin, "op", op)
	}
	run := map[string]func() error{
		"key_to_json":   func() error { _, err := all.KeyToJSON(nil, []byte(`"k"`)); return err },
		"value_to_json": func() error { _, err := all.ValueToJSON(nil, []byte(`{"v":1}`)); return err },
		"key_from_text": func() error { _, err := all.KeyFromText(nil, "k"); return err },
		"partition":     func() error { _, err := all.Partition([]byte("key"), 4); return err },
		"transform": func() error {
			b, err := all.Begin(context.Background(), []byte(`{}`))
			if err != nil {
				return err
			}
			defer b.End()
			for i := 0; i < 10; i++ { // ten records, one call
				if _, _, err := b.Record(nil, []byte(`"k"`), []byte(`{"v":1}`)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	for op, f := range run {
		for i := 0; i < 3; i++ {
			if err := f(); err != nil {
				t.Fatalf("%s: %v", op, err)
			}
		}
		if c, n := calls("all", op), timed("all", op); c != 3 || n != 3 {
			t.Errorf("%s: %v calls, %v timed; want 3 and 3", op, c, n)
		}
	}
	if sum := testutil.Metric(t, reg, "iqengine_plugin_call_duration_seconds_sum", "plugin", "all"); sum <= 0 {
		t.Errorf("plugin time of every call: %v s, want more than 0", sum)
	}

	// Faults and rejections have their denominator.
	trap := load(t, h, "trap", wasmgen.Trap())
	rej := load(t, h, "rej", wasmgen.Reject())
	for i := 0; i < 4; i++ {
		_, _ = trap.ValueToJSON(nil, []byte(`{}`))
		_, _ = rej.KeyFromText(nil, "k")
	}
	if c, f := calls("trap", "value_to_json"), testutil.Metric(t, reg, "iqengine_plugin_faults_total", "plugin", "trap"); c != 4 || f != 4 {
		t.Errorf("trap: %v calls, %v faults; want 4 of 4", c, f)
	}
	if c, r := calls("rej", "key_from_text"), testutil.Metric(t, reg, "iqengine_plugin_rejections_total", "plugin", "rej"); c != 4 || r != 4 {
		t.Errorf("rej: %v calls, %v rejections; want 4 of 4", c, r)
	}

	// With its one instance held by a batch, a call waits, finds none and
	// is counted, as a call and as a busy fault, but not timed.
	b, err := all.Begin(context.Background(), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := all.ValueToJSON(nil, []byte(`{}`)); err == nil {
		t.Fatal("a call with the only instance held by a batch succeeded")
	}
	b.End()
	if c, n, busy := calls("all", "value_to_json"), timed("all", "value_to_json"),
		testutil.Metric(t, reg, "iqengine_plugin_faults_total", "plugin", "all", "kind", "busy"); c != 4 || n != 3 || busy != 1 {
		t.Errorf("busy: %v calls, %v timed, %v busy faults; want 4, 3, 1", c, n, busy)
	}
}
