package ledger_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// FuzzRederive applies batches of arbitrary bytes, seeded from the batch
// fixtures of testdata/protocol/messages.json (one with sales), to a
// ledger that re-derives every till fact against a real catalog: a fact
// is recorded or the batch refused with a protocol error, never an
// internal one, and the ledger still verifies.
func FuzzRederive(f *testing.F) {
	var fixtures []struct {
		Type protocol.MsgType `json:"type"`
		Hex  string           `json:"hex"`
	}
	b, err := os.ReadFile("../../testdata/protocol/messages.json")
	if err != nil {
		f.Fatal(err)
	}
	if err := json.Unmarshal(b, &fixtures); err != nil {
		f.Fatal(err)
	}
	for _, m := range fixtures {
		if m.Type != protocol.MsgBatch {
			continue
		}
		p, err := hex.DecodeString(m.Hex)
		if err != nil {
			f.Fatal(err)
		}
		env, err := protocol.DecodeEnvelope(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(env.Body))
	}
	ctx := context.Background()
	l, _, _ := hubLedger(f, true)
	f.Fuzz(func(t *testing.T, body []byte) {
		var bt protocol.Batch
		if err := protocol.DecodeBody(protocol.Envelope{Type: protocol.MsgBatch, Version: protocol.Version, Body: body}, &bt); err != nil {
			return
		}
		for i := range bt.Redemptions {
			r := &bt.Redemptions[i]
			r.Tenant, r.ID.Agent, r.Store = tenant, "till-1", "store-1"
		}
		_, _, err := l.ApplyBatch(ctx, tenant, "till-1", bt.Redemptions)
		if err != nil && protocol.ErrorCode(err) == protocol.CodeInternal {
			t.Fatalf("internal error for %+v: %v", bt.Redemptions, err)
		}
		rep, err := l.Verify(ctx)
		if err != nil || !rep.OK() {
			t.Fatalf("verify: %v %v", rep.Diffs, err)
		}
	})
}
