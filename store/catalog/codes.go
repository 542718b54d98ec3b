package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/codes"
	"github.com/punchcard/punchcard/protocol/rules"
)

// Limits on code batches.
const (
	MaxGenerate = 100_000 // codes one Generate call makes
	MaxImport   = 10_000  // codes one Import call takes
	MaxStores   = 100     // stores a code can be bound to
)

func (c *Catalog) checkSpec(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, campaign protocol.CampaignID, s *CodeSpec) (rules.Campaign, error) {
	cp, err := getCampaign(ctx, tx, tenant, campaign)
	if err != nil {
		if protocol.ErrorCode(err) == protocol.CodeNotFound {
			return rules.Campaign{}, protocol.Errorf(protocol.CodeNotFound, "campaign %q not found", campaign)
		}
		return rules.Campaign{}, err
	}
	if s.Uses == 0 {
		s.Uses = 1
	}
	if s.Uses < -1 {
		return rules.Campaign{}, protocol.FieldError("uses", "uses must be -1 (unlimited) or at least 1")
	}
	gift := cp.Rules.Reward.Kind == rules.RewardGiftCard
	switch {
	case gift && (s.Balance <= 0 || s.Balance > rules.MaxAmount):
		return rules.Campaign{}, protocol.FieldError("balance", "a gift card needs a balance between 1 and %d minor units", int64(rules.MaxAmount))
	case !gift && s.Balance != 0:
		return rules.Campaign{}, protocol.FieldError("balance", "only gift card campaigns have balances")
	}
	if len(s.Stores) > MaxStores {
		return rules.Campaign{}, protocol.FieldError("stores", "at most %d stores", MaxStores)
	}
	for i, st := range s.Stores {
		if err := protocol.ValidateID("store", string(st)); err != nil {
			return rules.Campaign{}, fieldOf(fmt.Sprintf("stores[%d]", i), err)
		}
	}
	if len(s.Group) > 64 {
		return rules.Campaign{}, protocol.FieldError("group", "group is longer than 64 characters")
	}
	return cp.Rules, nil
}

// txExists looks code keys up inside the generating transaction, so that
// uniqueness holds against concurrent generation too (writers serialize).
type txExists struct {
	tx     *sql.Tx
	tenant protocol.TenantID
}

var _ codes.Existing = txExists{}

