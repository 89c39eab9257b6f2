package serde_test

import (
	"errors"
	"fmt"

	"github.com/iqengine/iqengine/serde"
)

// A store's key serde turns the key as written in a URL into the bytes
// Kafka's Java serializer wrote, finds its partition as Kafka's producer
// does, and renders stored bytes as JSON.
func Example() {
	key, err := serde.Lookup("int64")
	if err != nil {
		panic(err)
	}
	b, err := key.FromText("42")
	if err != nil {
		panic(err)
	}
	p, _ := serde.PartitionOf(key, b, 12)
	js, _ := key.AppendJSON(nil, b)
	fmt.Printf("bytes % x, partition %d of 12, JSON %s\n", b, p, js)

	// Text that is not in the serde's format is an error wrapping ErrInvalid.
	_, err = key.FromText("forty-two")
	fmt.Println(err, errors.Is(err, serde.ErrInvalid))
	// Output:
	// bytes 00 00 00 00 00 00 00 2a, partition 4 of 12, JSON 42
	// "forty-two" is not an int64 true
}
