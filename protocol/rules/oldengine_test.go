package rules_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/rules/internal/oldrules"
)

// convert copies src into dst, two values of structurally identical types
// (package rules and its frozen copy oldrules): field by field, element
// by element, converting named basic types.
func convert(dst, src reflect.Value) {
	if dst.Type() == src.Type() {
		dst.Set(src)
		return
	}
	switch src.Kind() {
	case reflect.Struct:
		for i := range src.NumField() {
			// By name: a field added after the freeze (Limits.MaxOrderValue,
			// which the engine does not read) has no old counterpart.
			f := dst.FieldByName(src.Type().Field(i).Name)
			if !f.IsValid() {
				continue
			}
			convert(f, src.Field(i))
		}
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.New(dst.Type().Elem()))
		convert(dst.Elem(), src.Elem())
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeSlice(dst.Type(), src.Len(), src.Len()))
		for i := range src.Len() {
			convert(dst.Index(i), src.Index(i))
		}
	case reflect.Array:
		for i := range src.Len() {
			convert(dst.Index(i), src.Index(i))
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeMapWithSize(dst.Type(), src.Len()))
		it := src.MapRange()
		for it.Next() {
			k, v := reflect.New(dst.Type().Key()).Elem(), reflect.New(dst.Type().Elem()).Elem()
			convert(k, it.Key())
			convert(v, it.Value())
			dst.SetMapIndex(k, v)
		}
	default:
		dst.Set(src.Convert(dst.Type()))
	}
}

func conv[T any](src any) T {
	var out T
	convert(reflect.ValueOf(&out).Elem(), reflect.ValueOf(src))
	return out
}

// oldPair is one catalog compiled by both engines.
type oldPair struct {
	cat *rules.Catalog
	old *oldrules.Catalog
	buf *rules.Buffer // reused across the pair's decisions
}

func newOldPair(tb testing.TB, cs []rules.Campaign) oldPair {
	tb.Helper()
	cat, err := rules.NewCatalog(cs)
	if err != nil {
		tb.Fatal(err)
	}
	old, err := oldrules.NewCatalog(conv[[]oldrules.Campaign](cs))
	if err != nil {
		tb.Fatal(err)
	}
	return oldPair{cat, old, new(rules.Buffer)}
}

// sameDecision evaluates req with both engines, and with this one into the
// pair's reused Buffer, and fails unless the decisions are deeply equal and
// encode to the same JSON bytes.
func (p oldPair) sameDecision(tb testing.TB, what string, req rules.Request) rules.Decision {
	tb.Helper()
	d := rules.Evaluate(p.cat, req)
	od := conv[rules.Decision](oldrules.Evaluate(p.old, conv[oldrules.Request](req)))
	a, err := json.Marshal(d)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(od)
	if err != nil {
		tb.Fatal(err)
	}
	if !bytes.Equal(a, b) || !reflect.DeepEqual(d, od) {
		tb.Fatalf("%s: the engines differ\nnew: %s\nold: %s", what, a, b)
	}
	bd := p.buf.Evaluate(p.cat, req)
	c, err := json.Marshal(bd)
	if err != nil {
		tb.Fatal(err)
	}
	if !bytes.Equal(a, c) || !reflect.DeepEqual(d, bd) {
		tb.Fatalf("%s: Buffer.Evaluate differs from Evaluate\nEvaluate:        %s\nBuffer.Evaluate: %s", what, a, c)
	}
	return d
}

// enrich adds to a generated campaign what gen leaves out (dates, stores,
// regions, segments, attributes, required items, exclusions, per-customer
// limits, points costs), so that every eligibility check is exercised.
func (g *gen) enrich(c rules.Campaign, autoShare int) rules.Campaign {
	r := g.r
	if c.Reward.Kind != rules.RewardGiftCard && c.Reward.Kind != rules.RewardPoints && r.IntN(100) < autoShare {
		c.Trigger = rules.TriggerAuto
	}
	base := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	if r.IntN(10) == 0 {
		c.StartsAt = base.Add(time.Duration(r.IntN(7*24)) * time.Hour)
	}
	if r.IntN(10) == 0 {
		c.EndsAt = base.Add(time.Duration(24+r.IntN(7*24)) * time.Hour)
	}
	if r.IntN(12) == 0 {
		c.Eligibility.Stores = []protocol.StoreID{[]protocol.StoreID{"s-1", "s-2"}[r.IntN(2)]}
	}
	if r.IntN(12) == 0 {
		c.Eligibility.Regions = []string{[]string{"north", "south"}[r.IntN(2)]}
	}
	if r.IntN(15) == 0 {
		c.Eligibility.Segments = []string{"vip"}
	}
	if r.IntN(15) == 0 {
		c.Eligibility.Attributes = []rules.AttributeMatch{{Key: "club", Values: []string{"yes"}}}
	}
	if r.IntN(20) == 0 {
		c.Eligibility.CustomerRequired = true
	}
	if r.IntN(8) == 0 {
		c.Eligibility.Requires = []rules.Requirement{{Target: *g.target(false), MinQuantity: r.Int64N(4), MinAmount: r.Int64N(2) * r.Int64N(5000)}}
	}
	if r.IntN(10) == 0 {
		c.Limits.PerCustomer = 1 + r.Int64N(3)
	}
	if r.IntN(15) == 0 && c.Reward.Kind != rules.RewardGiftCard && c.Reward.Kind != rules.RewardPoints {
		c.PointsCost = 1 + r.Int64N(2000)
	}
	if t := c.Reward.Target; t != nil && len(t.SKUs)+len(t.Categories) > 0 && r.IntN(6) == 0 {
		t2 := *t
		t2.ExcludeSKUs = []string{g.pick(genSKUs)}
		c.Reward.Target = &t2
	}
	return c
}

