package rules

import (
	"cmp"
	"math/bits"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// MaxOrderTotal bounds an order's subtotal plus shipping, so that every sum
// and product the engine forms stays far inside int64.
const MaxOrderTotal = 1_000_000_000_000_000 // ten trillion major units

// Evaluate decides what the request's redeemables and the catalog's
// automatic campaigns give on the order. It never fails: a refused request
// comes back with Decision.Error set and every result refused with the same
// reason. Per-redeemable reasons (see docs/rules.md for their precedence):
// campaign_unknown, campaign_stopped, currency_mismatch, code_not_yet_valid,
// code_expired, wrong_store, outside_hours, customer_required, not_eligible,
// code_already_used, customer_limit_reached, budget_exhausted,
// minimum_not_met, no_matching_items, insufficient_balance,
// insufficient_points, not_combinable, too_many_redeemables, no_effect and
// invalid_input.
//
// Evaluate is pure and deterministic; the order of Request.Redeemables
// changes nothing but the order of the results.
func Evaluate(cat *Catalog, req Request) Decision {
	b := scratchPool.Get().(*scratch)
	defer b.release()
	b.req = req // in the pooled scratch: &req would escape, one allocation
	ev := evaluator{cat: cat, req: &b.req, buf: b}
	if cat != nil {
		ev.list = cat.list
	}
	return ev.run()
}

// scratch is the working memory of one evaluation, reused through a pool:
// with a large catalog on the heap, every byte allocated per decision costs
// garbage-collector time. Nothing in it survives into the Decision.
type scratch struct {
	i64       []int64
	syms      []int32
	units     []unitRef
	units2    []unitRef // groupByClass
	items     []lset    // a bundle's items' lines
	itemUnits []int64   // and units
	cands     []cand
	accepted  []cand
	merged    []cand
	red       []cand   // accepted redeemables (autoClash)
	odd       []cand   // accepted redeemables with stacking lists (autoClash)
	allRed    []cand   // (autoClash)
	oddAuto   []cand   // (autoClash)
	autoBits  []uint64 // autoClash's bitsets
	clash     autoClash
	results   []Result       // the decision's results while evaluating (run)
	lines     []LineDiscount // the applied results' lines (apply)
	lineRefs  []lineRef
	// The memo of line sets (lines.go): sets by matcher.id, valid when
	// their stamp is gen; masks and idx hold their contents.
	gen   uint32
	sets  []lineSet
	masks []bool
	idx   []int32
	// The order's symbols (orderSyms), and by symbol when symTable.
	skuSyms, catSyms []symLines
	symTab           []symEntry
	symTable         bool
	// req is the evaluation's copy of its Request (cleared on release).
	req Request
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// release returns b to the pool. Its candidates are indexes; its results
// (see results) and line sets are not cleared.
func (b *scratch) release() {
	b.req = Request{}
	scratchPool.Put(b)
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

type evaluator struct {
	cat *Catalog
	req *Request
	buf *scratch
	d   Decision

	initial  []int64 // line totals before discounts
	left     []int64 // line amounts left after the discounts applied so far
	shipLeft int64
	due      int64 // total still to pay, for payments
	points   int64 // customer's points left to burn

	weekday time.Weekday
	minute  int
	loc     *time.Location

	lsku    []int32 // per-line interned SKU (-1 = named by no campaign)
	lcat    []int32 // per-line interned category
	tmp     []int64 // per-line weights while spreading a discount
	scratch []int64 // per-line discounts of the reward being computed
	qty     []int64 // per-line rewarded units
	// scratchQty is scratch and qty, which lie side by side: one clear.
	scratchQty []int64
	units      []unitRef
	cands      []cand
	list       []*compiled // Catalog.list, which cand.cc indexes
	nred       int         // the redeemables among cands (the first ones)
	asc        []int32     // lines by unit price, cheapest first (priceOrder; nil until used)
	desc       []int32     // lines by unit price, most expensive first
	// touch has a bit for each line the last effect gave a discount on,
	// when touchOK (at most 64 lines).
	touch     uint64
	touchOK   bool
	symsReady bool // buf.skuSyms and catSyms are this order's
	// quiet: the candidate being computed is an automatic campaign, whose
	// refusals say nothing; effect then leaves their messages out.
	quiet bool
	event bool     // EarnForEvent: no order, so no currency or basket checks
	set   *autoSet // the tenant's automatic discounts
	out   *Buffer  // where the decision's slices go (Buffer.Evaluate); nil: new ones
}

type cand struct {
	cc    int32 // the campaign, by index in Catalog.list
	index int32 // the redeemable's index in the request (and Results), -1 for an automatic campaign
	key   int64 // selKey while selecting, then applyKey
	si    int32 // an automatic campaign's index in its autoSet
}

func (ev *evaluator) run() Decision {
	req := ev.req
	ev.d.Currency = req.Order.Currency
	n := len(req.Redeemables)
	// The results are built in the scratch and copied out once, at their
	// final length: no growth, no unused capacity in the decision.
	ev.d.Results = slices.Grow(ev.buf.results[:0], n)[:n]
	for i := range req.Redeemables {
		r := &req.Redeemables[i]
		ev.d.Results[i] = Result{Index: i, Kind: r.Kind, Code: r.Code, Campaign: r.Campaign}
	}
	if err := ev.prepare(); err != nil {
		d := ev.fail(err)
		d.Results = ev.results()
		return d
	}
	ev.collect()
	ev.selectAndApply()
	ev.finish()
	ev.buf.units = ev.units[:0]
	ev.d.Results = ev.results()
	return ev.d
}

// results copies the results out of the scratch. The scratch keeps its
// copy (nothing in it is cleared on release): the pool drops it within
// two garbage collections, and the next evaluation overwrites it.
func (ev *evaluator) results() []Result {
	ev.buf.results = ev.d.Results[:0]
	return ev.outResults(ev.d.Results)
}

func (ev *evaluator) fail(err error) Decision {
	e := protocol.PublicError(err)
	ev.d.Error = e
	for i := range ev.d.Results {
		ev.d.Results[i].Reason = e.Code
		ev.d.Results[i].Message = e.Message
	}
	ev.d.Subtotal, ev.d.Shipping, ev.d.Total, ev.d.Due = 0, 0, 0, 0
	return ev.d
}

// prepare checks the request as a whole and sets up the amounts.
func (ev *evaluator) prepare() error {
	req := ev.req
	if ev.cat == nil {
		return protocol.Errorf(protocol.CodeInternal, "no rules loaded")
	}
	if len(req.Redeemables) > MaxRedeemables {
		return protocol.Errorf(protocol.CodeTooManyRedeemable, "%d rewards on one basket; at most %d", len(req.Redeemables), MaxRedeemables)
	}
	if err := req.Order.Validate(); err != nil {
		return err
	}
	if req.Now.IsZero() {
		return protocol.FieldError("now", "the time of the order is required")
	}
	if req.Points < 0 {
		return protocol.FieldError("points", "points balance must not be negative")
	}
	loc, err := ev.cat.location(req.Store)
	if err != nil {
		return err
	}
	ev.loc = loc
	local := req.Now.In(loc)
	ev.weekday = local.Weekday()
	ev.minute = local.Hour()*60 + local.Minute()

	nl := len(req.Order.Lines)
	buf := grow(ev.buf.i64, 5*nl)
	ev.buf.i64 = buf
	ev.initial, ev.left, ev.scratch, ev.qty, ev.tmp = buf[:nl:nl], buf[nl:2*nl:2*nl], buf[2*nl:3*nl:3*nl], buf[3*nl:4*nl:4*nl], buf[4*nl:]
	ev.scratchQty = buf[2*nl : 4*nl : 4*nl]
	ev.buf.newGen(ev.cat.nMatchers)
	ev.touchOK = nl <= 64
	syms := grow(ev.buf.syms, 2*nl)
	ev.buf.syms = syms
	ev.lsku, ev.lcat = syms[:nl:nl], syms[nl:]
	for i := range req.Order.Lines {
		ev.lsku[i], ev.lcat[i] = ev.cat.sym(req.Order.Lines[i].SKU), ev.cat.sym(req.Order.Lines[i].Category)
	}
	ev.buf.units = grow(ev.buf.units, nl)[:0]
	ev.units = ev.buf.units
	var sub int64
	for i, l := range req.Order.Lines {
		t, ok := l.Total()
		if !ok || t > MaxOrderTotal {
			return protocol.FieldError("order.lines["+itoa(i)+"]", "line total is too large")
		}
		ev.initial[i], ev.left[i] = t, t
		sub += t
		if sub > MaxOrderTotal {
			return protocol.FieldError("order.lines", "order total is too large")
		}
	}
	if sub+req.Order.Shipping > MaxOrderTotal {
		return protocol.FieldError("order.shipping", "order total is too large")
	}
	ev.d.Subtotal = sub
	ev.d.Shipping = req.Order.Shipping
	ev.shipLeft = req.Order.Shipping
	ev.points = req.Points
	return nil
}

func itoa(i int) string { return strconv.Itoa(i) }

// collect checks each redeemable and automatic campaign on its own and keeps
// the candidates.
func (ev *evaluator) collect() {
	req := ev.req
	ev.cands = ev.buf.cands[:0]
	for i := range req.Redeemables {
		r := &req.Redeemables[i]
		res := &ev.d.Results[i]
		if code, msg := checkRedeemable(r); code != "" {
			res.Reason, res.Message = code, msg
			continue
		}
		cc := ev.cat.lookup(req.Tenant, r.Campaign)
		if code, msg := ev.eligible(cc, r); code != "" {
			res.Reason, res.Message = code, msg
			continue
		}
		ev.cands = append(ev.cands, cand{cc: cc.idx, index: int32(i), key: cc.selKey})
	}
	ev.nred = len(ev.cands)
	// Automatic discounts (points programs earn, see earn), in selection
	// order: selectAndApply merges them with the redeemables.
	ev.set = ev.cat.sel[req.Tenant]
	if ev.set == nil {
		ev.buf.cands = ev.cands
		return
	}
	cur := ev.cat.currency(req.Order.Currency)
	budgets := len(req.Budgets) > 0
	for i := range ev.set.gates {
		g := &ev.set.gates[i]
		if g.cur != cur {
			continue // an automatic campaign that does not apply says nothing
		}
		if (g.more || budgets) && !ev.autoEligible(ev.set.list[i]) {
			continue
		}
		ev.cands = append(ev.cands, cand{cc: g.cc, index: -1, key: g.key, si: int32(i)})
	}
	ev.buf.cands = ev.cands // keep the grown slice for the pool
}

func checkRedeemable(r *Redeemable) (protocol.Code, string) {
	switch r.Kind {
	case RedeemCode, RedeemToken, RedeemGiftCard, RedeemPoints:
	default:
		return protocol.CodeInvalidInput, "unknown redeemable kind " + quote(string(r.Kind))
	}
	switch {
	case r.Campaign == "":
		return protocol.CodeCampaignUnknown, "the redeemable names no campaign"
	case r.Amount < 0 || r.Amount > MaxAmount:
		return protocol.CodeInvalidInput, "amount must be between 0 and " + itoa64(MaxAmount)
	case r.Balance < 0:
		return protocol.CodeInvalidInput, "balance must not be negative"
	case r.Uses < 0 || r.MaxUses < 0:
		return protocol.CodeInvalidInput, "uses must not be negative"
	}
	return "", ""
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return "\"" + s + "\""
}

// eligible checks everything about one campaign (and its redeemable, if
// any) that does not depend on other redeemables. The order of the checks
// is the documented precedence of the reasons.
func (ev *evaluator) eligible(cc *compiled, r *Redeemable) (protocol.Code, string) {
	req := ev.req
	if cc == nil {
		return protocol.CodeCampaignUnknown, msgCampaignUnknown
	}
	c := cc.c
	if c.Status != StatusActive {
		return protocol.CodeCampaignStopped, msgCampaignStopped
	}
	if r != nil {
		switch {
		case r.Kind == RedeemGiftCard && c.Reward.Kind != RewardGiftCard,
			r.Kind == RedeemPoints && c.Reward.Kind != RewardPoints,
			(r.Kind == RedeemCode || r.Kind == RedeemToken) && (c.Reward.Kind == RewardGiftCard || c.Reward.Kind == RewardPoints):
			return protocol.CodeInvalidInput, "a " + string(r.Kind) + " cannot redeem a " + string(c.Reward.Kind) + " campaign"
		}
	}
	if !ev.event && c.Currency != req.Order.Currency {
		return protocol.CodeCurrencyMismatch, "this reward is in " + string(c.Currency) + ", the order in " + string(req.Order.Currency)
	}
	now := req.Now
	if !c.StartsAt.IsZero() && now.Before(c.StartsAt) {
		return protocol.CodeCodeNotYet, "valid from " + c.StartsAt.In(ev.loc).Format("2006-01-02 15:04")
	}
	if !c.EndsAt.IsZero() && !now.Before(c.EndsAt) {
		return protocol.CodeCodeExpired, msgCodeExpired
	}
	if r != nil {
		if !r.NotBefore.IsZero() && now.Before(r.NotBefore) {
			return protocol.CodeCodeNotYet, "valid from " + r.NotBefore.In(ev.loc).Format("2006-01-02 15:04")
		}
		if !r.Expires.IsZero() && !now.Before(r.Expires) {
			return protocol.CodeCodeExpired, msgCodeExpired
		}
	}
	if !cc.stores.empty() && !cc.stores.has(string(req.Store.ID)) {
		return protocol.CodeWrongStore, msgWrongStore
	}
	if !cc.regions.empty() && !cc.regions.has(req.Store.Region) {
		return protocol.CodeWrongStore, msgWrongStore
	}
	if !cc.sched.empty() && !cc.sched.match(ev.weekday, ev.minute) {
		return protocol.CodeOutsideHours, msgOutsideHours
	}
	if code, msg := ev.customerOK(cc, r); code != "" {
		return code, msg
	}
	if code, msg := ev.limitsOK(cc, r); code != "" {
		return code, msg
	}
	if ev.event {
		return "", ""
	}
	if code, msg := ev.orderOK(cc); code != "" {
		return code, msg
	}
	if r == nil {
		return "", ""
	}
	switch c.Reward.Kind {
	case RewardGiftCard:
		if r.Balance <= 0 {
			return protocol.CodeInsufficientFunds, "the gift card is empty"
		}
		if r.Amount > r.Balance {
			return protocol.CodeInsufficientFunds, "the gift card holds " + itoa64(r.Balance) + ", less than the " + itoa64(r.Amount) + " asked"
		}
	case RewardPoints:
		pp := c.Reward.Points
		if req.Customer == nil || req.Customer.ID == "" {
			return protocol.CodeCustomerRequired, "paying with points needs the customer's account"
		}
		if pp.BurnPoints == 0 {
			return protocol.CodeNotEligible, "this program does not take points as payment"
		}
		if r.Amount > req.Points {
			return protocol.CodeInsufficientPts, "the customer has " + itoa64(req.Points) + " points, less than the " + itoa64(r.Amount) + " asked"
		}
		avail := req.Points
		if r.Amount > 0 {
			avail = r.Amount
		}
		if avail < pp.BurnPoints {
			return protocol.CodeInsufficientPts, "at least " + itoa64(pp.BurnPoints) + " points are needed"
		}
	}
	if c.PointsCost > 0 && req.Points < c.PointsCost {
		return protocol.CodeInsufficientPts, "this reward costs " + itoa64(c.PointsCost) + " points; the customer has " + itoa64(req.Points)
	}
	return "", ""
}

// autoEligible is eligible(cc, nil) == "" on an order, without the
// reasons, which an automatic campaign never gives: the same checks in
// the same order, the campaign's own fields read from compiled (one
// cache line) and the rarely set ones skipped by flags.
func (ev *evaluator) autoEligible(cc *compiled) bool {
	req := ev.req
	if !cc.active || cc.currency != req.Order.Currency {
		return false
	}
	c := cc.c
	if cc.dated {
		now := req.Now
		if !c.StartsAt.IsZero() && now.Before(c.StartsAt) {
			return false
		}
		if !c.EndsAt.IsZero() && !now.Before(c.EndsAt) {
			return false
		}
	}
	if cc.where {
		if !cc.stores.empty() && !cc.stores.has(string(req.Store.ID)) {
			return false
		}
		if !cc.regions.empty() && !cc.regions.has(req.Store.Region) {
			return false
		}
		if !cc.sched.empty() && !cc.sched.match(ev.weekday, ev.minute) {
			return false
		}
	}
	if cc.customer {
		if code, _ := ev.customerOK(cc, nil); code != "" {
			return false
		}
	}
	if c.Limits.PerCustomer > 0 && req.CustomerUses[c.ID] >= c.Limits.PerCustomer {
		return false
	}
	if c.Limits.PerCustomerPeriod > 0 && req.CustomerPeriodUses[c.ID] >= c.Limits.PerCustomerPeriod {
		return false
	}
	if len(req.Budgets) > 0 {
		if b, ok := req.Budgets[c.ID]; ok && (b.Count == 0 || b.Amount == 0) {
			return false
		}
	}
	if cc.basket {
		e := &c.Eligibility
		if e.MinSubtotal > 0 && ev.d.Subtotal < e.MinSubtotal {
			return false
		}
		if code, _ := ev.requiresOK(cc); code != "" {
			return false
		}
	}
	return true
}

func itoa64(v int64) string {
	if v < 0 {
		return "-" + itoa64(-v)
	}
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[n:])
}

func (ev *evaluator) customerOK(cc *compiled, r *Redeemable) (protocol.Code, string) {
	cu := ev.req.Customer
	if !cc.customer {
		return "", ""
	}
	known := cu != nil && (cu.ID != "" || cu.Segment != "" || len(cu.Segments) > 0 || cu.Tier != "" || len(cu.Attributes) > 0)
	if !known {
		return protocol.CodeCustomerRequired, msgCustomerRequired
	}
	c := cc.c
	if (c.Limits.PerCustomer > 0 || c.Limits.PerCustomerPeriod > 0 || c.PointsCost > 0) && cu.ID == "" {
		return protocol.CodeCustomerRequired, "this reward needs the customer's account, not only their tier"
	}
	if !cc.segments.empty() && !cc.segments.hasAny(cu.Segment, cu.Segments) {
		return protocol.CodeNotEligible, msgNotEligible
	}
	if !cc.tiers.empty() && !cc.tiers.has(cu.Tier) {
		return protocol.CodeNotEligible, msgNotEligible
	}
	for _, a := range c.Eligibility.Attributes {
		v, ok := cu.Attributes[a.Key]
		if !ok || !slices.Contains(a.Values, v) {
			return protocol.CodeNotEligible, msgNotEligible
		}
	}
	return "", ""
}

func (ev *evaluator) limitsOK(cc *compiled, r *Redeemable) (protocol.Code, string) {
	c := cc.c
	if r != nil {
		max := c.Limits.PerCode
		if r.MaxUses > 0 {
			max = r.MaxUses
		}
		if c.Reward.Kind == RewardGiftCard && !c.Reward.MultiUse {
			max = 1
		}
		if max > 0 && r.Uses >= max {
			return protocol.CodeCodeUsed, msgCodeUsed
		}
	}
	if c.Limits.PerCustomer > 0 {
		if ev.req.CustomerUses[c.ID] >= c.Limits.PerCustomer {
			return protocol.CodeCustomerLimit, msgCustomerLimit
		}
	}
	if c.Limits.PerCustomerPeriod > 0 && ev.req.CustomerPeriodUses[c.ID] >= c.Limits.PerCustomerPeriod {
		return protocol.CodeCustomerLimit, msgCustomerLimit
	}
	if b, ok := ev.req.Budgets[c.ID]; ok {
		if b.Count == 0 || b.Amount == 0 {
			return protocol.CodeBudgetExhausted, msgBudgetExhausted
		}
	}
	return "", ""
}

func (ev *evaluator) orderOK(cc *compiled) (protocol.Code, string) {
	e := &cc.c.Eligibility
	if e.MinSubtotal > 0 && ev.d.Subtotal < e.MinSubtotal {
		return protocol.CodeMinimumNotMet, "the basket needs at least " + itoa64(e.MinSubtotal) + " before discounts"
	}
	return ev.requiresOK(cc)
}

// requiresOK checks the items the campaign requires.
func (ev *evaluator) requiresOK(cc *compiled) (protocol.Code, string) {
	e := &cc.c.Eligibility
	lines := ev.req.Order.Lines
	for i, m := range cc.requires {
		rq := &e.Requires[i]
		var q, amt int64
		for _, j := range ev.lines(m).idx {
			q += lines[j].Quantity
			amt += ev.initial[j]
		}
		if q == 0 {
			return protocol.CodeNoMatchingItems, "the basket lacks an item this reward requires"
		}
		if q < rq.MinQuantity || amt < rq.MinAmount {
			return protocol.CodeMinimumNotMet, "the basket does not hold enough of the items this reward requires"
		}
	}
	return "", ""
}

// selectAndApply runs the stacking selection and then applies the chosen
// candidates in the application order.
func (ev *evaluator) selectAndApply() {
	// Drop candidates that give nothing on their own, so that a useless
	// exclusive coupon cannot push out a useful one. A redeemable is
	// checked here, so that this reason comes before not_combinable; an
	// automatic campaign says nothing when refused, so its check waits
	// until it would be accepted (standalone below): most automatic
	// campaigns of a large catalog are never combinable, and the accepted
	// set is the same either way.
	red, auto := ev.cands[:ev.nred], ev.cands[ev.nred:] // as collect lists them
	kept := red[:0]
	for _, cd := range red {
		if ev.list[cd.cc].phase != phasePayment {
			if code, msg := ev.standalone(cd); code != "" {
				ev.refuse(cd, code, msg)
				continue
			}
		}
		kept = append(kept, cd)
	}
	red = kept

	// Selection: exclusive first, then joint, then normal, then payments;
	// within a class by priority, campaign, code. Greedy and stable, so
	// the request order never matters. The automatic candidates come in
	// this order already (Catalog.sel, after the redeemables): sort the
	// redeemables and merge. The order is total, so this is the one a
	// full sort gives: a redeemable goes before an automatic campaign
	// unless the campaign's selKey (class, then rank) is lower.
	slices.SortFunc(red, func(a, b cand) int {
		if a.key != b.key {
			return cmp.Compare(a.key, b.key)
		}
		return ev.tiebreak(a, b)
	})
	merged := ev.buf.merged[:0]
	for _, rc := range red {
		j := 0
		for j < len(auto) && auto[j].key < rc.key {
			j++
		}
		merged = append(append(merged, auto[:j]...), rc)
		auto = auto[j:]
	}
	merged = append(merged, auto...)
	ev.buf.merged = merged
	ev.cands = merged

	accepted := ev.buf.accepted[:0]
	var ac *autoClash // what the accepted candidates refuse of the automatic ones
	if ev.set != nil && ev.set.clash != nil {
		ac = ev.newAutoClash()
	}
	exclusive := 0
	for _, cd := range ev.cands {
		if cd.index < 0 && ac != nil && (ac.clashes(cd.si) || !ac.combinable(ev, cd.si, exclusive)) {
			continue // automatic: refused silently (the campaign not even read)
		}
		c := ev.list[cd.cc]
		if cd.index < 0 && ac != nil {
			// combinable above
		} else if cd.index >= 0 && ac != nil && ac.clears(ev, cd, c, exclusive) {
			// combinable would accept it
		} else if code, msg := ev.combinable(cd, accepted, exclusive); code != "" {
			ev.refuse(cd, code, msg)
			continue
		}
		if cd.index < 0 && c.phase != phasePayment {
			if code, _ := ev.standalone(cd); code != "" {
				continue // automatic: refused silently, as above
			}
		}
		if c.mode == modeExclusive && c.phase != phasePayment {
			exclusive++
		}
		accepted = append(accepted, cd)
		if ac != nil {
			ac.accept(ev, cd, c)
		}
	}
	ev.buf.accepted = accepted

	// Application: by phase, then priority, campaign, code.
	// The catalog's applyKey orders by the campaigns' part of it.
	if ac != nil {
		accepted = ac.applyOrder(ev, accepted)
	} else {
		for k := range accepted {
			accepted[k].key = ev.list[accepted[k].cc].applyKey
		}
		slices.SortFunc(accepted, func(a, b cand) int {
			if a.key != b.key {
				return cmp.Compare(a.key, b.key)
			}
			return ev.tiebreak(a, b)
		})
	}
	// Room for the automatic results (in the scratch, see run).
	autos := 0
	for _, cd := range accepted {
		if cd.index < 0 {
			autos++
		}
	}
	ev.d.Results = slices.Grow(ev.d.Results, autos)
	ev.due = -1
	step := 0
	ev.buf.lines, ev.buf.lineRefs = ev.buf.lines[:0], ev.buf.lineRefs[:0]
	for _, cd := range accepted {
		c := ev.list[cd.cc]
		if c.phase == phasePayment && ev.due < 0 {
			ev.due = ev.totalNow()
		}
		// The result is written in place: the redeemable's, or a new one
		// at the end for an automatic campaign (within the capacity
		// grown above, so nothing moves).
		ri := int(cd.index)
		if ri < 0 {
			ri = len(ev.d.Results)
			ev.d.Results = ev.d.Results[:ri+1]
			ev.d.Results[ri] = Result{Index: -1, Campaign: c.c.ID}
		}
		if !ev.apply(cd, ri) {
			if cd.index < 0 {
				ev.d.Results = ev.d.Results[:ri]
			}
			continue
		}
		step++
		ev.d.Results[ri].Step = step
	}
	// The results' lines, in one block of the exact size.
	block := ev.outLines(ev.buf.lines)
	for _, lr := range ev.buf.lineRefs {
		ev.d.Results[lr.res].Lines = block[lr.start:lr.end:lr.end]
	}
}

// lineRef locates a result's lines in scratch.lines while applying.
type lineRef struct{ res, start, end int32 }

// red is cd's redeemable, nil for an automatic campaign.
func (ev *evaluator) red(cd cand) *Redeemable {
	if cd.index < 0 {
		return nil
	}
	return &ev.req.Redeemables[cd.index]
}

// standalone is what cd gives on the initial order on its own: a reason
// when nothing.
func (ev *evaluator) standalone(cd cand) (protocol.Code, string) {
	ev.quiet = cd.index < 0
	cc := ev.list[cd.cc]
	if code, msg, ok := ev.verdict(cc); ok {
		return code, msg
	}
	_, _, code, msg := ev.effect(cc, ev.initial, ev.req.Order.Shipping, true)
	return code, msg
}

func (ev *evaluator) refuse(cd cand, code protocol.Code, msg string) {
	if cd.index < 0 {
		return // automatic campaigns report only what they give
	}
	r := &ev.d.Results[cd.index]
	r.Reason, r.Message = code, msg
}

func selClass(cc *compiled) int {
	if cc.phase == phasePayment {
		return 3
	}
	switch cc.mode {
	case modeExclusive:
		return 0
	case modeJoint:
		return 1
	}
	return 2
}

func payOrder(cc *compiled) int {
	if cc.c.Reward.Kind == RewardPoints {
		return 1
	}
	return 0
}

// tiebreak orders candidates of one class or phase: higher priority
// first, then campaign ID, then the redeemable's own fields, so that only
// identical redeemables tie.
func (ev *evaluator) tiebreak(a, b cand) int {
	// rank is the catalog's precomputed (priority, ID) order.
	if c := cmp.Compare(ev.list[a.cc].rank, ev.list[b.cc].rank); c != 0 {
		return c
	}
	if (ev.red(a) == nil) != (ev.red(b) == nil) {
		if ev.red(a) == nil {
			return 1
		}
		return -1
	}
	if ev.red(a) != nil {
		if c := compareRedeemable(ev.red(a), ev.red(b)); c != 0 {
			return c
		}
	}
	return cmp.Compare(a.index, b.index)
}

func compareRedeemable(a, b *Redeemable) int {
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Code, b.Code); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Amount, b.Amount); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Balance, b.Balance); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Uses, b.Uses); c != 0 {
		return c
	}
	if c := cmp.Compare(a.MaxUses, b.MaxUses); c != 0 {
		return c
	}
	if c := a.NotBefore.Compare(b.NotBefore); c != 0 {
		return c
	}
	return a.Expires.Compare(b.Expires)
}

