package api

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/codes"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/token"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// Online channels (web shop, app, support desk) ask the hub what it would
// decide (validate) and then redeem. The hub evaluates with the same rules
// engine as the agents, then records each applied result through the
// ledger, which checks limits and budgets under its write lock: strongly
// consistent, unlike an agent's offline decision.

// MaxRedeemables bounds the redeemables of one online request.
const MaxRedeemables = rules.MaxRedeemables

// onlineStore is where an online order happens.
type onlineStore struct {
	ID       protocol.StoreID `json:"id"`
	Region   string           `json:"region,omitempty"`
	TimeZone string           `json:"time_zone"`
	Group    string           `json:"group,omitempty"`
}

// presented is one thing the customer hands over: exactly one of Code (a
// plain code or gift card number), Token (a signed token text) or Campaign
// (points burned as payment in that points campaign).
type presented struct {
	Code     string              `json:"code,omitempty"`
	Token    string              `json:"token,omitempty"`
	Campaign protocol.CampaignID `json:"campaign,omitempty"`
	// Amount is the gift card spend or points burn asked for; 0 = as
	// much as the order can use.
	Amount int64 `json:"amount,omitempty"`
}

type onlineRequest struct {
	Store       onlineStore         `json:"store"`
	Order       protocol.Order      `json:"order"`
	Customer    protocol.CustomerID `json:"customer,omitempty"`
	Redeemables []presented         `json:"redeemables,omitempty"`
}

// onlineResponse is the decision and, for redeem and earn, what the ledger
// recorded.
type onlineResponse struct {
	Decision    rules.Decision        `json:"decision"`
	Redemptions []protocol.Redemption `json:"redemptions,omitempty"`
}

// rulesFor returns the tenant's compiled campaigns, recompiled only when
// the catalog version moved.
func (s *Server) rulesFor(ctx context.Context, tenant protocol.TenantID) (compiled, error) {
	v, err := s.cat.Version(ctx, tenant)
	if err != nil {
		return compiled{}, err
	}
	s.mu.Lock()
	c, ok := s.rules[tenant]
	s.mu.Unlock()
	if ok && c.version == v {
		return c, nil
	}
	cps, err := s.cat.Campaigns(ctx, tenant, 0)
	if err != nil {
		return compiled{}, err
	}
	rcs := make([]rules.Campaign, len(cps))
	c = compiled{version: v, camps: make(map[protocol.CampaignID]catalog.Campaign, len(cps))}
	for i, cp := range cps {
		rcs[i] = cp.Rules
		c.camps[cp.Rules.ID] = cp
	}
	if c.cat, err = rules.NewCatalog(rcs); err != nil {
		return compiled{}, fmt.Errorf("api: compile rules of %s: %w", tenant, err)
	}
	s.mu.Lock()
	if old, ok := s.rules[tenant]; !ok || old.version < v {
		s.rules[tenant] = c
	}
	s.mu.Unlock()
	return c, nil
}

// prepared is a request resolved into the engine's input.
type prepared struct {
	req     rules.Request
	index   []int          // engine redeemable → request index
	refused []rules.Result // request redeemables refused before the engine
}

