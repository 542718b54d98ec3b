package protocol_test

import (
	"bytes"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// maxSeed keeps the huge limit-testing fixtures out of the fuzz corpus:
// they are covered by TestBadMessageFixtures and would only slow the fuzzer.
const maxSeed = 16 << 10

// checkRefusal fails unless err is one of the codes a decoder of outside
// input may return.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	switch c := protocol.ErrorCode(err); c {
	case protocol.CodeMessageMalformed, protocol.CodeMessageTooLarge, protocol.CodeUnsupportedVersion:
	default:
		t.Fatalf("unexpected code %q: %v", c, err)
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	for _, m := range loadGood(f) {
		f.Add(m.payload)
	}
	for _, m := range loadBad(f) {
		if len(m.payload) <= maxSeed {
			f.Add(m.payload)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := protocol.DecodeEnvelope(data)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if !env.Type.Known() || env.Version == 0 || env.Version > protocol.Version || len(env.Body) == 0 {
			t.Fatalf("accepted a bad envelope: %+v", env)
		}
		// What was accepted survives a re-encoding unchanged.
		b, err := protocol.EncMode.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		again, err := protocol.DecodeEnvelope(b)
		if err != nil {
			t.Fatalf("re-encoded envelope refused: %v", err)
		}
		if again.Type != env.Type || again.ID != env.ID || again.Tenant != env.Tenant || again.Sender != env.Sender ||
			again.Sent != env.Sent || !bytes.Equal(again.Body, env.Body) {
			t.Fatalf("round trip changed the envelope: %+v -> %+v", env, again)
		}
		// And its body, whatever it holds, is decoded or refused cleanly.
		if err := protocol.DecodeBody(env, protocol.NewBody(env.Type)); err != nil {
			checkRefusal(t, err)
		}
	})
}

// FuzzDecodeBody feeds arbitrary bodies to every message type.
func FuzzDecodeBody(f *testing.F) {
	for _, m := range loadGood(f) {
		env, err := protocol.DecodeEnvelope(m.payload)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(env.Type), []byte(env.Body))
	}
	for _, m := range loadBad(f) {
		if m.Stage != "body" || len(m.payload) > maxSeed {
			continue
		}
		env, err := protocol.DecodeEnvelope(m.payload)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(env.Type), []byte(env.Body))
	}
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		mt := protocol.MsgType(typ%uint8(protocol.MsgAllowanceRecall) + 1)
		env := protocol.Envelope{Type: mt, Version: protocol.Version, Tenant: "t", Sender: "a", Body: body}
		v := protocol.NewBody(mt)
		if err := protocol.DecodeBody(env, v); err != nil {
			checkRefusal(t, err)
			return
		}
		if b, ok := v.(*protocol.Batch); ok {
			if err := b.Validate("t", "a"); err != nil && !protocol.ErrorCode(err).Known() {
				t.Fatalf("Batch.Validate: %v", err)
			}
			for _, r := range b.Redemptions {
				if r.Sale == nil {
					continue
				}
				if err := r.Sale.Validate(r.Currency); err != nil && protocol.ErrorCode(err) != protocol.CodeInvalidInput {
					t.Fatalf("Sale.Validate: %v", err)
				}
			}
		}
		// Canonical round trip: encode(decode(encode(v))) == encode(v).
		b1, err := protocol.EncMode.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		v2 := protocol.NewBody(mt)
		if err := protocol.DecodeBody(protocol.Envelope{Type: mt, Body: b1}, v2); err != nil {
			t.Fatalf("re-encoded %v body refused: %v", mt, err)
		}
		b2, err := protocol.EncMode.Marshal(v2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("%v body not stable: %x -> %x", mt, b1, b2)
		}
		if _, err := protocol.EncodeMessage(mt, "t", "a", "id", 0, v); err != nil {
			t.Fatalf("accepted %v body does not encode: %v", mt, err)
		}
	})
}
