package online

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/b32"
	"github.com/punchcard/punchcard/protocol/token"
)

// Points statements (protocol/token.Statement): what a customer's QR
// code carries so that a till that cannot reach the hub can take their
// points as payment (agent/statement.go). The hub signs the customer's
// balance as of now, capped, valid for minutes; a till spends at most
// that, less its own burns against the statement, inside its offline risk
// envelope; the hub records each burn on ingest and flags
// points_overdrawn where the balance no longer covered it.

// Statement bounds.
const (
	// DefaultStatementMax caps a statement's points (Service.StatementMax).
	DefaultStatementMax = 10_000
	// DefaultStatementTTL is a statement's lifetime unless asked shorter.
	DefaultStatementTTL = 15 * time.Minute
	// MaxStatementTTL is the longest lifetime a request may ask.
	MaxStatementTTL = time.Hour
)

// StatementSigner is what issuing a statement needs of the catalog: the
// tenant's current signing key (store/catalog implements it).
type StatementSigner interface {
	SigningKey(ctx context.Context, tenant protocol.TenantID) (token.SigningKey, error)
}

// StatementRequest asks for a statement: at most Points (0 = as many as
// the cap allows), valid TTLSeconds (0 = DefaultStatementTTL).
type StatementRequest struct {
	Points     int64 `json:"points,omitempty"`
	TTLSeconds int64 `json:"ttl_seconds,omitempty"`
}

// Statement is an issued points statement.
type Statement struct {
	Text     string              `json:"statement"`
	Serial   protocol.CodeID     `json:"serial"`
	Customer protocol.CustomerID `json:"customer"`
	Points   int64               `json:"points"`
	Balance  int64               `json:"balance"` // the customer's balance it was read from
	AsOf     time.Time           `json:"as_of"`
	Expires  time.Time           `json:"expires"`
}

// IssueStatement signs a statement of the customer's spendable points:
// the ledger's balance now, capped at StatementMax (DefaultStatementMax
// when 0) and at req.Points. Reason codes: invalid_input (points, ttl),
// not_found (customer), conflict (an erased customer),
// insufficient_points (nothing to state).
func (s *Service) IssueStatement(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, req StatementRequest) (Statement, error) {
	signer, ok := s.cat.(StatementSigner)
	if !ok {
		return Statement{}, protocol.Errorf(protocol.CodeUnavailable, "this hub cannot sign points statements")
	}
	if req.Points < 0 {
		return Statement{}, protocol.FieldError("points", "points must not be negative")
	}
	ttl := time.Duration(req.TTLSeconds) * time.Second
	if req.TTLSeconds < 0 || ttl > MaxStatementTTL {
		return Statement{}, protocol.FieldError("ttl_seconds", "ttl_seconds must be between 1 and %d", int64(MaxStatementTTL/time.Second))
	}
	if ttl == 0 {
		ttl = DefaultStatementTTL
	}
	if err := protocol.ValidateID("customer", string(customer)); err != nil {
		return Statement{}, err
	}
	cu, err := s.cat.Customer(ctx, tenant, customer)
	if err != nil {
		return Statement{}, err
	}
	if !cu.ErasedAt.IsZero() {
		return Statement{}, protocol.Errorf(protocol.CodeConflict, "the customer's data has been erased")
	}
	now := s.Now().UTC().Truncate(time.Second)
	bal, err := s.led.Points(ctx, tenant, customer)
	if err != nil {
		return Statement{}, err
	}
	limit := s.StatementMax
	if limit <= 0 {
		limit = DefaultStatementMax
	}
	pts := min(bal, limit)
	if req.Points > 0 {
		pts = min(pts, req.Points)
	}
	if pts <= 0 {
		return Statement{}, protocol.Errorf(protocol.CodeInsufficientPts, "The customer has %d points: nothing to state.", bal)
	}
	key, err := signer.SigningKey(ctx, tenant)
	if err != nil {
		return Statement{}, err
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return Statement{}, err
	}
	st := token.Statement{Tenant: tenant, Customer: customer, IssuedAt: now, AsOf: now, Expires: now.Add(ttl),
		Serial: protocol.CodeID("P" + string(b32.AppendEncode(nil, rnd[:]))), Points: pts}
	text, err := token.IssueStatement(key, st)
	if err != nil {
		return Statement{}, err
	}
	return Statement{Text: text, Serial: st.Serial, Customer: customer, Points: pts, Balance: bal,
		AsOf: st.AsOf, Expires: st.Expires}, nil
}
