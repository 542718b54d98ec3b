package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/token"
)

// IssueToken signs a token with the tenant's current key and records it.
// A customer, when named, must exist and not be erased; the token carries
// their tier and segment. Reason codes: invalid_input (field), not_found
// (campaign, customer), campaign_stopped.
func (c *Catalog) IssueToken(ctx context.Context, actor Actor, tenant protocol.TenantID, req TokenRequest) (Token, error) {
	if req.Uses == 0 {
		req.Uses = 1
	}
	if req.Store != "" {
		if err := protocol.ValidateID("store", string(req.Store)); err != nil {
			return Token{}, fieldOf("store", err)
		}
	}
	if len(req.StoreGroup) > 64 {
		return Token{}, protocol.FieldError("store_group", "store group is longer than 64 characters")
	}
	var out Token
	err := c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		var err error
		out, err = c.issueToken(ctx, tx, actor, tenant, req, v, now)
		return err
	})
	return out, err
}

// issueToken is IssueToken's work in the caller's transaction (a
// distribution issues many in one).
func (c *Catalog) issueToken(ctx context.Context, tx *sql.Tx, actor Actor, tenant protocol.TenantID, req TokenRequest, v uint64, now time.Time) (Token, error) {
	var out Token
	now = now.Truncate(time.Second)
	if req.Expires.IsZero() {
		req.Expires = now.Add(DefaultTokenTTL)
	}
	// One precision on the answer and on a later read.
	req.Expires, req.NotBefore = protocol.APITime(req.Expires), protocol.APITime(req.NotBefore)
	if !req.Expires.After(now) {
		return Token{}, protocol.FieldError("expires", "expires must be in the future")
	}
	if req.Expires.Sub(now) > c.MaxTokenTTL {
		return Token{}, protocol.FieldError("expires", "a token lives at most %s", c.MaxTokenTTL)
	}
	cp, err := getCampaign(ctx, tx, tenant, req.Campaign)
	if err != nil {
		if protocol.ErrorCode(err) == protocol.CodeNotFound {
			return Token{}, &protocol.Error{Code: protocol.CodeNotFound, Message: fmt.Sprintf("campaign %q not found", req.Campaign), Field: "campaign"}
		}
		return Token{}, err
	}
	if cp.Rules.Status == rules.StatusStopped {
		return Token{}, &protocol.Error{Code: protocol.CodeCampaignStopped, Message: "the campaign is stopped; start it before issuing tokens", Field: "campaign"}
	}
	if limit, why := maxTokenUses(cp.Rules, req.Customer != ""); limit > 0 && int64(req.Uses) > limit {
		return Token{}, protocol.FieldError("uses", "the campaign allows at most %d uses of one token (%s)", limit, why)
	}
	claims := token.Claims{
		Tenant: tenant, Customer: req.Customer, Expires: req.Expires, NotBefore: req.NotBefore, IssuedAt: now,
		Campaign: req.Campaign, Uses: req.Uses, Value: req.Value, Store: req.Store, StoreGroup: req.StoreGroup,
	}
	if req.Customer != "" {
		cu, err := getCustomer(ctx, tx, tenant, req.Customer)
		if err != nil {
			if protocol.ErrorCode(err) == protocol.CodeNotFound {
				return Token{}, &protocol.Error{Code: protocol.CodeNotFound, Message: fmt.Sprintf("customer %q not found", req.Customer), Field: "customer"}
			}
			return Token{}, err
		}
		if !cu.ErasedAt.IsZero() {
			return Token{}, &protocol.Error{Code: protocol.CodeConflict, Message: "the customer's data has been erased", Field: "customer"}
		}
		claims.Tier, claims.Segment = cu.Tier, cu.Segment
	}
	r, err := c.random(10)
	if err != nil {
		return Token{}, err
	}
	claims.Serial = protocol.CodeID("T" + strings.ToUpper(r))
	key, err := currentSigningKey(ctx, tx, tenant)
	if err != nil {
		return Token{}, err
	}
	text, err := token.Issue(key, claims)
	if err != nil {
		return Token{}, err
	}
	out = Token{Serial: claims.Serial, Campaign: req.Campaign, Customer: req.Customer, KID: key.KeyID, Uses: int64(req.Uses),
		Value: req.Value, Text: text, IssuedAt: now, Expires: req.Expires.UTC(), IssuedBy: actor.String(), Version: v}
	_, err = tx.ExecContext(ctx, `INSERT INTO catalog_tokens (tenant, serial, campaign, customer, kid, uses, value, currency, text, issued_at, expires_at, issued_by, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(tenant), string(out.Serial), string(out.Campaign), string(out.Customer), string(out.KID), out.Uses, out.Value.Amount, string(out.Value.Currency),
		out.Text, now.UnixMicro(), out.Expires.UnixMicro(), out.IssuedBy, v)
	if err != nil {
		return Token{}, fmt.Errorf("catalog: store token: %w", err)
	}
	after := out
	after.Text = "" // the token is a bearer credential: keep it out of the audit log
	return out, audit(ctx, tx, tenant, actor, "token.issue", "token/"+string(out.Serial), nil, after, v, now)
}

// maxTokenUses is the most uses a token of campaign cp may carry, and the
// limit that sets it; 0 when the campaign sets none. A token's own uses
// take the place of the campaign's per-code limit when the rules decide
// (rules.Redeemable.MaxUses), so minting more than the campaign allows
// would lift its limits: a single-use gift card, per_code, per_customer
// (for a token naming a customer) and max_redemptions all cap it.
func maxTokenUses(cp rules.Campaign, forCustomer bool) (int64, string) {
	limit, why := int64(0), ""
	lower := func(n int64, name string) {
		if n > 0 && (limit == 0 || n < limit) {
			limit, why = n, name
		}
	}
	if cp.Reward.Kind == rules.RewardGiftCard && !cp.Reward.MultiUse {
		lower(1, "a single-use gift card")
	}
	lower(cp.Limits.PerCode, "limits.per_code")
	if forCustomer {
		lower(cp.Limits.PerCustomer, "limits.per_customer")
	}
	lower(cp.Limits.MaxRedemptions, "limits.max_redemptions")
	return limit, why
}

const tokenCols = `serial, campaign, customer, kid, uses, value, currency, text, issued_at, expires_at, issued_by, revoked_at, version`

func scanToken(s scanner) (Token, error) {
	var t Token
	var issued, expires int64
	var revoked sql.NullInt64
	if err := s.Scan(&t.Serial, &t.Campaign, &t.Customer, &t.KID, &t.Uses, &t.Value.Amount, &t.Value.Currency, &t.Text, &issued, &expires, &t.IssuedBy, &revoked, &t.Version); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Token{}, err
		}
		return Token{}, fmt.Errorf("catalog: token: %w", err)
	}
	t.IssuedAt, t.Expires, t.RevokedAt = time.UnixMicro(issued).UTC(), time.UnixMicro(expires).UTC(), fromMicros(revoked)
	return t, nil
}

func getToken(ctx context.Context, q querier, tenant protocol.TenantID, serial protocol.CodeID) (Token, error) {
	t, err := scanToken(q.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM catalog_tokens WHERE tenant = ? AND serial = ?`, string(tenant), string(serial)))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, notFound("token", string(serial))
	}
	return t, err
}

