package catalog

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pcatalog "github.com/punchcard/punchcard/protocol/catalog"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// Snapshot builds the agent's snapshot at the tenant's current catalog
// version, in one read transaction. With since > 0 (and not beyond the
// current version) it is a delta of what changed after since; otherwise a
// full snapshot. Allowances are not filled in: they live in the ledger.
// The snapshot is filtered to the agent's store: a campaign whose store
// conditions cannot admit it (see storeExcludes) is left out with its plain
// codes; a delta lists such a campaign in Withdrawn when it changed after
// since, and lists every live code of a changed campaign that is admitted
// (it may have been withdrawn before). Revocations are not filtered.
// Codes are listed by the keyed hash of their key (codes.Normalize), never
// in clear: the snapshot carries the tenant's CodeKey and the agent hashes
// what is presented (snapshot.LookupID). A revoked code is in Revocations
// (by the same hash), never in Codes. Reason codes: not_found (tenant, agent).
func (c *Catalog) Snapshot(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, since uint64) (*snapshot.Snapshot, error) {
	return c.SnapshotWith(ctx, tenant, agent, since, nil)
}

// SnapshotWith is Snapshot with the ledger's code states
// (protocol.CodeStates): each listed code gets its Used and Spent, and a delta
// also lists every code in states (not revoked, known to the catalog)
// whether or not it changed in the catalog, so that tills learn of uses
// made elsewhere between catalog versions. Token serials in states are
// skipped: they are not catalog codes.
func (c *Catalog) SnapshotWith(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, since uint64, states map[protocol.CodeID]protocol.CodeState) (*snapshot.Snapshot, error) {
	var s *snapshot.Snapshot
	err := c.read(ctx, func(tx *sql.Tx) error {
		var err error
		s, err = buildSnapshot(ctx, tx, tenant, agent, since, c.now(), states)
		return err
	})
	return s, err
}

// snapshotCode is the snapshot entry of a live code, with its ledger state,
// listed under its keyed hash (snapshot.HashCode with the tenant's key).
func snapshotCode(cd Code, key []byte, currency protocol.Currency, st protocol.CodeState) snapshot.Code {
	sc := snapshot.Code{Code: snapshot.HashCode(key, cd.Key), Campaign: cd.Campaign, Uses: cd.Uses, Stores: cd.Stores, Group: cd.Group, Used: max(st.Used, 0)}
	if cd.Balance != 0 {
		// The balance loaded: the catalog's and the top-ups' (the
		// ledger's Loaded, read with Spent).
		sc.Balance = &protocol.Money{Amount: cd.Balance + max(st.Loaded, 0), Currency: currency}
		sc.Spent = max(st.Spent, 0)
	}
	return sc
}

