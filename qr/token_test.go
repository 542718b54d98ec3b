package qr_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol/codes"
	"github.com/punchcard/punchcard/protocol/token"
	"github.com/punchcard/punchcard/qr"
)

// TestEncoder_RealTokens renders tokens from token.Issue and reads them back
// with zbarimg byte for byte, and checks they stay in alphanumeric mode.
func TestEncoder_RealTokens(t *testing.T) {
	seed := sha256.Sum256([]byte("qr-test"))
	key := token.SigningKey{Tenant: "acme", KeyID: "acme-1", Private: ed25519.NewKeyFromSeed(seed[:])}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		claims token.Claims
	}{
		{"OKMinimal", token.Claims{Serial: "S1", Campaign: "c", Uses: 1, IssuedAt: t0, Expires: t0.Add(time.Hour)}},
		{"OKTypical", token.Claims{Customer: "cust-0001234", IssuedAt: t0, NotBefore: t0,
			Expires: t0.Add(30 * 24 * time.Hour), Serial: "S7K2M9QX4T", Campaign: "summer-26", Tier: "gold", Uses: 1}},
		{"OKStoreBound", token.Claims{Customer: "cust-0001234", IssuedAt: t0, NotBefore: t0,
			Expires: t0.Add(365 * 24 * time.Hour), Serial: "GIFT-7K3M-9QXP", Campaign: "gift-cards", Uses: 10,
			Store: "store-berlin-mitte-01", StoreGroup: "berlin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, err := token.Issue(key, tc.claims)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(text, token.Prefix) || strings.Trim(text, tokenAlphabet) != "" {
				t.Fatalf("token %q is not prefix + token alphabet", text)
			}
			roundTrip(t, qr.NewEncoder(), text)
			for _, lv := range []qr.Level{qr.LevelM, qr.LevelQ} {
				v, err := (&qr.Encoder{Level: lv, ModuleSize: 1}).Version(text)
				if err != nil {
					t.Fatal(err)
				}
				vb, err := (&qr.Encoder{Level: lv, ModuleSize: 1}).Version(strings.ToLower(text))
				if err != nil {
					t.Fatal(err)
				}
				if v >= vb {
					t.Fatalf("level %s: version %d, byte mode would need %d: not alphanumeric", lv, v, vb)
				}
				t.Logf("%d characters: version %d (%d modules) at %s; byte mode would need %d", len(text), v, 17+4*v, lv, vb)
			}
		})
	}
}

// TestEncoder_GeneratedCodes renders codes from the code generator.
func TestEncoder_GeneratedCodes(t *testing.T) {
	for _, opts := range []codes.Options{
		{Pattern: "GIFT-####-####", Check: true},
		{Charset: "0123456789", Length: 16, Check: true},
		{Prefix: "SUMMER", Length: 4},
	} {
		g, err := codes.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		list, err := g.Generate(context.Background(), 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list {
			t.Run("OK"+c, func(t *testing.T) { roundTrip(t, qr.NewEncoder(), c) })
		}
	}
}
