package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// RegisterAgent registers an agent and returns it with its secret: the
// agent's API key (HTTP bearer) and MQTT password, shown only now. A zero
// Envelope gets snapshot.DefaultEnvelope in the tenant's currency. Reason
// codes: invalid_input (including an ID protocol.ValidateIdentity refuses),
// not_found (tenant), conflict (registered already).
func (c *Catalog) RegisterAgent(ctx context.Context, actor Actor, a Agent) (Agent, string, error) {
	// The agent ID becomes part of MQTT topics, a username and a client
	// ID: only what every supported broker accepts, and not a reserved
	// name (protocol.HubSender is the hub's own sender).
	if err := protocol.ValidateIdentity("id", string(a.ID)); err != nil {
		return Agent{}, "", fieldOf("id", err)
	}
	if err := validateAgent(&a); err != nil {
		return Agent{}, "", err
	}
	var secret string
	err := c.write(ctx, a.Tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		if a.Envelope == (snapshot.RiskEnvelope{}) {
			a.Envelope = snapshot.DefaultEnvelope
		}
		if a.Envelope.Currency == "" {
			if err := tx.QueryRowContext(ctx, `SELECT currency FROM catalog_tenants WHERE id = ?`, string(a.Tenant)).Scan(&a.Envelope.Currency); err != nil {
				return fmt.Errorf("catalog: register agent: %w", err)
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM catalog_agents WHERE tenant = ? AND id = ?`, string(a.Tenant), string(a.ID)).Scan(&n); err != nil {
			return fmt.Errorf("catalog: register agent: %w", err)
		}
		if n > 0 {
			return conflict("id", "agent %q is already registered", a.ID)
		}
		k, s, err := c.createKey(ctx, tx, a.Tenant, RoleAgent, "agent "+string(a.ID), a.ID, "", now)
		if err != nil {
			return err
		}
		secret, a.KeyID, a.CreatedAt = s, k.ID, now
		env, err := json.Marshal(a.Envelope)
		if err != nil {
			return fmt.Errorf("catalog: register agent: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO catalog_agents (tenant, id, store, region, time_zone, store_group, envelope, key_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			string(a.Tenant), string(a.ID), string(a.Store.ID), a.Store.Region, a.Store.TimeZone, a.Store.Group, string(env), a.KeyID, now.UnixMicro())
		if err != nil {
			return fmt.Errorf("catalog: register agent: %w", err)
		}
		return audit(ctx, tx, a.Tenant, actor, "agent.register", "agent/"+string(a.ID), nil, a, v, now)
	})
	if err != nil {
		return Agent{}, "", err
	}
	return a, secret, nil
}

func validateAgent(a *Agent) error {
	if err := protocol.ValidateID("id", string(a.ID)); err != nil {
		return fieldOf("id", err)
	}
	if err := protocol.ValidateID("store.id", string(a.Store.ID)); err != nil {
		return fieldOf("store.id", err)
	}
	if a.Store.TimeZone != "" {
		if len(a.Store.TimeZone) > snapshot.MaxTZLen {
			return protocol.FieldError("store.time_zone", "time zone is longer than %d characters", snapshot.MaxTZLen)
		}
		if _, err := time.LoadLocation(a.Store.TimeZone); err != nil {
			return protocol.FieldError("store.time_zone", "unknown time zone %q", a.Store.TimeZone)
		}
	}
	if len(a.Store.Region) > snapshot.MaxRegionLen {
		return protocol.FieldError("store.region", "region is longer than %d characters", snapshot.MaxRegionLen)
	}
	if len(a.Store.Group) > snapshot.MaxRegionLen {
		return protocol.FieldError("store.group", "group is longer than %d characters", snapshot.MaxRegionLen)
	}
	e := a.Envelope
	for _, f := range []struct {
		name string
		v    int64
	}{{"per_redemption", e.PerRedemption}, {"per_campaign", e.PerCampaign}, {"total_amount", e.TotalAmount}, {"count", e.Count}, {"max_stale_seconds", e.MaxStaleSeconds}} {
		if f.v < -1 {
			return protocol.FieldError("envelope."+f.name, "%s must be -1 (unlimited) or more", f.name)
		}
	}
	if e.Currency != "" {
		if err := e.Currency.Validate(); err != nil {
			return fieldOf("envelope.currency", err)
		}
	}
	return nil
}

// Agent returns a registered agent. Reason codes: not_found.
func (c *Catalog) Agent(ctx context.Context, tenant protocol.TenantID, id protocol.AgentID) (Agent, error) {
	return getAgent(ctx, c.db, tenant, id)
}

const agentCols = `tenant, id, store, region, time_zone, store_group, envelope, key_id, created_at`

func getAgent(ctx context.Context, q querier, tenant protocol.TenantID, id protocol.AgentID) (Agent, error) {
	a, err := scanAgent(q.QueryRowContext(ctx, `SELECT `+agentCols+` FROM catalog_agents WHERE tenant = ? AND id = ?`, string(tenant), string(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return Agent{}, notFound("agent", string(id))
	}
	return a, err
}

func scanAgent(s scanner) (Agent, error) {
	var a Agent
	var env string
	var created int64
	if err := s.Scan(&a.Tenant, &a.ID, &a.Store.ID, &a.Store.Region, &a.Store.TimeZone, &a.Store.Group, &env, &a.KeyID, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Agent{}, err
		}
		return Agent{}, fmt.Errorf("catalog: agent: %w", err)
	}
	if err := json.Unmarshal([]byte(env), &a.Envelope); err != nil {
		return Agent{}, fmt.Errorf("catalog: agent %s envelope: %w", a.ID, err)
	}
	a.CreatedAt = time.UnixMicro(created).UTC()
	return a, nil
}

// Agents lists a tenant's agents.
func (c *Catalog) Agents(ctx context.Context, tenant protocol.TenantID) ([]Agent, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+agentCols+` FROM catalog_agents WHERE tenant = ? ORDER BY id`, string(tenant))
	if err != nil {
		return nil, fmt.Errorf("catalog: agents: %w", err)
	}
	// The rows are read first and their envelopes decoded after, each
	// distinct text once (a chain's tills mostly share one): decoding
	// every envelope between the rows' steps took ~3/4 of the ~100 ms
	// that reading 10,000 agents kept its read snapshot open, and the
	// hub's WAL cannot be checkpointed past a read in progress.
	type row struct {
		a       Agent
		env     string
		created int64
	}
	var raw []row
	for rows.Next() {
		var r row
		a := &r.a
		if err := rows.Scan(&a.Tenant, &a.ID, &a.Store.ID, &a.Store.Region, &a.Store.TimeZone, &a.Store.Group, &r.env, &a.KeyID, &r.created); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog: agent: %w", err)
		}
		raw = append(raw, r)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("catalog: agents: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: agents: %w", err)
	}
	out := make([]Agent, 0, len(raw))
	envs := map[string]snapshot.RiskEnvelope{}
	for _, r := range raw {
		env, ok := envs[r.env]
		if !ok {
			if err := json.Unmarshal([]byte(r.env), &env); err != nil {
				return nil, fmt.Errorf("catalog: agent %s envelope: %w", r.a.ID, err)
			}
			envs[r.env] = env
		}
		r.a.Envelope = env
		r.a.CreatedAt = time.UnixMicro(r.created).UTC()
		out = append(out, r.a)
	}
	return out, nil
}

// RotateAgentSecret revokes the agent's credential and returns a new
// secret. Reason codes: not_found.
func (c *Catalog) RotateAgentSecret(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.AgentID) (string, error) {
	var secret string
	err := c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		a, err := getAgent(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE catalog_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, now.UnixMicro(), a.KeyID); err != nil {
			return fmt.Errorf("catalog: rotate agent secret: %w", err)
		}
		k, s, err := c.createKey(ctx, tx, tenant, RoleAgent, "agent "+string(id), id, "", now)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE catalog_agents SET key_id = ? WHERE tenant = ? AND id = ?`, k.ID, string(tenant), string(id)); err != nil {
			return fmt.Errorf("catalog: rotate agent secret: %w", err)
		}
		secret = s
		return audit(ctx, tx, tenant, actor, "agent.rotate_secret", "agent/"+string(id), map[string]string{"key_id": a.KeyID}, map[string]string{"key_id": k.ID}, v, now)
	})
	return secret, err
}

// SetEnvelope replaces an agent's offline risk envelope. Reason codes:
// invalid_input, not_found.
func (c *Catalog) SetEnvelope(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.AgentID, e snapshot.RiskEnvelope) (Agent, error) {
	var a Agent
	err := c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		var err error
		if a, err = getAgent(ctx, tx, tenant, id); err != nil {
			return err
		}
		before := a
		a.Envelope = e
		if err := validateAgent(&a); err != nil {
			return err
		}
		env, _ := json.Marshal(e)
		if _, err := tx.ExecContext(ctx, `UPDATE catalog_agents SET envelope = ? WHERE tenant = ? AND id = ?`, string(env), string(tenant), string(id)); err != nil {
			return fmt.Errorf("catalog: set envelope: %w", err)
		}
		return audit(ctx, tx, tenant, actor, "agent.envelope", "agent/"+string(id), before.Envelope, e, v, now)
	})
	return a, err
}
