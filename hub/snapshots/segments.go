package snapshots

import (
	"context"
	"slices"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/catalog"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// SegmentLedger is a Ledger that also keeps the customers' computed
// segments (store/ledger, ledger_011): the snapshot then carries them
// (snapshot.Snapshot.Segments, key 20) for the segments its campaigns name.
type SegmentLedger interface {
	SnapshotSegments(ctx context.Context, tenant protocol.TenantID, segs []string, limit int) ([]snapshot.CustomerSegments, error)
}

// segments reads the stored segments of the customers in a segment that
// one of camps names; nil when none does or the ledger keeps none. It is
// read per request, like the allowances: it costs the members of the
// named segments.
func (s *Service) segments(ctx context.Context, tenant protocol.TenantID, camps []catalog.Campaign) ([]snapshot.CustomerSegments, error) {
	sl, ok := s.opts.Ledger.(SegmentLedger)
	if !ok || s.opts.Ledger == nil {
		return nil, nil
	}
	var named []string
	for _, c := range camps {
		for _, g := range c.Rules.Eligibility.Segments {
			if !slices.Contains(named, g) {
				named = append(named, g)
			}
		}
	}
	if len(named) == 0 {
		return nil, nil
	}
	slices.Sort(named)
	return sl.SnapshotSegments(ctx, tenant, named, snapshot.MaxSegmentCustomers)
}

func sameSegments(a, b snapshot.CustomerSegments) bool {
	return a.Customer == b.Customer && slices.Equal(a.Segments, b.Segments)
}
