package rules_test

import (
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

func TestNewStore(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		s, err := rules.NewStore("nyc-1", "US-NY", "America/New_York")
		if err != nil {
			t.Fatal(err)
		}
		if s.Location == nil || s.Location.String() != "America/New_York" {
			t.Errorf("location = %v", s.Location)
		}
	})
	for name, tz := range map[string]string{"ErrUnknownZone": "Europe/Atlantis", "ErrEmpty": "", "ErrLocal": "Local"} {
		t.Run(name, func(t *testing.T) {
			_, err := rules.NewStore("x", "", tz)
			if pe := protocol.PublicError(err); pe.Code != protocol.CodeInvalidInput || pe.Field != "store.time_zone" {
				t.Errorf("err = %v, want invalid_input at store.time_zone", err)
			}
		})
	}
}

func TestEvaluateNoCatalog(t *testing.T) {
	d := rules.Evaluate(nil, rules.Request{Now: time.Now(), Redeemables: []rules.Redeemable{{Kind: rules.RedeemCode, Campaign: "x"}}})
	if d.Error == nil || d.Error.Code != protocol.CodeInternal {
		t.Fatalf("error = %v, want internal", d.Error)
	}
	if d.Results[0].Applied || d.Results[0].Reason != protocol.CodeInternal {
		t.Errorf("result = %+v", d.Results[0])
	}
}

// TestStoppedCampaignKillSwitch: stopping a campaign refuses it at once,
// whatever its dates, the code or the stacking.
func TestStoppedCampaignKillSwitch(t *testing.T) {
	c := rules.Campaign{Schema: 1, ID: "s", Tenant: "acme", Status: rules.StatusActive, Currency: "EUR",
		Reward: rules.Reward{Kind: rules.RewardAmountOff, Amount: 100}}
	req := rules.Request{Tenant: "acme", Store: berlin(t), Now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		Order:       protocol.Order{Currency: "EUR", Lines: []protocol.Line{{SKU: "A", Quantity: 1, UnitPrice: 1000}}},
		Redeemables: []rules.Redeemable{{Kind: rules.RedeemCode, Code: "S", Campaign: "s"}}}
	for _, tc := range []struct {
		name   string
		status rules.Status
		want   protocol.Code
	}{{"OK", rules.StatusActive, ""}, {"ErrStopped", rules.StatusStopped, protocol.CodeCampaignStopped}} {
		t.Run(tc.name, func(t *testing.T) {
			c.Status = tc.status
			cat, err := rules.NewCatalog([]rules.Campaign{c})
			if err != nil {
				t.Fatal(err)
			}
			if got := rules.Evaluate(cat, req).Results[0].Reason; got != tc.want {
				t.Errorf("reason = %q, want %q", got, tc.want)
			}
		})
	}
}
