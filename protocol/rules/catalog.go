package rules

import (
	"cmp"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// MaxCatalogCampaigns bounds one catalog.
const MaxCatalogCampaigns = 100_000

// Catalog is a compiled, read-only set of campaigns: built once when a
// snapshot arrives or a campaign changes, then evaluated many times, from
// many goroutines at once.
type Catalog struct {
	byID map[campaignKey]*compiled
	auto map[protocol.TenantID][]*compiled // automatic campaigns, sorted by ID
	// sel is each tenant's automatic discounts (auto without the points
	// programs) in the evaluator's selection order (selOrder), so that an
	// evaluation merges them with its few redeemables instead of sorting
	// hundreds of candidates.
	sel map[protocol.TenantID]*autoSet
	// programs is each tenant's points programs, in auto's order.
	programs map[protocol.TenantID][]*compiled
	list     []*compiled // in campaign order, for Campaigns
	syms     symbols     // interned SKUs and categories
	// currencies numbers the currencies campaigns use (compiled.cur).
	currencies map[protocol.Currency]int32
	// nMatchers is the number of distinct compiled targets (matcher.id is
	// below it): an evaluation matches each against the order's lines at
	// most once (evaluator.lines).
	nMatchers int32
	locs      sync.Map // time zone name → *time.Location
}

type campaignKey struct {
	tenant protocol.TenantID
	id     protocol.CampaignID
}

// NewCatalog validates and compiles campaigns. It returns a
// CodeInvalidInput error whose Field is prefixed with "campaigns[i]." for
// the first invalid one, or for an ID used twice within a tenant.
// The catalog keeps the campaigns' lists and targets: do not modify them
// afterwards (build a new catalog instead).
func NewCatalog(campaigns []Campaign) (*Catalog, error) {
	if len(campaigns) > MaxCatalogCampaigns {
		return nil, protocol.FieldError("campaigns", "at most %d campaigns", MaxCatalogCampaigns)
	}
	cat := &Catalog{
		byID:       make(map[campaignKey]*compiled, len(campaigns)),
		auto:       make(map[protocol.TenantID][]*compiled),
		sel:        make(map[protocol.TenantID]*autoSet),
		programs:   make(map[protocol.TenantID][]*compiled),
		list:       make([]*compiled, 0, len(campaigns)),
		syms:       make(symbols),
		currencies: make(map[protocol.Currency]int32),
	}
	cx := &compiler{syms: cat.syms, byKey: make(map[string]*matcher)}
	for i := range campaigns {
		c := campaigns[i] // a copy: the catalog never sees the caller's later edits
		p := idx("campaigns", i)
		if err := c.Validate(); err != nil {
			e := *protocol.PublicError(err)
			if e.Field != "" {
				e.Field = p + "." + e.Field
			} else {
				e.Field = p
			}
			return nil, &e
		}
		k := campaignKey{c.Tenant, c.ID}
		if _, dup := cat.byID[k]; dup {
			return nil, protocol.FieldError(p+".id", "campaign %q is listed twice", c.ID)
		}
		cc := compile(&c, cx)
		cur, ok := cat.currencies[c.Currency]
		if !ok {
			cur = int32(len(cat.currencies))
			cat.currencies[c.Currency] = cur
		}
		cc.cur = cur
		cat.byID[k] = cc
		cc.idx = int32(len(cat.list))
		cat.list = append(cat.list, cc)
		if cc.auto {
			cat.auto[c.Tenant] = append(cat.auto[c.Tenant], cc)
		}
	}
	cat.nMatchers = cx.n
	for _, l := range cat.auto {
		sort.Slice(l, func(i, j int) bool { return l[i].c.ID < l[j].c.ID })
	}
	// Rank every campaign in the evaluator's tie-break order (higher
	// priority first, then ID), so that sorting hundreds of candidates
	// compares integers, not strings. Equal keys get equal ranks.
	byRank := slices.Clone(cat.list)
	slices.SortFunc(byRank, rankOrder)
	for i, cc := range byRank {
		cc.rank = int32(i)
		if i > 0 && rankOrder(byRank[i-1], cc) == 0 {
			cc.rank = byRank[i-1].rank
		}
		cc.applyKey = int64(cc.phase)<<40 | int64(payOrder(cc))<<32 | int64(cc.rank)
		cc.selKey = int64(selClass(cc))<<32 | int64(cc.rank)
	}
	for t, l := range cat.auto {
		var sel []*compiled
		for _, cc := range l {
			if cc.c.Reward.Kind != RewardPoints {
				sel = append(sel, cc)
			}
			if cc.points != nil {
				cat.programs[t] = append(cat.programs[t], cc)
			}
		}
		slices.SortStableFunc(sel, selOrder)
		cat.sel[t] = newAutoSet(sel)
	}
	return cat, nil
}

// selOrder is the evaluator's selection order of automatic candidates:
// by selection class, then rank (cand's comparator without the
// redeemable's fields).
func selOrder(a, b *compiled) int {
	if c := cmp.Compare(selClass(a), selClass(b)); c != 0 {
		return c
	}
	return cmp.Compare(a.rank, b.rank)
}

// currency is c's number in currencies, -1 when no campaign uses it.
func (cat *Catalog) currency(c protocol.Currency) int32 {
	if i, ok := cat.currencies[c]; ok {
		return i
	}
	return -1
}

// Len is the number of campaigns.
func (cat *Catalog) Len() int { return len(cat.list) }

// Campaign returns a copy of a tenant's campaign.
func (cat *Catalog) Campaign(tenant protocol.TenantID, id protocol.CampaignID) (Campaign, bool) {
	cc, ok := cat.byID[campaignKey{tenant, id}]
	if !ok {
		return Campaign{}, false
	}
	return *cc.c, true
}

// sym is the interned symbol of a SKU or category, -1 when no campaign
// names it (it then matches only "all" targets).
func (cat *Catalog) sym(s string) int32 {
	if s == "" {
		return -1
	}
	if id, ok := cat.syms[s]; ok {
		return id
	}
	return -1
}

func (cat *Catalog) lookup(tenant protocol.TenantID, id protocol.CampaignID) *compiled {
	return cat.byID[campaignKey{tenant, id}]
}

// location resolves a time zone name, caching the result: loading a zone
// parses tzdata, far too slow for every evaluation.
func (cat *Catalog) location(s Store) (*time.Location, error) {
	if s.Location != nil {
		return s.Location, nil
	}
	if v, ok := cat.locs.Load(s.TimeZone); ok {
		return v.(*time.Location), nil
	}
	loc, err := loadLocation(s.TimeZone)
	if err != nil {
		return nil, err
	}
	cat.locs.Store(s.TimeZone, loc)
	return loc, nil
}

func loadLocation(name string) (*time.Location, error) {
	if name == "" {
		return nil, protocol.FieldError("store.time_zone", "the store's time zone is required (an IANA name like Europe/Berlin)")
	}
	if len(name) > 64 || name == "Local" {
		return nil, protocol.FieldError("store.time_zone", "%q is not an IANA time zone name", name)
	}
	loc, err := sharedLocation(name)
	if err != nil {
		return nil, protocol.FieldError("store.time_zone", "unknown time zone %q", name)
	}
	return loc, nil
}

// matcher is a compiled Target. SKUs and categories are interned to
// small integers when the catalog is built, and each order line's SKU and
// category once per request, so that matching a line against hundreds of
// campaigns compares integers, not strings.
type matcher struct {
	id   int32 // distinct per catalog (Catalog.nMatchers)
	all  bool  // no skus and no categories
	skus symSet
	cats symSet
	excl symSet
}

// symbols interns the SKUs and categories the catalog's targets name.
type symbols map[string]int32

func (sy symbols) intern(l []string) symSet {
	out := make(symSet, 0, len(l))
	for _, s := range l {
		id, ok := sy[s]
		if !ok {
			id = int32(len(sy))
			sy[s] = id
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// compiler holds what compiling a catalog's campaigns shares: the
// interned symbols and the distinct targets.
type compiler struct {
	syms  symbols
	byKey map[string]*matcher
	n     int32
}

// target compiles t; equal targets (the same sets of SKUs, categories and
// exclusions) share one matcher.
func (cx *compiler) target(t *Target) *matcher {
	m := &matcher{all: true}
	if t != nil {
		m = &matcher{all: t.empty(), skus: cx.syms.intern(t.SKUs), cats: cx.syms.intern(t.Categories), excl: cx.syms.intern(t.ExcludeSKUs)}
	}
	key := m.key()
	if old, ok := cx.byKey[key]; ok {
		return old
	}
	m.id = cx.n
	cx.n++
	cx.byKey[key] = m
	return m
}

// key identifies what m selects.
func (m *matcher) key() string {
	b := make([]byte, 0, 4*(len(m.skus)+len(m.cats)+len(m.excl))+4)
	if m.all {
		b = append(b, 'A')
	}
	for _, set := range []symSet{m.skus, m.cats, m.excl} {
		b = append(b, '|')
		for _, id := range set {
			b = append(b, byte(id), byte(id>>8), byte(id>>16), byte(id>>24))
		}
	}
	return string(b)
}

// symSet is a sorted set of symbols.
type symSet []int32

func (s symSet) has(id int32) bool {
	if id < 0 {
		return false
	}
	if len(s) <= smallSet {
		for _, x := range s {
			if x == id {
				return true
			}
		}
		return false
	}
	_, ok := slices.BinarySearch(s, id)
	return ok
}

// match reports whether a line (its interned SKU and category, -1 when the
// catalog never names them) is selected.
func (m *matcher) match(sku, cat int32) bool {
	if len(m.excl) > 0 && m.excl.has(sku) {
		return false
	}
	return m.all || m.skus.has(sku) || m.cats.has(cat)
}

// strSet is a set of strings: a slice scan for a few (faster than hashing
// for the usual one to eight SKUs or categories), a map beyond.
type strSet struct {
	small []string
	big   map[string]struct{}
}

const smallSet = 8

func newStrSet(l []string) strSet {
	if len(l) <= smallSet {
		return strSet{small: l}
	}
	m := make(map[string]struct{}, len(l))
	for _, s := range l {
		m[s] = struct{}{}
	}
	return strSet{big: m}
}

func (s *strSet) empty() bool { return len(s.small) == 0 && s.big == nil }

func (s *strSet) has(v string) bool {
	if s.big != nil {
		_, ok := s.big[v]
		return ok
	}
	for _, x := range s.small {
		if x == v {
			return true
		}
	}
	return false
}

// window is a compiled HourWindow in minutes after local midnight.
type window struct{ from, to int }

// schedule is compiled days and hours.
type schedule struct {
	days  uint8 // bit per time.Weekday; 0 = every day
	hours []window
}

func compileSchedule(days []string, hours []HourWindow) schedule {
	var s schedule
	for _, d := range days {
		w, _ := dayIndex(d)
		s.days |= 1 << w
	}
	for _, h := range hours {
		f, _ := parseClock(h.From, false)
		t, _ := parseClock(h.To, true)
		s.hours = append(s.hours, window{f, t})
	}
	return s
}

// match reports whether the local wall-clock moment (weekday, minute of the
// day) is inside the schedule. A window past midnight belongs to the day it
// starts, so its early hours check the previous day.
func (s *schedule) match(wd time.Weekday, minute int) bool {
	dayOK := func(d time.Weekday) bool { return s.days == 0 || s.days&(1<<d) != 0 }
	if len(s.hours) == 0 {
		return dayOK(wd)
	}
	for _, w := range s.hours {
		if w.from < w.to {
			if minute >= w.from && minute < w.to && dayOK(wd) {
				return true
			}
			continue
		}
		// wraps past midnight
		if minute >= w.from && dayOK(wd) {
			return true
		}
		if minute < w.to && dayOK((wd+6)%7) {
			return true
		}
	}
	return false
}

func (s *schedule) empty() bool { return s.days == 0 && len(s.hours) == 0 }

// phase is a reward's place in the application order.
type phase uint8

// Phases, applied in this order (see docs/rules.md).
const (
	phaseItems    phase = 1 // unit and item rewards: fixed price, free item, buy X get Y, bundles, quantity tiers, targeted percent/amount
	phaseOrder    phase = 2 // order-wide percent, amount and spend tiers
	phaseShipping phase = 3 // free shipping
	phasePayment  phase = 4 // gift cards, then points
)

// compiled is a campaign with its matchers and schedule prepared.
type compiled struct {
	// The fields an evaluation reads for every candidate come first (one
	// cache line).
	c        *Campaign
	phase    phase
	mode     stackMode
	plain    bool  // no stacking allow or forbid list
	inSel    bool  // in its tenant's autoSet
	active   bool  // Status is active
	dated    bool  // StartsAt or EndsAt
	where    bool  // stores, regions, days or hours
	basket   bool  // a minimum subtotal or required items
	customer bool  // needs a known customer
	initial  bool  // Stacking.Base is initial
	auto     bool  // automatic (or a points program)
	idx      int32 // position in Catalog.list
	selIdx   int32 // position in its tenant's autoSet (automatic discounts)
	cur      int32 // Catalog.currencies index
	rank     int32 // position in rankOrder across the catalog
	// applyKey is the application order's campaign part: phase, then
	// gift cards before points, then rank.
	applyKey int64
	// selKey is the selection order's campaign part: class, then rank.
	selKey int64

	currency protocol.Currency
	target   *matcher
	get      *matcher // buy_x_get_y rewarded items
	bundle   []*matcher
	requires []*matcher
	sched    schedule
	stores   strSet
	regions  strSet
	segments strSet
	tiers    strSet
	points   *compiledPoints
}

// stackMode is StackMode as a number.
type stackMode uint8

const (
	modeNormal stackMode = iota
	modeExclusive
	modeJoint
)

// rankOrder is the campaign part of the evaluator's tie-break: higher
// priority first, then campaign ID.
func rankOrder(a, b *compiled) int {
	if c := cmp.Compare(b.c.Stacking.Priority, a.c.Stacking.Priority); c != 0 {
		return c
	}
	return cmp.Compare(a.c.ID, b.c.ID)
}

type compiledPoints struct {
	earn  []*matcher // per earning rule (nil entries for order/event rules)
	mults []schedule
}

func compile(c *Campaign, cx *compiler) *compiled {
	cc := &compiled{
		c:      c,
		auto:   c.Trigger == TriggerAuto || c.Reward.Kind == RewardPoints,
		target: cx.target(c.Reward.Target),
	}
	switch c.Stacking.Mode {
	case StackExclusive:
		cc.mode = modeExclusive
	case StackJoint:
		cc.mode = modeJoint
	}
	cc.plain = len(c.Stacking.Allow) == 0 && len(c.Stacking.Forbid) == 0
	cc.active = c.Status == StatusActive
	cc.currency = c.Currency
	cc.dated = !c.StartsAt.IsZero() || !c.EndsAt.IsZero()
	cc.where = len(c.Eligibility.Stores) > 0 || len(c.Eligibility.Regions) > 0 || len(c.Eligibility.Days) > 0 || len(c.Eligibility.Hours) > 0
	cc.basket = c.Eligibility.MinSubtotal > 0 || len(c.Eligibility.Requires) > 0
	cc.initial = c.Stacking.Base == BaseInitial
	r := &c.Reward
	switch r.Kind {
	case RewardPercentOff, RewardAmountOff, RewardSpendTiers:
		if r.Target == nil {
			cc.phase = phaseOrder
		} else {
			cc.phase = phaseItems
		}
	case RewardFreeShipping:
		cc.phase = phaseShipping
	case RewardGiftCard, RewardPoints:
		cc.phase = phasePayment
	default:
		cc.phase = phaseItems
	}
	if r.GetTarget != nil {
		cc.get = cx.target(r.GetTarget)
	} else {
		cc.get = cc.target
	}
	for i := range r.Bundle {
		cc.bundle = append(cc.bundle, cx.target(&r.Bundle[i].Target))
	}
	e := &c.Eligibility
	for i := range e.Requires {
		cc.requires = append(cc.requires, cx.target(&e.Requires[i].Target))
	}
	cc.sched = compileSchedule(e.Days, e.Hours)
	stores := make([]string, len(e.Stores))
	for i, s := range e.Stores {
		stores[i] = string(s)
	}
	cc.stores = newStrSet(stores)
	cc.regions = newStrSet(e.Regions)
	cc.segments = newStrSet(e.Segments)
	cc.tiers = newStrSet(e.Tiers)
	cc.customer = e.CustomerRequired || len(e.Segments) > 0 || len(e.Tiers) > 0 || len(e.Attributes) > 0 ||
		c.Limits.PerCustomer > 0 || c.Limits.PerCustomerPeriod > 0 || c.PointsCost > 0
	if r.Points != nil {
		cp := &compiledPoints{}
		for i := range r.Points.Earn {
			er := &r.Points.Earn[i]
			if er.On == EarnSpend || er.On == EarnItem {
				cp.earn = append(cp.earn, cx.target(er.Target))
			} else {
				cp.earn = append(cp.earn, nil)
			}
		}
		for _, m := range r.Points.Multipliers {
			cp.mults = append(cp.mults, compileSchedule(m.Days, m.Hours))
		}
		cc.points = cp
	}
	return cc
}

// CompactPlaceholder replaces, in CompactOrder, a SKU or category that no
// campaign names.
const CompactPlaceholder = "~"

// CompactOrder returns o with every SKU and category that no campaign of
// the catalog names replaced by CompactPlaceholder (a category by ""): the
// engine matches lines only through the names campaigns use, so the
// compacted order gets the same decision from this catalog, and a till's
// fact carries it in fewer bytes. Should a campaign name the placeholder
// itself, o is returned unchanged.
func (cat *Catalog) CompactOrder(o protocol.Order) protocol.Order {
	if cat.sym(CompactPlaceholder) >= 0 {
		return o
	}
	lines := make([]protocol.Line, len(o.Lines))
	for i, l := range o.Lines {
		if cat.sym(l.SKU) < 0 {
			l.SKU = CompactPlaceholder
		}
		if cat.sym(l.Category) < 0 {
			l.Category = ""
		}
		lines[i] = l
	}
	o.Lines = lines
	return o
}

// hasAny says whether v or any of vs is in the set (a customer's static
// segment and its computed ones).
func (s *strSet) hasAny(v string, vs []string) bool {
	if v != "" && s.has(v) {
		return true
	}
	for _, x := range vs {
		if s.has(x) {
			return true
		}
	}
	return false
}
