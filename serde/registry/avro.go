package registry

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/iqengine/iqengine/serde"
)

// avroAPI decodes records: byte and string lengths in a record are capped
// so a malformed one cannot ask for gigabytes.
var avroAPI = avro.Config{
	MaxByteSliceSize:  16 << 20,
	MaxSliceAllocSize: 16 << 20,
}.Freeze()

// avroCodec renders Avro records as JSON:
//
//   - records as objects with their fields in schema order, maps as objects
//     (keys sorted), arrays as arrays, enums as their symbol;
//   - unions as the value of the branch written, without a wrapper
//     ({"amount": 12} rather than Avro JSON's {"amount": {"int": 12}}):
//     that is what a reader of the answer expects, and the branch's type
//     is in the schema;
//   - long and int as JSON numbers (exact, all 64 bits), float and double
//     as numbers, NaN and infinities as "NaN", "+Inf", "-Inf";
//   - bytes and fixed as base64 strings (as the bytes serde);
//   - decimal as a JSON number with exactly the schema's scale of digits
//     after the point ("12.50"), never through floating point;
//   - timestamp-millis and -micros as RFC 3339 UTC text with 3 or 6
//     fraction digits, their local- variants without the Z, date as
//     2006-01-02, time-millis and -micros as 15:04:05.000(000), uuid as
//     its text.
//
// FromText reads the same JSON back (and a string, number or enum key as
// plain text), so an answer's key can be looked up.
type avroCodec struct {
	reader avro.Schema // nil: render each record in its writer's schema
	// readerKey names the reader schema among a writer schema's compiled
	// forms.
	readerKey string
}

func newAvroCodec(readerSchema string) (*avroCodec, error) {
	c := &avroCodec{}
	if readerSchema != "" {
		s, err := avro.ParseWithCache(readerSchema, "", &avro.SchemaCache{})
		if err != nil {
			return nil, fmt.Errorf("reader schema: %v", err)
		}
		c.reader = s
		fp := s.Fingerprint()
		c.readerKey = "avro-reader-" + base64.RawURLEncoding.EncodeToString(fp[:])
	}
	return c, nil
}

func (*avroCodec) schemaType() string { return "AVRO" }

// writerSchema parses a registry schema, its references first (each
// reference's named types become known to the schemas after it). Each
// schema gets a cache of names of its own: two versions of one record
// must not see each other's definitions.
func writerSchema(s *Schema) (avro.Schema, error) {
	v, err := s.compile("avro", func() (any, error) {
		cache := &avro.SchemaCache{}
		seen := map[*Schema]bool{}
		var parseRefs func(s *Schema) error
		parseRefs = func(s *Schema) error {
			for _, r := range s.References {
				if seen[r.Schema] {
					continue
				}
				seen[r.Schema] = true
				if err := parseRefs(r.Schema); err != nil {
					return err
				}
				if _, err := avro.ParseWithCache(r.Schema.Text, "", cache); err != nil {
					return fmt.Errorf("its reference %q (subject %s version %d) is not a valid Avro schema: %v", r.Name, r.Schema.Subject, r.Schema.Version, err)
				}
			}
			return nil
		}
		if err := parseRefs(s); err != nil {
			return nil, err
		}
		return avro.ParseWithCache(s.Text, "", cache)
	})
	if err != nil {
		return nil, fmt.Errorf("schema id %d from the registry is not a valid Avro schema: %v", s.ID, err)
	}
	return v.(avro.Schema), nil
}

// resolved is how records written with writer are read: the writer's
// schema, or the composite that reads them into the reader schema.
type resolved struct {
	decode avro.Schema
	render avro.Schema
}

func (c *avroCodec) schemas(s *Schema) (resolved, error) {
	w, err := writerSchema(s)
	if err != nil {
		return resolved{}, err
	}
	if c.reader == nil {
		return resolved{w, w}, nil
	}
	v, err := s.compile(c.readerKey, func() (any, error) {
		return avro.NewSchemaCompatibility().Resolve(c.reader, w)
	})
	if err != nil {
		return resolved{}, invalidf("the record's schema (id %d) cannot be read as the reader schema: %v", s.ID, err)
	}
	return resolved{v.(avro.Schema), c.reader}, nil
}