// combinable decides whether cd joins the accepted set.
func (ev *evaluator) combinable(cd cand, accepted []cand, exclusive int) (protocol.Code, string) {
	for _, a := range accepted {
		if ev.red(cd) != nil && ev.red(a) != nil && ev.red(cd).Code != "" && ev.red(a).Kind == ev.red(cd).Kind && ev.red(a).Code == ev.red(cd).Code {
			return protocol.CodeCodeUsed, "this code is already on the basket"
		}
		if ev.list[a.cc] == ev.list[cd.cc] && ev.list[cd.cc].c.Reward.Kind != RewardGiftCard {
			return protocol.CodeNotCombinable, "this promotion is already on the basket"
		}
	}
	if ev.list[cd.cc].phase == phasePayment {
		return "", ""
	}
	if ev.list[cd.cc].mode == modeExclusive && exclusive >= MaxExclusive {
		return protocol.CodeTooManyRedeemable, "at most " + itoa(MaxExclusive) + " exclusive rewards on one basket"
	}
	for _, a := range accepted {
		if ev.list[a.cc].phase == phasePayment {
			continue
		}
		if !compatibleFast(ev.list[a.cc], ev.list[cd.cc]) {
			if cd.index < 0 {
				return protocol.CodeNotCombinable, "" // automatic: nobody reads the message
			}
			return protocol.CodeNotCombinable, "cannot be combined with " + quote(string(ev.list[a.cc].c.ID))
		}
	}
	return "", ""
}

