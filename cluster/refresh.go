package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Refresh asks the group coordinator for the group's current assignment
// (DescribeGroups) and adopts the routing table in it when it is of a newer
// generation than the one held. The router calls it when a route misses,
// so a node whose own sync round is late still learns who owns what. A
// group in the middle of a rebalance has no settled table to give: Refresh
// then keeps the current one, and the coming sync brings the new one.
func (b *Balancer) Refresh(ctx context.Context, adm *kadm.Client, group string) error {
	groups, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("cluster: describe group %s: %w", group, err)
	}
	g, ok := groups[group]
	if !ok {
		return fmt.Errorf("cluster: group %s not described", group)
	}
	if g.Err != nil {
		return fmt.Errorf("cluster: describe group %s: %w", group, g.Err)
	}
	if g.State != "Stable" || g.Protocol != ProtocolName {
		return nil
	}
	var errs []error
	for _, m := range g.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		body, err := b.cfg.Key.open(a.UserData, purposeTable)
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster: member %s's assignment %w", m.MemberID, err))
			continue
		}
		t, err := decodeAssignment(body)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for {
			cur := b.table.Load()
			if t.Generation() <= cur.Generation() {
				return nil
			}
			if b.table.CompareAndSwap(cur, t) {
				if fn := b.onChange.Load(); fn != nil {
					(*fn)(t)
				}
				return nil
			}
		}
	}
	return errors.Join(errs...)
}