// Token returns an issued token. Reason codes: not_found.
func (c *Catalog) Token(ctx context.Context, tenant protocol.TenantID, serial protocol.CodeID) (Token, error) {
	return getToken(ctx, c.db, tenant, serial)
}

// CustomerTokens lists the tokens issued to a customer, newest first.
func (c *Catalog) CustomerTokens(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, limit int) ([]Token, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+tokenCols+` FROM catalog_tokens WHERE tenant = ? AND customer = ? ORDER BY issued_at DESC, serial LIMIT ?`,
		string(tenant), string(customer), clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("catalog: customer tokens: %w", err)
	}
	return collect(rows, scanToken)
}

// RevokeToken withdraws a token serial: agents refuse it from their next
// snapshot on, the hub at once. Reason codes: not_found, conflict.
func (c *Catalog) RevokeToken(ctx context.Context, actor Actor, tenant protocol.TenantID, serial protocol.CodeID) (Token, error) {
	var out Token
	err := c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		old, err := getToken(ctx, tx, tenant, serial)
		if err != nil {
			return err
		}
		if !old.RevokedAt.IsZero() {
			return conflict("", "token %q is already revoked", serial)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE catalog_tokens SET revoked_at = ?, version = ? WHERE tenant = ? AND serial = ?`, now.UnixMicro(), v, string(tenant), string(serial)); err != nil {
			return fmt.Errorf("catalog: revoke token: %w", err)
		}
		out = old
		out.RevokedAt, out.Version = now, v
		return audit(ctx, tx, tenant, actor, "token.revoke", "token/"+string(serial),
			map[string]any{"revoked": false}, map[string]any{"revoked": true}, v, now)
	})
	return out, err
}
