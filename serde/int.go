package serde

import (
	"encoding/binary"
	"errors"
	"strconv"
)

func init() {
	register(int32Serde{})
	register(int64Serde{})
}

// int32Serde reads what Kafka's IntegerSerializer writes: 4 bytes,
// big-endian two's complement.
type int32Serde struct{}

func (int32Serde) Name() string { return "int32" }

func (int32Serde) AppendJSON(dst, b []byte) ([]byte, error) {
	if len(b) != 4 {
		return dst, invalidf("int32 needs 4 bytes, got %d", len(b))
	}
	return strconv.AppendInt(dst, int64(int32(binary.BigEndian.Uint32(b))), 10), nil
}

func (int32Serde) FromText(s string) ([]byte, error) {
	n, err := parseInt(s, 32, "int32")
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint32(nil, uint32(int32(n))), nil
}

// int64Serde reads what Kafka's LongSerializer writes: 8 bytes, big-endian
// two's complement.
type int64Serde struct{}

func (int64Serde) Name() string { return "int64" }

func (int64Serde) AppendJSON(dst, b []byte) ([]byte, error) {
	if len(b) != 8 {
		return dst, invalidf("int64 needs 8 bytes, got %d", len(b))
	}
	return strconv.AppendInt(dst, int64(binary.BigEndian.Uint64(b)), 10), nil
}

func (int64Serde) FromText(s string) ([]byte, error) {
	n, err := parseInt(s, 64, "int64")
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint64(nil, uint64(n)), nil
}

// parseInt accepts only base 10: a key such as "010" must not silently mean
// 8, and "0x10" is not something a Java producer would call a number.
// Overflow gets its own message because "is not an int32" would be
// confusing for a perfectly good number.
func parseInt(s string, bits int, typ string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, bits)
	if errors.Is(err, strconv.ErrRange) {
		return 0, invalidf("%q is out of range for %s", s, typ)
	}
	if err != nil {
		return 0, invalidf("%q is not an %s", s, typ)
	}
	return n, nil
}
