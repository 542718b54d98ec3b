package catalog

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/token"
)

// DefaultRulesRetention is how long a campaign's superseded state is kept
// for re-deriving tills' facts (Catalog.RulesRetention): longer than any
// till sells on an old snapshot and then takes to sync.
const DefaultRulesRetention = 90 * 24 * time.Hour

// rulesCacheSize bounds the compiled rules versions kept in memory.
const rulesCacheSize = 64

// recordHistory appends the campaign's state at catalog version v to the
// rules history, in the transaction that changes it, and drops the states
// of that campaign no till can still report a sale with: those superseded
// more than the retention ago. The tenant's rules_floor then rises to the
// oldest version whose rules are complete.
func (c *Catalog) recordHistory(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, rc rules.Campaign, v uint64, now time.Time) error {
	doc, err := json.Marshal(rc)
	if err != nil {
		return fmt.Errorf("catalog: campaign json: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO catalog_campaign_history (tenant, id, version, doc, changed_at) VALUES (?, ?, ?, ?, ?)`,
		string(tenant), string(rc.ID), v, string(doc), now.UnixMicro()); err != nil {
		return fmt.Errorf("catalog: rules history: %w", err)
	}
	ret := c.RulesRetention
	if ret <= 0 {
		ret = DefaultRulesRetention
	}
	// The newest state superseded before the cutoff: every state older
	// than its successor is no longer needed.
	var floor sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT MAX(version) FROM catalog_campaign_history WHERE tenant = ? AND id = ? AND changed_at < ?
		AND version > (SELECT MIN(version) FROM catalog_campaign_history WHERE tenant = ? AND id = ?)`,
		string(tenant), string(rc.ID), now.Add(-ret).UnixMicro(), string(tenant), string(rc.ID)).Scan(&floor)
	if err != nil {
		return fmt.Errorf("catalog: rules history: %w", err)
	}
	if !floor.Valid {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM catalog_campaign_history WHERE tenant = ? AND id = ? AND version < ?`,
		string(tenant), string(rc.ID), floor.Int64); err != nil {
		return fmt.Errorf("catalog: rules history: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE catalog_tenants SET rules_floor = MAX(rules_floor, ?) WHERE id = ?`, floor.Int64, string(tenant)); err != nil {
		return fmt.Errorf("catalog: rules history: %w", err)
	}
	return nil
}

// rulesCache holds compiled rules by (tenant, version): a version's rules
// never change once the version exists.
type rulesCache struct {
	mu    sync.Mutex
	m     map[rulesKey]*decide.Rules
	order []rulesKey
}

type rulesKey struct {
	tenant  protocol.TenantID
	version uint64
}

func (rc *rulesCache) get(k rulesKey) *decide.Rules {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.m[k]
}

func (rc *rulesCache) put(k rulesKey, cat *decide.Rules) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.m == nil {
		rc.m = map[rulesKey]*decide.Rules{}
	}
	if _, ok := rc.m[k]; ok {
		return
	}
	if len(rc.order) >= rulesCacheSize {
		delete(rc.m, rc.order[0])
		rc.order = rc.order[1:]
	}
	rc.m[k] = cat
	rc.order = append(rc.order, k)
}

// RulesAt implements ledger.Rules: the tenant's campaigns as they were at
// catalog version v, compiled for the decision pipeline. found is false for a version the tenant
// never had, or one older than the retained history (rules_floor).
func (c *Catalog) RulesAt(ctx context.Context, tenant protocol.TenantID, v uint64) (*decide.Rules, bool, error) {
	k := rulesKey{tenant, v}
	if cat := c.rules.get(k); cat != nil {
		return cat, true, nil
	}
	var cat *decide.Rules
	found := false
	err := c.read(ctx, func(tx *sql.Tx) error {
		var cur, floor uint64
		err := tx.QueryRowContext(ctx, `SELECT version, rules_floor FROM catalog_tenants WHERE id = ?`, string(tenant)).Scan(&cur, &floor)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("catalog: rules at %d: %w", v, err)
		}
		if v == 0 || v > cur || v < floor {
			return nil
		}
		rows, err := tx.QueryContext(ctx, `SELECT h.doc FROM catalog_campaign_history h WHERE h.tenant = ? AND h.version =
			(SELECT MAX(version) FROM catalog_campaign_history WHERE tenant = h.tenant AND id = h.id AND version <= ?) ORDER BY h.id`, string(tenant), v)
		if err != nil {
			return fmt.Errorf("catalog: rules at %d: %w", v, err)
		}
		defer rows.Close()
		var cps []rules.Campaign
		for rows.Next() {
			var doc string
			if err := rows.Scan(&doc); err != nil {
				return fmt.Errorf("catalog: rules at %d: %w", v, err)
			}
			var rc rules.Campaign
			if err := json.Unmarshal([]byte(doc), &rc); err != nil {
				return fmt.Errorf("catalog: rules at %d: %w", v, err)
			}
			cps = append(cps, rc)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("catalog: rules at %d: %w", v, err)
		}
		if cat, err = decide.Compile(cps); err != nil {
			return fmt.Errorf("catalog: rules at %d: %w", v, err)
		}
		found = true
		return nil
	})
	if err != nil || !found {
		return nil, false, err
	}
	c.rules.put(k, cat)
	return cat, true, nil
}