func buildSnapshot(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, agent protocol.AgentID, since uint64, now time.Time, states map[protocol.CodeID]protocol.CodeState) (*snapshot.Snapshot, error) {
	var version uint64
	var currency protocol.Currency
	err := tx.QueryRowContext(ctx, `SELECT version, currency FROM catalog_tenants WHERE id = ?`, string(tenant)).Scan(&version, &currency)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("tenant", string(tenant))
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: snapshot: %w", err)
	}
	a, err := getAgent(ctx, tx, tenant, agent)
	if err != nil {
		return nil, err
	}
	if since > version {
		since = 0 // the agent's version is from another database: start over
	}
	s := &snapshot.Snapshot{
		Format: protocol.Version, Version: version, Since: since, Tenant: tenant, Agent: agent,
		Store: a.Store, GeneratedAt: now.UnixMicro(), Envelope: a.Envelope,
	}
	if s.CodeKey, err = codeKey(ctx, tx, tenant); err != nil {
		return nil, err
	}
	keys, err := signingKeys(ctx, tx, tenant, now)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		pk := snapshot.PublicKey{KID: k.KID, Public: k.Public}
		if !k.NotAfter.IsZero() {
			pk.NotAfter = k.NotAfter.UnixMicro()
		}
		s.Keys = append(s.Keys, pk)
	}
	// Every campaign, to know which are excluded: a code's campaign may be
	// unchanged since the delta's base.
	all, err := listCampaigns(ctx, tx, tenant, 0)
	if err != nil {
		return nil, err
	}
	excluded := map[protocol.CampaignID]bool{}
	var readmitted []protocol.CampaignID
	for _, cp := range all {
		if storeExcludes(cp.Rules.Eligibility, a.Store) {
			excluded[cp.Rules.ID] = true
			if since > 0 && cp.Version > since {
				s.Withdrawn = append(s.Withdrawn, cp.Rules.ID)
			}
			continue
		}
		if cp.Version > since {
			s.Campaigns = append(s.Campaigns, cp.Rules)
			if since > 0 {
				readmitted = append(readmitted, cp.Rules.ID)
			}
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+codeCols+` FROM catalog_codes WHERE tenant = ? AND version > ? ORDER BY code`, string(tenant), since)
	if err != nil {
		return nil, fmt.Errorf("catalog: snapshot codes: %w", err)
	}
	defer rows.Close()
	listed := map[protocol.CodeID]bool{}
	for rows.Next() {
		cd, err := scanCode(rows)
		if err != nil {
			return nil, err
		}
		listed[cd.Key] = true
		if !cd.RevokedAt.IsZero() {
			s.Revocations = append(s.Revocations, snapshot.Revocation{Kind: snapshot.RevokeCode, ID: snapshot.HashCode(s.CodeKey, cd.Key), At: cd.RevokedAt.UnixMicro()})
			continue
		}
		if excluded[cd.Campaign] {
			continue
		}
		s.Codes = append(s.Codes, snapshotCode(cd, s.CodeKey, currency, states[cd.Key]))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: snapshot codes: %w", err)
	}
	rows.Close()
	// A changed, admitted campaign may have been withdrawn from the agent
	// by an earlier delta, codes and all: send its live codes again.
	for _, id := range readmitted {
		if err := campaignCodes(ctx, tx, tenant, id, func(cd Code) {
			if listed[cd.Key] || !cd.RevokedAt.IsZero() {
				return
			}
			listed[cd.Key] = true
			s.Codes = append(s.Codes, snapshotCode(cd, s.CodeKey, currency, states[cd.Key]))
		}); err != nil {
			return nil, err
		}
	}
	if since > 0 {
		// A delta: codes whose ledger state may have changed since.
		for key, st := range states {
			if listed[key] {
				continue
			}
			cd, err := getCode(ctx, tx, tenant, string(key))
			if protocol.ErrorCode(err) == protocol.CodeNotFound || (err == nil && (cd.Key != key || !cd.RevokedAt.IsZero())) {
				continue // a token serial, or revoked (the agent has the revocation)
			}
			if err != nil {
				return nil, err
			}
			if excluded[cd.Campaign] {
				continue // not for this store
			}
			s.Codes = append(s.Codes, snapshotCode(cd, s.CodeKey, currency, st))
		}
	}
	trows, err := tx.QueryContext(ctx, `SELECT serial, revoked_at FROM catalog_tokens WHERE tenant = ? AND revoked_at IS NOT NULL AND version > ? AND expires_at > ? ORDER BY serial`,
		string(tenant), since, now.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("catalog: snapshot tokens: %w", err)
	}
	defer trows.Close()
	for trows.Next() {
		var r snapshot.Revocation
		if err := trows.Scan(&r.ID, &r.At); err != nil {
			return nil, fmt.Errorf("catalog: snapshot tokens: %w", err)
		}
		r.Kind = snapshot.RevokeToken
		s.Revocations = append(s.Revocations, r)
	}
	if err := trows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: snapshot tokens: %w", err)
	}
	if s.Tiers, err = snapshotTiers(ctx, tx, tenant, since); err != nil { // tiers.go
		return nil, err
	}
	return s, nil
}

// storeExcludes reports whether a campaign's store conditions can never
// admit store st: an explicit store list without st's ID, or a region list
// without st's region. It mirrors the rules engine's exact-match check and
// says nothing about other conditions (days, customers), which the agent
// still evaluates, so it drops only what certainly cannot match.
func storeExcludes(e rules.Eligibility, st snapshot.Store) bool {
	return pcatalog.StoreExcludes(e, st) // hub/snapshots groups stores by it
}