// prepare resolves codes and tokens, looks up the customer, balances,
// counts and budgets, and builds the engine's request.
func (s *Server) prepare(ctx context.Context, tenant protocol.TenantID, in onlineRequest, comp compiled) (prepared, error) {
	var p prepared
	if len(in.Redeemables) > MaxRedeemables {
		return p, protocol.FieldError("redeemables", "at most %d redeemables", MaxRedeemables)
	}
	if err := protocol.ValidateID("store.id", string(in.Store.ID)); err != nil {
		return p, fieldOf("store.id", err)
	}
	st, err := rules.NewStore(in.Store.ID, in.Store.Region, in.Store.TimeZone)
	if err != nil {
		return p, err
	}
	if err := in.Order.Validate(); err != nil {
		return p, err
	}
	led := s.cfg.Ledger
	p.req = rules.Request{Tenant: tenant, Order: in.Order, Store: st, Now: s.cfg.Now().UTC().Truncate(time.Second),
		CustomerUses: map[protocol.CampaignID]int64{}, Budgets: map[protocol.CampaignID]rules.Budget{}}
	if in.Customer != "" {
		cu, err := s.cat.Customer(ctx, tenant, in.Customer)
		if err != nil {
			if protocol.ErrorCode(err) == protocol.CodeNotFound {
				return p, &protocol.Error{Code: protocol.CodeNotFound, Message: fmt.Sprintf("customer %q not found", in.Customer), Field: "customer"}
			}
			return p, err
		}
		pc := cu.Protocol()
		p.req.Customer = &pc
		if p.req.Points, err = led.Points(ctx, tenant, in.Customer); err != nil {
			return p, err
		}
	}
	var keys token.KeySet
	for i, r := range in.Redeemables {
		field := fmt.Sprintf("redeemables[%d]", i)
		n := 0
		for _, set := range []bool{r.Code != "", r.Token != "", r.Code == "" && r.Token == "" && r.Campaign != ""} {
			if set {
				n++
			}
		}
		if n != 1 || (r.Campaign != "" && (r.Code != "" || r.Token != "")) {
			return p, protocol.FieldError(field, "give exactly one of code, token or campaign (points)")
		}
		if r.Amount < 0 {
			return p, protocol.FieldError(field+".amount", "amount must not be negative")
		}
		refuse := func(kind rules.RedeemableKind, code protocol.CodeID, campaign protocol.CampaignID, err error) {
			pe := protocol.PublicError(err)
			p.refused = append(p.refused, rules.Result{Index: i, Kind: kind, Code: code, Campaign: campaign, Reason: pe.Code, Message: pe.Message})
		}
		var rd rules.Redeemable
		switch {
		case r.Code != "":
			cd, err := s.cat.Code(ctx, tenant, r.Code)
			if protocol.ErrorCode(err) == protocol.CodeNotFound {
				refuse(rules.RedeemCode, protocol.CodeID(codes.Normalize(r.Code)), "", protocol.NewError(protocol.CodeUnknownCode))
				continue
			}
			if err != nil {
				return p, err
			}
			kind := rules.RedeemCode
			if cp, ok := comp.camps[cd.Campaign]; ok && cp.Rules.Reward.Kind == rules.RewardGiftCard {
				kind = rules.RedeemGiftCard
			}
			if !cd.RevokedAt.IsZero() {
				refuse(kind, cd.Key, cd.Campaign, protocol.NewError(protocol.CodeCodeRevoked))
				continue
			}
			if !boundOK(cd.Stores, cd.Group, in.Store) {
				refuse(kind, cd.Key, cd.Campaign, protocol.NewError(protocol.CodeWrongStore))
				continue
			}
			rd = rules.Redeemable{Kind: kind, Code: cd.Key, Campaign: cd.Campaign, Amount: r.Amount}
			if cd.Uses > 0 {
				rd.MaxUses = cd.Uses
			}
			if rd.Uses, err = led.CodeUses(ctx, tenant, cd.Key); err != nil {
				return p, err
			}
			if kind == rules.RedeemGiftCard {
				spent, err := led.GiftCardSpent(ctx, tenant, cd.Key)
				if err != nil {
					return p, err
				}
				rd.Balance = max(cd.Balance-spent, 0)
			}
		case r.Token != "":
			if keys == nil {
				if keys, err = s.cat.KeySet(ctx, tenant); err != nil {
					return p, err
				}
			}
			cl, err := token.Verify(keys, tenant, r.Token, p.req.Now)
			if err != nil {
				if protocol.ErrorCode(err) == protocol.CodeInternal {
					return p, err // the key store failed, not the token
				}
				refuse(rules.RedeemToken, "", "", err)
				continue
			}
			t, err := s.cat.Token(ctx, tenant, cl.Serial)
			if err == nil && !t.RevokedAt.IsZero() {
				refuse(rules.RedeemToken, cl.Serial, cl.Campaign, protocol.NewError(protocol.CodeTokenRevoked))
				continue
			}
			if err != nil && protocol.ErrorCode(err) != protocol.CodeNotFound {
				return p, err
			}
			if (cl.Store != "" && cl.Store != in.Store.ID) || (cl.StoreGroup != "" && cl.StoreGroup != in.Store.Group) {
				refuse(rules.RedeemToken, cl.Serial, cl.Campaign, protocol.NewError(protocol.CodeWrongStore))
				continue
			}
			rd = rules.Redeemable{Kind: rules.RedeemToken, Code: cl.Serial, Campaign: cl.Campaign, Amount: r.Amount,
				MaxUses: int64(cl.Uses), NotBefore: cl.NotBefore, Expires: cl.Expires}
			if rd.Uses, err = led.CodeUses(ctx, tenant, cl.Serial); err != nil {
				return p, err
			}
		default:
			if err := protocol.ValidateID(field+".campaign", string(r.Campaign)); err != nil {
				return p, fieldOf(field+".campaign", err)
			}
			rd = rules.Redeemable{Kind: rules.RedeemPoints, Campaign: r.Campaign, Amount: r.Amount}
		}
		p.req.Redeemables = append(p.req.Redeemables, rd)
		p.index = append(p.index, i)
	}
	// Per-customer counts and remaining budgets of every campaign the
	// engine may touch: the named ones and the automatic ones.
	touched := map[protocol.CampaignID]bool{}
	for _, rd := range p.req.Redeemables {
		touched[rd.Campaign] = true
	}
	for id, cp := range comp.camps {
		if !touched[id] && cp.Rules.Trigger != rules.TriggerAuto {
			continue
		}
		l := cp.Rules.Limits
		if in.Customer != "" && l.PerCustomer > 0 {
			n, err := led.CustomerCount(ctx, tenant, in.Customer, id)
			if err != nil {
				return p, err
			}
			p.req.CustomerUses[id] = n
		}
		if l.MaxRedemptions > 0 || l.MaxDiscount > 0 {
			b, err := led.Campaign(ctx, tenant, id)
			if err != nil {
				return p, err
			}
			bud := rules.Budget{Count: -1, Amount: -1}
			if l.MaxRedemptions > 0 {
				bud.Count = max(l.MaxRedemptions-b.Count-b.ReservedCount, 0)
			}
			if l.MaxDiscount > 0 {
				bud.Amount = max(l.MaxDiscount-b.Discount-b.ReservedAmount, 0)
			}
			p.req.Budgets[id] = bud
		}
	}
	return p, nil
}