func (c *avroCodec) appendJSON(dst []byte, s *Schema, payload []byte) ([]byte, error) {
	rs, err := c.schemas(s)
	if err != nil {
		return dst, err
	}
	r := avro.NewReader(nil, 0, avro.WithReaderConfig(avroAPI)).Reset(payload)
	var v any
	r.ReadVal(rs.decode, &v)
	if r.Error != nil {
		return dst, invalidf("not an Avro record of schema id %d: %v", s.ID, strings.TrimPrefix(r.Error.Error(), "avro: "))
	}
	if r.Peek(); r.Error == nil {
		// Bytes left over: the record was not written with this schema,
		// and what was read from it may be anything.
		return dst, invalidf("not an Avro record of schema id %d: bytes are left over after the record", s.ID)
	}
	n := len(dst)
	dst, err = appendAvro(dst, rs.render, v)
	if err != nil {
		return dst[:n], invalidf("Avro record of schema id %d: %v", s.ID, err)
	}
	return dst, nil
}

// appendAvro appends v, decoded with schema s, as JSON (see avroCodec).
func appendAvro(dst []byte, s avro.Schema, v any) ([]byte, error) {
	if s.Type() == avro.Ref {
		s = s.(*avro.RefSchema).Schema()
	}
	var logical avro.LogicalType
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		logical = ls.Logical().Type()
	}
	switch s.Type() {
	case avro.Null:
		return append(dst, "null"...), nil
	case avro.Boolean:
		b, ok := v.(bool)
		if !ok {
			break
		}
		return strconv.AppendBool(dst, b), nil
	case avro.Int, avro.Long:
		switch x := v.(type) {
		case time.Time:
			return appendTime(dst, x, logical), nil
		case time.Duration:
			return appendTimeOfDay(dst, x, logical), nil
		case int:
			return strconv.AppendInt(dst, int64(x), 10), nil
		case int8:
			return strconv.AppendInt(dst, int64(x), 10), nil
		case int16:
			return strconv.AppendInt(dst, int64(x), 10), nil
		case int32:
			return strconv.AppendInt(dst, int64(x), 10), nil
		case int64:
			return strconv.AppendInt(dst, x, 10), nil
		}
	case avro.Float:
		if f, ok := v.(float32); ok {
			return serde.AppendFloat(dst, float64(f), 32), nil
		}
	case avro.Double:
		if f, ok := v.(float64); ok {
			return serde.AppendFloat(dst, f, 64), nil
		}
	case avro.String:
		if x, ok := v.(string); ok {
			return serde.AppendJSONString(dst, []byte(x))
		}
	case avro.Enum:
		if x, ok := v.(string); ok {
			return serde.AppendJSONString(dst, []byte(x))
		}
	case avro.Bytes, avro.Fixed:
		switch x := v.(type) {
		case *big.Rat:
			return appendDecimal(dst, x, s), nil
		case []byte:
			return appendBase64(dst, x), nil
		case avro.LogicalDuration:
			dst = append(dst, `{"months":`...)
			dst = strconv.AppendUint(dst, uint64(x.Months), 10)
			dst = append(dst, `,"days":`...)
			dst = strconv.AppendUint(dst, uint64(x.Days), 10)
			dst = append(dst, `,"milliseconds":`...)
			dst = strconv.AppendUint(dst, uint64(x.Milliseconds), 10)
			return append(dst, '}'), nil
		}
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Array && rv.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return appendBase64(dst, b), nil
		}
	case avro.Array:
		items, ok := v.([]any)
		if !ok {
			break
		}
		is := s.(*avro.ArraySchema).Items()
		dst = append(dst, '[')
		for i, item := range items {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendAvro(dst, is, item); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case avro.Map:
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		vs := s.(*avro.MapSchema).Values()
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = serde.AppendJSONString(dst, []byte(k)); err != nil {
				return dst, fmt.Errorf("map key: %v", err)
			}
			dst = append(dst, ':')
			if dst, err = appendAvro(dst, vs, m[k]); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case avro.Record:
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		dst = append(dst, '{')
		for i, f := range s.(*avro.RecordSchema).Fields() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst, _ = serde.AppendJSONString(dst, []byte(f.Name())) // names are ASCII
			dst = append(dst, ':')
			var err error
			if dst, err = appendAvro(dst, f.Type(), m[f.Name()]); err != nil {
				return dst, fmt.Errorf("%s: %w", f.Name(), err)
			}
		}
		return append(dst, '}'), nil
	case avro.Union:
		if v == nil {
			return append(dst, "null"...), nil
		}
		types := s.(*avro.UnionSchema).Types()
		if !directUnion(types) {
			m, ok := v.(map[string]any)
			if !ok || len(m) != 1 {
				break
			}
			for name, x := range m {
				for _, t := range types {
					if unionName(t) == name {
						return appendAvro(dst, t, x)
					}
				}
				return dst, fmt.Errorf("union branch %q is not in the schema", name)
			}
		}
		// The value came without its branch's name: the first branch that
		// decodes to its Go type is the one (branches of one union never
		// share a type, and those that would share a Go type render alike).
		for _, t := range types {
			if t.Type() != avro.Null && goTypeFits(t, v) {
				return appendAvro(dst, t, v)
			}
		}
	}
	return dst, fmt.Errorf("decoded %T for a %s", v, s.Type())
}

