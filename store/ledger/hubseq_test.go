package ledger_test

import (
	"context"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// TestHubSeqBehindJournal: when the hub's stored watermark is behind its
// facts in the journal (a ledger restored or edited by hand), an online
// basket's facts take the next free seqs: each is recorded once under an
// ID of its own, never answered under an older fact's ID while going
// unrecorded, and the watermark catches up.
func TestHubSeqBehindJournal(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	earn := func(txn string) protocol.Redemption {
		t.Helper()
		r, err := l.Redeem(ctx, protocol.Redemption{Kind: protocol.KindEarn, Tenant: tenant, Store: "web", TxnID: txn,
			Campaign: "loyalty", Customer: "c1", Currency: "EUR", Points: 5})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	earn("t1")
	earn("t2")
	if _, err := l.DB().Exec(`UPDATE ledger_agents SET watermark = 0 WHERE tenant = ? AND agent = ?`, string(tenant), string(protocol.HubSender)); err != nil {
		t.Fatal(err)
	}
	r3 := earn("t3")
	r4 := earn("t4")
	seen := map[uint64]string{}
	for _, txn := range []string{"t1", "t2", "t3", "t4"} {
		var seq uint64
		var n int
		if err := l.DB().QueryRow(`SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM ledger_journal WHERE tenant = ? AND txn_id = ?`, string(tenant), txn).Scan(&n, &seq); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("%s recorded %d times", txn, n)
		}
		if other, dup := seen[seq]; dup {
			t.Fatalf("%s and %s share seq %d", txn, other, seq)
		}
		seen[seq] = txn
	}
	if r3.ID.Seq != 3 || r4.ID.Seq != 4 {
		t.Errorf("answered %v and %v, want hub seqs 3 and 4", r3.ID, r4.ID)
	}
	var wm int64
	if err := l.DB().QueryRow(`SELECT watermark FROM ledger_agents WHERE tenant = ? AND agent = ?`, string(tenant), string(protocol.HubSender)).Scan(&wm); err != nil || wm != 4 {
		t.Errorf("watermark %d, %v; want 4", wm, err)
	}
	mustPoints(t, l, "c1", 20)
	mustVerify(t, l)
}
