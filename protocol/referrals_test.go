package protocol_test

import (
	"encoding/json"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// TestCheckReferral is the referral guard's table: each fraud guard with
// its stable reason code, and the limits per referrer in total and per
// period.
func TestCheckReferral(t *testing.T) {
	p := protocol.Referral{ReferrerPoints: 500, MaxReferees: 3, MaxPerPeriod: 2, PeriodDays: 30}
	ok := protocol.ReferralFacts{Referrer: "alice"}
	for name, c := range map[string]struct {
		p       protocol.Referral
		referee protocol.CustomerID
		f       protocol.ReferralFacts
		want    protocol.Code
	}{
		"OK":                    {p, "bob", ok, ""},
		"OK/UnderLimits":        {p, "bob", protocol.ReferralFacts{Referrer: "alice", ReferrerTotal: 2, ReferrerPeriod: 1}, ""},
		"OK/Unlimited":          {protocol.Referral{}, "bob", protocol.ReferralFacts{Referrer: "alice", ReferrerTotal: 1e6, ReferrerPeriod: 1e6}, ""},
		"ErrNoCustomer":         {p, "", ok, protocol.CodeReferralCustomer},
		"ErrNoReferrer":         {p, "bob", protocol.ReferralFacts{}, protocol.CodeUnknownCode},
		"ErrSelfReferral":       {p, "alice", ok, protocol.CodeSelfReferral},
		"ErrRefereeNotNew":      {p, "bob", protocol.ReferralFacts{Referrer: "alice", RefereeOrders: 1}, protocol.CodeRefereeNotNew},
		"ErrAlreadyReferred":    {p, "bob", protocol.ReferralFacts{Referrer: "alice", RefereeReferred: true}, protocol.CodeAlreadyReferred},
		"ErrLimitTotal":         {p, "bob", protocol.ReferralFacts{Referrer: "alice", ReferrerTotal: 3}, protocol.CodeReferralLimit},
		"ErrLimitPeriod":        {p, "bob", protocol.ReferralFacts{Referrer: "alice", ReferrerTotal: 2, ReferrerPeriod: 2}, protocol.CodeReferralLimit},
		"ErrSelfBeforeNotNew":   {p, "alice", protocol.ReferralFacts{Referrer: "alice", RefereeOrders: 5}, protocol.CodeSelfReferral},
		"ErrSharedAttribute":    {p, "bob", protocol.ReferralFacts{Referrer: "alice", Shared: "email_hash"}, protocol.CodeSelfReferral},
		"ErrNotNewBeforeLimits": {p, "bob", protocol.ReferralFacts{Referrer: "alice", RefereeOrders: 1, ReferrerTotal: 9}, protocol.CodeRefereeNotNew},
	} {
		t.Run(name, func(t *testing.T) {
			e := protocol.CheckReferral(c.p, c.referee, c.f)
			var got protocol.Code
			if e != nil {
				got = e.Code
				if !got.Known() || e.Message == "" {
					t.Fatalf("refusal %+v: unknown code or no message", e)
				}
			}
			if got != c.want {
				t.Fatalf("CheckReferral = %v, want %q", e, c.want)
			}
		})
	}
}

func TestSharedAttribute(t *testing.T) {
	keys := []string{"email_hash", "card"}
	for _, c := range []struct {
		a, b map[string]string
		want string
	}{
		{map[string]string{"email_hash": "x"}, map[string]string{"email_hash": "x"}, "email_hash"},
		{map[string]string{"email_hash": "x", "card": "c"}, map[string]string{"email_hash": "y", "card": "c"}, "card"},
		{map[string]string{"email_hash": ""}, map[string]string{"email_hash": ""}, ""},
		{map[string]string{"phone": "1"}, map[string]string{"phone": "1"}, ""},
		{nil, nil, ""},
	} {
		if got := protocol.SharedAttribute(keys, c.a, c.b); got != c.want {
			t.Errorf("SharedAttribute(%v, %v) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}

func TestReferralValidate(t *testing.T) {
	for name, c := range map[string]struct {
		r     protocol.Referral
		field string
	}{
		"OK":                {protocol.Referral{ReferrerPoints: 500, PointsCampaign: "club", MaxReferees: 10, MaxPerPeriod: 3, PeriodDays: 7}, ""},
		"OK/Zero":           {protocol.Referral{}, ""},
		"ErrPoints":         {protocol.Referral{ReferrerPoints: -1}, "referral.referrer_points"},
		"ErrPointsHuge":     {protocol.Referral{ReferrerPoints: protocol.MaxReferralPoints + 1}, "referral.referrer_points"},
		"ErrMaxReferees":    {protocol.Referral{MaxReferees: -1}, "referral.max_referees"},
		"ErrMaxPerPeriod":   {protocol.Referral{MaxPerPeriod: -1}, "referral.max_per_period"},
		"ErrPeriodDays":     {protocol.Referral{PeriodDays: 9999}, "referral.period_days"},
		"ErrPointsCampaign": {protocol.Referral{PointsCampaign: "not an id!"}, "referral.points_campaign"},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.r.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if pe := protocol.PublicError(err); err == nil || pe.Code != protocol.CodeInvalidInput || pe.Field != c.field {
				t.Fatalf("Validate = %v, want invalid_input on %s", err, c.field)
			}
		})
	}
	if got := (protocol.Referral{}).Period(); got != protocol.DefaultReferralPeriodDays {
		t.Fatalf("default period %d", got)
	}
}

// FuzzReferral: a referral program from outside (a campaign's "referral"
// JSON) and any facts never make the guard panic, and a refusal always has
// a known code.
func FuzzReferral(f *testing.F) {
	for _, s := range []string{`{"referrer_points":500,"max_referees":3,"max_per_period":2,"period_days":30}`, `{}`,
		`{"referrer_points":-1}`, `{"points_campaign":"club"}`, `{"period_days":1e400}`} {
		f.Add([]byte(s), "bob", "alice", int64(0), false, int64(0), int64(0))
	}
	f.Fuzz(func(t *testing.T, doc []byte, referee, referrer string, orders int64, referred bool, total, period int64) {
		var r protocol.Referral
		if json.Unmarshal(doc, &r) != nil || r.Validate() != nil {
			return
		}
		_ = r.Period()
		e := protocol.CheckReferral(r, protocol.CustomerID(referee), protocol.ReferralFacts{Referrer: protocol.CustomerID(referrer),
			RefereeOrders: orders, RefereeReferred: referred, ReferrerTotal: total, ReferrerPeriod: period})
		if e != nil && !e.Code.Known() {
			t.Fatalf("unknown code %q", e.Code)
		}
		if e == nil && (referee == "" || referee == referrer || referrer == "" || orders > 0 || referred) {
			t.Fatalf("accepted %+v for %q", r, referee)
		}
	})
}
