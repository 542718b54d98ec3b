package agent_test

import (
	"bytes"
	"testing"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// hashed turns a snapshot's codes and code revocations into their keyed
// hashes, as the hub sends them.
func hashed(s *snapshot.Snapshot) *snapshot.Snapshot {
	s.CodeKey = bytes.Repeat([]byte{7}, snapshot.CodeKeySize)
	for i := range s.Codes {
		s.Codes[i].Code = snapshot.HashCode(s.CodeKey, s.Codes[i].Code)
	}
	for i, r := range s.Revocations {
		if r.Kind == snapshot.RevokeCode {
			s.Revocations[i].ID = snapshot.HashCode(s.CodeKey, r.ID)
		}
	}
	return s
}

// TestHashedCodes: with a snapshot that lists codes by keyed hash only,
// the till finds what is presented (in any spelling codes.Normalize
// accepts), counts its local uses, and refuses revoked and unknown codes.
func TestHashedCodes(t *testing.T) {
	snap := hashed(agenttest.Small(1, 10))
	enc := agenttest.Encode(t, snap)
	for _, c := range []string{"ONCE1", "BOUND1", "GIFT1", "GONE1", agenttest.CodeOnce, agenttest.CodeGift} {
		if bytes.Contains(enc, []byte(c)) {
			t.Fatalf("the hashed snapshot holds %q", c)
		}
	}
	e := newEnv(t, snap)
	e.link.on.Store(true)
	basket := func(code string, amount int64) agent.Basket {
		return agent.Basket{Order: agenttest.Order("o1", 100_00), Redeemables: []agent.Input{{Code: code, Amount: amount}}}
	}
	if r := e.post(t, "/v1/redeem", redeem("t1", basket("once-1", 0))); r.Status != 200 {
		t.Fatalf("ONCE-1 as once-1: %d %s", r.Status, r.Raw)
	}
	if r := e.post(t, "/v1/validate", basket(agenttest.CodeOnce, 0)); r.code() != string(protocol.CodeCodeUsed) {
		t.Fatalf("ONCE-1 again: %s", r.Raw)
	}
	if r := e.post(t, "/v1/redeem", redeem("t2", basket(agenttest.CodeGift, 10_00))); r.Status != 200 {
		t.Fatalf("gift card: %d %s", r.Status, r.Raw)
	}
	if r := e.post(t, "/v1/validate", basket(agenttest.CodeSummer, 0)); r.code() != "" {
		t.Fatalf("SUMMER10: %s", r.Raw)
	}
	if r := e.post(t, "/v1/validate", basket(agenttest.CodeRevoked, 0)); r.code() != string(protocol.CodeCodeRevoked) {
		t.Fatalf("revoked: %s", r.Raw)
	}
	if r := e.post(t, "/v1/validate", basket("NOPE-1", 0)); r.code() != string(protocol.CodeUnknownCode) {
		t.Fatalf("unknown: %s", r.Raw)
	}
	// Nor does a hash typed in find its code.
	if r := e.post(t, "/v1/validate", basket(string(snapshot.HashCode(snap.CodeKey, "ONCE1")), 0)); r.code() != string(protocol.CodeUnknownCode) {
		t.Fatalf("a hash as a code: %s", r.Raw)
	}
}
