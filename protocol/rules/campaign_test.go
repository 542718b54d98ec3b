package rules_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

type invalidCase struct {
	Name     string          `json:"name"`
	Field    string          `json:"field"`
	Code     protocol.Code   `json:"code"`
	Campaign json.RawMessage `json:"campaign"`
}

func loadInvalid(t testing.TB) []invalidCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(casesDir, "invalid", "campaigns.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cs []invalidCase
	if err := json.Unmarshal(data, &cs); err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestParseCampaignJSONInvalid: every mistake in testdata/rules/invalid is
// refused with its code and the path of the offending field.
func TestParseCampaignJSONInvalid(t *testing.T) {
	for _, c := range loadInvalid(t) {
		t.Run(c.Name, func(t *testing.T) {
			_, err := rules.ParseCampaignJSON(c.Campaign)
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *protocol.Error", err)
			}
			if pe.Code != c.Code || pe.Field != c.Field {
				t.Errorf("got %s at %q (%s), want %s at %q", pe.Code, pe.Field, pe.Message, c.Code, c.Field)
			}
			if pe.Message == "" {
				t.Error("no message")
			}
		})
	}
}

func TestParseCampaignJSONSyntax(t *testing.T) {
	valid := `{"schema":1,"id":"c1","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`
	t.Run("OK", func(t *testing.T) {
		c, err := rules.ParseCampaignJSON([]byte(valid))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.Reward.PercentBP, int64(1000); got != want {
			t.Errorf("percent_bp = %d, want %d", got, want)
		}
	})
	for name, in := range map[string]string{
		"ErrTrailingData": valid + `{}`,
		"ErrNotJSON":      `{"schema":1,`,
		"ErrArray":        `[]`,
		"ErrBadTime":      `{"schema":1,"id":"c1","tenant":"acme","status":"active","currency":"EUR","starts_at":"tomorrow","reward":{"kind":"free_shipping"}}`,
		"ErrEmpty":        ``,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := rules.ParseCampaignJSON([]byte(in))
			if got, want := protocol.ErrorCode(err), protocol.CodeInvalidInput; got != want {
				t.Errorf("code = %s (%v), want %s", got, err, want)
			}
		})
	}
}

// TestCampaignCBORRoundTrip: every campaign of the case files survives
// JSON → CBOR → campaign → CBOR with identical bytes, and unknown CBOR keys
// are refused like unknown JSON fields.
func TestCampaignCBORRoundTrip(t *testing.T) {
	for _, file := range caseFiles(t) {
		_, cs, _ := loadCaseFile(t, file)
		for _, c := range cs {
			b1, err := rules.MarshalCampaignCBOR(c)
			if err != nil {
				t.Fatal(err)
			}
			c2, err := rules.ParseCampaignCBOR(b1)
			if err != nil {
				t.Fatalf("%s: %v", c.ID, err)
			}
			b2, err := rules.MarshalCampaignCBOR(c2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b1, b2) {
				t.Errorf("%s: CBOR differs after a round trip", c.ID)
			}
		}
	}
	t.Run("ErrUnknownKey", func(t *testing.T) {
		// {1: 1, 99: 0}: schema and an unknown key.
		_, err := rules.ParseCampaignCBOR([]byte{0xa2, 0x01, 0x01, 0x18, 0x63, 0x00})
		if got, want := protocol.ErrorCode(err), protocol.CodeInvalidInput; got != want {
			t.Errorf("code = %s (%v), want %s", got, err, want)
		}
	})
}

// TestAgentHubAgree is guarantee 5 in small: a catalog built from the
// agents' CBOR gives byte-identical decisions to one built from the hub's
// JSON, on every golden case.
func TestAgentHubAgree(t *testing.T) {
	for _, file := range caseFiles(t) {
		hubCat, cs, cases := loadCaseFile(t, file)
		var fromCBOR []rules.Campaign
		for _, c := range cs {
			b, err := rules.MarshalCampaignCBOR(c)
			if err != nil {
				t.Fatal(err)
			}
			c2, err := rules.ParseCampaignCBOR(b)
			if err != nil {
				t.Fatal(err)
			}
			fromCBOR = append(fromCBOR, c2)
		}
		agentCat, err := rules.NewCatalog(fromCBOR)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			// The agent receives the request over its local API as JSON too.
			raw, err := json.Marshal(c.Request)
			if err != nil {
				t.Fatal(err)
			}
			var req rules.Request
			if err := json.Unmarshal(raw, &req); err != nil {
				t.Fatal(err)
			}
			req.Earned = c.Request.Earned
			a, _ := json.Marshal(rules.Evaluate(hubCat, c.Request))
			b, _ := json.Marshal(rules.Evaluate(agentCat, req))
			if !bytes.Equal(a, b) {
				t.Errorf("%s/%s: hub and agent disagree:\n%s\n%s", filepath.Base(file), c.Name, a, b)
			}
		}
	}
}

func TestNewCatalog(t *testing.T) {
	c := rules.Campaign{Schema: 1, ID: "a", Tenant: "acme", Status: rules.StatusActive, Currency: "EUR",
		Reward: rules.Reward{Kind: rules.RewardFreeShipping}}
	t.Run("OK", func(t *testing.T) {
		other := c
		other.Tenant = "globex" // same ID in another tenant is a different campaign
		cat, err := rules.NewCatalog([]rules.Campaign{c, other})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := cat.Len(), 2; got != want {
			t.Errorf("len = %d, want %d", got, want)
		}
		if _, ok := cat.Campaign("acme", "a"); !ok {
			t.Error("campaign a not found")
		}
	})
	t.Run("ErrDuplicate", func(t *testing.T) {
		_, err := rules.NewCatalog([]rules.Campaign{c, c})
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Field != "campaigns[1].id" {
			t.Errorf("err = %v, want a duplicate at campaigns[1].id", err)
		}
	})
	t.Run("ErrInvalidNamesIndex", func(t *testing.T) {
		bad := c
		bad.Reward.MaxDiscount = -1
		_, err := rules.NewCatalog([]rules.Campaign{c, bad})
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Field != "campaigns[1].reward.max_discount" {
			t.Errorf("err = %v, want campaigns[1].reward.max_discount", err)
		}
	})
}