// directUnion reports whether hamba/avro decodes the union's values without
// wrapping them in a map keyed by the branch's name: it does when it knows
// a Go type for every branch (the primitive and logical types), and wraps
// all of them when it does not (a record, enum, fixed, array or map
// branch).
func directUnion(types []avro.Schema) bool {
	for _, t := range types {
		name := unionName(t)
		switch t.Type() {
		case avro.Array:
			name += ":" + unionName(t.(*avro.ArraySchema).Items())
		case avro.Map:
			name += ":" + unionName(t.(*avro.MapSchema).Values())
		}
		if _, err := avroAPI.TypeOf(name); err != nil {
			return false
		}
	}
	return true
}

// goTypeFits reports whether v is of the Go type hamba/avro decodes
// schema s into.
func goTypeFits(s avro.Schema, v any) bool {
	var logical avro.LogicalType
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		logical = ls.Logical().Type()
	}
	switch v.(type) {
	case bool:
		return s.Type() == avro.Boolean
	case int, int8, int16, int32, int64:
		return (s.Type() == avro.Int || s.Type() == avro.Long) && logical == ""
	case float32:
		return s.Type() == avro.Float
	case float64:
		return s.Type() == avro.Double
	case string:
		return s.Type() == avro.String
	case []byte:
		return s.Type() == avro.Bytes && logical == ""
	case *big.Rat:
		return logical == avro.Decimal
	case time.Time:
		return logical == avro.Date || logical == avro.TimestampMillis || logical == avro.TimestampMicros
	case time.Duration:
		return logical == avro.TimeMillis || logical == avro.TimeMicros
	}
	return false
}

// unionName is the name hamba/avro gives a union's branch in a decoded
// value: a named type's full name, else the type and any logical type
// ("long.timestamp-millis").
func unionName(s avro.Schema) string {
	if s.Type() == avro.Ref {
		s = s.(*avro.RefSchema).Schema()
	}
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	name := string(s.Type())
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		name += "." + string(ls.Logical().Type())
	}
	return name
}

func appendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// appendDecimal writes the decimal exactly, with the schema's scale of
// fraction digits: its value is an integer over 10^scale.
func appendDecimal(dst []byte, r *big.Rat, s avro.Schema) []byte {
	scale := 0
	if ls, ok := s.(avro.LogicalTypeSchema); ok {
		if d, ok := ls.Logical().(*avro.DecimalLogicalSchema); ok {
			scale = d.Scale()
		}
	}
	return append(dst, r.FloatString(scale)...)
}

// appendTime writes a timestamp or a date.
func appendTime(dst []byte, t time.Time, logical avro.LogicalType) []byte {
	layout := "2006-01-02T15:04:05.000Z"
	switch logical {
	case avro.Date:
		layout = "2006-01-02"
	case avro.TimestampMicros:
		layout = "2006-01-02T15:04:05.000000Z"
	case avro.LocalTimestampMillis:
		layout = "2006-01-02T15:04:05.000"
	case avro.LocalTimestampMicros:
		layout = "2006-01-02T15:04:05.000000"
	}
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, layout)
	return append(dst, '"')
}

// appendTimeOfDay writes a time-millis or time-micros as hh:mm:ss.fff(fff).
// Avro does not forbid values past a day or negative ones: those are
// written as hours past 24, or with a sign, rather than wrapped.
func appendTimeOfDay(dst []byte, d time.Duration, logical avro.LogicalType) []byte {
	dst = append(dst, '"')
	if d < 0 {
		dst = append(dst, '-')
		d = -d
	}
	h, m, sec := d/time.Hour, d%time.Hour/time.Minute, d%time.Minute/time.Second
	frac, digits := int64(d%time.Second/time.Millisecond), 3
	if logical == avro.TimeMicros {
		frac, digits = int64(d%time.Second/time.Microsecond), 6
	}
	dst = fmt.Appendf(dst, "%02d:%02d:%02d.%0*d", h, m, sec, digits, frac)
	return append(dst, '"')
}

