package token

import (
	"errors"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/b32"
)

// checkErr fails unless err is nil or a *protocol.Error with a known token
// code: outside input must never produce an internal error.
func checkErr(t *testing.T, in any, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var pe *protocol.Error
	if !errors.As(err, &pe) || !pe.Code.Known() || pe.Code == protocol.CodeInternal || pe.Message == "" {
		t.Fatalf("input %q: err %v (%T) is not a known reason code", in, err, err)
	}
}

func seedTexts(f *testing.F) tokenFixtures {
	fx := loadTokenFixtures(f)
	for _, v := range fx.Valid {
		f.Add(v.Text)
	}
	for _, v := range fx.Bad {
		f.Add(v.Text)
	}
	return fx
}

func FuzzVerify(f *testing.F) {
	fx := seedTexts(f)
	keys := fx.keySet()
	now := t0.Add(time.Hour)
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Verify(keys, "acme", text, now)
		checkErr(t, text, err)
		if err != nil {
			return
		}
		// Whatever verifies is a complete, valid claim set of the tenant,
		// and its canonical text verifies to the same claims.
		if verr := c.Validate(); verr != nil || c.Tenant != "acme" {
			t.Fatalf("verified claims %+v invalid: %v", c, verr)
		}
		b, _ := DecodeText(text)
		c2, err := Verify(keys, "acme", EncodeText(b), now)
		if err != nil || !claimsEqual(c, c2) {
			t.Fatalf("canonical text of %q: %+v, %v", text, c2, err)
		}
	})
}

// FuzzVerifyCOSE fuzzes the CBOR layer directly, where byte-level mutations
// reach deeper than mutations of the text.
func FuzzVerifyCOSE(f *testing.F) {
	fx := loadTokenFixtures(f)
	for _, v := range append(fx.Valid, validCase{Text: fx.Bad[0].Text}) {
		if b, err := DecodeText(v.Text); err == nil {
			f.Add(b)
		}
	}
	for _, v := range fx.Bad {
		if b, err := DecodeText(v.Text); err == nil {
			f.Add(b)
		}
	}
	keys := fx.keySet()
	now := t0.Add(time.Hour)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := VerifyCOSE(keys, "acme", b, now)
		checkErr(t, b, err)
		if err == nil && c.Validate() != nil {
			t.Fatalf("verified claims %+v invalid", c)
		}
	})
}

func FuzzDecodeText(f *testing.F) {
	seedTexts(f)
	f.Fuzz(func(t *testing.T, text string) {
		b, err := DecodeText(text)
		checkErr(t, text, err)
		if err != nil {
			return
		}
		if len(b) == 0 || len(b) > MaxBytes+1 {
			t.Fatalf("DecodeText(%q) gave %d bytes", text, len(b))
		}
		// One text per byte string: re-encoding gives the normalized input.
		if got, want := EncodeText(b), b32.Normalize(text); got != want {
			t.Fatalf("EncodeText(DecodeText(%q)) = %q, want %q", text, got, want)
		}
	})
}
