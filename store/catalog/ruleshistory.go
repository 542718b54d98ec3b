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
	m     map[rulesKey]*rules.Catalog
	order []rulesKey
}

type rulesKey struct {
	tenant  protocol.TenantID
	version uint64
}

func (rc *rulesCache) get(k rulesKey) *rules.Catalog {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.m[k]
}

func (rc *rulesCache) put(k rulesKey, cat *rules.Catalog) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.m == nil {
		rc.m = map[rulesKey]*rules.Catalog{}
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
// catalog version v, compiled. found is false for a version the tenant
// never had, or one older than the retained history (rules_floor).
func (c *Catalog) RulesAt(ctx context.Context, tenant protocol.TenantID, v uint64) (*rules.Catalog, bool, error) {
	k := rulesKey{tenant, v}
	if cat := c.rules.get(k); cat != nil {
		return cat, true, nil
	}
	var cat *rules.Catalog
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
		if cat, err = rules.NewCatalog(cps); err != nil {
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

// Presented implements ledger.Rules: what the hub knows of a code, gift
// card or token a till (agent) says was presented at time at, as the
// engine's Redeemable. Uses is left 0 and a gift card's Balance unbounded: how
// often a code was used and what a card held are the till's view, checked
// by the code_reused and giftcard_overdrawn conflicts instead. A plain
// code's store binding says only where it is safe offline and is not
// checked; a token's store claim limits where it is valid. Reason codes
// (the till could not have accepted it): code_unknown, and for a token
// every code of token.Verify at time at, and wrong_store.
func (c *Catalog) Presented(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, p protocol.Presented, at time.Time) (rules.Redeemable, error) {
	if p.Kind == protocol.PresentedToken {
		t, err := getToken(ctx, c.db, tenant, p.Code)
		if protocol.ErrorCode(err) == protocol.CodeNotFound {
			return rules.Redeemable{}, protocol.Errorf(protocol.CodeUnknownCode, "token %s was not issued by the hub", p.Code)
		}
		if err != nil {
			return rules.Redeemable{}, err
		}
		keys, err := signingKeys(ctx, c.db, tenant, at)
		if err != nil {
			return rules.Redeemable{}, err
		}
		m := token.KeyMap{}
		for _, k := range keys {
			m.Add(token.PublicKey{Tenant: tenant, KeyID: k.KID, Key: ed25519.PublicKey(k.Public), NotAfter: k.NotAfter})
		}
		cl, err := token.Verify(m, tenant, t.Text, at)
		if err != nil {
			return rules.Redeemable{}, protocol.PublicError(err)
		}
		if cl.Store != "" || cl.StoreGroup != "" {
			a, err := getAgent(ctx, c.db, tenant, agent)
			if err != nil && protocol.ErrorCode(err) != protocol.CodeNotFound {
				return rules.Redeemable{}, err
			}
			if (cl.Store != "" && cl.Store != a.Store.ID) || (cl.StoreGroup != "" && cl.StoreGroup != a.Store.Group) {
				return rules.Redeemable{}, protocol.NewError(protocol.CodeWrongStore)
			}
		}
		return rules.Redeemable{Kind: rules.RedeemToken, Code: cl.Serial, Campaign: cl.Campaign, MaxUses: int64(cl.Uses),
			NotBefore: cl.NotBefore, Expires: cl.Expires, Amount: p.Amount}, nil
	}
	cd, err := getCode(ctx, c.db, tenant, string(p.Code))
	if protocol.ErrorCode(err) == protocol.CodeNotFound {
		return rules.Redeemable{}, protocol.Errorf(protocol.CodeUnknownCode, "code %s is unknown to the hub", p.Code)
	}
	if err != nil {
		return rules.Redeemable{}, err
	}
	r := rules.Redeemable{Kind: rules.RedeemCode, Code: cd.Key, Campaign: cd.Campaign, Amount: p.Amount}
	if cd.Uses > 0 {
		r.MaxUses = cd.Uses
	}
	if cd.Balance != 0 {
		r.Kind, r.Balance = rules.RedeemGiftCard, rules.MaxAmount
	}
	return r, nil
}

// AgentStore implements ledger.Rules: the store an agent sells in, as its
// snapshots carry it. found is false for an unknown agent.
func (c *Catalog) AgentStore(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID) (rules.Store, bool, error) {
	// An agent's store is set at registration and never changes.
	k := agentKey{tenant, agent}
	if st, ok := c.stores.Load(k); ok {
		return st.(rules.Store), true, nil
	}
	st, found, err := c.agentStore(ctx, tenant, agent)
	if found {
		c.stores.Store(k, st)
	}
	return st, found, err
}

type agentKey struct {
	tenant protocol.TenantID
	agent  protocol.AgentID
}

func (c *Catalog) agentStore(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID) (rules.Store, bool, error) {
	a, err := getAgent(ctx, c.db, tenant, agent)
	if protocol.ErrorCode(err) == protocol.CodeNotFound {
		return rules.Store{}, false, nil
	}
	if err != nil {
		return rules.Store{}, false, err
	}
	st, err := rules.NewStore(a.Store.ID, a.Store.Region, a.Store.TimeZone)
	if err != nil {
		// The till cannot have decided anything with it either.
		return rules.Store{ID: a.Store.ID, Region: a.Store.Region, TimeZone: a.Store.TimeZone}, true, nil
	}
	return st, true, nil
}
