package serde

func init() { register(stringSerde{}) }

// stringSerde reads what Kafka's StringSerializer writes: UTF-8 text with no
// framing.
type stringSerde struct{}

func (stringSerde) Name() string { return "string" }

// AppendJSON rejects invalid UTF-8 rather than repairing it, because a
// repaired string could no longer be used to look the same key up again.
func (stringSerde) AppendJSON(dst, b []byte) ([]byte, error) {
	return appendJSONString(dst, b)
}

// FromText keeps the text byte for byte: StringSerializer applies no
// normalisation, so neither may we.
func (stringSerde) FromText(s string) ([]byte, error) {
	return []byte(s), nil
}