// appendEncoded encodes key text with the key's schema: a key whose schema
// is a string, number, boolean or enum is its plain text (as a URL path
// holds it); any other is JSON, as AppendJSON renders it.
func (c *avroCodec) appendEncoded(dst []byte, s *Schema, text string) ([]byte, error) {
	w, err := writerSchema(s)
	if err != nil {
		return nil, err
	}
	var in any
	if plainText(w) {
		in = text
	} else {
		dec := json.NewDecoder(strings.NewReader(text))
		dec.UseNumber()
		if err := dec.Decode(&in); err != nil {
			return nil, invalidf("%q is not JSON: %v", text, err)
		}
		if dec.More() {
			return nil, invalidf("%q has more than one JSON value", text)
		}
	}
	v, err := avroValue(w, in, !plainText(w))
	if err != nil {
		return nil, invalidf("%q does not fit the key's schema (id %d): %v", text, s.ID, err)
	}
	b, err := avroAPI.Marshal(w, v)
	if err != nil {
		return nil, invalidf("%q does not fit the key's schema (id %d): %v", text, s.ID, err)
	}
	return append(appendHeader(dst, s.ID, nil), b...), nil
}

// plainText reports whether keys of schema s are written as plain text
// rather than JSON.
func plainText(s avro.Schema) bool {
	switch s.Type() {
	case avro.String, avro.Int, avro.Long, avro.Float, avro.Double, avro.Boolean, avro.Enum:
		return true
	}
	return false
}

// avroValue turns a value read from JSON (or, when !fromJSON, a plain text
// key) into what hamba/avro encodes for schema s: the inverse of
// appendAvro.
func avroValue(s avro.Schema, in any, fromJSON bool) (any, error) {
	if s.Type() == avro.Ref {
		s = s.(*avro.RefSchema).Schema()
	}
	var logical avro.LogicalType
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		logical = ls.Logical().Type()
	}
	str, isStr := in.(string)
	switch s.Type() {
	case avro.Null:
		if in == nil {
			return nil, nil
		}
	case avro.Boolean:
		if b, ok := in.(bool); ok {
			return b, nil
		}
		if isStr && !fromJSON {
			b, err := strconv.ParseBool(str)
			if err == nil {
				return b, nil
			}
		}
	case avro.Int, avro.Long:
		if isStr && logical != "" {
			return parseTime(str, logical)
		}
		text, ok := numberText(in, fromJSON)
		if !ok {
			break
		}
		bits := 64
		if s.Type() == avro.Int {
			bits = 32
		}
		n, err := strconv.ParseInt(text, 10, bits)
		if err != nil {
			return nil, fmt.Errorf("%q is not an Avro %s", text, s.Type())
		}
		if bits == 32 {
			return int(n), nil
		}
		return n, nil
	case avro.Float, avro.Double:
		text, ok := numberText(in, fromJSON)
		if !ok {
			break
		}
		bits := 64
		if s.Type() == avro.Float {
			bits = 32
		}
		f, err := strconv.ParseFloat(text, bits)
		if err != nil {
			return nil, fmt.Errorf("%q is not an Avro %s", text, s.Type())
		}
		if bits == 32 {
			return float32(f), nil
		}
		return f, nil
	case avro.String:
		if isStr {
			return str, nil
		}
	case avro.Enum:
		if isStr && slices.Contains(s.(*avro.EnumSchema).Symbols(), str) {
			return str, nil
		}
		if isStr {
			return nil, fmt.Errorf("%q is not one of the enum's symbols %v", str, s.(*avro.EnumSchema).Symbols())
		}
	case avro.Bytes, avro.Fixed:
		if logical == avro.Decimal {
			text, ok := numberText(in, true)
			if !ok {
				break
			}
			return parseDecimal(text, s)
		}
		if !isStr {
			break
		}
		b, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			return nil, fmt.Errorf("%q is not base64", str)
		}
		if s.Type() == avro.Bytes {
			return b, nil
		}
		size := s.(*avro.FixedSchema).Size()
		if len(b) != size {
			return nil, fmt.Errorf("fixed needs %d bytes, got %d", size, len(b))
		}
		arr := reflect.New(reflect.ArrayOf(size, reflect.TypeFor[byte]())).Elem()
		reflect.Copy(arr, reflect.ValueOf(b))
		return arr.Interface(), nil
	case avro.Array:
		items, ok := in.([]any)
		if !ok {
			break
		}
		out := make([]any, len(items))
		for i, item := range items {
			v, err := avroValue(s.(*avro.ArraySchema).Items(), item, true)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = v
		}
		return out, nil
	case avro.Map:
		m, ok := in.(map[string]any)
		if !ok {
			break
		}
		out := make(map[string]any, len(m))
		for k, x := range m {
			v, err := avroValue(s.(*avro.MapSchema).Values(), x, true)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", k, err)
			}
			out[k] = v
		}
		return out, nil
	case avro.Record:
		m, ok := in.(map[string]any)
		if !ok {
			break
		}
		fields := s.(*avro.RecordSchema).Fields()
		out := make(map[string]any, len(fields))
		for _, f := range fields {
			x, ok := m[f.Name()]
			if !ok {
				return nil, fmt.Errorf("field %s is missing", f.Name())
			}
			v, err := avroValue(f.Type(), x, true)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name(), err)
			}
			out[f.Name()] = v
		}
		for k := range m {
			if !slices.ContainsFunc(fields, func(f *avro.Field) bool { return f.Name() == k }) {
				return nil, fmt.Errorf("the record has no field %s", k)
			}
		}
		return out, nil
	case avro.Union:
		// The first branch the value fits, as Avro's own JSON decoders
		// resolve untagged values.
		var why []string // on one line: the message is a problem's detail
		for _, t := range s.(*avro.UnionSchema).Types() {
			v, err := avroValue(t, in, true)
			if err == nil {
				if t.Type() == avro.Null {
					return nil, nil
				}
				return map[string]any{unionName(t): v}, nil
			}
			why = append(why, err.Error())
		}
		return nil, fmt.Errorf("fits no branch of the union: %s", strings.Join(why, "; "))
	}
	return nil, fmt.Errorf("%s is not an Avro %s", describeJSON(in), s.Type())
}

