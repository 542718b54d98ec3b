package decide_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/rules"
)

// hubMem is a Mem that knows the referral facts, as the hub's Source does.
type hubMem struct {
	*decide.Mem
	facts protocol.ReferralFacts
}

func (h hubMem) Referral(context.Context, protocol.CodeID, protocol.CustomerID, protocol.Referral, int64) (protocol.ReferralFacts, error) {
	return h.facts, nil
}

var _ decide.ReferralSource = hubMem{}

func referralRules(t testing.TB) *decide.Rules {
	t.Helper()
	c, err := rules.ParseCampaignJSON([]byte(`{"schema":1,"id":"refer","tenant":"acme","status":"active","trigger":"code","currency":"EUR",
		"reward":{"kind":"amount_off","amount":1000},"eligibility":{"min_subtotal":5000},"referral":{"referrer_points":500,"max_referees":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := decide.Compile([]rules.Campaign{c})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestDecideReferral: the referral step of the one decision path. A till
// (no referral facts) applies a referral code and says it needs the hub;
// every side refuses it without a customer; the hub applies the guard.
func TestDecideReferral(t *testing.T) {
	ctx := context.Background()
	rs := referralRules(t)
	mem := &decide.Mem{Codes: map[protocol.CodeID]decide.Code{"REFABC": {Key: "REFABC", Campaign: "refer", MaxUses: -1}}}
	req := func(cu protocol.CustomerID, total int64) decide.Request {
		r := decide.Request{Tenant: "acme", Where: decide.Where{Store: rules.Store{ID: "s1", TimeZone: "Europe/Berlin"}},
			Order:     protocol.Order{ID: "o1", Currency: "EUR", Lines: []protocol.Line{{SKU: "shirt", Quantity: 1, UnitPrice: total}}},
			Presented: []decide.Presented{{Code: "ref-abc"}}, Now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
		if cu != "" {
			r.Customer = &protocol.Customer{ID: cu}
		}
		return r
	}
	for name, c := range map[string]struct {
		src      decide.Source
		req      decide.Request
		want     protocol.Code // "" = applied
		needsHub bool
	}{
		"OK/Till":          {mem, req("bob", 60_00), "", true},
		"OK/Hub":           {hubMem{mem, protocol.ReferralFacts{Referrer: "alice"}}, req("bob", 60_00), "", true},
		"ErrTillAnonymous": {mem, req("", 60_00), protocol.CodeReferralCustomer, false},
		"ErrHubAnonymous":  {hubMem{mem, protocol.ReferralFacts{Referrer: "alice"}}, req("", 60_00), protocol.CodeReferralCustomer, false},
		"ErrHubSelf":       {hubMem{mem, protocol.ReferralFacts{Referrer: "bob"}}, req("bob", 60_00), protocol.CodeSelfReferral, false},
		"ErrHubNotNew":     {hubMem{mem, protocol.ReferralFacts{Referrer: "alice", RefereeOrders: 1}}, req("bob", 60_00), protocol.CodeRefereeNotNew, false},
		"ErrHubLimit":      {hubMem{mem, protocol.ReferralFacts{Referrer: "alice", ReferrerTotal: 2}}, req("bob", 60_00), protocol.CodeReferralLimit, false},
		"ErrMinSubtotal":   {mem, req("bob", 20_00), protocol.CodeMinimumNotMet, true},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := decide.Decide(ctx, c.src, rs, c.req)
			if err != nil {
				t.Fatal(err)
			}
			var got protocol.Code
			if e := out.Refusal(); e != nil {
				got = e.Code
			}
			if got != c.want {
				t.Fatalf("refusal %q, want %q", got, c.want)
			}
			if n := slices.Contains(out.NeedsHub(), decide.HubReferral); n != c.needsHub {
				t.Fatalf("NeedsHub %v, want referral %v", out.NeedsHub(), c.needsHub)
			}
			if c.want == "" {
				if e := out.Effects(); len(e) != 1 || e[0].Redemption.Discount != 10_00 || e[0].Redemption.Campaign != "refer" {
					t.Fatalf("effects %+v", e)
				}
			}
		})
	}
}

// BenchmarkDecideReferral is the referral step's cost in a decision at
// the hub: the same basket with a referral code (the guard on facts the
// source answers from memory) and with a plain code of the same reward.
func BenchmarkDecideReferral(b *testing.B) {
	ctx := context.Background()
	rs := referralRules(b)
	mem := &decide.Mem{Codes: map[protocol.CodeID]decide.Code{"REFABC": {Key: "REFABC", Campaign: "refer", MaxUses: -1}}}
	src := hubMem{mem, protocol.ReferralFacts{Referrer: "alice", ReferrerTotal: 1}}
	plain, err := rules.ParseCampaignJSON([]byte(`{"schema":1,"id":"plain","tenant":"acme","status":"active","trigger":"code","currency":"EUR",
		"reward":{"kind":"amount_off","amount":1000},"eligibility":{"min_subtotal":5000}}`))
	if err != nil {
		b.Fatal(err)
	}
	prs, err := decide.Compile([]rules.Campaign{plain})
	if err != nil {
		b.Fatal(err)
	}
	pmem := &decide.Mem{Codes: map[protocol.CodeID]decide.Code{"REFABC": {Key: "REFABC", Campaign: "plain", MaxUses: -1}}}
	r := decide.Request{Tenant: "acme", Where: decide.Where{Store: rules.Store{ID: "s1", TimeZone: "Europe/Berlin"}},
		Order:     protocol.Order{ID: "o1", Currency: "EUR", Lines: []protocol.Line{{SKU: "shirt", Quantity: 1, UnitPrice: 60_00}}},
		Customer:  &protocol.Customer{ID: "bob"},
		Presented: []decide.Presented{{Code: "REFABC"}}, Now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	for _, c := range []struct {
		name string
		src  decide.Source
		rs   *decide.Rules
	}{{"Plain", pmem, prs}, {"Referral", src, rs}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decide.Decide(ctx, c.src, c.rs, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