// names reports whether list holds cc's category or ID.
func names(list []string, cc *compiled) bool {
	for _, s := range list {
		if s == string(cc.c.ID) || (cc.c.Stacking.Category != "" && s == cc.c.Stacking.Category) {
			return true
		}
	}
	return false
}

// compatible is the symmetric pairwise stacking rule of docs/rules.md.
func compatible(a, b *compiled) bool {
	if names(a.c.Stacking.Forbid, b) || names(b.c.Stacking.Forbid, a) {
		return false
	}
	if a.mode == modeJoint || b.mode == modeJoint {
		return true
	}
	if a.mode == modeExclusive && b.mode == modeExclusive {
		return true
	}
	// A normal campaign with an allow list combines only with what it names.
	if a.mode == modeNormal && len(a.c.Stacking.Allow) > 0 && !names(a.c.Stacking.Allow, b) {
		return false
	}
	if b.mode == modeNormal && len(b.c.Stacking.Allow) > 0 && !names(b.c.Stacking.Allow, a) {
		return false
	}
	if a.mode == modeExclusive {
		return names(a.c.Stacking.Allow, b)
	}
	if b.mode == modeExclusive {
		return names(b.c.Stacking.Allow, a)
	}
	return true
}

func (ev *evaluator) totalNow() int64 {
	var t int64
	for _, v := range ev.left {
		t += v
	}
	return t + ev.shipLeft
}