func fieldOf(field string, err error) error {
	pe := protocol.PublicError(err)
	if pe.Code == protocol.CodeInternal {
		return err
	}
	e := *pe
	e.Field = field
	return &e
}

// boundOK reports whether a code bound to stores or a group may be used in
// store st.
func boundOK(stores []protocol.StoreID, group string, st onlineStore) bool {
	if len(stores) == 0 && group == "" {
		return true
	}
	if group != "" && group == st.Group {
		return true
	}
	for _, id := range stores {
		if id == st.ID {
			return true
		}
	}
	return false
}

// decide evaluates and merges the results refused before the engine, in
// request order.
func (s *Server) decide(ctx context.Context, tenant protocol.TenantID, in onlineRequest, noEarn bool) (rules.Decision, error) {
	comp, err := s.rulesFor(ctx, tenant)
	if err != nil {
		return rules.Decision{}, err
	}
	p, err := s.prepare(ctx, tenant, in, comp)
	if err != nil {
		return rules.Decision{}, err
	}
	p.req.NoEarn = noEarn
	d := rules.Evaluate(comp.cat, p.req)
	if d.Error != nil {
		return d, d.Error
	}
	var named, auto []rules.Result
	for _, r := range d.Results {
		if r.Index >= 0 && r.Index < len(p.index) {
			r.Index = p.index[r.Index]
			named = append(named, r)
		} else {
			auto = append(auto, r)
		}
	}
	named = append(named, p.refused...)
	sortByIndex(named)
	d.Results = append(named, auto...)
	return d, nil
}

func sortByIndex(rs []rules.Result) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Index < rs[j-1].Index; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

func (s *Server) validate(c *fiber.Ctx, _ catalog.Key) error {
	if err := s.needLedger(); err != nil {
		return err
	}
	var in onlineRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	d, err := s.decide(c.UserContext(), tenantOf(c), in, false)
	if err != nil {
		return err
	}
	return c.JSON(onlineResponse{Decision: d})
}

// idemKey reads and checks the Idempotency-Key header and hashes the
// request (method, path, body) it names.
func idemKey(c *fiber.Ctx) (string, []byte, error) {
	key := c.Get("Idempotency-Key")
	if key == "" {
		return "", nil, protocol.FieldError("Idempotency-Key", "the Idempotency-Key header is required")
	}
	if len(key) > catalog.MaxIdempotencyKey {
		return "", nil, protocol.FieldError("Idempotency-Key", "the Idempotency-Key header is longer than %d characters", catalog.MaxIdempotencyKey)
	}
	h := sha256.New()
	h.Write([]byte(c.Method() + " " + c.Path() + "\n"))
	h.Write(c.Body())
	return key, h.Sum(nil), nil
}

// basketPlan is what an online write records: the redemptions, the answer
// to build from them as recorded, and the request field each one came
// from (for a refusal's Field).
type basketPlan struct {
	reds   []protocol.Redemption
	fields []string
	answer func(recorded []protocol.Redemption) any
}

