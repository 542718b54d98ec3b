// Package online is the hub's service for the online channels (web shop,
// app, support desk) and for tills that ask the hub online first: validate,
// redeem, rollback and earn. It decides with the one pipeline the tills
// use (protocol/decide), supplying what only the hub knows (its catalog and
// ledger: uses, balances, per-customer counts, points, budgets), and
// records each write through the ledger, which checks limits and budgets
// again under its write lock: strongly consistent, unlike a till's
// offline decision.
//
// hub/api is a thin HTTP adapter over Service; the MQTT ingest, the
// console and the webhooks call the same methods.
package online

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/catalog"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/token"
	"github.com/punchcard/punchcard/protocol/wire"
)

// MaxRedeemables bounds the redeemables of one online request.
const MaxRedeemables = rules.MaxRedeemables

// Catalog is what the service reads of the hub's catalog (store/catalog).
type Catalog interface {
	Version(ctx context.Context, tenant protocol.TenantID) (uint64, error)
	Campaigns(ctx context.Context, tenant protocol.TenantID, since uint64) ([]catalog.Campaign, error)
	Customer(ctx context.Context, tenant protocol.TenantID, id protocol.CustomerID) (catalog.Customer, error)
	Code(ctx context.Context, tenant protocol.TenantID, code string) (catalog.Code, error)
	KeySet(ctx context.Context, tenant protocol.TenantID) (token.KeySet, error)
	Token(ctx context.Context, tenant protocol.TenantID, serial protocol.CodeID) (catalog.Token, error)
}