func (e txExists) Exists(ctx context.Context, key string) (bool, error) {
	var n int
	err := e.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM catalog_codes WHERE tenant = ? AND code = ?`, string(e.tenant), key).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("catalog: code exists: %w", err)
	}
	return n > 0, nil
}

// GenerateCodes makes req.Count new codes for a campaign with
// protocol/codes, unique within the tenant, and returns their printed form.
// Reason codes: invalid_input (field), not_found (campaign), conflict (the
// code space is too full).
func (c *Catalog) GenerateCodes(ctx context.Context, actor Actor, tenant protocol.TenantID, campaign protocol.CampaignID, req GenerateRequest) ([]string, error) {
	if req.Count < 1 || req.Count > MaxGenerate {
		return nil, protocol.FieldError("count", "count must be between 1 and %d", MaxGenerate)
	}
	g, err := codes.New(codes.Options{Charset: req.Charset, Pattern: req.Pattern, Prefix: req.Prefix, Postfix: req.Postfix, Length: req.Length, Check: req.Check})
	if err != nil {
		return nil, err
	}
	var out []string
	err = c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		if _, err := c.checkSpec(ctx, tx, tenant, campaign, &req.CodeSpec); err != nil {
			return err
		}
		out, err = g.Generate(ctx, req.Count, txExists{tx, tenant})
		if err != nil {
			return err
		}
		if err := insertCodes(ctx, tx, tenant, campaign, out, req.CodeSpec, v, now); err != nil {
			return err
		}
		return audit(ctx, tx, tenant, actor, "codes.generate", "campaign/"+string(campaign), nil,
			map[string]any{"count": len(out), "spec": req, "first": out[0]}, v, now)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func insertCodes(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, campaign protocol.CampaignID, printed []string, s CodeSpec, v uint64, now time.Time) error {
	stores, err := json.Marshal(orEmpty(s.Stores))
	if err != nil {
		return fmt.Errorf("catalog: codes: %w", err)
	}
	var bal any
	if s.Balance != 0 {
		bal = s.Balance
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO catalog_codes (tenant, code, printed, campaign, uses, balance, stores, store_group, version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("catalog: codes: %w", err)
	}
	defer stmt.Close()
	for i, p := range printed {
		_, err := stmt.ExecContext(ctx, string(tenant), codes.Normalize(p), p, string(campaign), s.Uses, bal, string(stores), s.Group, v, now.UnixMicro())
		if isUnique(err) {
			return conflict(fmt.Sprintf("codes[%d]", i), "code %q already exists", p)
		}
		if err != nil {
			return fmt.Errorf("catalog: insert code: %w", err)
		}
	}
	return nil
}

func orEmpty(s []protocol.StoreID) []protocol.StoreID {
	if s == nil {
		return []protocol.StoreID{}
	}
	return s
}

// ImportCodes stores codes made elsewhere (printed vouchers, a partner's
// gift cards). Each is normalized; a code already known to the tenant, or
// twice in the batch, is a conflict naming its index. Nothing is stored
// unless every code is. Reason codes: invalid_input, not_found, conflict.
func (c *Catalog) ImportCodes(ctx context.Context, actor Actor, tenant protocol.TenantID, campaign protocol.CampaignID, printed []string, spec CodeSpec) (int, error) {
	if len(printed) == 0 || len(printed) > MaxImport {
		return 0, protocol.FieldError("codes", "between 1 and %d codes per import", MaxImport)
	}
	seen := make(map[string]int, len(printed))
	for i, p := range printed {
		k := codes.Normalize(p)
		if err := validCodeKey(k); err != nil {
			return 0, protocol.FieldError(fmt.Sprintf("codes[%d]", i), "%s", err.Error())
		}
		if j, dup := seen[k]; dup {
			return 0, conflict(fmt.Sprintf("codes[%d]", i), "code %q is the same as codes[%d]", p, j)
		}
		seen[k] = i
	}
	err := c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		if _, err := c.checkSpec(ctx, tx, tenant, campaign, &spec); err != nil {
			return err
		}
		if err := insertCodes(ctx, tx, tenant, campaign, printed, spec, v, now); err != nil {
			return err
		}
		return audit(ctx, tx, tenant, actor, "codes.import", "campaign/"+string(campaign), nil,
			map[string]any{"count": len(printed), "spec": spec}, v, now)
	})
	if err != nil {
		return 0, err
	}
	return len(printed), nil
}

func validCodeKey(k string) error {
	if k == "" || len(k) > codes.MaxCodeLength {
		return fmt.Errorf("a code has 1 to %d characters besides spaces and dashes", codes.MaxCodeLength)
	}
	for i := 0; i < len(k); i++ {
		if b := k[i]; b <= ' ' || b > '~' {
			return fmt.Errorf("a code has only printable ASCII characters")
		}
	}
	return nil
}

const codeCols = `code, printed, campaign, uses, balance, stores, store_group, revoked_at, version, created_at`

func scanCode(s scanner) (Code, error) {
	var cd Code
	var bal, revoked sql.NullInt64
	var stores string
	var created int64
	if err := s.Scan(&cd.Key, &cd.Printed, &cd.Campaign, &cd.Uses, &bal, &stores, &cd.Group, &revoked, &cd.Version, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Code{}, err
		}
		return Code{}, fmt.Errorf("catalog: code: %w", err)
	}
	if stores != "[]" { // the common case needs no JSON decoding
		if err := json.Unmarshal([]byte(stores), &cd.Stores); err != nil {
			return Code{}, fmt.Errorf("catalog: code stores: %w", err)
		}
		if len(cd.Stores) == 0 {
			cd.Stores = nil
		}
	}
	cd.Balance, cd.RevokedAt, cd.CreatedAt = bal.Int64, fromMicros(revoked), time.UnixMicro(created).UTC()
	return cd, nil
}

func getCode(ctx context.Context, q querier, tenant protocol.TenantID, code string) (Code, error) {
	cd, err := scanCode(q.QueryRowContext(ctx, `SELECT `+codeCols+` FROM catalog_codes WHERE tenant = ? AND code = ?`, string(tenant), codes.Normalize(code)))
	if errors.Is(err, sql.ErrNoRows) {
		return Code{}, notFound("code", code)
	}
	return cd, err
}

// Codes lists a campaign's codes with a key after after, at most limit.
func (c *Catalog) Codes(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID, after string, limit int) ([]Code, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+codeCols+` FROM catalog_codes WHERE tenant = ? AND campaign = ? AND code > ? ORDER BY code LIMIT ?`,
		string(tenant), string(campaign), after, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("catalog: codes: %w", err)
	}
	return collect(rows, scanCode)
}

// RevokeCode withdraws a code: agents refuse it from their next snapshot
// on, the hub at once. Reason codes: not_found, conflict (already revoked).
func (c *Catalog) RevokeCode(ctx context.Context, actor Actor, tenant protocol.TenantID, code string) (Code, error) {
	var out Code
	err := c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		old, err := getCode(ctx, tx, tenant, code)
		if err != nil {
			return err
		}
		if !old.RevokedAt.IsZero() {
			return conflict("", "code %q is already revoked", code)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE catalog_codes SET revoked_at = ?, version = ? WHERE tenant = ? AND code = ?`, now.UnixMicro(), v, string(tenant), string(old.Key)); err != nil {
			return fmt.Errorf("catalog: revoke code: %w", err)
		}
		out = old
		out.RevokedAt, out.Version = now, v
		return audit(ctx, tx, tenant, actor, "code.revoke", "code/"+string(old.Key), old, out, v, now)
	})
	return out, err
}