// idempotent records one online write once per Idempotency-Key. A retry
// with the same key and body gets the first answer again (header
// Idempotent-Replayed: true); the same key with another body is refused
// (idempotency_key_reused, 422). The redemptions and the idempotency
// record are written in one transaction by the ledger's online writer,
// which checks the record again inside it: of concurrent requests under
// one key exactly one is recorded, and the others get its answer (or 422).
// A full writer queue answers 503 with Retry-After.
func (s *Server) idempotent(c *fiber.Ctx, plan func(key string) (basketPlan, error)) error {
	key, sum, err := idemKey(c)
	if err != nil {
		return err
	}
	ctx, tenant := c.UserContext(), tenantOf(c)
	replay := func(r catalog.Remembered) error {
		c.Set("Idempotent-Replayed", "true")
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Status(r.Status).Send(r.Body)
	}
	if r, found, err := s.cat.Recall(ctx, tenant, key, sum); err != nil {
		return err
	} else if found {
		return replay(r)
	}
	var prev catalog.Remembered
	recall := func(ctx context.Context, tx *sql.Tx) (bool, error) {
		r, found, err := catalog.RecallTx(ctx, tx, tenant, key, sum)
		prev = r
		return found, err
	}
	p, perr := plan(key)
	if perr != nil {
		// Refused: unless a concurrent request under this key was
		// recorded meanwhile (then its answer is the answer), checked in
		// the writer's order.
		if protocol.ErrorCode(perr) == protocol.CodeInternal {
			return perr
		}
		_, replayed, err := s.cfg.Ledger.RedeemBasket(ctx, ledger.Basket{Tenant: tenant, Recall: recall})
		if err != nil {
			return s.writeErr(c, err, nil)
		}
		if replayed {
			return replay(prev)
		}
		return perr
	}
	var body []byte
	status := http.StatusOK
	remember := func(ctx context.Context, tx *sql.Tx, recorded []protocol.Redemption) error {
		var err error
		if body, err = json.Marshal(p.answer(recorded)); err != nil {
			return fmt.Errorf("api: encode answer: %w", err)
		}
		return catalog.RememberTx(ctx, tx, tenant, key, sum, catalog.Remembered{Status: status, Body: body}, s.cfg.Now().UTC())
	}
	recorded, replayed, err := s.cfg.Ledger.RedeemBasket(ctx, ledger.Basket{Tenant: tenant, Redemptions: p.reds, Recall: recall, Remember: remember})
	if err != nil {
		return s.writeErr(c, err, p.fields)
	}
	if replayed {
		return replay(prev)
	}
	s.codesChanged(ctx, tenant, recorded...)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(status).Send(body)
}

// writeErr maps a ledger refusal: a refused redemption names its request
// field, a full writer queue asks to retry.
func (s *Server) writeErr(c *fiber.Ctx, err error, fields []string) error {
	if errors.Is(err, ledger.ErrQueueFull) {
		c.Set(fiber.HeaderRetryAfter, "1")
		return err
	}
	var ie *ledger.ItemError
	if errors.As(err, &ie) && ie.Index < len(fields) && fields[ie.Index] != "" {
		return fieldOf(fields[ie.Index], ie.Err)
	}
	if ie != nil {
		return ie.Err
	}
	return err
}

func (s *Server) redeem(c *fiber.Ctx, _ catalog.Key) error {
	if err := s.needLedger(); err != nil {
		return err
	}
	var in onlineRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if len(in.Redeemables) == 0 {
		return protocol.FieldError("redeemables", "name at least one redeemable to redeem")
	}
	ctx, tenant := c.UserContext(), tenantOf(c)
	return s.idempotent(c, func(key string) (basketPlan, error) {
		var p basketPlan
		d, err := s.decide(ctx, tenant, in, true)
		if err != nil {
			return p, err
		}
		// A redeemable the customer presented that does not apply fails
		// the whole redemption: the channel asked for it by name.
		for _, r := range d.Results {
			if r.Index >= 0 && !r.Applied {
				return p, &protocol.Error{Code: r.Reason, Message: r.Message, Field: fmt.Sprintf("redeemables[%d]", r.Index)}
			}
		}
		for _, r := range d.Results {
			if !r.Applied {
				continue
			}
			p.reds = append(p.reds, protocol.Redemption{
				Kind: protocol.KindRedeem, Tenant: tenant, Store: in.Store.ID, TxnID: key, Campaign: r.Campaign, Code: r.Code,
				Customer: in.Customer, OrderID: in.Order.ID, Currency: d.Currency, Discount: r.Discount + r.ShippingDiscount,
				Spend: r.Spend, Points: -r.PointsBurned, OrderTot: d.Subtotal,
			})
			field := ""
			if r.Index >= 0 {
				field = fmt.Sprintf("redeemables[%d]", r.Index)
			}
			p.fields = append(p.fields, field)
		}
		p.answer = func(rs []protocol.Redemption) any {
			return onlineResponse{Decision: d, Redemptions: orEmptyRed(rs)}
		}
		return p, nil
	})
}

