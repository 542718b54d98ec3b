package oldrules

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
	sel  map[protocol.TenantID][]*compiled
	list []*compiled // in campaign order, for Campaigns
	syms symbols     // interned SKUs and categories
	locs sync.Map    // time zone name → *time.Location
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
		byID: make(map[campaignKey]*compiled, len(campaigns)),
		auto: make(map[protocol.TenantID][]*compiled),
		sel:  make(map[protocol.TenantID][]*compiled),
		list: make([]*compiled, 0, len(campaigns)),
		syms: make(symbols),
	}
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
		cc := compile(&c, cat.syms)
		cat.byID[k] = cc
		cat.list = append(cat.list, cc)
		if cc.auto {
			cat.auto[c.Tenant] = append(cat.auto[c.Tenant], cc)
		}
	}
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
	}
	for t, l := range cat.auto {
		var sel []*compiled
		for _, cc := range l {
			if cc.c.Reward.Kind != RewardPoints {
				sel = append(sel, cc)
			}
		}
		slices.SortStableFunc(sel, selOrder)
		cat.sel[t] = sel
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
	loc, err := time.LoadLocation(name)
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
	all  bool // no skus and no categories
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

func compileTarget(t *Target, sy symbols) *matcher {
	if t == nil {
		return &matcher{all: true}
	}
	return &matcher{all: t.empty(), skus: sy.intern(t.SKUs), cats: sy.intern(t.Categories), excl: sy.intern(t.ExcludeSKUs)}
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
	c        *Campaign
	auto     bool
	phase    phase
	target   *matcher
	get      *matcher // buy_x_get_y rewarded items
	bundle   []*matcher
	requires []*matcher
	sched    schedule
	stores   strSet
	regions  strSet
	segments strSet
	tiers    strSet
	customer bool // needs a known customer
	mode     StackMode
	initial  bool
	points   *compiledPoints
	rank     int32 // position in rankOrder across the catalog
}

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

func compile(c *Campaign, sy symbols) *compiled {
	cc := &compiled{
		c:      c,
		auto:   c.Trigger == TriggerAuto || c.Reward.Kind == RewardPoints,
		target: compileTarget(c.Reward.Target, sy),
		mode:   c.Stacking.Mode,
	}
	if cc.mode == "" {
		cc.mode = StackNormal
	}
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
		cc.get = compileTarget(r.GetTarget, sy)
	} else {
		cc.get = cc.target
	}
	for i := range r.Bundle {
		cc.bundle = append(cc.bundle, compileTarget(&r.Bundle[i].Target, sy))
	}
	e := &c.Eligibility
	for i := range e.Requires {
		cc.requires = append(cc.requires, compileTarget(&e.Requires[i].Target, sy))
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
		c.Limits.PerCustomer > 0 || c.PointsCost > 0
	if r.Points != nil {
		cp := &compiledPoints{}
		for i := range r.Points.Earn {
			er := &r.Points.Earn[i]
			if er.On == EarnSpend || er.On == EarnItem {
				cp.earn = append(cp.earn, compileTarget(er.Target, sy))
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