// PresentedCode implements ledger.Rules: a plain code or gift card as
// the hub knows it, for re-deriving a till's fact through the decision
// pipeline (protocol/decide). A code's campaign and limit never change
// once imported. Its revocation is not reported: the till may have sold
// before it (code_revoked is the hub's own decision, not the till's).
// false: unknown to the hub.
func (c *Catalog) PresentedCode(ctx context.Context, tenant protocol.TenantID, key protocol.CodeID) (decide.Code, bool, error) {
	cd, err := getCode(ctx, c.db, tenant, string(key))
	if protocol.ErrorCode(err) == protocol.CodeNotFound {
		return decide.Code{}, false, nil
	}
	if err != nil {
		return decide.Code{}, false, err
	}
	return decide.Code{Key: cd.Key, Campaign: cd.Campaign, MaxUses: cd.Uses, GiftCard: cd.Balance != 0, Balance: cd.Balance,
		Stores: cd.Stores, Group: cd.Group}, true, nil
}

// TokenText implements ledger.Rules: the text of a token the hub issued,
// by serial (a till's fact names its serial); false when the hub never
// issued it.
func (c *Catalog) TokenText(ctx context.Context, tenant protocol.TenantID, serial protocol.CodeID) (string, bool, error) {
	t, err := getToken(ctx, c.db, tenant, serial)
	if protocol.ErrorCode(err) == protocol.CodeNotFound {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return t.Text, true, nil
}

// KeysAt implements ledger.Rules: the tenant's token verification keys
// as they stood at time at (a key retired since still verifies a token
// presented before its end).
func (c *Catalog) KeysAt(ctx context.Context, tenant protocol.TenantID, at time.Time) (token.KeySet, error) {
	keys, err := signingKeys(ctx, c.db, tenant, at)
	if err != nil {
		return nil, err
	}
	m := token.KeyMap{}
	for _, k := range keys {
		m.Add(token.PublicKey{Tenant: tenant, KeyID: k.KID, Key: ed25519.PublicKey(k.Public), NotAfter: k.NotAfter})
	}
	return m, nil
}

// AgentWhere implements ledger.Rules: the store an agent sells in, with
// its group, as its snapshots carry it. found is false for an unknown
// agent.
func (c *Catalog) AgentWhere(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID) (decide.Where, bool, error) {
	// An agent's store is set at registration and never changes.
	k := agentKey{tenant, agent}
	if w, ok := c.stores.Load(k); ok {
		return w.(decide.Where), true, nil
	}
	w, found, err := c.agentWhere(ctx, tenant, agent)
	if found {
		c.stores.Store(k, w)
	}
	return w, found, err
}

// AgentStore is AgentWhere's store.
func (c *Catalog) AgentStore(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID) (rules.Store, bool, error) {
	w, found, err := c.AgentWhere(ctx, tenant, agent)
	return w.Store, found, err
}

type agentKey struct {
	tenant protocol.TenantID
	agent  protocol.AgentID
}

func (c *Catalog) agentWhere(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID) (decide.Where, bool, error) {
	a, err := getAgent(ctx, c.db, tenant, agent)
	if protocol.ErrorCode(err) == protocol.CodeNotFound {
		return decide.Where{}, false, nil
	}
	if err != nil {
		return decide.Where{}, false, err
	}
	st, err := rules.NewStore(a.Store.ID, a.Store.Region, a.Store.TimeZone)
	if err != nil {
		// The till cannot have decided anything with it either.
		st = rules.Store{ID: a.Store.ID, Region: a.Store.Region, TimeZone: a.Store.TimeZone}
	}
	return decide.Where{Store: st, Group: a.Store.Group}, true, nil
}
