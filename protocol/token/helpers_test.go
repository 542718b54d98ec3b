package token

import (
	"crypto/ed25519"
	"crypto/sha256"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// testKey derives a deterministic key from a seed string, so fixtures are
// reproducible.
func testKey(tenant protocol.TenantID, kid protocol.KeyID, seed string) SigningKey {
	s := sha256.Sum256([]byte(seed))
	return SigningKey{Tenant: tenant, KeyID: kid, Private: ed25519.NewKeyFromSeed(s[:])}
}

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func typicalClaims() Claims {
	return Claims{
		Tenant:    "acme",
		Customer:  "cust-0001234",
		IssuedAt:  t0,
		NotBefore: t0,
		Expires:   t0.Add(30 * 24 * time.Hour),
		Serial:    "S7K2M9QX4T",
		Campaign:  "summer-26",
		Tier:      "gold",
		Uses:      1,
	}
}
