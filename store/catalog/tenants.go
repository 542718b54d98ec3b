package catalog

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/token"
)

// CreateTenant creates a tenant with its first signing key. Reason codes:
// invalid_input, conflict (the ID exists).
func (c *Catalog) CreateTenant(ctx context.Context, actor Actor, t Tenant) (Tenant, error) {
	if err := protocol.ValidateIdentity("id", string(t.ID)); err != nil {
		return Tenant{}, fieldOf("id", err)
	}
	if t.Name == "" || len(t.Name) > 200 {
		return Tenant{}, protocol.FieldError("name", "name must be 1 to 200 characters")
	}
	if err := t.Currency.Validate(); err != nil {
		return Tenant{}, fieldOf("currency", err)
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return Tenant{}, fmt.Errorf("catalog: begin: %w", err)
	}
	defer tx.Rollback()
	now := c.now()
	t.Version, t.CreatedAt, t.ChangedAt = 1, now, now
	_, err = tx.ExecContext(ctx, `INSERT INTO catalog_tenants (id, name, currency, version, changed_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		string(t.ID), t.Name, string(t.Currency), t.Version, now.UnixMicro(), now.UnixMicro())
	if isUnique(err) {
		return Tenant{}, conflict("id", "tenant %q already exists", t.ID)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("catalog: create tenant: %w", err)
	}
	kid, err := c.newSigningKey(ctx, tx, t.ID, now)
	if err != nil {
		return Tenant{}, err
	}
	codeKey := make([]byte, snapshot.CodeKeySize)
	if _, err := io.ReadFull(c.Rand, codeKey); err != nil {
		return Tenant{}, fmt.Errorf("catalog: code key: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO catalog_code_keys (tenant, key) VALUES (?, ?)`, string(t.ID), codeKey); err != nil {
		return Tenant{}, fmt.Errorf("catalog: code key: %w", err)
	}
	if err := audit(ctx, tx, t.ID, actor, "tenant.create", "tenant/"+string(t.ID), nil, t, t.Version, now); err != nil {
		return Tenant{}, err
	}
	if err := audit(ctx, tx, t.ID, actor, "signing_key.create", "signing_key/"+string(kid), nil, map[string]any{"kid": kid}, t.Version, now); err != nil {
		return Tenant{}, err
	}
	if err := tx.Commit(); err != nil {
		return Tenant{}, fmt.Errorf("catalog: commit: %w", err)
	}
	return t, nil
}

func fieldOf(field string, err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		e := *pe
		e.Field = field
		return &e
	}
	return err
}

// Tenant returns a tenant. Reason codes: not_found.
func (c *Catalog) Tenant(ctx context.Context, id protocol.TenantID) (Tenant, error) {
	return scanTenant(c.db.QueryRowContext(ctx, `SELECT id, name, currency, version, changed_at, created_at FROM catalog_tenants WHERE id = ?`, string(id)), id)
}

func scanTenant(s scanner, id protocol.TenantID) (Tenant, error) {
	var t Tenant
	var changed, created int64
	err := s.Scan(&t.ID, &t.Name, &t.Currency, &t.Version, &changed, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Tenant{}, notFound("tenant", string(id))
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("catalog: tenant: %w", err)
	}
	t.ChangedAt, t.CreatedAt = time.UnixMicro(changed).UTC(), time.UnixMicro(created).UTC()
	return t, nil
}