// campaignCodes calls f with each code of a campaign, in key order.
func campaignCodes(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, campaign protocol.CampaignID, f func(Code)) error {
	rows, err := tx.QueryContext(ctx, `SELECT `+codeCols+` FROM catalog_codes WHERE tenant = ? AND campaign = ? ORDER BY code`, string(tenant), string(campaign))
	if err != nil {
		return fmt.Errorf("catalog: snapshot campaign codes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		cd, err := scanCode(rows)
		if err != nil {
			return err
		}
		f(cd)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("catalog: snapshot campaign codes: %w", err)
	}
	return nil
}

// AgentKey checks an agent's HTTP credential: the key must be an agent key
// of that tenant and agent. Helper for the API's snapshot route.
func (c *Catalog) AgentKey(k Key, tenant protocol.TenantID, agent protocol.AgentID) bool {
	return k.Role == RoleAgent &&
		subtle.ConstantTimeCompare([]byte(k.Tenant), []byte(tenant)) == 1 &&
		subtle.ConstantTimeCompare([]byte(k.Agent), []byte(agent)) == 1
}

// campaignFacts reads a campaign's facts (CampaignFacts, uncached).
func (c *Catalog) campaignFacts(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID) (protocol.CampaignFacts, bool, error) {
	cp, err := getCampaign(ctx, stmtQuerier{c}, tenant, campaign)
	if protocol.ErrorCode(err) == protocol.CodeNotFound {
		return protocol.CampaignFacts{}, false, nil
	}
	if err != nil {
		return protocol.CampaignFacts{}, false, err
	}
	l := cp.Rules.Limits
	f := protocol.CampaignFacts{
		MaxCount: l.MaxRedemptions, MaxDiscount: l.MaxDiscount, MaxOrderValue: l.MaxOrderValue, PerCustomer: l.PerCustomer,
		Currency: cp.Rules.Currency, StoppedAt: cp.StoppedAt, Referral: cp.Rules.Referral,
	}
	if f.Stops, err = campaignStops(ctx, c.db, tenant, campaign); err != nil {
		return protocol.CampaignFacts{}, false, err
	}
	if cp.Rules.Status == rules.StatusDraft {
		// Never started: treat as stopped since its creation, so a
		// redemption of a draft is flagged like one after a kill switch.
		f.StoppedAt = cp.CreatedAt
	}
	return f, true, nil
}

// codeFacts reads a code's or token's facts (CodeFacts, uncached).
func (c *Catalog) codeFacts(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (protocol.CodeFacts, bool, error) {
	cd, err := getCode(ctx, stmtQuerier{c}, tenant, string(code))
	if err == nil {
		f := protocol.CodeFacts{MaxUses: max(cd.Uses, 0), GiftCard: cd.Balance > 0, InitialBalance: cd.Balance}
		cp, err := getCampaign(ctx, stmtQuerier{c}, tenant, cd.Campaign)
		if err == nil && cp.Rules.Reward.Kind == rules.RewardGiftCard {
			f.GiftCard = true
			if cp.Rules.Reward.MultiUse {
				f.MaxUses = 0
			}
		}
		if err == nil && cp.Rules.Referral != nil {
			if f.Referrer, err = c.referrer(ctx, tenant, cd.Key); err != nil { // referrals.go
				return protocol.CodeFacts{}, false, err
			}
		}
		return f, true, nil
	}
	if protocol.ErrorCode(err) != protocol.CodeNotFound {
		return protocol.CodeFacts{}, false, err
	}
	t, err := getToken(ctx, stmtQuerier{c}, tenant, code)
	if protocol.ErrorCode(err) == protocol.CodeNotFound {
		return protocol.CodeFacts{}, false, nil
	}
	if err != nil {
		return protocol.CodeFacts{}, false, err
	}
	return protocol.CodeFacts{MaxUses: t.Uses}, true, nil
}
