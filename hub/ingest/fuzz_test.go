package ingest

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/punchcard/punchcard/protocol"
)

// FuzzDecode feeds arbitrary topics and payloads to the decoder of the
// agents' up messages: it must never panic, and whatever it accepts must
// speak for the agent of its topic.
func enc(f *testing.F, v any) []byte {
	b, err := protocol.EncMode.Marshal(v)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func FuzzDecode(f *testing.F) {
	r := protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: 1}, Kind: protocol.KindRedeem, Tenant: "acme", Store: "s1",
		TxnID: "t1", Campaign: "c1", Code: "SUMMER10", Currency: "EUR", Discount: 100, OrderTot: 1000, HLC: 1 << 40, Offline: true}
	seeds := []struct {
		typ    protocol.MsgType
		sender protocol.AgentID
		body   any
	}{
		{protocol.MsgBatch, "till-1", protocol.Batch{Redemptions: []protocol.Redemption{r}}},
		{protocol.MsgBatch, "till-2", protocol.Batch{Redemptions: []protocol.Redemption{r}}},
		{protocol.MsgAgentState, "till-1", protocol.AgentState{SnapshotVersion: 3, LastSeq: 9, OutboxDepth: 1, HLC: 5}},
		{protocol.MsgAck, "till-1", protocol.Ack{Watermark: 4, Beyond: []uint64{6}}},
		// A fact that does not decode (kind is text) between two good ones.
		{protocol.MsgBatch, "till-1", protocol.RawBatch{Redemptions: []cbor.RawMessage{enc(f, r),
			{0xa2, 0x01, 0xa2, 0x01, 0x66, 't', 'i', 'l', 'l', '-', '1', 0x02, 0x02, 0x02, 0x63, 'b', 'a', 'd'}, enc(f, r)}}},
	}
	topic := protocol.UpTopic("acme", "till-1")
	for _, s := range seeds {
		b, err := protocol.EncodeMessage(s.typ, "acme", s.sender, "id", 1, s.body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(topic, b)
	}
	f.Add("punchcard/v1/acme/till-1/down", []byte{0xa0})
	f.Add(topic, []byte{0xff})
	in := &Ingest{opts: Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		u, ok := in.decode(message{topic: topic, payload: payload})
		if !ok {
			return
		}
		tenant, agent, _ := protocol.ParseUpTopic(topic)
		if u.tenant != tenant || u.agent != agent {
			t.Fatalf("accepted a message for %s/%s on %s", u.tenant, u.agent, topic)
		}
		if (u.batch == nil) == (u.state == nil) {
			t.Fatalf("decoded %+v: want exactly one of batch and state", u)
		}
		// A batch keeps every fact's bytes; a fact that did not decode
		// carries its error, for the ledger to quarantine.
		if b := u.batch; b != nil {
			if len(b.Raw) != len(b.Redemptions) || (b.Malformed != nil && len(b.Malformed) != len(b.Redemptions)) {
				t.Fatalf("batch of %d facts with %d raw, %d errors", len(b.Redemptions), len(b.Raw), len(b.Malformed))
			}
			for i, raw := range b.Raw {
				if b.Malformed != nil && b.Malformed[i] != nil {
					if protocol.ErrorCode(b.Malformed[i]) != protocol.CodeMessageMalformed {
						t.Fatalf("fact %d: %v", i, b.Malformed[i])
					}
					continue
				}
				if r, _, err := protocol.DecodeFact(raw); err != nil || r.ID != b.Redemptions[i].ID {
					t.Fatalf("fact %d: raw bytes decode to %v, %v", i, r.ID, err)
				}
			}
		}
	})
}
