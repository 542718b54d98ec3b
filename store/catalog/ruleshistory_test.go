package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/token"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestRulesAt: every catalog version's campaigns can be had back, as they
// were, until they were superseded more than RulesRetention ago.
func TestRulesAt(t *testing.T) {
	ctx := context.Background()
	c, clk := MustOpen(t)
	c.RulesRetention = 24 * time.Hour
	version := func() uint64 {
		tn, err := c.Tenant(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		return tn.Version
	}
	percent := func(v uint64) int64 {
		t.Helper()
		cat, ok, err := c.RulesAt(ctx, "acme", v)
		if err != nil || !ok {
			t.Fatalf("rules at %d: %v %v", v, ok, err)
		}
		cp, ok := cat.Campaign("summer")
		if !ok {
			return -1
		}
		if cp.Status != rules.StatusActive {
			return 0
		}
		return cp.Reward.PercentBP
	}
	v0 := version()
	if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("summer", "active", percent10)); err != nil {
		t.Fatal(err)
	}
	v1 := version()
	clk.Add(time.Hour)
	if _, err := c.UpdateCampaign(ctx, admin, "acme", "summer", campaignJSON("summer", "active", `{"kind":"percent_off","percent_bp":2000}`)); err != nil {
		t.Fatal(err)
	}
	v2 := version()
	if _, _, err := c.RegisterAgent(ctx, admin, catalog.Agent{Tenant: "acme", ID: "till-1", Store: snapshot.Store{ID: "s1", TimeZone: "Europe/Berlin"}}); err != nil {
		t.Fatal(err)
	}
	v3 := version() // a change that is not a campaign's
	clk.Add(time.Hour)
	if _, err := c.StopCampaign(ctx, admin, "acme", "summer"); err != nil {
		t.Fatal(err)
	}
	v4 := version()
	t.Run("OK", func(t *testing.T) {
		for _, tc := range []struct {
			v    uint64
			want int64
		}{{v0, -1}, {v1, 1000}, {v2, 2000}, {v3, 2000}, {v4, 0}} {
			if v0 == 0 && tc.v == 0 {
				continue
			}
			if got := percent(tc.v); got != tc.want {
				t.Errorf("at version %d: %d, want %d", tc.v, got, tc.want)
			}
		}
	})
	t.Run("ErrFuture", func(t *testing.T) {
		if _, ok, err := c.RulesAt(ctx, "acme", v4+1); ok || err != nil {
			t.Fatalf("a version not yet published: %v %v", ok, err)
		}
	})
	t.Run("Retention", func(t *testing.T) {
		// Two days on, a change drops the states superseded before
		// yesterday: v1 and v2 are gone, v4 (still current) stays.
		clk.Add(48 * time.Hour)
		if _, err := c.StartCampaign(ctx, admin, "acme", "summer"); err != nil {
			t.Fatal(err)
		}
		// A catalog without the compiled versions in memory, as after a
		// restart.
		fresh, err := catalog.New(ctx, c.DB())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []uint64{v1, v2, v3} {
			if _, ok, err := fresh.RulesAt(ctx, "acme", v); ok || err != nil {
				t.Fatalf("version %d past the retention: %v %v", v, ok, err)
			}
		}
		if cat, ok, err := fresh.RulesAt(ctx, "acme", v4); !ok || err != nil {
			t.Fatalf("version %d within the retention: %v %v", v4, ok, err)
		} else if cp, _ := cat.Campaign("summer"); cp.Status != rules.StatusStopped {
			t.Fatalf("version %d: %+v", v4, cp)
		}
	})
}

// TestPresented: what re-derivation asks of the catalog about what a till
// says was presented comes from the hub's own records, never the till's
// word: a code's campaign and limit (not its revocation), a token's text
// by serial, and the keys as of the sale. Resolving them is the decision
// pipeline's (protocol/decide), as at the till and online.
func TestPresented(t *testing.T) {
	ctx := context.Background()
	c, _ := MustOpen(t)
	if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("summer", "active", percent10)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportCodes(ctx, admin, "acme", "summer", []string{"SUMMER-10"}, catalog.CodeSpec{Uses: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RotateSigningKey(ctx, admin, "acme"); err != nil {
		t.Fatal(err)
	}
	tok, err := c.IssueToken(ctx, admin, "acme", catalog.TokenRequest{Campaign: "summer", Uses: 2})
	if err != nil {
		t.Fatal(err)
	}
	now := c.Now()
	cd, ok, err := c.PresentedCode(ctx, "acme", "SUMMER10")
	if err != nil || !ok || cd.Campaign != "summer" || cd.MaxUses != 3 || cd.GiftCard || cd.Revoked {
		t.Fatalf("code: %+v %v %v", cd, ok, err)
	}
	if _, ok, err := c.PresentedCode(ctx, "acme", "NOPE"); ok || err != nil {
		t.Fatalf("unknown code: %v %v", ok, err)
	}
	text, ok, err := c.TokenText(ctx, "acme", tok.Serial)
	if err != nil || !ok || text != tok.Text {
		t.Fatalf("token text: %q %v %v", text, ok, err)
	}
	if _, ok, err := c.TokenText(ctx, "acme", "NOPE"); ok || err != nil {
		t.Fatalf("unknown token: %v %v", ok, err)
	}
	keys, err := c.KeysAt(ctx, "acme", now)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := token.Verify(keys, "acme", text, now)
	if err != nil || cl.Campaign != "summer" || cl.Uses != 2 {
		t.Fatalf("token: %+v %v", cl, err)
	}
	if _, err := token.Verify(keys, "acme", text, tok.Expires.Add(time.Second)); protocol.ErrorCode(protocol.PublicError(err)) != protocol.CodeTokenExpired {
		t.Fatalf("expired token: %v", err)
	}
}
