package catalog

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// SecretPrefix starts every API key secret, so a leaked key is easy to
// find in logs and repositories.
const SecretPrefix = "pck_"

// ErrBadKey is returned by Authenticate for an unknown or revoked secret.
var ErrBadKey = protocol.NewError(protocol.CodeUnauthenticated)

// CreateKey creates an API key and returns it with its secret; the secret
// is not stored and cannot be shown again. A platform key has tenant "".
// Reason codes: invalid_input, not_found (tenant).
func (c *Catalog) CreateKey(ctx context.Context, actor Actor, tenant protocol.TenantID, role Role, name string) (Key, string, error) {
	if err := checkKeyArgs(tenant, role, name); err != nil {
		return Key{}, "", err
	}
	if role == RoleAgent {
		return Key{}, "", protocol.FieldError("role", "agent keys are created by registering the agent")
	}
	var k Key
	var secret string
	err := c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		var err error
		k, secret, err = c.createKey(ctx, tx, tenant, role, name, "", "", now)
		if err != nil {
			return err
		}
		return audit(ctx, tx, tenant, actor, "key.create", "key/"+k.ID, nil, k, v, now)
	})
	return k, secret, err
}

func checkKeyArgs(tenant protocol.TenantID, role Role, name string) error {
	if !role.Valid() {
		return protocol.FieldError("role", "unknown role %q: use admin, marketer, support or read-only", role)
	}
	if (role == RolePlatform) != (tenant == "") {
		return protocol.FieldError("role", "platform keys belong to no tenant; every other key to one")
	}
	if len(name) > 200 {
		return protocol.FieldError("name", "name is longer than 200 characters")
	}
	return nil
}

// createKey inserts a key. A non-empty secret is used as given (bootstrap
// from the environment); otherwise a random one is made.
func (c *Catalog) createKey(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, role Role, name string, agent protocol.AgentID, secret string, now time.Time) (Key, string, error) {
	id, err := c.random(10)
	if err != nil {
		return Key{}, "", err
	}
	if secret == "" {
		s, err := c.random(32)
		if err != nil {
			return Key{}, "", err
		}
		secret = SecretPrefix + s
	}
	k := Key{ID: "key_" + id, Tenant: tenant, Role: role, Name: name, Agent: agent, CreatedAt: now}
	_, err = tx.ExecContext(ctx, `INSERT INTO catalog_keys (id, tenant, role, name, agent, hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		k.ID, string(tenant), string(role), name, string(agent), hashSecret(secret), now.UnixMicro())
	if isUnique(err) {
		return Key{}, "", conflict("secret", "this secret is already in use")
	}
	if err != nil {
		return Key{}, "", fmt.Errorf("catalog: create key: %w", err)
	}
	return k, secret, nil
}

type scanner interface{ Scan(dest ...any) error }

// collect scans every row of rows with scan and closes rows. An empty
// result is a non-nil empty slice, so JSON shows [] rather than null.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanKey(s scanner) (Key, error) {
	var k Key
	var created int64
	var revoked sql.NullInt64
	if err := s.Scan(&k.ID, &k.Tenant, &k.Role, &k.Name, &k.Agent, &created, &revoked); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Key{}, err
		}
		return Key{}, fmt.Errorf("catalog: key: %w", err)
	}
	k.CreatedAt = time.UnixMicro(created).UTC()
	k.RevokedAt = fromMicros(revoked)
	return k, nil
}

// Keys lists a tenant's keys (platform keys for tenant "").
func (c *Catalog) Keys(ctx context.Context, tenant protocol.TenantID) ([]Key, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, tenant, role, name, agent, created_at, revoked_at FROM catalog_keys WHERE tenant = ? ORDER BY created_at, id`, string(tenant))
	if err != nil {
		return nil, fmt.Errorf("catalog: keys: %w", err)
	}
	return collect(rows, scanKey)
}

// RevokeKey revokes a tenant's key. Reason codes: not_found, conflict
// (already revoked).
func (c *Catalog) RevokeKey(ctx context.Context, actor Actor, tenant protocol.TenantID, id string) error {
	return c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		k, err := scanKey(tx.QueryRowContext(ctx, `SELECT id, tenant, role, name, agent, created_at, revoked_at FROM catalog_keys WHERE id = ? AND tenant = ?`, id, string(tenant)))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("key", id)
		}
		if err != nil {
			return err
		}
		if !k.RevokedAt.IsZero() {
			return conflict("", "key %q is already revoked", id)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE catalog_keys SET revoked_at = ? WHERE id = ?`, now.UnixMicro(), id); err != nil {
			return fmt.Errorf("catalog: revoke key: %w", err)
		}
		after := k
		after.RevokedAt = now
		return audit(ctx, tx, tenant, actor, "key.revoke", "key/"+id, k, after, v, now)
	})
}

// Bootstrap makes sure the hub has a platform key, so that the first
// tenant can be created. With no platform key yet it creates one: with
// secret when given (for example from PUNCHCARD_BOOTSTRAP_KEY), otherwise a
// random one, which it returns (created true) for the caller to show once.
// With a platform key already present it does nothing.
func (c *Catalog) Bootstrap(ctx context.Context, secret string) (Key, string, bool, error) {
	if secret != "" && len(secret) < 20 {
		return Key{}, "", false, protocol.FieldError("secret", "a bootstrap secret needs at least 20 characters")
	}
	var k Key
	var created bool
	err := c.write(ctx, "", func(tx *sql.Tx, _ uint64, now time.Time) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM catalog_keys WHERE role = ? AND revoked_at IS NULL`, string(RolePlatform)).Scan(&n); err != nil {
			return fmt.Errorf("catalog: bootstrap: %w", err)
		}
		if n > 0 {
			return nil
		}
		var err error
		k, secret, err = c.createKey(ctx, tx, "", RolePlatform, "bootstrap", "", secret, now)
		if err != nil {
			return err
		}
		created = true
		return audit(ctx, tx, "", System, "key.bootstrap", "key/"+k.ID, nil, k, 0, now)
	})
	if err != nil || !created {
		return Key{}, "", false, err
	}
	return k, secret, true, nil
}

// CheckAgentSecret reports whether secret is the current credential of the
// agent tenant/agent. The MQTT broker's auth hook calls it with the
// username "<tenant>/<agent>" split in two. It returns false, nil for a
// wrong secret, an unknown or revoked agent.
func (c *Catalog) CheckAgentSecret(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, secret string) (bool, error) {
	if secret == "" || len(secret) > 200 {
		return false, nil
	}
	want := hashSecret(secret)
	// A verified credential is kept per catalog version (agentSecrets):
	// a reconnect storm of thousands of tills costs a map lookup each,
	// not a database read competing with ingest for the pool.
	if ok, found := c.cachedAgentSecret(ctx, tenant, agent, want); found {
		return ok, nil
	}
	var hash []byte
	var v uint64
	err := c.db.QueryRowContext(ctx, `SELECT k.hash, t.version FROM catalog_agents a JOIN catalog_keys k ON k.id = a.key_id
		JOIN catalog_tenants t ON t.id = a.tenant
		WHERE a.tenant = ? AND a.id = ? AND k.revoked_at IS NULL`, string(tenant), string(agent)).Scan(&hash, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("catalog: check agent secret: %w", err)
	}
	ok := subtle.ConstantTimeCompare(hash, want) == 1
	if ok {
		c.cacheAgentSecret(tenant, agent, v, want)
	}
	return ok, nil
}
