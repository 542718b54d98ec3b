package snapshots

import (
	"context"
	"slices"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// SegmentLedger is a Ledger that also keeps the customers' computed
// segments (store/ledger, ledger_011): the snapshot then carries them
// (snapshot.Snapshot.Segments, key 20) for the segments its active
// campaigns name.
type SegmentLedger interface {
	SnapshotSegments(ctx context.Context, tenant protocol.TenantID, segs []string, limit int) ([]snapshot.CustomerSegments, error)
}

// segments reads the stored segments of the customers in a segment that
// an active campaign of the tenant names (as of catalog version, which
// campaigns just read); nil when none does or the ledger keeps none. It
// is read per request, like the allowances: it costs the members of the
// named segments.
func (s *Service) segments(ctx context.Context, tenant protocol.TenantID, version uint64) ([]snapshot.CustomerSegments, error) {
	sl, ok := s.opts.Ledger.(SegmentLedger)
	if !ok || s.opts.Ledger == nil {
		return nil, nil
	}
	s.mu.Lock()
	lc := s.camps[tenant]
	s.mu.Unlock()
	if lc.version != version || len(lc.segs) == 0 {
		return nil, nil
	}
	return sl.SnapshotSegments(ctx, tenant, lc.segs, snapshot.MaxSegmentCustomers)
}

func addSegments(to, segs []string) []string {
	for _, g := range segs {
		if i, found := slices.BinarySearch(to, g); !found {
			to = slices.Insert(to, i, g)
		}
	}
	return to
}

func sameSegments(a, b snapshot.CustomerSegments) bool {
	return a.Customer == b.Customer && slices.Equal(a.Segments, b.Segments)
}
