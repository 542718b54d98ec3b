package ledger_test

import (
	"context"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// TestStatementCounts: with the accounting on, an online basket's
// statements are counted (its journal insert and the group's COMMIT
// among them, each with a time); off, nothing is; on again starts over.
func TestStatementCounts(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	basket := func(txn string) {
		t.Helper()
		if _, err := l.Redeem(ctx, protocol.Redemption{Kind: protocol.KindEarn, Tenant: tenant, Store: "web", TxnID: txn,
			Campaign: "loyalty", Customer: "c1", Currency: "EUR", Points: 5}); err != nil {
			t.Fatal(err)
		}
	}
	basket("before")
	if got := l.StatementCounts(); len(got) != 0 {
		t.Fatalf("counted while off: %v", got)
	}
	l.CountStatements(true)
	basket("t1")
	basket("t2")
	counts := l.StatementCounts()
	find := func(prefix string) int64 {
		for _, c := range counts {
			if strings.HasPrefix(c.SQL, prefix) {
				if c.Time <= 0 {
					t.Errorf("%s: no time", c.SQL)
				}
				return c.Count
			}
		}
		return 0
	}
	if n := find("INSERT OR IGNORE INTO ledger_journal"); n != 2 {
		t.Errorf("journal inserts %d, want 2 (one a basket): %v", n, counts)
	}
	if n := find("COMMIT"); n != 2 {
		t.Errorf("commits %d, want 2: %v", n, counts)
	}
	for i := 1; i < len(counts); i++ {
		if counts[i].Time > counts[i-1].Time {
			t.Errorf("not the costliest first: %v", counts)
		}
	}
	l.CountStatements(false)
	basket("t3")
	before := len(counts)
	if counts = l.StatementCounts(); len(counts) != before || find("COMMIT") != 2 {
		t.Errorf("off: the counts moved or went: %v", counts)
	}
	l.CountStatements(true)
	if got := l.StatementCounts(); len(got) != 0 {
		t.Errorf("not started over: %v", got)
	}
}