// parseDecimal reads the JSON number text as a value of decimal schema s.
// An exponent beyond the schema's precision and scale plus the digits
// written is refused before big.Rat computes it: no value of the schema is
// written that way, and 1e1000000 costs megabytes and milliseconds (a key
// in a URL must not).
func parseDecimal(text string, s avro.Schema) (*big.Rat, error) {
	precision, scale := 0, 0
	if ls, ok := s.(avro.LogicalTypeSchema); ok {
		if d, ok := ls.Logical().(*avro.DecimalLogicalSchema); ok {
			precision, scale = d.Precision(), d.Scale()
		}
	}
	if i := strings.IndexAny(text, "eE"); i >= 0 {
		exp, err := strconv.Atoi(text[i+1:])
		if limit := precision + scale + i; err != nil || exp > limit || exp < -limit {
			return nil, fmt.Errorf("%s is out of range for decimal(%d, %d)", text, precision, scale)
		}
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return nil, fmt.Errorf("%s is not a decimal", text)
	}
	return r, nil
}

// numberText is the text of a number given as JSON or as plain text.
func numberText(in any, fromJSON bool) (string, bool) {
	switch x := in.(type) {
	case json.Number:
		return x.String(), true
	case string:
		return x, !fromJSON || x == "NaN" || x == "+Inf" || x == "-Inf"
	}
	return "", false
}

// parseTime reads the text appendTime and appendTimeOfDay write.
func parseTime(s string, logical avro.LogicalType) (any, error) {
	switch logical {
	case avro.Date:
		return time.Parse("2006-01-02", s)
	case avro.TimestampMillis, avro.TimestampMicros:
		return time.Parse(time.RFC3339Nano, s)
	case avro.LocalTimestampMillis, avro.LocalTimestampMicros:
		return time.Parse("2006-01-02T15:04:05.999999999", s)
	case avro.TimeMillis, avro.TimeMicros:
		t, err := time.Parse("15:04:05.999999999", s)
		if err != nil {
			return nil, err
		}
		return t.Sub(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)), nil
	}
	return nil, fmt.Errorf("%q is not a number", s)
}

func describeJSON(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