// Ledger is what the service needs of the hub's ledger (store/ledger).
type Ledger interface {
	// RedeemOnce records a basket and its idempotency record as one unit
	// of work of the store (see ledger.Once), or looks the key up.
	RedeemOnce(ctx context.Context, b ledger.Basket, once ledger.Once) (ledger.Outcome, error)
	Campaign(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID) (ledger.CampaignBalance, error)
	CodeUses(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (int64, error)
	Figures(ctx context.Context, tenant protocol.TenantID, q ledger.FiguresQuery) (ledger.Figures, error)
	GiftCardSpent(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (int64, error)
	// GiftCardLoaded is what top-ups put on a card beyond its catalog
	// balance (giftcards.go).
	GiftCardLoaded(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (int64, error)
	CustomerCount(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, campaign protocol.CampaignID) (int64, error)
	Points(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID) (int64, error)
	// PeriodEarned is what a customer earned in each capped earning
	// rule's period named, net of rollbacks.
	PeriodEarned(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, keys []protocol.PeriodKey) ([]int64, error)
	Holds
}

// MaxIdempotencyKey bounds an Idempotency-Key, in bytes.
const MaxIdempotencyKey = catalog.MaxIdempotencyKey

// ErrBusy refuses a write when the ledger's online writer is full: retry
// after a moment (HTTP 503 with Retry-After).
var ErrBusy = ledger.ErrQueueFull

// Service decides and records online. It is safe for concurrent use.
type Service struct {
	cat Catalog
	led Ledger
	// Now is the clock of decisions; preset to time.Now.
	Now func() time.Time
	// OnChange, when set, is called after a write changed a code's uses
	// or a gift card's spending (which the tills' snapshots carry), with
	// the tenant's catalog version, so that the hub re-announces the
	// snapshot. It must not block.
	OnChange func(tenant protocol.TenantID, version uint64)

	// HoldTTL bounds an online-first till's hold (Authorize); preset to
	// DefaultHoldTTL.
	HoldTTL time.Duration
	// StatementMax caps a points statement's points (statement.go);
	// 0 = DefaultStatementMax.
	StatementMax int64

	// Segments, when set, computes each known customer's segments from
	// behaviour for the decision (hub/segments); nil: only the static one.
	Segments Segmenter

	mu    sync.Mutex
	rules map[protocol.TenantID]Compiled

	stores sync.Map // storeKey -> rules.Store: the time zone loaded once
	nstore atomic.Int64
}

type storeKey struct {
	id               protocol.StoreID
	region, timeZone string
}

// maxStores bounds the stores kept with their time zone loaded; past it
// the cache starts again.
const maxStores = 4096

// store is rules.NewStore, keeping the result: loading the time zone
// (time.LoadLocation reads the zone file) cost every online request more
// than its ledger reads.
func (s *Service) store(in Store) (rules.Store, error) {
	k := storeKey{in.ID, in.Region, in.TimeZone}
	if v, ok := s.stores.Load(k); ok {
		return v.(rules.Store), nil
	}
	st, err := rules.NewStore(in.ID, in.Region, in.TimeZone)
	if err != nil {
		return st, err
	}
	if s.nstore.Add(1) > maxStores {
		s.stores.Clear()
		s.nstore.Store(1)
	}
	s.stores.Store(k, st)
	return st, nil
}

// New returns a service over the catalog and the ledger.
func New(cat Catalog, led Ledger) *Service {
	return &Service{cat: cat, led: led, Now: time.Now, HoldTTL: DefaultHoldTTL, rules: map[protocol.TenantID]Compiled{}}
}

// Compiled is a tenant's campaigns at one catalog version, compiled once.
type Compiled struct {
	Version uint64
	Rules   *decide.Rules
	Camps   map[protocol.CampaignID]catalog.Campaign
}

// Compiled returns the tenant's compiled campaigns, recompiled only when
// the catalog version moved.
func (s *Service) Compiled(ctx context.Context, tenant protocol.TenantID) (Compiled, error) {
	v, err := s.cat.Version(ctx, tenant)
	if err != nil {
		return Compiled{}, err
	}
	s.mu.Lock()
	c, ok := s.rules[tenant]
	s.mu.Unlock()
	if ok && c.Version == v {
		return c, nil
	}
	cps, err := s.cat.Campaigns(ctx, tenant, 0)
	if err != nil {
		return Compiled{}, err
	}
	rcs := make([]rules.Campaign, len(cps))
	c = Compiled{Version: v, Camps: make(map[protocol.CampaignID]catalog.Campaign, len(cps))}
	for i, cp := range cps {
		rcs[i] = cp.Rules
		c.Camps[cp.Rules.ID] = cp
	}
	if c.Rules, err = decide.Compile(rcs); err != nil {
		return Compiled{}, fmt.Errorf("online: compile rules of %s: %w", tenant, err)
	}
	s.mu.Lock()
	if old, ok := s.rules[tenant]; !ok || old.Version < v {
		s.rules[tenant] = c
	}
	s.mu.Unlock()
	return c, nil
}

// The online API's bodies are protocol/wire's.
type (
	Store     = wire.OnlineStore
	Presented = wire.Presented
	Request   = wire.OnlineRequest
	Response  = wire.OnlineResponse
)

// Idem names an online write for idempotency: the channel's key and the
// hash of its request (method, path, body).
type Idem struct {
	Key string
	Sum []byte
}

// Answer is a write's answer as recorded: a retry gets the same bytes.
type Answer struct {
	Status   int
	Body     []byte
	Replayed bool
}

// decision runs the pipeline for an online request.
func (s *Service) decision(ctx context.Context, tenant protocol.TenantID, in Request, noEarn bool) (*decide.Outcome, error) {
	if err := protocol.ValidateID("store.id", string(in.Store.ID)); err != nil {
		return nil, protocol.WithField("store.id", err)
	}
	st, err := s.store(in.Store)
	if err != nil {
		return nil, err
	}
	comp, err := s.Compiled(ctx, tenant)
	if err != nil {
		return nil, err
	}
	req := decide.Request{Tenant: tenant, Where: decide.Where{Store: st, Group: in.Store.Group}, Order: in.Order,
		Now: s.Now().UTC().Truncate(time.Second), NoEarn: noEarn}
	if in.Customer != "" {
		req.Customer = &protocol.Customer{ID: in.Customer}
	}
	for _, p := range in.Redeemables {
		req.Presented = append(req.Presented, decide.Presented{Code: p.Code, Token: p.Token, Campaign: p.Campaign, Amount: p.Amount})
	}
	f := &Facts{cat: s.cat, led: s.led, tenant: tenant, comp: comp, holds: s.led != nil, segs: s.Segments, now: s.Now()}
	if err := f.prefetch(ctx, in); err != nil {
		return nil, err
	}
	return decide.Decide(ctx, f, comp.Rules, req)
}

// Validate answers what the order gets, changing nothing. Reason codes:
// those of decide.Decide.
func (s *Service) Validate(ctx context.Context, tenant protocol.TenantID, in Request) (Response, error) {
	out, err := s.decision(ctx, tenant, in, false)
	if err != nil {
		return Response{}, err
	}
	return Response{Decision: out.Decision}, nil
}

// Redeem records the basket's redemptions, and with a customer the sale's
// points on the order after its discounts (points ride on the redeem),
// once per Idem.Key. A redeemable that does not apply fails the whole
// redemption with its reason and field. Reason codes: those of Validate,
// of the ledger's checks (code_already_used, insufficient_balance,
// customer_limit_reached, insufficient_points, budget_exhausted),
// idempotency_key_reused, and unavailable (ErrBusy).
func (s *Service) Redeem(ctx context.Context, tenant protocol.TenantID, idem Idem, in Request) (Answer, error) {
	if len(in.Redeemables) == 0 {
		return Answer{}, protocol.FieldError("redeemables", "name at least one redeemable to redeem")
	}
	return s.idempotent(ctx, tenant, idem, func() (plan, error) {
		out, err := s.decision(ctx, tenant, in, in.Customer == "")
		if err != nil {
			return plan{}, err
		}
		if e := out.Refusal(); e != nil {
			return plan{}, e
		}
		p := s.effects(tenant, idem.Key, in, out)
		p.decision = &out.Decision
		return p, nil
	})
}

// effects are the outcome's redemptions as the ledger records them.
func (s *Service) effects(tenant protocol.TenantID, txn string, in Request, out *decide.Outcome) plan {
	effs := out.Effects()
	p := plan{reds: make([]protocol.Redemption, 0, len(effs)), fields: make([]string, 0, len(effs))}
	for _, e := range effs {
		r := e.Redemption
		r.Tenant, r.Store, r.TxnID, r.Customer, r.OrderID = tenant, in.Store.ID, txn, in.Customer, in.Order.ID
		r.Currency, r.OrderTot = out.Decision.Currency, out.Decision.Subtotal
		p.reds = append(p.reds, r)
		field := ""
		if e.Index >= 0 {
			field = fmt.Sprintf("redeemables[%d]", e.Index)
		}
		p.fields = append(p.fields, field)
	}
	return p
}

// RollbackRequest names an online redemption to void.
type RollbackRequest struct {
	Redemption protocol.RedemptionID `json:"redemption"`
	Store      protocol.StoreID      `json:"store,omitempty"`
}

// Rollback voids an online redemption, once per Idem.Key. Reason codes:
// invalid_input, not_found, already_rolled_back, idempotency_key_reused,
// unavailable.
func (s *Service) Rollback(ctx context.Context, tenant protocol.TenantID, idem Idem, in RollbackRequest) (Answer, error) {
	if in.Redemption.Agent == "" || in.Redemption.Seq == 0 {
		return Answer{}, protocol.FieldError("redemption", "name the redemption to roll back: {agent, seq}")
	}
	return s.idempotent(ctx, tenant, idem, func() (plan, error) {
		ref := in.Redemption
		return plan{
			reds:   []protocol.Redemption{{Kind: protocol.KindRollback, Tenant: tenant, Store: in.Store, TxnID: idem.Key, Ref: &ref}},
			fields: []string{""},
		}, nil
	})
}

// Earn credits the points of a paid order that was not redeemed (a sale
// with rewards earns with its redeem), once per Idem.Key. Reason codes:
// invalid_input (customer, redeemables), those of Validate,
// idempotency_key_reused, unavailable.
func (s *Service) Earn(ctx context.Context, tenant protocol.TenantID, idem Idem, in Request) (Answer, error) {
	if in.Customer == "" {
		return Answer{}, protocol.FieldError("customer", "earning points needs a customer")
	}
	if len(in.Redeemables) > 0 {
		return Answer{}, protocol.FieldError("redeemables", "earn takes no redeemables; redeem them first")
	}
	return s.idempotent(ctx, tenant, idem, func() (plan, error) {
		out, err := s.decision(ctx, tenant, in, false)
		if err != nil {
			return plan{}, err
		}
		p := plan{}
		for _, e := range s.effects(tenant, idem.Key, in, out).reds {
			if e.Kind == protocol.KindEarn {
				p.reds = append(p.reds, e)
				p.fields = append(p.fields, "")
			}
		}
		d := out.Decision
		if d.Results == nil {
			d.Results = []rules.Result{}
		}
		p.decision = &d
		return p, nil
	})
}

// plan is what an online write records: the redemptions, the request
// field each one came from (for a refusal's Field), and the decision the
// answer carries (a Response with the redemptions as recorded), or none
// (a rollback: the answer is the one redemption as recorded).
type plan struct {
	reds     []protocol.Redemption
	fields   []string
	decision *rules.Decision
}

// head is the answer's encoding up to the redemptions, built before the
// writer: what body completes inside it is only the recorded part.
func (p plan) head() ([]byte, error) {
	if p.decision == nil {
		return nil, nil
	}
	d, err := json.Marshal(p.decision)
	if err != nil {
		return nil, err
	}
	return append(append([]byte(`{"decision":`), d...), ','), nil
}

// body is the answer: json.Marshal(Response{Decision, Redemptions}) for a
// decision, byte for byte (TestAnswerEncoding), or the one redemption.
func (p plan) body(head []byte, recorded []protocol.Redemption) ([]byte, error) {
	if p.decision == nil {
		return json.Marshal(recorded[0])
	}
	b := slices.Clip(head)
	if len(recorded) == 0 { // omitempty
		b = b[:len(b)-1]
		return append(b, '}'), nil
	}
	b = append(b, `"redemptions":`...)
	b, err := appendRedemptions(b, recorded) // answerjson.go
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// idempotent records one online write once per Idem.Key. A retry with the
// same key and request gets the first answer again (Replayed); the same
// key with another request is refused (idempotency_key_reused).
//
// The key is looked up once, in the ledger's online writer, by recording
// it (Ledger.RedeemOnce): the store writes the redemptions and the
// idempotency record as one unit of work, the record last, and a
// conflict (the key recorded meanwhile, also earlier in the same group
// commit) undoes the basket and answers the record found. Of concurrent
// requests under one key exactly one is recorded, and the others get its
// answer (or the refusal). A retry therefore decides again before it is
// answered from the record; retries are rare, first requests are not, and
// a lookup before the decision would cost every request a read.
func (s *Service) idempotent(ctx context.Context, tenant protocol.TenantID, idem Idem, mk func() (plan, error)) (Answer, error) {
	p, perr := mk()
	if perr != nil {
		return s.refused(ctx, tenant, idem, perr)
	}
	// The answer's constant part is encoded here, outside the writer;
	// the writer adds the redemptions as recorded.
	head, err := p.head()
	if err != nil {
		return Answer{}, fmt.Errorf("online: encode answer: %w", err)
	}
	once := ledger.Once{Key: idem.Key, Request: idem.Sum, At: s.Now().UTC(),
		Answer: func(recorded []protocol.Redemption) (int, []byte, error) {
			body, err := p.body(head, recorded)
			if err != nil {
				return 0, nil, fmt.Errorf("online: encode answer: %w", err)
			}
			return http.StatusOK, body, nil
		}}
	out, err := s.led.RedeemOnce(ctx, ledger.Basket{Tenant: tenant, Redemptions: p.reds}, once)
	if err != nil {
		if errors.Is(err, ErrBusy) || ctx.Err() != nil {
			return Answer{}, err
		}
		// A retry decided again may differ from the first answer (the
		// ledger's transaction-id check refuses other amounts, a limit
		// may be reached now): the record, if any, is the answer.
		return s.refused(ctx, tenant, idem, writeErr(err, p.fields))
	}
	if out.Replayed {
		return Answer{Status: out.Status, Body: out.Body, Replayed: true}, nil
	}
	s.codesChanged(ctx, tenant, out.Recorded...)
	return Answer{Status: out.Status, Body: out.Body}, nil
}

// refused answers a write refused with perr, unless its key was recorded
// (a retry of an answered request, or a concurrent one recorded
// meanwhile: then that answer is the answer), checked in the writer's
// order.
func (s *Service) refused(ctx context.Context, tenant protocol.TenantID, idem Idem, perr error) (Answer, error) {
	if protocol.ErrorCode(perr) == protocol.CodeInternal {
		return Answer{}, perr
	}
	out, err := s.led.RedeemOnce(ctx, ledger.Basket{Tenant: tenant}, ledger.Once{Key: idem.Key, Request: idem.Sum})
	if err != nil {
		return Answer{}, writeErr(err, nil)
	}
	if out.Replayed {
		return Answer{Status: out.Status, Body: out.Body, Replayed: true}, nil
	}
	return Answer{}, perr
}

// writeErr maps a ledger refusal: a refused redemption names its request
// field.
func writeErr(err error, fields []string) error {
	var ie *ledger.ItemError
	if errors.As(err, &ie) && ie.Index < len(fields) && fields[ie.Index] != "" {
		return protocol.WithField(fields[ie.Index], ie.Err)
	}
	if ie != nil {
		return ie.Err
	}
	return err
}

// codesChanged reports, through OnChange, that online redemptions changed
// a code's uses or a gift card's spending, which the agents' snapshots
// carry (Code.Used, Code.Spent): the hub re-announces the snapshot,
// coalesced per tenant, so tills refuse a code already used online. The
// version is the unchanged catalog version; the announcement's ETag (the
// ledger's journal mark) is what tells agents to revalidate.
func (s *Service) codesChanged(ctx context.Context, tenant protocol.TenantID, rs ...protocol.Redemption) {
	if s.OnChange == nil {
		return
	}
	for _, r := range rs {
		if r.Code != "" {
			if v, err := s.cat.Version(ctx, tenant); err == nil {
				s.OnChange(tenant, v)
			}
			return
		}
	}
}