// oldCatalog is a random catalog of about n campaigns of which about
// autoShare percent are automatic.
func (g *gen) oldCatalog(n, autoShare int) []rules.Campaign {
	var out []rules.Campaign
	for i := 0; len(out) < n; i++ {
		c := g.enrich(g.campaign("acme", i), autoShare)
		if c.Validate() == nil {
			out = append(out, c)
		}
	}
	if g.r.IntN(4) != 0 {
		out = append(out, g.program("acme"))
	}
	return out
}

// oldRequest is a random request with what gen leaves out.
func (g *gen) oldRequest(cs []rules.Campaign, lines, redeemables int) rules.Request {
	r := g.r
	req := g.request(cs, lines, redeemables, rules.Store{})
	req.Store = rules.Store{ID: []protocol.StoreID{"s-1", "s-2", "s-3"}[r.IntN(3)], Region: []string{"", "north", "south"}[r.IntN(3)],
		TimeZone: []string{"Europe/Berlin", "America/New_York", "UTC"}[r.IntN(3)]}
	if r.IntN(50) == 0 {
		req.Store.TimeZone = "Mars/Olympus" // refused as a whole
	}
	if req.Customer != nil && r.IntN(2) == 0 {
		cu := *req.Customer
		cu.Segment = []string{"", "vip"}[r.IntN(2)]
		if r.IntN(2) == 0 {
			cu.Attributes = map[string]string{"club": []string{"yes", "no"}[r.IntN(2)]}
		}
		req.Customer = &cu
	}
	if r.IntN(3) == 0 && len(cs) > 0 {
		req.CustomerUses = map[protocol.CampaignID]int64{}
		for range 1 + r.IntN(20) {
			req.CustomerUses[cs[r.IntN(len(cs))].ID] = r.Int64N(4)
		}
	}
	if r.IntN(3) == 0 && len(cs) > 0 {
		req.Budgets = map[protocol.CampaignID]rules.Budget{}
		for range 1 + r.IntN(20) {
			req.Budgets[cs[r.IntN(len(cs))].ID] = rules.Budget{Count: r.Int64N(3) - 1, Amount: r.Int64N(3000) - 1}
		}
	}
	if r.IntN(4) == 0 {
		req.Earned = map[rules.EarnKey]int64{{Campaign: "loyalty", Rule: "item"}: r.Int64N(60)}
	}
	req.NoEarn = r.IntN(10) == 0
	for i := range req.Redeemables {
		rd := &req.Redeemables[i]
		if r.IntN(8) == 0 {
			rd.Uses = r.Int64N(3)
		}
		if r.IntN(10) == 0 {
			rd.MaxUses = r.Int64N(3)
		}
		if r.IntN(12) == 0 {
			rd.Expires = req.Now.Add(time.Duration(r.IntN(5)-2) * time.Hour)
		}
		if r.IntN(12) == 0 {
			rd.NotBefore = req.Now.Add(time.Duration(r.IntN(5)-2) * time.Hour)
		}
		if r.IntN(40) == 0 {
			rd.Campaign = "nope"
		}
	}
	if r.IntN(10) == 0 && len(req.Redeemables) > 1 {
		req.Redeemables[1] = req.Redeemables[0] // a twin
	}
	return req
}

// TestSameAsOldEngine compares the engine with its frozen copy from before
// the precompiled evaluator, decision for decision: random catalogs of 20
// to 400 campaigns with 0 to 100% automatic ones, every eligibility
// condition, and random baskets of 0 to 30 lines (sometimes 60 to 90) and
// 0 to 12 redeemables; plus the benchmark's own catalogs and the golden
// cases.
func TestSameAsOldEngine(t *testing.T) {
	catalogs, perCatalog := 300, 20
	if testing.Short() {
		catalogs = 60
	}
	n := 0
	for seed := range uint64(catalogs) {
		g := newGen(1000 + seed)
		size := []int{20, 60, 150, 400}[seed%4]
		autoShare := []int{0, 10, 30, 60, 100}[g.r.IntN(5)]
		cs := g.oldCatalog(size, autoShare)
		p := newOldPair(t, cs)
		for i := range perCatalog {
			nl := g.r.IntN(31)
			if g.r.IntN(20) == 0 {
				nl = 60 + g.r.IntN(30) // past 64 lines, the engine's bitmaps give way
			}
			req := g.oldRequest(cs, nl, g.r.IntN(13))
			p.sameDecision(t, fmt.Sprintf("catalog %d request %d", seed, i), req)
			n++
		}
	}
	for _, auto := range []int{0, 50, 200} {
		cs, _, req := benchInput(t, auto, true)
		p := newOldPair(t, cs)
		p.sameDecision(t, fmt.Sprintf("bench auto=%d", auto), req)
		g := newGen(uint64(auto))
		for i := range 100 {
			r := req
			r.Order = g.order(1 + g.r.IntN(30))
			r.Now = r.Now.Add(time.Duration(g.r.IntN(7*24*60)) * time.Minute)
			p.sameDecision(t, fmt.Sprintf("bench auto=%d basket %d", auto, i), r)
			n++
		}
	}
	for _, file := range caseFiles(t) {
		_, cs, cases := loadCaseFile(t, file)
		if slices.ContainsFunc(cs, func(c rules.Campaign) bool { return c.Limits.PerCustomerPeriod > 0 }) {
			continue // a limit the frozen engine predates
		}
		p := newOldPair(t, cs)
		for _, c := range cases {
			p.sameDecision(t, file+": "+c.Name, c.Request)
			n++
		}
	}
	t.Logf("%d decisions identical", n)
}