// apply computes cd's effect on the current amounts and commits it.
func (ev *evaluator) apply(cd cand, ri int) bool {
	c := ev.list[cd.cc].c
	if ev.list[cd.cc].phase == phasePayment {
		return ev.pay(cd, &ev.d.Results[ri])
	}
	if c.PointsCost > ev.points {
		ev.refuse(cd, protocol.CodeInsufficientPts, "the customer's points are already used by another reward on this basket")
		return false
	}
	ev.quiet = cd.index < 0
	lineTotal, ship, code, msg := ev.effect(ev.list[cd.cc], ev.left, ev.shipLeft, false)
	if code != "" {
		if code != protocol.CodeNoEffect && code != protocol.CodeNoMatchingItems && code != protocol.CodeMinimumNotMet {
			code = protocol.CodeNoEffect
		}
		ev.refuse(cd, code, msg)
		return false
	}
	// Budget left for this caller caps the order's discount.
	if capAmt, ok := ev.budgetLeft(c); ok && lineTotal+ship > capAmt {
		lineTotal, ship = ev.capTo(capAmt, lineTotal, ship)
	}
	if lineTotal+ship <= 0 {
		ev.refuse(cd, protocol.CodeNoEffect, msgNoEffect)
		return false
	}
	b := ev.buf
	start := len(b.lines)
	if ev.touchOK {
		for t := ev.touch; t != 0; t &= t - 1 {
			i := bits.TrailingZeros64(t)
			if v := ev.scratch[i]; v != 0 {
				ev.left[i] -= v
				b.lines = append(b.lines, LineDiscount{Line: i, Quantity: ev.qty[i], Discount: v})
			}
		}
	} else {
		for i, v := range ev.scratch {
			if v != 0 {
				ev.left[i] -= v
				b.lines = append(b.lines, LineDiscount{Line: i, Quantity: ev.qty[i], Discount: v})
			}
		}
	}
	b.lineRefs = append(b.lineRefs, lineRef{int32(ri), int32(start), int32(len(b.lines))})
	res := &ev.d.Results[ri]
	ev.shipLeft -= ship
	res.Discount, res.ShippingDiscount = lineTotal, ship
	res.Applied, res.Reason, res.Message = true, "", ""
	if c.PointsCost > 0 {
		ev.points -= c.PointsCost
		res.PointsBurned = c.PointsCost
	}
	return true
}

