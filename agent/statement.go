package agent

import (
	"context"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/token"
	"github.com/punchcard/punchcard/store/agentdb"
)

// Points at an offline till. The till does not know a customer's points:
// online it asks the hub (onlinefirst.go); offline it refuses a points
// burn (insufficient_points) unless the customer shows a points statement
// (protocol/token.Statement), which the hub signed with the tenant's key:
// "this customer could spend P points at instant A", valid for minutes.
// Offline, the till's Source (tillFacts.Customer) then knows P less its
// own burns against the statement's serial (store/agentdb), and the one
// decision pipeline decides with that; each burn is recorded against the
// serial in the fact's transaction, inside the offline risk envelope. The
// hub records the burn against the customer's lots on ingest, and flags
// points_overdrawn where the balance no longer covered it (spent
// meanwhile elsewhere): the debt lot keeps what went short.

// stmt is a points statement as one decision sees it.
type stmt struct {
	s   token.Statement
	err error // why it was refused; nil when verified
}

// statementOf verifies the basket's points statement for a decision at
// now, with the snapshot's keys; nil when the basket carries none.
func (a *Agent) statementOf(v *view, b Basket, now time.Time) *stmt {
	if b.Statement == "" {
		return nil
	}
	var cu protocol.CustomerID
	if b.Customer != nil {
		cu = b.Customer.ID
	}
	s, err := token.VerifyStatement(v.keys, a.Tenant, cu, b.Statement, now)
	if err != nil {
		if pe := protocol.PublicError(err); pe.Code != protocol.CodeInternal {
			err = &protocol.Error{Code: pe.Code, Message: pe.Message, Field: "points_statement"}
		}
	}
	return &stmt{s: s, err: err}
}

// statementPoints are the points a verified statement still allows at
// this till: its points less the till's own burns against its serial.
func (a *Agent) statementPoints(ctx context.Context, st *stmt) (int64, error) {
	burnt, err := a.db.StatementBurnt(ctx, st.s.Serial)
	if err != nil {
		return 0, err
	}
	return max(st.s.Points-burnt, 0), nil
}

// statementUse is the record of an offline burn of pts points against
// the decision's statement; nil when the decision used none.
func (d *decision) statementUse(pts int64) *agentdb.StatementUse {
	if !d.offline || d.stmt == nil || d.stmt.err != nil || pts <= 0 {
		return nil
	}
	s := d.stmt.s
	return &agentdb.StatementUse{Serial: s.Serial, Customer: s.Customer, Amount: s.Points, Points: pts, Expires: s.Expires.Unix()}
}
