package plugins_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/iqengine/iqengine/internal/demo"
	"github.com/iqengine/iqengine/internal/testplugins"
	"github.com/iqengine/iqengine/plugins"
)

// implementation is one SDK's build of the three example plugins.
type implementation struct {
	name    string
	modules map[string]*plugins.Module
}

// implementations are the Go examples, the AssemblyScript builds the demo
// embeds, and every SDK build named in IQENGINE_SDK_BUILDS (name=dir,...,
// as scripts/sdk-test.sh passes).
func implementations(t *testing.T) []implementation {
	h, _ := newHost(t, plugins.Options{Instances: 1})
	load := func(name string, bin []byte) *plugins.Module {
		m, err := h.Load(context.Background(), plugins.Spec{Name: name, Binary: bin})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		return m
	}
	var out []implementation
	add := func(impl string, read func(example string) []byte) {
		ms := map[string]*plugins.Module{}
		for _, ex := range testplugins.Names {
			ms[ex] = load(impl+"/"+ex, read(ex))
		}
		out = append(out, implementation{impl, ms})
	}
	if !raceEnabled {
		// Compiling the 2 MB Go modules with the race detector on takes a
		// minute; the plain run compares them.
		add("go", func(ex string) []byte { return testplugins.Module(t, ex) })
	}
	add("demo-embedded", func(ex string) []byte {
		b, err := demo.Plugin(ex)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
	for _, kv := range strings.Split(os.Getenv("IQENGINE_SDK_BUILDS"), ",") {
		if name, dir, ok := strings.Cut(kv, "="); ok {
			add(name, func(ex string) []byte {
				b, err := os.ReadFile(filepath.Join(dir, ex+".wasm"))
				if err != nil {
					t.Fatal(err)
				}
				return b
			})
		}
	}
	return out
}

// result is what one call gave: the output bytes, or the status.
func result(out []byte, keep bool, err error) string {
	var pe *plugins.Error
	switch {
	case err == nil && !keep:
		return "skip"
	case err == nil:
		return "out " + strconv.Quote(string(out))
	case errorsAs(err, &pe) && pe.Kind == plugins.KindRejected:
		return "reject"
	case errorsAs(err, &pe) && pe.Kind == plugins.KindFailed:
		return "fail"
	default:
		return "fault " + err.Error()
	}
}

// TestSDKsAgree feeds the same random inputs, valid and not, to every
// implementation of the example plugins and requires byte-identical
// outputs and identical statuses: the SDKs behave the same beyond the
// hand-written vectors.
func TestSDKsAgree(t *testing.T) {
	impls := implementations(t)
	if len(impls) < 2 {
		t.Skip("one implementation only under the race detector; the plain run compares the Go examples too")
	}
	names := make([]string, len(impls))
	for i, im := range impls {
		names[i] = im.name
	}
	n := 3000
	if raceEnabled {
		n = 300
	}
	rng := rand.New(rand.NewPCG(7, 11))
	type call struct {
		what string
		run  func(ms map[string]*plugins.Module) string
	}
	var calls []call
	for range n {
		rec := randomSensorRecord(rng)
		calls = append(calls, call{fmt.Sprintf("sensor-value %x", rec), func(ms map[string]*plugins.Module) string {
			out, err := ms["sensor-value"].ValueToJSON(nil, rec)
			return result(out, true, err)
		}})
		key := randomBytes(rng, rng.IntN(9))
		if rng.IntN(2) == 0 {
			key = randomBytes(rng, 6)
		}
		calls = append(calls, call{fmt.Sprintf("sensor-key to JSON %x", key), func(ms map[string]*plugins.Module) string {
			out, err := ms["sensor-key"].KeyToJSON(nil, key)
			return result(out, true, err)
		}})
		text := randomKeyText(rng)
		calls = append(calls, call{fmt.Sprintf("sensor-key from text %q", text), func(ms map[string]*plugins.Module) string {
			out, err := ms["sensor-key"].KeyFromText(nil, text)
			return result(out, true, err)
		}})
		parts := int32(1 + rng.IntN(100))
		calls = append(calls, call{fmt.Sprintf("sensor-key partition %x of %d", key, parts), func(ms map[string]*plugins.Module) string {
			p, err := ms["sensor-key"].Partition(key, parts)
			return result([]byte(strconv.Itoa(int(p))), true, err)
		}})
		params, value := randomTransform(rng)
		calls = append(calls, call{fmt.Sprintf("project %s on %s", params, value), func(ms map[string]*plugins.Module) string {
			b, err := ms["project"].Begin(context.Background(), params)
			if err != nil {
				return "begin " + result(nil, true, err)
			}
			defer b.End()
			out, keep, err := b.Record(nil, []byte(`"k"`), value)
			return result(out, keep, err)
		}})
	}
	differ := 0
	kinds := map[string]int{}
	for _, c := range calls {
		want := c.run(impls[0].modules)
		kinds[strings.SplitN(want, " ", 2)[0]]++
		for _, im := range impls[1:] {
			if got := c.run(im.modules); got != want {
				differ++
				if differ <= 10 {
					t.Errorf("%s:\n  %s: %s\n  %s: %s", c.what, impls[0].name, want, im.name, got)
				}
			}
		}
	}
	if differ > 0 {
		t.Fatalf("%d of %d calls differ", differ, len(calls)*(len(impls)-1))
	}
	t.Logf("%d random calls, identical across %s; outcomes %v", len(calls), strings.Join(names, ", "), kinds)
}

func errorsAs(err error, pe **plugins.Error) bool {
	e, ok := err.(*plugins.Error)
	if ok {
		*pe = e
	}
	return ok
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}

// labelPieces mix ASCII, escapes, multi-byte UTF-8 and invalid bytes.
var labelPieces = []string{"a", "Z", " ", "\"", "\\", "\n", "\t", "\x01", "\x1f", "é", "日本", "🌡", "\xff", "\xc3", "/", "<", "\u2028"}

func randomSensorRecord(rng *rand.Rand) []byte {
	if rng.IntN(20) == 0 {
		return randomBytes(rng, rng.IntN(30))
	}
	v := []byte{1, byte(rng.IntN(3))}
	if rng.IntN(15) == 0 {
		v[0] = byte(rng.IntN(4))
	}
	if rng.IntN(15) == 0 {
		v[1] = byte(rng.IntN(6))
	}
	v = binary.LittleEndian.AppendUint16(v, uint16(rng.Uint32()))
	v = binary.LittleEndian.AppendUint32(v, rng.Uint32())
	v = binary.LittleEndian.AppendUint64(v, rng.Uint64())
	v = binary.LittleEndian.AppendUint32(v, rng.Uint32())
	v = binary.LittleEndian.AppendUint32(v, rng.Uint32())
	for range rng.IntN(30) {
		v = append(v, labelPieces[rng.IntN(len(labelPieces))]...)
	}
	return v
}

func randomKeyText(rng *rand.Rand) string {
	if rng.IntN(2) == 0 {
		return fmt.Sprintf("%d-%d", rng.IntN(70000), rng.Uint64N(5000000000))
	}
	const alphabet = "0123456789012345678901234567890123456789--x+ "
	var b strings.Builder
	for range rng.IntN(16) {
		b.WriteByte(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

// randomTransform is project's parameters and a well-formed JSON object
// (the host's value serde produced it).
func randomTransform(rng *rand.Rand) ([]byte, []byte) {
	fieldNames := []string{"a", "b", "temp_c", "site", "x y", "é"}
	params := map[string]string{}
	if rng.IntN(3) > 0 {
		var fs []string
		for range rng.IntN(4) {
			fs = append(fs, fieldNames[rng.IntN(len(fieldNames))])
		}
		params["fields"] = strings.Join(fs, ",")
	}
	if rng.IntN(2) == 0 {
		numbers := []string{"0", "-1", "20", "20.5", "1e3", "abc", "", "-0.25", "100"}
		params["min_"+fieldNames[rng.IntN(len(fieldNames))]] = numbers[rng.IntN(len(numbers))]
	}
	if rng.IntN(20) == 0 {
		params["colour"] = "red"
	}
	p, _ := json.Marshal(params)
	values := []string{`1`, `-2.5`, `20`, `20.5`, `1e2`, `"s"`, `true`, `null`, `[1,{"a":2}]`, `{"n":1}`, `"日本"`, `0.0001`, `-0`}
	var b strings.Builder
	if rng.IntN(25) == 0 {
		return p, []byte(values[rng.IntN(len(values))]) // not an object
	}
	b.WriteString("{")
	for i := range rng.IntN(6) {
		if i > 0 {
			b.WriteString([]string{",", " , ", ",\n"}[rng.IntN(3)])
		}
		fmt.Fprintf(&b, "%q:%s%s", fieldNames[rng.IntN(len(fieldNames))], []string{"", " "}[rng.IntN(2)], values[rng.IntN(len(values))])
	}
	b.WriteString("}")
	return p, []byte(b.String())
}
