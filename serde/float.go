package serde

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
)

func init() { register(float64Serde{}) }

// float64Serde reads what Kafka's DoubleSerializer writes: 8 bytes of
// big-endian IEEE 754.
type float64Serde struct{}

// javaNaN is the bit pattern Java's Double.doubleToLongBits gives every NaN,
// and so the only NaN DoubleSerializer ever writes. Go's math.NaN() differs
// in its last bit, so it would name a key that no Java producer wrote.
const javaNaN = 0x7ff8000000000000

func (float64Serde) Name() string { return "float64" }

// AppendJSON writes the 8 bytes as AppendFloat does.
func (float64Serde) AppendJSON(dst, b []byte) ([]byte, error) {
	if len(b) != 8 {
		return dst, invalidf("float64 needs 8 bytes, got %d", len(b))
	}
	return AppendFloat(dst, math.Float64frombits(binary.BigEndian.Uint64(b)), 64), nil
}

// AppendFloat appends f as the JSON answers show floating-point numbers.
// NaN and the infinities are the JSON strings "NaN", "+Inf" and "-Inf":
// JSON numbers cannot express them, and those spellings are what the
// float64 serde's FromText (strconv.ParseFloat) reads back. Finite numbers
// use the shortest text that parses back to the same bits (of a float32
// when bitSize is 32), laid out as encoding/json does so answers look
// familiar.
func AppendFloat(dst []byte, f float64, bitSize int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Inf"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (bitSize == 64 && (abs < 1e-6 || abs >= 1e21) ||
		bitSize == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bitSize)
	if n := len(dst); format == 'e' && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
		// Shorten e-07 to e-7, as encoding/json does. The 'e' format always
		// writes at least "de-dd", so n-4 is inside what was just appended.
		dst[n-2] = dst[n-1]
		dst = dst[:n-1]
	}
	return dst
}

// FromText accepts anything strconv.ParseFloat does, including "NaN",
// "+Inf" and "-Inf", so every answer AppendJSON gives can be used as a key.
// Numbers too large for a float64 are rejected rather than turned into an
// infinity the user did not ask for.
func (float64Serde) FromText(s string) ([]byte, error) {
	f, err := strconv.ParseFloat(s, 64)
	if errors.Is(err, strconv.ErrRange) {
		return nil, invalidf("%q is out of range for float64", s)
	}
	if err != nil {
		return nil, invalidf("%q is not a float64", s)
	}
	bits := math.Float64bits(f)
	if math.IsNaN(f) {
		bits = javaNaN
	}
	return binary.BigEndian.AppendUint64(nil, bits), nil
}
