package plugins

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/iqengine/iqengine/sdk/go/iq/vectors"
	"github.com/iqengine/iqengine/serde"
)

// Mismatch is a conformance vector a module did not pass.
type Mismatch struct {
	Vector  vectors.Vector
	Problem string // what differs, e.g. `got "x", want "y"`
}

// Conform runs conformance vectors (sdk/conformance/README.md) against a
// module loaded as spec says, in order, and returns the vectors it fails.
// An init vector loads the module again with the vector's config; the new
// instance serves the vectors after it when the init succeeds as expected.
// The error is for a module that does not load at all.
func (h *Host) Conform(ctx context.Context, spec Spec, vs []vectors.Vector) ([]Mismatch, error) {
	m, err := h.Load(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer func() { m.Close() }()
	var out []Mismatch
	for _, v := range vs {
		var problem string
		if v.Op == "init" {
			s := spec
			s.Config = v.Config
			nm, err := h.Load(ctx, s)
			switch {
			case err != nil && v.Error == "":
				problem = "init failed: " + err.Error()
			case err == nil && v.Error != "":
				nm.Close()
				problem = "init succeeded, want " + v.Error
			case err == nil:
				m.Close()
				m = nm
			}
		} else {
			problem = runVector(m, v)
		}
		if problem != "" {
			out = append(out, Mismatch{Vector: v, Problem: problem})
		}
	}
	return out, nil
}

// outcome names an error as the vectors do.
func outcome(err error) string {
	var pe *Error
	switch {
	case err == nil:
		return "success"
	case errors.As(err, &pe) && pe.Kind == KindRejected:
		return "reject"
	case errors.As(err, &pe) && pe.Kind == KindFailed:
		return "fail"
	default:
		return "fault: " + err.Error()
	}
}

// runVector runs one vector and says what differs ("" when it passes).
func runVector(m *Module, v vectors.Vector) string {
	var out []byte
	var err error
	keep := true
	switch v.Op {
	case "key_to_json":
		out, err = m.KeyToJSON(nil, v.Input())
	case "value_to_json":
		out, err = m.ValueToJSON(nil, v.Input())
	case "key_from_text":
		out, err = m.KeyFromText(nil, string(v.Input()))
	case "partition":
		var p int32
		p, err = KeySerde{M: m}.Partition(v.Input(), *v.Partitions)
		if err == nil && v.Error == "" {
			if p != *v.Partition {
				return fmt.Sprintf("got partition %d, want %d", p, *v.Partition)
			}
			return ""
		}
	case "transform":
		params := v.Params
		if params == nil {
			params = map[string]string{}
		}
		pj, _ := json.Marshal(params)
		var b *Batch
		if b, err = m.Begin(context.Background(), pj); err == nil {
			out, keep, err = b.Record(nil, []byte(*v.Key), []byte(*v.Value))
			b.End()
		}
	default:
		return "unknown op " + v.Op
	}
	if v.Error != "" || err != nil {
		want := v.Error
		if want == "" {
			want = "success"
		}
		if got := outcome(err); got != want {
			return fmt.Sprintf("got %s, want %s", got, want)
		}
		return ""
	}
	if v.Skip != !keep {
		if v.Skip {
			return fmt.Sprintf("got output %q, want the record skipped", out)
		}
		return "got the record skipped, want output"
	}
	if v.Skip {
		return ""
	}
	if v.OutHex != nil {
		if got, want := hex.EncodeToString(out), strings.ToLower(*v.OutHex); got != want {
			return fmt.Sprintf("got %s, want %s (hex)", got, want)
		}
	} else if string(out) != *v.Out {
		return fmt.Sprintf("got %q, want %q", out, *v.Out)
	}
	if v.Op == "key_from_text" && v.Partitions != nil && v.Partition != nil {
		p, err := serde.PartitionOf(KeySerde{M: m}, out, *v.Partitions)
		if err != nil {
			return "partition of the key: " + outcome(err)
		}
		if p != *v.Partition {
			return fmt.Sprintf("key partition %d, want %d", p, *v.Partition)
		}
	}
	return ""
}
