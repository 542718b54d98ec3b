package token

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/veraison/go-cose"

	"github.com/punchcard/punchcard/protocol"
)

// These tests hold the token to an independent COSE implementation
// (veraison/go-cose), so a mistake shared by our signer and our verifier
// cannot go unnoticed.

func TestInteropOursVerifiesWithGoCOSE(t *testing.T) {
	f := loadTokenFixtures(t)
	for _, v := range f.Valid {
		t.Run("OK/"+v.Name, func(t *testing.T) {
			b, err := DecodeText(v.Text)
			if err != nil {
				t.Fatal(err)
			}
			var msg cose.Sign1Message
			if err := msg.UnmarshalCBOR(b); err != nil {
				t.Fatalf("go-cose cannot parse our token: %v", err)
			}
			sk := f.signingKey(t, v.KeyID)
			verifier, err := cose.NewVerifier(cose.AlgorithmEdDSA, sk.Public().Key)
			if err != nil {
				t.Fatal(err)
			}
			if err := msg.Verify(nil, verifier); err != nil {
				t.Fatalf("go-cose: %v", err)
			}
			alg, err := msg.Headers.Protected.Algorithm()
			if err != nil || alg != cose.AlgorithmEdDSA {
				t.Errorf("alg = %v, %v; want EdDSA", alg, err)
			}
			if got, want := string(msg.Headers.Protected[cose.HeaderLabelKeyID].([]byte)), string(v.KeyID); got != want {
				t.Errorf("kid = %q, want %q", got, want)
			}
			// A tampered payload must fail go-cose too: the test can fail.
			msg.Payload = append([]byte(nil), msg.Payload...)
			msg.Payload[len(msg.Payload)-1] ^= 1
			if err := msg.Verify(nil, verifier); err == nil {
				t.Error("go-cose verified a tampered payload")
			}
		})
	}
}

func TestInteropGoCOSEVerifiesWithOurs(t *testing.T) {
	k := testKey("acme", "acme-k1", "acme-k1")
	keys := KeyMap{}.Add(k.Public())
	c := typicalClaims()
	payload, err := c.marshal()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := cose.NewSigner(cose.AlgorithmEdDSA, k.Private)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(t *testing.T, hdr cose.Headers) string {
		t.Helper()
		msg := cose.NewSign1Message()
		msg.Headers = hdr
		msg.Payload = payload
		if err := msg.Sign(rand.Reader, nil, signer); err != nil {
			t.Fatal(err)
		}
		b, err := msg.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		return EncodeText(b)
	}
	now := t0.Add(time.Hour)
	t.Run("OK", func(t *testing.T) {
		txt := sign(t, cose.Headers{Protected: cose.ProtectedHeader{
			cose.HeaderLabelAlgorithm: cose.AlgorithmEdDSA,
			cose.HeaderLabelKeyID:     []byte(k.KeyID),
		}})
		got, err := Verify(keys, "acme", txt, now)
		if err != nil {
			t.Fatalf("Verify of go-cose token: %v", err)
		}
		if !claimsEqual(got, c) {
			t.Errorf("claims = %+v, want %+v", got, c)
		}
	})
	t.Run("OK/ExtraUnprotectedHeader", func(t *testing.T) {
		txt := sign(t, cose.Headers{
			Protected:   cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmEdDSA, cose.HeaderLabelKeyID: []byte(k.KeyID)},
			Unprotected: cose.UnprotectedHeader{cose.HeaderLabelContentType: "application/cwt"},
		})
		if _, err := Verify(keys, "acme", txt, now); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
	t.Run("ErrKidUnprotected", func(t *testing.T) {
		txt := sign(t, cose.Headers{
			Protected:   cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmEdDSA},
			Unprotected: cose.UnprotectedHeader{cose.HeaderLabelKeyID: []byte(k.KeyID)},
		})
		_, err := Verify(keys, "acme", txt, now)
		if got, want := protocol.ErrorCode(err), protocol.CodeTokenMalformed; got != want {
			t.Fatalf("code = %s, want %s", got, want)
		}
	})
	t.Run("ErrOtherKey", func(t *testing.T) {
		other := testKey("acme", "acme-k1", "not-acme-k1")
		s, err := cose.NewSigner(cose.AlgorithmEdDSA, other.Private)
		if err != nil {
			t.Fatal(err)
		}
		msg := cose.NewSign1Message()
		msg.Headers.Protected = cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmEdDSA, cose.HeaderLabelKeyID: []byte(k.KeyID)}
		msg.Payload = payload
		if err := msg.Sign(rand.Reader, nil, s); err != nil {
			t.Fatal(err)
		}
		b, err := msg.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		_, err = Verify(keys, "acme", EncodeText(b), now)
		if got, want := protocol.ErrorCode(err), protocol.CodeBadSignature; got != want {
			t.Fatalf("code = %s, want %s", got, want)
		}
	})
}
