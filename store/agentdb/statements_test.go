package agentdb_test

import (
	"context"
	"errors"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/agentdb"
)

// TestStatementBurns: a till spends at most a statement's points against
// its serial; a replay beyond them is refused insufficient_points in the
// commit's transaction, and a rollback gives its burn back.
func TestStatementBurns(t *testing.T) {
	ctx := context.Background()
	db, _ := MustOpen(t)
	burn := func(txn string, pts int64) error {
		r := redeemReq(txn, "club", "", 0)
		rd := &r.Facts[0].Redemption
		rd.Kind, rd.Customer, rd.Points = protocol.KindBurn, "cu1", -pts
		r.Facts[0].Statement = &agentdb.StatementUse{Serial: "ST1", Customer: "cu1", Amount: 100, Points: pts, Expires: 1 << 40}
		_, _, err := db.Commit(ctx, r)
		return err
	}
	if err := burn("T1", 60); err != nil {
		t.Fatal(err)
	}
	if err := burn("T2", 50); !errors.Is(err, protocol.NewError(protocol.CodeInsufficientPts)) {
		t.Fatalf("second burn of 50 from 40 left: %v", err)
	}
	if err := burn("T3", 40); err != nil {
		t.Fatal(err)
	}
	if n, err := db.StatementBurnt(ctx, "ST1"); err != nil || n != 100 {
		t.Fatalf("burnt %d, %v", n, err)
	}
	rb := redeemReq("R1", "club", "", 0)
	rb.Op, rb.Facts[0].Voids, rb.Facts[0].Redemption.Kind = agentdb.OpRollback, 1, protocol.KindRollback
	rb.Facts[0].Redemption.Ref = &protocol.RedemptionID{Agent: "a1", Seq: 1}
	if _, _, err := db.Commit(ctx, rb); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if n, err := db.StatementBurnt(ctx, "ST1"); err != nil || n != 40 {
		t.Fatalf("burnt after rollback %d, %v", n, err)
	}
	if n, _ := db.StatementBurnt(ctx, "ST2"); n != 0 {
		t.Fatalf("other serial burnt %d", n)
	}
}
