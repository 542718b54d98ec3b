package protocol_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// testHubKey is a fixed hub key, so that the signed fixtures are the same
// bytes on every run (Ed25519 signatures are deterministic).
var testHubKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

func testHubPub() ed25519.PublicKey { return testHubKey.Public().(ed25519.PublicKey) }

// signedFixtures are real down messages of every type, signed by
// testHubKey for acme/till-1.
func signedFixtures(tb testing.TB) [][]byte {
	tb.Helper()
	bodies := []struct {
		t    protocol.MsgType
		body any
	}{
		{protocol.MsgAck, protocol.Ack{Watermark: 41, Beyond: []uint64{43, 44}}},
		{protocol.MsgAck, protocol.Ack{Watermark: 1000000}},
		{protocol.MsgResend, protocol.Resend{From: 42, To: 42}},
		{protocol.MsgSnapshotAnnounce, protocol.SnapshotAnnounce{Version: 7, ETag: `"L12"`}},
		{protocol.MsgAllowanceRecall, protocol.AllowanceRecall{Campaign: "summer"}},
		{protocol.MsgAllowanceRecall, protocol.AllowanceRecall{}},
	}
	var out [][]byte
	for i, b := range bodies {
		p, err := protocol.SignDown(testHubKey, b.t, "acme", "till-1", "h"+string(rune('a'+i)), 1700000000000000, b.body)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestSignDown(t *testing.T) {
	pub := testHubPub()
	t.Run("OK", func(t *testing.T) {
		for _, p := range signedFixtures(t) {
			env, body, err := protocol.DecodeDown(p, pub, "acme", "till-1")
			if err != nil {
				t.Fatal(err)
			}
			if env.To != "till-1" || env.Sender != protocol.HubSender || env.Version != protocol.Version || body == nil {
				t.Fatalf("envelope %+v body %v", env, body)
			}
		}
	})
	ack := signedFixtures(t)[1]
	refuse := func(t *testing.T, p []byte, pub ed25519.PublicKey, tenant protocol.TenantID, agent protocol.AgentID, want protocol.Code) {
		t.Helper()
		_, _, err := protocol.DecodeDown(p, pub, tenant, agent)
		if got := protocol.ErrorCode(err); got != want {
			t.Fatalf("code = %q (%v), want %q", got, err, want)
		}
	}
	t.Run("ErrOtherAgent", func(t *testing.T) {
		// A genuine ack for till-1 is not an ack for till-10 or till-2.
		refuse(t, ack, pub, "acme", "till-2", protocol.CodeForbidden)
		refuse(t, ack, pub, "acme", "till-10", protocol.CodeForbidden)
	})
	t.Run("ErrOtherTenant", func(t *testing.T) {
		refuse(t, ack, pub, "beta", "till-1", protocol.CodeWrongTenant)
	})
	t.Run("ErrWrongKey", func(t *testing.T) {
		other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
		refuse(t, ack, other, "acme", "till-1", protocol.CodeBadSignature)
		refuse(t, ack, nil, "acme", "till-1", protocol.CodeBadSignature)
	})
	t.Run("ErrUnsigned", func(t *testing.T) {
		p, err := protocol.EncodeMessage(protocol.MsgAck, "acme", protocol.HubSender, "x", 0, protocol.Ack{Watermark: 1000000})
		if err != nil {
			t.Fatal(err)
		}
		refuse(t, p, pub, "acme", "till-1", protocol.CodeForbidden) // no recipient
		env, _ := protocol.DecodeEnvelope(p)
		env.To = "till-1"
		p, _ = protocol.EncMode.Marshal(env)
		refuse(t, p, pub, "acme", "till-1", protocol.CodeBadSignature)
	})
	t.Run("ErrAltered", func(t *testing.T) {
		for _, alter := range []func(*protocol.Envelope){
			func(e *protocol.Envelope) { e.Body = []byte{0xa1, 0x01, 0x1a, 0x00, 0x0f, 0x42, 0x41} }, // watermark 1000001
			func(e *protocol.Envelope) { e.Type = protocol.MsgResend },
			func(e *protocol.Envelope) { e.ID = "other" },
			func(e *protocol.Envelope) { e.Sent++ },
			func(e *protocol.Envelope) { e.Sig[0] ^= 1 },
			func(e *protocol.Envelope) { e.Sig = e.Sig[:63] },
		} {
			env, err := protocol.DecodeEnvelope(ack)
			if err != nil {
				t.Fatal(err)
			}
			env.Sig = append([]byte(nil), env.Sig...)
			alter(&env)
			p, _ := protocol.EncMode.Marshal(env)
			refuse(t, p, pub, "acme", "till-1", protocol.CodeBadSignature)
		}
	})
	t.Run("ErrUpType", func(t *testing.T) {
		if _, err := protocol.SignDown(testHubKey, protocol.MsgBatch, "acme", "till-1", "x", 0, protocol.Batch{}); protocol.ErrorCode(err) != protocol.CodeInvalidInput {
			t.Fatalf("signed a batch: %v", err)
		}
	})
	t.Run("HubKeyText", func(t *testing.T) {
		s := protocol.FormatHubKey(pub)
		got, err := protocol.ParseHubKey(" " + s + "\n")
		if err != nil || !got.Equal(pub) {
			t.Fatalf("round trip %q: %v", s, err)
		}
		for _, bad := range []string{"", "abc", s + "AA", s[:42] + "+"} {
			if _, err := protocol.ParseHubKey(bad); protocol.ErrorCode(err) != protocol.CodeInvalidInput {
				t.Fatalf("ParseHubKey(%q) = %v", bad, err)
			}
		}
	})
}

func TestValidateIdentity(t *testing.T) {
	for _, ok := range []string{"acme", "till-1", "Store_2", "a"} {
		if err := protocol.ValidateIdentity("id", ok); err != nil {
			t.Fatalf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "till.1", "a/b", "a+b", "a#", "$SYS", "$share", "a b", "hub", "HUB", "punchcard-hub", "Punchcard",
		string(bytes.Repeat([]byte{'a'}, protocol.MaxIDLen+1))} {
		err := protocol.ValidateIdentity("id", bad)
		if protocol.ErrorCode(err) != protocol.CodeInvalidInput {
			t.Fatalf("%q accepted: %v", bad, err)
		}
	}
}

// FuzzDecodeDown is the agent's whole path for a down message: decode,
// verify against the pinned key, decode the body. Nothing but a genuine
// message for acme/till-1 may pass, and nothing may panic.
func FuzzDecodeDown(f *testing.F) {
	for _, p := range signedFixtures(f) {
		f.Add(p)
	}
	for _, m := range loadGood(f) {
		f.Add(m.payload)
	}
	pub := testHubPub()
	genuine := map[string]bool{}
	for _, p := range signedFixtures(f) {
		genuine[string(p)] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, body, err := protocol.DecodeDown(data, pub, "acme", "till-1")
		if err != nil {
			switch c := protocol.ErrorCode(err); c {
			case protocol.CodeMessageMalformed, protocol.CodeMessageTooLarge, protocol.CodeUnsupportedVersion,
				protocol.CodeBadSignature, protocol.CodeForbidden, protocol.CodeWrongTenant:
			default:
				t.Fatalf("unexpected code %q: %v", c, err)
			}
			return
		}
		if body == nil || env.To != "till-1" || env.Tenant != "acme" || !env.Type.Down() {
			t.Fatalf("accepted %+v", env)
		}
		// Whatever passed carries a valid signature over exactly what was
		// signed: re-encoded, it is one of the genuine messages.
		b, err := protocol.EncMode.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		if !genuine[string(b)] {
			t.Fatalf("accepted a message the hub never signed: %x", data)
		}
	})
}
