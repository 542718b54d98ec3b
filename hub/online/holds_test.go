package online

import (
	"testing"
	"time"
)

// TestHoldBook pins the holds of online-first tills: counted for others,
// not for their owner; replaced by a repeat of the same (agent, txn);
// dropped once the ledger shows the fact, or when they expire.
func TestHoldBook(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	b := newHoldBook()
	k := holdKey{"acme", 'c', "GIFT1", ""}
	b.replace("till-1/t1", "acme", []hold{{key: k, owner: "till-1/t1", uses: 1, spend: 30_00, baseUses: 0, baseSpent: 20_00, expires: now.Add(time.Minute)}})
	if u, s := b.held(k, "till-2/t9", 0, 20_00, now); u != 1 || s != 30_00 {
		t.Fatalf("held for another till: %d %d", u, s)
	}
	if u, s := b.held(k, "till-1/t1", 0, 20_00, now); u != 0 || s != 0 {
		t.Fatalf("held for its owner: %d %d", u, s)
	}
	// A repeat of the same transaction replaces its hold.
	b.replace("till-1/t1", "acme", []hold{{key: k, owner: "till-1/t1", uses: 1, spend: 10_00, baseSpent: 20_00, expires: now.Add(time.Minute)}})
	if _, s := b.held(k, "web/x", 0, 20_00, now); s != 10_00 {
		t.Fatalf("after a repeat: spend %d, want 10_00", s)
	}
	// The fact reached the ledger (its use and spend show): the hold lapses.
	if u, s := b.held(k, "web/x", 1, 30_00, now); u != 0 || s != 0 {
		t.Fatalf("after the fact: %d %d", u, s)
	}
	if len(b.byKey) != 0 || len(b.byOwner) != 0 {
		t.Fatalf("lapsed hold kept: %v %v", b.byKey, b.byOwner)
	}
	// Expiry.
	b.replace("till-1/t2", "acme", []hold{{key: k, owner: "till-1/t2", uses: 1, expires: now.Add(time.Minute)}})
	if u, _ := b.held(k, "web/x", 0, 0, now.Add(2*time.Minute)); u != 0 {
		t.Fatalf("expired hold counted: %d", u)
	}
	// A hold nobody reads again is swept by a later replace.
	k2 := holdKey{"acme", 'c', "ONCE", ""}
	b.replace("till-3/t1", "acme", []hold{{key: k2, owner: "till-3/t1", uses: 1, expires: now.Add(time.Minute)}})
	later := now.Add(time.Hour)
	b.replace("till-4/t1", "acme", []hold{{key: k, owner: "till-4/t1", uses: 1, expires: later}})
	if _, ok := b.byKey[k2]; ok || len(b.byOwner) != 1 {
		t.Fatalf("stale hold not swept: %v %v", b.byKey, b.byOwner)
	}
}
