package fleet

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// TestTillDecode: a till that does not verify a message's signature
// (Options.VerifyEvery) still refuses one for another till or tenant, or
// one without a signature; one that verifies also refuses a wrong one.
func TestTillDecode(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, ed25519.SeedSize))
	f, err := New(Options{BrokerURL: "tcp://127.0.0.1:1", HubURL: "http://127.0.0.1:1", HubKey: key.Public().(ed25519.PublicKey),
		Tills: []Cred{{Tenant: "acme", Agent: "till-1", Secret: "s"}}, VerifyEvery: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tl := f.tills[0]
	sign := func(k ed25519.PrivateKey, tenant protocol.TenantID, to protocol.AgentID) []byte {
		p, err := protocol.SignDown(k, protocol.MsgAck, tenant, to, "h-1", 1, protocol.Ack{Watermark: 3})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	unsigned, err := protocol.EncodeMessage(protocol.MsgAck, "acme", protocol.HubSender, "h-2", 1, protocol.Ack{Watermark: 3})
	if err != nil {
		t.Fatal(err)
	}
	env, err := protocol.DecodeEnvelope(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	env.To = "till-1"
	unsignedTo, err := protocol.EncMode.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	for _, verify := range []bool{false, true} {
		if b, err := tl.decode(sign(key, "acme", "till-1"), verify); err != nil || b.(*protocol.Ack).Watermark != 3 {
			t.Fatalf("verify %v: genuine Ack: %v %v", verify, b, err)
		}
		for name, c := range map[string]struct {
			p    []byte
			want protocol.Code
		}{
			"OtherTill":   {sign(key, "acme", "till-2"), protocol.CodeForbidden},
			"OtherTenant": {sign(key, "beta", "till-1"), protocol.CodeWrongTenant},
			"Unsigned":    {unsigned, protocol.CodeForbidden}, // no recipient
			"UnsignedTo":  {unsignedTo, protocol.CodeBadSignature},
		} {
			if _, err := tl.decode(c.p, verify); protocol.ErrorCode(err) != c.want {
				t.Errorf("verify %v: %s: %v, want %s", verify, name, err, c.want)
			}
		}
	}
	if _, err := tl.decode(sign(other, "acme", "till-1"), true); protocol.ErrorCode(err) != protocol.CodeBadSignature {
		t.Errorf("another key's signature: %v", err)
	}
}
