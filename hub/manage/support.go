package manage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/protocol/wire"
)

// Support tools (issue 12, item 7): the customer's full history a page at
// a time, and manual points adjustments with a reason.

// The support types are protocol/ledger's.
type (
	HistoryEntry     = ledger.HistoryEntry
	AdjustmentRecord = ledger.AdjustmentRecord
)

// SupportLedger is what the support tools need of the ledger store; a
// ledger without it answers unavailable.
type SupportLedger interface {
	// CustomerActivity returns one page of the customer's journal
	// entries and conflicts, newest first, by index.
	CustomerActivity(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, q ledger.HistoryQuery) (ledger.HistoryPage, error)
	// AdjustPoints records an adjustment once per key (reason codes:
	// insufficient_points, idempotency_key_reused).
	AdjustPoints(ctx context.Context, a ledger.Adjustment, once ledger.AdjustOnce) (ledger.Outcome, ledger.AdjustmentRecord, error)
}

// Activity is one page of a customer's activity, newest first: the
// journal entries naming them and the conflicts about them. Next is the
// cursor of the following page ("" at the end of both lists).
type Activity struct {
	Entries   []HistoryEntry
	Conflicts []Conflict
	Next      string
}

// Activity page sizes.
const (
	DefaultActivityLimit = 50
	MaxActivityLimit     = 200
)

// activityCursor is "<entry>.<conflict>[.<tier>]": the page after holds
// the activity below the position (entry, tier) (ledger.HistoryQuery; a
// tier part only when the page ended on a tier change) and the conflicts
// below conflict. A 0 position or conflict: that list is done.
func parseCursor(c string) (ledger.HistoryQuery, error) {
	var q ledger.HistoryQuery
	if c == "" {
		return q, nil
	}
	parts := strings.Split(c, ".")
	bad := len(parts) < 2 || len(parts) > 3
	nums := make([]int64, 3)
	for i := 0; !bad && i < len(parts); i++ {
		n, err := strconv.ParseInt(parts[i], 10, 64)
		bad = err != nil || n < 0
		nums[i] = n
	}
	if bad || (len(parts) == 3 && nums[2] == 0) {
		return q, protocol.FieldError("cursor", "not a cursor of this history: pass next_cursor as it came")
	}
	q.BeforeEntry, q.BeforeConflict, q.BeforeTier = nums[0], nums[1], nums[2]
	if q.BeforeEntry == 0 && q.BeforeTier == 0 {
		q.BeforeEntry = -1 // done: nothing below
	}
	if q.BeforeConflict == 0 {
		q.BeforeConflict = -1
	}
	return q, nil
}

// CustomerActivity returns the page of the customer's activity after
// cursor ("" for the newest), at most limit entries and conflicts each
// (0: DefaultActivityLimit; at most MaxActivityLimit). Reason codes:
// not_found (the customer), invalid_input (cursor, limit), unavailable
// (no ledger).
func (s *Service) CustomerActivity(ctx context.Context, tenant protocol.TenantID, id protocol.CustomerID, cursor string, limit int) (Activity, error) {
	sl, ok := s.opts.Ledger.(SupportLedger)
	if !ok {
		return Activity{}, protocol.Errorf(protocol.CodeUnavailable, "the ledger is not available on this hub")
	}
	if limit < 0 || limit > MaxActivityLimit {
		return Activity{}, protocol.FieldError("limit", "limit is 1 to %d", MaxActivityLimit)
	}
	if limit == 0 {
		limit = DefaultActivityLimit
	}
	q, err := parseCursor(cursor)
	if err != nil {
		return Activity{}, err
	}
	if _, err := s.cat.Customer(ctx, tenant, id); err != nil {
		return Activity{}, err
	}
	q.Limit = limit
	out := Activity{Entries: []HistoryEntry{}, Conflicts: []Conflict{}}
	var page ledger.HistoryPage
	if q.BeforeEntry >= 0 || q.BeforeConflict >= 0 {
		if page, err = sl.CustomerActivity(ctx, tenant, id, q); err != nil {
			return out, err
		}
	}
	if q.BeforeEntry >= 0 {
		out.Entries = page.Entries
	}
	if q.BeforeConflict >= 0 {
		out.Conflicts = page.Conflicts
	}
	var ne, nt, nc int64
	if len(out.Entries) == limit {
		ne, nt = page.NextEntry, page.NextTier
	}
	if len(out.Conflicts) == limit {
		nc = out.Conflicts[limit-1].ID
	}
	switch {
	case nt != 0:
		out.Next = fmt.Sprintf("%d.%d.%d", ne, nc, nt)
	case ne != 0 || nc != 0:
		out.Next = fmt.Sprintf("%d.%d", ne, nc)
	}
	return out, nil
}

// Idem names a write for idempotency: the caller's key and the hash of its
// request (method, path, body).
type Idem struct {
	Key string
	Sum []byte
}

// Answer is an idempotent write's answer as recorded: a retry gets the
// same bytes.
type Answer struct {
	Status   int
	Body     []byte
	Replayed bool
}

// AdjustPoints adds points to a customer's balance or takes them off by
// hand (support desk), once per idem.Key, audited in the ledger: who (the
// API key), when, why (reason, note, reference), as its own journal kind
// (points_adjusted). The answer is the AdjustmentRecord.
//
// Reason codes: invalid_input (the body), not_found (customer),
// insufficient_points, idempotency_key_reused, unavailable.
func (s *Service) AdjustPoints(ctx context.Context, by Key, tenant protocol.TenantID, customer protocol.CustomerID, idem Idem, in wire.PointsAdjustment, now time.Time) (Answer, error) {
	sl, ok := s.opts.Ledger.(SupportLedger)
	if !ok {
		return Answer{}, protocol.Errorf(protocol.CodeUnavailable, "the ledger is not available on this hub")
	}
	if err := in.Validate(now); err != nil {
		return Answer{}, err
	}
	if _, err := s.cat.Customer(ctx, tenant, customer); err != nil {
		return Answer{}, err
	}
	a := ledger.Adjustment{Tenant: tenant, Customer: customer, Points: in.Points, Reason: in.Reason, Note: in.Note,
		Reference: in.Reference, ExpiresAt: in.ExpiresAt, By: by.ID}
	out, _, err := sl.AdjustPoints(ctx, a, ledger.AdjustOnce{Key: idem.Key, Request: idem.Sum,
		Answer: func(r ledger.AdjustmentRecord) (int, []byte, error) {
			b, err := json.Marshal(r)
			return http.StatusCreated, b, err
		}})
	if err != nil {
		return Answer{}, err
	}
	return Answer{Status: out.Status, Body: out.Body, Replayed: out.Replayed}, nil
}
