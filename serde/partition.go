package serde

// Murmur2 is the hash Kafka's Java producer uses to place keyed records
// (org.apache.kafka.common.utils.Utils.murmur2): 32-bit MurmurHash2 with
// seed 0x9747b28c. It must match Java bit for bit, or a lookup would be sent
// to a partition that does not hold the key. The arithmetic is done on
// uint32 because the seed does not fit a Go int32 constant and Java's
// logical shift >>> is plain >> on an unsigned value; multiplication wraps
// the same either way, so the bits agree with Java's int arithmetic.
func Murmur2(b []byte) int32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	n := len(b)
	// Java mixes in the length as a 32-bit int; arrays never exceed that.
	h := uint32(seed) ^ uint32(n)
	body := n &^ 3
	for i := 0; i < body; i += 4 {
		k := uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	// The 1 to 3 trailing bytes, as Java's fall-through switch handles
	// them: each case adds its byte, and only then is h multiplied once.
	switch n & 3 {
	case 3:
		h ^= uint32(b[body+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[body+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[body])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// Partition is the partition Kafka's Java producer picks for a record with
// this key when no partition is given (BuiltInPartitioner.partitionForKey,
// the same as the older DefaultPartitioner): the hash's sign bit is masked
// off, as Utils.toPositive does, rather than taking an absolute value, so
// that math.MinInt32 cannot produce a negative partition. partitions must be
// positive; like the integer division it is, it panics on zero.
func Partition(key []byte, partitions int32) int32 {
	return (Murmur2(key) & 0x7fffffff) % partitions
}
