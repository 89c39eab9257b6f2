package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/iqengine/iqengine/internal/testkafka"
	"github.com/iqengine/iqengine/internal/testutil"
)

// A balancer that missed the sync round (here: one that never joined)
// learns the group's table from the coordinator.
func TestRefreshFromCoordinator(t *testing.T) {
	const partitions = 6
	b := testkafka.Start(t)
	topic, group := testkafka.Name(t, "t"), testkafka.Name(t, "g")
	b.CreateTopic(t, topic, partitions)
	nodes := []*groupNode{startNode(t, b, group, topic, partitions, "n1"), startNode(t, b, group, topic, partitions, "n2")}
	want := waitAgree(t, nodes, topic, partitions)

	late := NewBalancer(Member{NodeID: "late", URL: "http://late.test:7070"}, Config{})
	adm := kadm.NewClient(b.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testutil.WaitFor(t, 10*time.Second, "the late balancer learns the group's table", func() bool {
		if err := late.Refresh(ctx, adm, group); err != nil {
			t.Fatal(err)
		}
		return late.Table().Generation() >= want.Generation()
	})
	got := late.Table()
	for p := range int32(partitions) {
		w, _ := want.Owner(topic, p)
		if g, ok := got.Owner(topic, p); !ok || g != w {
			t.Fatalf("refreshed owner of %d: %+v, want %+v", p, g, w)
		}
	}
	// An older table never replaces a newer one.
	if err := nodes[0].bal.Refresh(ctx, adm, group); err != nil {
		t.Fatal(err)
	}
	if nodes[0].bal.Table().Generation() != want.Generation() {
		t.Fatal("refresh changed an up-to-date table")
	}
}
