package snapshots

import (
	"context"
	"sync"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// A quiet poll: in a busy chain the tenant's code-use position moves
// between any two polls of a till (one unlimited code used hundreds of
// times a second), and so do the till's own allowance figures (every
// sale of a limited campaign), so an exact ETag never matches and every
// poll built, encoded and sent a delta that the till applies without
// changing any decision. A poll is answered 304 instead when what moved
// since the body the till holds (its If-None-Match is the ETag the hub
// last sent it) is only news the till does not act on:
//
//   - uses of codes that have no limit a till checks: unlimited multi-use
//     codes that are not gift cards (protocol.CodeFacts MaxUses 0,
//     GiftCard false). A use of any other code (single-use, limited,
//     gift card, token serial, unknown to the catalog) is news;
//   - the till's allowance figures (outstanding, granted, the grant
//     number): the till counts its allowance itself, and a grant's answer
//     carries its number and totals; the snapshot's copy is the backup
//     that lets a till adopt a grant whose answer was lost
//     (agentdb.DB.Adopt), which waits for the next body.
//
// Anything else is news as before: a catalog version (campaigns, codes,
// revocations, the kill switch, keys), the customer-state position, the
// segments. The body the till holds is coherent (its code figures and
// Reflected were read together), only older; it is replaced at the
// latest QuietMaxAge after it was built, so the till's own-use records
// (pruned by a stored body's Reflected) and its copy of the allowances
// stay bounded in age. A quiet 304 reads the two positions in one
// statement, and the code-use news is judged once per tenant and
// position (codeNews), not per poll.

// DefaultQuietMaxAge is Options.QuietMaxAge's default: four of the
// agent's 30 s polls.
const DefaultQuietMaxAge = 2 * time.Minute

// CodeFactsCatalog is the catalog's view of a code's limits
// (store/catalog, cached per catalog version). Without it every code use
// is news.
type CodeFactsCatalog interface {
	CodeFacts(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (protocol.CodeFacts, bool, error)
}

// PositionLedger reads a tenant's code-use and customer-state positions
// with the codes changed after a code-use position, each with the
// position of its last change, in one read (store/ledger/snapshotq.go):
// ok is false when more than limit changed or after is beyond codes.
// Without it a poll has no quiet answer.
type PositionLedger interface {
	Positions(ctx context.Context, tenant protocol.TenantID, after uint64, limit int) (codes, customers uint64, changed map[protocol.CodeID]uint64, ok bool, err error)
}

// codeNews is what is known of one tenant's code-use changes at catalog
// version: no change a till acts on lies in (news, checked]. Each range
// of positions is read and judged once, by whichever poll first needs
// it, whatever the number of tills (a till's body may be minutes old, and
// the codes changed since could be many).
type codeNews struct {
	mu      sync.Mutex
	version uint64
	checked uint64
	news    uint64
}

// quiet answers req NotModified when the body the agent holds (ent, its
// ETag matched) differs from what it would get now only in news it does
// not act on. ok is false when it cannot tell: the caller builds the
// answer.
func (s *Service) quiet(ctx context.Context, req Request, version uint64, now time.Time) (Answer, bool, error) {
	if s.opts.QuietMaxAge < 0 || s.pos == nil || s.news == nil || s.cust == nil || req.IfNoneMatch == "" {
		return Answer{}, false, nil
	}
	ck := snapKey{req.Tenant, req.Agent}
	s.mu.Lock()
	ent, hit := s.snaps[ck]
	s.mu.Unlock()
	if !hit || ent.version != version || !now.Before(ent.validUntil) || now.Sub(ent.at) >= s.opts.QuietMaxAge ||
		!ETagMatch(req.IfNoneMatch, ent.etag) {
		return Answer{}, false, nil
	}
	v, _ := s.tenantNews.LoadOrStore(req.Tenant, &codeNews{})
	n := v.(*codeNews)
	n.mu.Lock()
	after := ent.head // judge from the agent's body on,
	if n.version == version && n.news <= ent.head {
		after = n.checked // or on from what is judged (nothing in (news, checked])
	} else if n.version == version {
		n.mu.Unlock()
		return Answer{}, false, nil // news after the agent's body
	}
	n.mu.Unlock()
	head, cust, changed, ok, err := s.pos.Positions(ctx, req.Tenant, after, s.opts.MaxCodeChanges)
	if err != nil {
		return Answer{}, false, err
	}
	if cust != ent.cust || head < ent.head {
		return Answer{}, false, nil
	}
	if head > ent.head {
		if news, err := s.judge(ctx, n, req.Tenant, version, after, head, changed, ok); err != nil || news > ent.head {
			return Answer{}, false, err
		}
	}
	s.Quiet.Add(1)
	return Answer{NotModified: true, ETag: ent.etag, Version: ent.version}, true, nil
}

// judge adds what a poll read to the tenant's code news: changed are the
// codes changed in (after, head] with the position of each one's last
// change (ok false: too many to list, or head is behind after). It
// returns the position of the last change a till acts on, as far as it is
// known up to head: none in (news, head].
func (s *Service) judge(ctx context.Context, n *codeNews, tenant protocol.TenantID, version, after, head uint64, changed map[protocol.CodeID]uint64, ok bool) (uint64, error) {
	var found uint64 // the last change a till acts on in (after, head], 0: none
	if !ok {
		found = head
	}
	for code, at := range changed {
		if at <= found {
			continue
		}
		f, known, err := s.news.CodeFacts(ctx, tenant, code)
		if err != nil {
			return 0, err
		}
		if !known || f.MaxUses != 0 || f.GiftCard {
			found = at
		}
	}
	found = min(found, head)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.version != version || after > n.checked || !ok {
		// The first judgement at this catalog version (which codes have
		// limits can change with it), a range that does not join the
		// judged one, or one that could not be judged: start over from it.
		// Nothing is known before after.
		n.version, n.checked, n.news = version, head, max(after, found)
		return n.news, nil
	}
	// (after, head] joins or overlaps (news, checked]: nothing in
	// (max(news, found), max(checked, head)].
	n.news, n.checked = max(n.news, found), max(n.checked, head)
	return n.news, nil
}