// codesChanged reports, through Config.OnChange, that online redemptions
// changed a code's uses or a gift card's spending, which the agents'
// snapshots carry (Code.Used, Code.Spent): the hub re-announces the
// snapshot, coalesced per tenant, so tills refuse a code already used
// online. The version is the unchanged catalog version; the announcement's
// ETag (the ledger's journal mark) is what tells agents to revalidate.
func (s *Server) codesChanged(ctx context.Context, tenant protocol.TenantID, rs ...protocol.Redemption) {
	if s.cfg.OnChange == nil {
		return
	}
	for _, r := range rs {
		if r.Code != "" {
			if v, err := s.cat.Version(ctx, tenant); err == nil {
				s.cfg.OnChange(tenant, v)
			}
			return
		}
	}
}

func orEmptyRed(rs []protocol.Redemption) []protocol.Redemption {
	if rs == nil {
		return []protocol.Redemption{}
	}
	return rs
}

type rollbackRequest struct {
	Redemption protocol.RedemptionID `json:"redemption"`
	Store      protocol.StoreID      `json:"store,omitempty"`
}

func (s *Server) rollback(c *fiber.Ctx, _ catalog.Key) error {
	if err := s.needLedger(); err != nil {
		return err
	}
	var in rollbackRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Redemption.Agent == "" || in.Redemption.Seq == 0 {
		return protocol.FieldError("redemption", "name the redemption to roll back: {agent, seq}")
	}
	tenant := tenantOf(c)
	return s.idempotent(c, func(key string) (basketPlan, error) {
		ref := in.Redemption
		return basketPlan{
			reds:   []protocol.Redemption{{Kind: protocol.KindRollback, Tenant: tenant, Store: in.Store, TxnID: key, Ref: &ref}},
			fields: []string{""},
			answer: func(rs []protocol.Redemption) any { return rs[0] },
		}, nil
	})
}

func (s *Server) earn(c *fiber.Ctx, _ catalog.Key) error {
	if err := s.needLedger(); err != nil {
		return err
	}
	var in onlineRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Customer == "" {
		return protocol.FieldError("customer", "earning points needs a customer")
	}
	if len(in.Redeemables) > 0 {
		return protocol.FieldError("redeemables", "earn takes no redeemables; redeem them first")
	}
	ctx, tenant := c.UserContext(), tenantOf(c)
	return s.idempotent(c, func(key string) (basketPlan, error) {
		var p basketPlan
		d, err := s.decide(ctx, tenant, in, false)
		if err != nil {
			return p, err
		}
		perCampaign := map[protocol.CampaignID]int64{}
		var order []protocol.CampaignID
		for _, e := range d.Earnings {
			if _, ok := perCampaign[e.Campaign]; !ok {
				order = append(order, e.Campaign)
			}
			perCampaign[e.Campaign] += e.Points
		}
		for _, id := range order {
			if perCampaign[id] <= 0 {
				continue
			}
			p.reds = append(p.reds, protocol.Redemption{Kind: protocol.KindEarn, Tenant: tenant, Store: in.Store.ID, TxnID: key,
				Campaign: id, Customer: in.Customer, OrderID: in.Order.ID, Currency: d.Currency, Points: perCampaign[id], OrderTot: d.Subtotal})
			p.fields = append(p.fields, "")
		}
		p.answer = func(rs []protocol.Redemption) any {
			return onlineResponse{Decision: d, Redemptions: orEmptyRed(rs)}
		}
		return p, nil
	})
}

// ledgerConflict is a ledger conflict as the API shows it.
type ledgerConflict struct {
	ID         int64                  `json:"id"`
	Kind       ledger.ConflictKind    `json:"kind"`
	Campaign   protocol.CampaignID    `json:"campaign,omitempty"`
	Code       protocol.CodeID        `json:"code,omitempty"`
	Customer   protocol.CustomerID    `json:"customer,omitempty"`
	Redemption protocol.RedemptionID  `json:"redemption"`
	Other      *protocol.RedemptionID `json:"other,omitempty"`
	Detail     string                 `json:"detail,omitempty"`
	At         time.Time              `json:"at"`
}

func conflictsOut(cs []ledger.Conflict) []ledgerConflict {
	out := make([]ledgerConflict, len(cs))
	for i, c := range cs {
		out[i] = ledgerConflict{c.ID, c.Kind, c.Campaign, c.Code, c.Customer, c.Redemption, c.Other, c.Detail, c.At}
	}
	return out
}
