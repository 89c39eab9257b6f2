package cluster

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestStickyDeterminism(t *testing.T) {
	js := []joiner{{node("n1"), nil, -1}, {node("n2"), nil, -1}, {node("n3"), nil, -1}}
	names := []string{"a", "b"}
	topics := map[string]int32{"a": 12, "b": 5}
	var first []map[string][]int32
	for i := 0; i < 20; i++ {
		plain := balance(t, kgo.CooperativeStickyBalancer(), joinMembers(t, names, js, plainMeta(names)), topics)
		var got []map[string][]int32
		for _, p := range plain {
			m, _ := kgo.ParseConsumerSyncAssignment(p.MemberAssignment)
			got = append(got, normalize(m))
		}
		if first == nil {
			first = got
		} else if !reflect.DeepEqual(first, got) {
			t.Fatalf("run %d: %v vs %v", i, got, first)
		}
	}
}
