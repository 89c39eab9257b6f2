package serde_test

import (
	"encoding/binary"
	"testing"

	"github.com/iqengine/iqengine/serde"
)

// Kafka's own vectors, from testMurmur2 in
// clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java
// (apache/kafka). Matching them means we hash like the Java producer.
func TestMurmur2MatchesKafkaUtilsTest(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want int32
	}{
		{[]byte("21"), -973932308},
		{[]byte("foobar"), -790332482},
		{[]byte("a-little-bit-long-string"), -985981536},
		{[]byte("a-little-bit-longer-string"), -1486304829},
		{[]byte("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971},
		{[]byte{'a', 'b', 'c'}, 479470107},
	} {
		if got := serde.Murmur2(c.in); got != c.want {
			t.Errorf("Murmur2(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

// Each tail length (0 to 3 bytes past the last full 4-byte block) takes a
// different path through Java's fall-through switch.
func TestMurmur2TailLengths(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int32
	}{
		{"", 275646681},
		{"a", -1563381124},
		{"ab", 316155434},
		{"abc", 479470107},
		{"abcd", -1323649548},
	} {
		if got := serde.Murmur2([]byte(c.in)); got != c.want {
			t.Errorf("Murmur2(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestPartitionOfStringKeysOver12Partitions(t *testing.T) {
	for _, c := range []struct {
		key  string
		want int32
	}{
		{"21", 0},     // hash is negative: the sign bit is masked, not negated
		{"foobar", 6}, // negative too
		{"abc", 3},    // positive hash: plain modulo
		{"a-little-bit-longer-string", 11},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 5},
		{"", 9},
		{"user-1", 8},
		{"user-2", 8},
		{"order-42", 0},
	} {
		if got := serde.Partition([]byte(c.key), 12); got != c.want {
			t.Errorf("Partition(%q, 12) = %d, want %d", c.key, got, c.want)
		}
	}
}

// Keys written by LongSerializer are 8 big-endian bytes; their partition is
// the hash of those bytes, not of the decimal text.
func TestPartitionOfInt64KeysOver12Partitions(t *testing.T) {
	for _, c := range []struct {
		key  int64
		want int32
	}{
		{0, 11},
		{1, 0},
		{42, 4},
		{-1, 5},
		{1234567890123, 0},
	} {
		key := binary.BigEndian.AppendUint64(nil, uint64(c.key))
		if got := serde.Partition(key, 12); got != c.want {
			t.Errorf("Partition(int64 %d, 12) = %d, want %d", c.key, got, c.want)
		}
	}
}

func TestPartitionIsAlwaysInRange(t *testing.T) {
	for _, n := range []int32{1, 2, 3, 7, 12, 100, 1 << 30} {
		for i := range 1000 {
			key := binary.BigEndian.AppendUint32(nil, uint32(i))
			if p := serde.Partition(key, n); p < 0 || p >= n {
				t.Fatalf("Partition(%x, %d) = %d, out of range", key, n, p)
			}
		}
	}
}

func BenchmarkPartition(b *testing.B) {
	key := []byte("customer-0000012345")
	b.ReportAllocs()
	b.SetBytes(int64(len(key)))
	for b.Loop() {
		serde.Partition(key, 12)
	}
}