// Tenants lists every tenant.
func (c *Catalog) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, name, currency, version, changed_at, created_at FROM catalog_tenants ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("catalog: tenants: %w", err)
	}
	defer rows.Close()
	out := []Tenant{}
	for rows.Next() {
		t, err := scanTenant(rows, "")
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Version is a tenant's current catalog version. Reason codes: not_found.
// It is the read cache's version (cache.go): this process's own changes
// at once, another process's within CacheTTL.
func (c *Catalog) Version(ctx context.Context, tenant protocol.TenantID) (uint64, error) {
	g, err := c.current(ctx, tenant)
	if err != nil {
		return 0, err
	}
	if g == nil {
		return c.storedVersion(ctx, nil, tenant)
	}
	return g.version, nil
}

func (c *Catalog) newSigningKey(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, now time.Time) (protocol.KeyID, error) {
	pub, priv, err := ed25519.GenerateKey(c.Rand)
	if err != nil {
		return "", fmt.Errorf("catalog: generate signing key: %w", err)
	}
	r, err := c.random(8)
	if err != nil {
		return "", err
	}
	kid := protocol.KeyID("k" + r)
	_, err = tx.ExecContext(ctx, `INSERT INTO catalog_signing_keys (kid, tenant, public, private, created_at) VALUES (?, ?, ?, ?, ?)`,
		string(kid), string(tenant), []byte(pub), priv.Seed(), now.UnixMicro())
	if err != nil {
		return "", fmt.Errorf("catalog: store signing key: %w", err)
	}
	return kid, nil
}

// RotateSigningKey retires the tenant's current signing key and creates a
// new one. The old public key stays valid for verification until the last
// token it signed expires (its NotAfter); new tokens use the new key.
// Reason codes: not_found (tenant).
func (c *Catalog) RotateSigningKey(ctx context.Context, actor Actor, tenant protocol.TenantID) (SigningKeyInfo, error) {
	var info SigningKeyInfo
	err := c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		var old string
		err := tx.QueryRowContext(ctx, `SELECT kid FROM catalog_signing_keys WHERE tenant = ? AND retired_at IS NULL`, string(tenant)).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("catalog: rotate: %w", err)
		}
		if old != "" {
			var last sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT MAX(expires_at) FROM catalog_tokens WHERE kid = ?`, old).Scan(&last); err != nil {
				return fmt.Errorf("catalog: rotate: %w", err)
			}
			notAfter := now.UnixMicro()
			if last.Valid && last.Int64 > notAfter {
				notAfter = last.Int64
			}
			if _, err := tx.ExecContext(ctx, `UPDATE catalog_signing_keys SET retired_at = ?, not_after = ? WHERE kid = ?`, now.UnixMicro(), notAfter, old); err != nil {
				return fmt.Errorf("catalog: rotate: %w", err)
			}
		}
		kid, err := c.newSigningKey(ctx, tx, tenant, now)
		if err != nil {
			return err
		}
		info, err = signingKeyInfo(ctx, tx, kid)
		if err != nil {
			return err
		}
		return audit(ctx, tx, tenant, actor, "signing_key.rotate", "signing_key/"+string(kid), map[string]string{"kid": old}, map[string]any{"kid": kid}, v, now)
	})
	return info, err
}

func signingKeyInfo(ctx context.Context, q querier, kid protocol.KeyID) (SigningKeyInfo, error) {
	var k SigningKeyInfo
	var created int64
	var retired, notAfter sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT kid, public, created_at, retired_at, not_after FROM catalog_signing_keys WHERE kid = ?`, string(kid)).
		Scan(&k.KID, &k.Public, &created, &retired, &notAfter)
	if err != nil {
		return k, fmt.Errorf("catalog: signing key: %w", err)
	}
	k.CreatedAt, k.RetiredAt, k.NotAfter = time.UnixMicro(created).UTC(), fromMicros(retired), fromMicros(notAfter)
	return k, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// SigningKey returns the tenant's current private signing key. Reason
// codes: not_found.
func (c *Catalog) SigningKey(ctx context.Context, tenant protocol.TenantID) (token.SigningKey, error) {
	return currentSigningKey(ctx, c.db, tenant)
}

func currentSigningKey(ctx context.Context, q querier, tenant protocol.TenantID) (token.SigningKey, error) {
	var kid string
	var seed []byte
	err := q.QueryRowContext(ctx, `SELECT kid, private FROM catalog_signing_keys WHERE tenant = ? AND retired_at IS NULL`, string(tenant)).Scan(&kid, &seed)
	if errors.Is(err, sql.ErrNoRows) {
		return token.SigningKey{}, protocol.Errorf(protocol.CodeNotFound, "tenant %q has no signing key", tenant)
	}
	if err != nil {
		return token.SigningKey{}, fmt.Errorf("catalog: signing key: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return token.SigningKey{}, fmt.Errorf("catalog: signing key %s: bad seed length %d", kid, len(seed))
	}
	return token.SigningKey{Tenant: tenant, KeyID: protocol.KeyID(kid), Private: ed25519.NewKeyFromSeed(seed)}, nil
}

// SigningKeys lists a tenant's signing keys still usable for
// verification at now (the current one and retired ones before their
// NotAfter), newest first.
func (c *Catalog) SigningKeys(ctx context.Context, tenant protocol.TenantID) ([]SigningKeyInfo, error) {
	return signingKeys(ctx, c.db, tenant, c.now())
}

func signingKeys(ctx context.Context, q querier, tenant protocol.TenantID, now time.Time) ([]SigningKeyInfo, error) {
	rows, err := q.QueryContext(ctx, `SELECT kid, public, created_at, retired_at, not_after FROM catalog_signing_keys
		WHERE tenant = ? AND (not_after IS NULL OR not_after >= ?) ORDER BY retired_at IS NULL DESC, created_at DESC, kid`, string(tenant), now.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("catalog: signing keys: %w", err)
	}
	defer rows.Close()
	out := []SigningKeyInfo{}
	for rows.Next() {
		var k SigningKeyInfo
		var created int64
		var retired, notAfter sql.NullInt64
		if err := rows.Scan(&k.KID, &k.Public, &created, &retired, &notAfter); err != nil {
			return nil, fmt.Errorf("catalog: signing keys: %w", err)
		}
		k.CreatedAt, k.RetiredAt, k.NotAfter = time.UnixMicro(created).UTC(), fromMicros(retired), fromMicros(notAfter)
		out = append(out, k)
	}
	return out, rows.Err()
}

// KeySet returns a token.KeySet over a tenant's verification keys, for the
// hub's online validation.
func (c *Catalog) KeySet(ctx context.Context, tenant protocol.TenantID) (token.KeySet, error) {
	keys, err := c.SigningKeys(ctx, tenant)
	if err != nil {
		return nil, err
	}
	m := token.KeyMap{}
	for _, k := range keys {
		m.Add(token.PublicKey{Tenant: tenant, KeyID: k.KID, Key: ed25519.PublicKey(k.Public), NotAfter: k.NotAfter})
	}
	return m, nil
}

// codeKey is the tenant's key for the keyed code hashes of its snapshots
// (snapshot.HashCode).
func codeKey(ctx context.Context, q querier, tenant protocol.TenantID) ([]byte, error) {
	var key []byte
	err := q.QueryRowContext(ctx, `SELECT key FROM catalog_code_keys WHERE tenant = ?`, string(tenant)).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("tenant", string(tenant))
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: code key: %w", err)
	}
	return key, nil
}
