package catalog

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
)

// HubSigningKey returns the hub's Ed25519 key, which signs everything the
// hub sends down to agents. The first call on a new database creates it;
// hubs sharing the database race harmlessly (INSERT OR IGNORE) and all get
// the one key that was stored, so agents pin a single public key.
func (c *Catalog) HubSigningKey(ctx context.Context) (ed25519.PrivateKey, error) {
	if k, err := c.hubKey(ctx); err == nil || !errors.Is(err, sql.ErrNoRows) {
		return k, err
	}
	pub, priv, err := ed25519.GenerateKey(c.Rand)
	if err != nil {
		return nil, fmt.Errorf("catalog: generate hub key: %w", err)
	}
	if _, err := c.db.ExecContext(ctx, `INSERT OR IGNORE INTO catalog_hub_key (id, public, private, created_at) VALUES (1, ?, ?, ?)`,
		[]byte(pub), priv.Seed(), c.now().UnixMicro()); err != nil {
		return nil, fmt.Errorf("catalog: store hub key: %w", err)
	}
	return c.hubKey(ctx)
}

// HubPublicKey is the public half of HubSigningKey, what agents pin.
func (c *Catalog) HubPublicKey(ctx context.Context) (ed25519.PublicKey, error) {
	k, err := c.HubSigningKey(ctx)
	if err != nil {
		return nil, err
	}
	return k.Public().(ed25519.PublicKey), nil
}

func (c *Catalog) hubKey(ctx context.Context) (ed25519.PrivateKey, error) {
	var pub, seed []byte
	err := c.db.QueryRowContext(ctx, `SELECT public, private FROM catalog_hub_key WHERE id = 1`).Scan(&pub, &seed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: hub key: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("catalog: hub key: stored seed is %d bytes", len(seed))
	}
	k := ed25519.NewKeyFromSeed(seed)
	if !k.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(pub)) {
		return nil, errors.New("catalog: hub key: public key does not match the stored seed")
	}
	return k, nil
}