// budgetLeft is the most this campaign may still give on one order.
func (ev *evaluator) budgetLeft(c *Campaign) (int64, bool) {
	left, capped := int64(0), false
	if c.Limits.MaxDiscount > 0 {
		left, capped = c.Limits.MaxDiscount, true
	}
	if b, ok := ev.req.Budgets[c.ID]; ok && b.Amount >= 0 && (!capped || b.Amount < left) {
		left, capped = b.Amount, true
	}
	return left, capped
}

// capTo reduces the discount in scratch (lineTotal) and ship so that they
// sum to at most limit, shipping first kept as is only if it fits.
func (ev *evaluator) capTo(limit, lineTotal, ship int64) (int64, int64) {
	if ship > limit {
		ship = limit
	}
	rest := limit - ship
	if lineTotal > rest {
		ev.shrink(lineTotal, rest)
		lineTotal = rest
	}
	return lineTotal, ship
}

// pay applies a gift card or a points burn to what is due.
func (ev *evaluator) pay(cd cand, res *Result) bool {
	r := ev.red(cd)
	c := ev.list[cd.cc].c
	if ev.due <= 0 {
		ev.refuse(cd, protocol.CodeNoEffect, "nothing is left to pay")
		return false
	}
	switch c.Reward.Kind {
	case RewardGiftCard:
		spend := r.Balance
		if r.Amount > 0 {
			spend = r.Amount
		}
		spend = min(spend, ev.payLimit(c, ev.due)) // giftcards.go
		if spend <= 0 {
			ev.refuse(cd, protocol.CodeGiftCardRestricted, "this gift card cannot pay for what is left on this basket")
			return false
		}
		ev.due -= spend
		res.Spend = spend
	case RewardPoints:
		pp := c.Reward.Points
		want := ev.points
		if r.Amount > 0 {
			want = min(r.Amount, ev.points)
		}
		steps := min(want/pp.BurnPoints, ev.due/pp.BurnValue)
		if steps <= 0 {
			if want < pp.BurnPoints {
				ev.refuse(cd, protocol.CodeInsufficientPts, "the customer's points are already used by another reward on this basket")
			} else {
				ev.refuse(cd, protocol.CodeNoEffect, "what is left to pay is less than one points step")
			}
			return false
		}
		spend := steps * pp.BurnValue
		ev.due -= spend
		ev.points -= steps * pp.BurnPoints
		res.Spend = spend
		res.PointsBurned = steps * pp.BurnPoints
	}
	res.Applied, res.Reason, res.Message = true, "", ""
	return true
}

func (ev *evaluator) finish() {
	d := &ev.d
	for i := range d.Results {
		r := &d.Results[i]
		if !r.Applied {
			if r.Reason == "" {
				r.Reason, r.Message = protocol.CodeInternal, "not decided"
			}
			continue
		}
		d.Discount += r.Discount
		d.ShippingDiscount += r.ShippingDiscount
		d.Paid += r.Spend
		d.PointsBurned += r.PointsBurned
	}
	d.Total = d.Subtotal + d.Shipping - d.Discount - d.ShippingDiscount
	d.Due = d.Total - d.Paid
	d.LineTotals = ev.outTotals(ev.left)
	ev.earn()
}
