package serde

func init() { register(uuidSerde{}) }

// uuidSerde reads what Kafka's UUIDSerializer writes: not 16 raw bytes but
// the 36-character text of UUID.toString(), encoded as UTF-8. Java writes
// lower-case hex.
type uuidSerde struct{}

func (uuidSerde) Name() string { return "uuid" }

// AppendJSON accepts upper-case hex too, since non-Java producers may write
// it, and shows the bytes as stored (no case change) so that the answer
// reflects the record exactly.
func (uuidSerde) AppendJSON(dst, b []byte) ([]byte, error) {
	if !isUUID(b) {
		return dst, invalidf("not a UUID in 8-4-4-4-12 hex form (%d bytes)", len(b))
	}
	dst = append(dst, '"')
	dst = append(dst, b...) // hex and '-' never need escaping
	return append(dst, '"'), nil
}

// FromText accepts either case but returns lower case, because that is what
// a Java producer's UUID.toString() put in the key; looking up an
// upper-case spelling byte for byte would never match.
func (uuidSerde) FromText(s string) ([]byte, error) {
	b := []byte(s)
	if !isUUID(b) {
		return nil, invalidf("%q is not a UUID (want 8-4-4-4-12 hex digits, like 123e4567-e89b-12d3-a456-426614174000)", s)
	}
	for i, c := range b {
		if 'A' <= c && c <= 'F' {
			b[i] = c + ('a' - 'A')
		}
	}
	return b, nil
}

// isUUID reports whether b is the canonical 8-4-4-4-12 text form. It is
// stricter than Java's UUID.fromString, which also takes shortened groups:
// such text can never come out of UUIDSerializer, so it cannot be a key.
func isUUID(b []byte) bool {
	if len(b) != 36 {
		return false
	}
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
