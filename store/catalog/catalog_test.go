package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/codes"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/token"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var admin = catalog.Actor{Tenant: "acme", KeyID: "key_test", Role: catalog.RoleAdmin}

// MustOpen opens a catalog on a new SQLite file that also holds a ledger,
// as the hub runs them, with one tenant "acme" (EUR).
func MustOpen(tb testing.TB) (*catalog.Catalog, *clock) {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(tb.TempDir(), "hub.db"), store.Options{Sync: store.SyncNormal})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	c, err := catalog.New(ctx, db)
	if err != nil {
		tb.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	c.Now = clk.Now
	if _, err := c.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		tb.Fatal(err)
	}
	return c, clk
}

func campaignJSON(id, status, reward string) []byte {
	return []byte(fmt.Sprintf(`{"schema":1,"id":%q,"tenant":"acme","status":%q,"currency":"EUR","reward":%s,"limits":{"max_redemptions":100,"per_customer":2}}`, id, status, reward))
}

const percent10 = `{"kind":"percent_off","percent_bp":1000}`
const giftCard = `{"kind":"gift_card"}`

func wantCode(t *testing.T, err error, code protocol.Code, field string) {
	t.Helper()
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want %s", err, code)
	}
	if pe.Code != code || pe.Field != field {
		t.Fatalf("got %s field %q (%s), want %s field %q", pe.Code, pe.Field, pe.Message, code, field)
	}
}

func TestSharedDatabase(t *testing.T) {
	c, _ := MustOpen(t)
	ctx := context.Background()
	if _, err := ledger.New(ctx, c.DB(), ledger.Options{Facts: c}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := c.DB().QueryRow(`SELECT COUNT(*) FROM schema_migrations WHERE name LIKE 'catalog_%'`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("catalog migrations: %d, %v", n, err)
	}
	if err := c.DB().QueryRow(`SELECT COUNT(*) FROM schema_migrations WHERE name LIKE 'ledger_%'`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("ledger migrations: %d, %v", n, err)
	}
	// Applying again is a no-op.
	if _, err := catalog.New(ctx, c.DB()); err != nil {
		t.Fatal(err)
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	t.Run("Bootstrap", func(t *testing.T) {
		c, _ := MustOpen(t)
		k, secret, created, err := c.Bootstrap(ctx, "")
		if err != nil || !created || !strings.HasPrefix(secret, catalog.SecretPrefix) || k.Role != catalog.RolePlatform {
			t.Fatalf("bootstrap: %+v %q %v %v", k, secret, created, err)
		}
		if _, _, created, err := c.Bootstrap(ctx, "another-secret-of-enough-length"); err != nil || created {
			t.Fatalf("second bootstrap created=%v err=%v", created, err)
		}
		got, err := c.Authenticate(ctx, secret)
		if err != nil || got.ID != k.ID {
			t.Fatalf("authenticate: %+v %v", got, err)
		}
	})
	t.Run("BootstrapFromEnv", func(t *testing.T) {
		c, _ := MustOpen(t)
		const s = "pck_from_the_environment_0123456789"
		if _, secret, created, err := c.Bootstrap(ctx, s); err != nil || !created || secret != s {
			t.Fatalf("bootstrap: %q %v %v", secret, created, err)
		}
		if _, err := c.Authenticate(ctx, s); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrShortBootstrap", func(t *testing.T) {
		c, _ := MustOpen(t)
		_, _, _, err := c.Bootstrap(ctx, "short")
		wantCode(t, err, protocol.CodeInvalidInput, "secret")
	})
	t.Run("OK", func(t *testing.T) {
		c, _ := MustOpen(t)
		k, secret, err := c.CreateKey(ctx, admin, "acme", catalog.RoleMarketer, "newsletter team")
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Authenticate(ctx, secret)
		if err != nil || got.ID != k.ID || got.Tenant != "acme" || got.Role != catalog.RoleMarketer {
			t.Fatalf("authenticate: %+v %v", got, err)
		}
		var h []byte
		if err := c.DB().QueryRow(`SELECT hash FROM catalog_keys WHERE id = ?`, k.ID).Scan(&h); err != nil || bytes.Contains(h, []byte(secret)) || len(h) != 32 {
			t.Fatalf("stored hash %x, %v", h, err)
		}
		if err := c.RevokeKey(ctx, admin, "acme", k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Authenticate(ctx, secret); !errors.Is(err, catalog.ErrBadKey) {
			t.Fatalf("revoked key: %v", err)
		}
		wantCode(t, c.RevokeKey(ctx, admin, "acme", k.ID), protocol.CodeConflict, "")
		wantCode(t, c.RevokeKey(ctx, admin, "acme", "key_nope"), protocol.CodeNotFound, "")
		keys, err := c.Keys(ctx, "acme")
		if err != nil || len(keys) != 1 || keys[0].RevokedAt.IsZero() {
			t.Fatalf("keys: %+v %v", keys, err)
		}
	})
	t.Run("ErrRole", func(t *testing.T) {
		c, _ := MustOpen(t)
		_, _, err := c.CreateKey(ctx, admin, "acme", "owner", "")
		wantCode(t, err, protocol.CodeInvalidInput, "role")
		_, _, err = c.CreateKey(ctx, admin, "acme", catalog.RoleAgent, "")
		wantCode(t, err, protocol.CodeInvalidInput, "role")
		_, _, err = c.CreateKey(ctx, admin, "acme", catalog.RolePlatform, "")
		wantCode(t, err, protocol.CodeInvalidInput, "role")
	})
	t.Run("ErrUnknownSecret", func(t *testing.T) {
		c, _ := MustOpen(t)
		for _, s := range []string{"", "pck_nope", strings.Repeat("x", 300)} {
			if _, err := c.Authenticate(ctx, s); !errors.Is(err, catalog.ErrBadKey) {
				t.Fatalf("%q: %v", s, err)
			}
		}
	})
}

func TestTenants(t *testing.T) {
	ctx := context.Background()
	c, _ := MustOpen(t)
	t.Run("OK", func(t *testing.T) {
		tn, err := c.Tenant(ctx, "acme")
		if err != nil || tn.Currency != "EUR" || tn.Version != 1 {
			t.Fatalf("%+v %v", tn, err)
		}
		keys, err := c.SigningKeys(ctx, "acme")
		if err != nil || len(keys) != 1 || len(keys[0].Public) != 32 {
			t.Fatalf("signing keys %+v %v", keys, err)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		_, err := c.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Again", Currency: "EUR"})
		wantCode(t, err, protocol.CodeConflict, "id")
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, tt := range []struct {
			tn    catalog.Tenant
			field string
		}{
			{catalog.Tenant{ID: "a/b", Name: "x", Currency: "EUR"}, "id"},
			{catalog.Tenant{ID: "b", Currency: "EUR"}, "name"},
			{catalog.Tenant{ID: "b", Name: "x", Currency: "eur"}, "currency"},
		} {
			_, err := c.CreateTenant(ctx, catalog.System, tt.tn)
			wantCode(t, err, protocol.CodeInvalidInput, tt.field)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := c.Tenant(ctx, "nope")
		wantCode(t, err, protocol.CodeNotFound, "")
		_, err = c.CreateCampaign(ctx, admin, "nope", campaignJSON("x", "draft", percent10))
		wantCode(t, err, protocol.CodeInvalidInput, "tenant")
	})
}

func TestCampaigns(t *testing.T) {
	ctx := context.Background()
	c, _ := MustOpen(t)
	t.Run("OK", func(t *testing.T) {
		cp, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("summer", "draft", percent10))
		if err != nil {
			t.Fatal(err)
		}
		if cp.Revision != 1 || cp.Version != 2 || cp.Rules.Reward.PercentBP != 1000 {
			t.Fatalf("%+v", cp)
		}
		cp, err = c.UpdateCampaign(ctx, admin, "acme", "summer", campaignJSON("summer", "draft", `{"kind":"percent_off","percent_bp":1500}`))
		if err != nil || cp.Revision != 2 || cp.Rules.Reward.PercentBP != 1500 {
			t.Fatalf("update: %+v %v", cp, err)
		}
		cp, err = c.StartCampaign(ctx, admin, "acme", "summer")
		if err != nil || cp.Rules.Status != "active" || cp.Revision != 3 {
			t.Fatalf("start: %+v %v", cp, err)
		}
		cp, err = c.StopCampaign(ctx, admin, "acme", "summer")
		if err != nil || cp.Rules.Status != "stopped" || cp.StoppedAt.IsZero() {
			t.Fatalf("stop: %+v %v", cp, err)
		}
		v, _ := c.Version(ctx, "acme")
		if _, err := c.StopCampaign(ctx, admin, "acme", "summer"); err != nil {
			t.Fatal(err)
		}
		if v2, _ := c.Version(ctx, "acme"); v2 != v {
			t.Fatalf("a no-op stop bumped the version %d → %d", v, v2)
		}
		got, err := c.Campaign(ctx, "acme", "summer")
		if err != nil || got.Rules.Status != "stopped" || got.Revision != 4 {
			t.Fatalf("get: %+v %v", got, err)
		}
		f, found, err := c.CampaignFacts(ctx, "acme", "summer")
		if err != nil || !found || f.MaxCount != 100 || f.PerCustomer != 2 || f.StoppedAt.IsZero() || f.Currency != "EUR" {
			t.Fatalf("facts %+v %v %v", f, found, err)
		}
		audit, err := c.Audit(ctx, "acme", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range audit {
			actions = append(actions, e.Action)
		}
		if got, want := strings.Join(actions, ","), "tenant.create,signing_key.create,campaign.create,campaign.update,campaign.start,campaign.stop"; got != want {
			t.Fatalf("audit actions %s, want %s", got, want)
		}
		if last := audit[len(audit)-1]; string(last.Before) != `{"status":"active"}` || string(last.After) != `{"status":"stopped"}` || last.Actor != "key:key_test" {
			t.Fatalf("audit entry %+v", last)
		}
	})
	t.Run("ErrField", func(t *testing.T) {
		_, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("bad", "draft", `{"kind":"percent_off","percent_bp":20000}`))
		wantCode(t, err, protocol.CodeInvalidInput, "reward.percent_bp")
		_, err = c.CreateCampaign(ctx, admin, "acme", []byte(`{`))
		wantCode(t, err, protocol.CodeInvalidInput, "")
	})
	t.Run("ErrConflict", func(t *testing.T) {
		_, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("summer", "draft", percent10))
		wantCode(t, err, protocol.CodeConflict, "id")
	})
	t.Run("ErrStatusInUpdate", func(t *testing.T) {
		_, err := c.UpdateCampaign(ctx, admin, "acme", "summer", campaignJSON("summer", "active", percent10))
		wantCode(t, err, protocol.CodeInvalidInput, "status")
	})
	t.Run("ErrIDMismatch", func(t *testing.T) {
		_, err := c.UpdateCampaign(ctx, admin, "acme", "summer", campaignJSON("winter", "stopped", percent10))
		wantCode(t, err, protocol.CodeInvalidInput, "id")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := c.StartCampaign(ctx, admin, "acme", "nope")
		wantCode(t, err, protocol.CodeNotFound, "")
		if _, found, err := c.CampaignFacts(ctx, "acme", "nope"); found || err != nil {
			t.Fatalf("facts found=%v err=%v", found, err)
		}
	})
}

func TestCodes(t *testing.T) {
	ctx := context.Background()
	c, _ := MustOpen(t)
	if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("summer", "active", percent10)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("gift", "active", giftCard)); err != nil {
		t.Fatal(err)
	}
	t.Run("Generate", func(t *testing.T) {
		out, err := c.GenerateCodes(ctx, admin, "acme", "summer", catalog.GenerateRequest{Count: 500, Pattern: "SUM-####-####", Check: true})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, p := range out {
			if !strings.HasPrefix(p, "SUM-") || seen[p] {
				t.Fatalf("code %q (dup %v)", p, seen[p])
			}
			seen[p] = true
		}
		got, err := c.Codes(ctx, "acme", "summer", "", 1000)
		if err != nil || len(got) != 500 || got[0].Uses != 1 {
			t.Fatalf("listed %d codes, %v", len(got), err)
		}
		cd, err := c.Code(ctx, "acme", strings.ToLower(out[0]))
		if err != nil || cd.Printed != out[0] || string(cd.Key) != codes.Normalize(out[0]) {
			t.Fatalf("lookup %+v %v", cd, err)
		}
	})
	t.Run("GenerateGiftCards", func(t *testing.T) {
		out, err := c.GenerateCodes(ctx, admin, "acme", "gift", catalog.GenerateRequest{Count: 3, Pattern: "GIFT-####-####-####", CodeSpec: catalog.CodeSpec{Balance: 25_00}})
		if err != nil {
			t.Fatal(err)
		}
		f, found, err := c.CodeFacts(ctx, "acme", protocol.CodeID(codes.Normalize(out[0])))
		if err != nil || !found || !f.GiftCard || f.InitialBalance != 25_00 || f.MaxUses != 1 {
			t.Fatalf("facts %+v %v %v", f, found, err)
		}
	})
	t.Run("ErrGenerate", func(t *testing.T) {
		_, err := c.GenerateCodes(ctx, admin, "acme", "summer", catalog.GenerateRequest{Count: 0})
		wantCode(t, err, protocol.CodeInvalidInput, "count")
		_, err = c.GenerateCodes(ctx, admin, "acme", "gift", catalog.GenerateRequest{Count: 1})
		wantCode(t, err, protocol.CodeInvalidInput, "balance")
		_, err = c.GenerateCodes(ctx, admin, "acme", "summer", catalog.GenerateRequest{Count: 1, CodeSpec: catalog.CodeSpec{Balance: 5}})
		wantCode(t, err, protocol.CodeInvalidInput, "balance")
		_, err = c.GenerateCodes(ctx, admin, "acme", "nope", catalog.GenerateRequest{Count: 1})
		wantCode(t, err, protocol.CodeNotFound, "")
		_, err = c.GenerateCodes(ctx, admin, "acme", "summer", catalog.GenerateRequest{Count: 1, Pattern: "##", Check: true, Charset: "AB"})
		if protocol.ErrorCode(err) != protocol.CodeInvalidInput {
			t.Fatalf("bad charset: %v", err)
		}
	})
	t.Run("ErrCodeSpaceFull", func(t *testing.T) {
		// 32 two-character codes of a 1024-code space fill past MaxFill.
		_, err := c.GenerateCodes(ctx, admin, "acme", "summer", catalog.GenerateRequest{Count: 1000, Length: 2})
		if code := protocol.ErrorCode(err); code != protocol.CodeInvalidInput && code != protocol.CodeConflict {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("Import", func(t *testing.T) {
		n, err := c.ImportCodes(ctx, admin, "acme", "summer", []string{"SUMMER10", "welcome 5"}, catalog.CodeSpec{Uses: -1, Stores: []protocol.StoreID{"berlin-1"}})
		if err != nil || n != 2 {
			t.Fatalf("import %d %v", n, err)
		}
		cd, err := c.Code(ctx, "acme", "WELCOME-5")
		if err != nil || cd.Uses != -1 || len(cd.Stores) != 1 {
			t.Fatalf("%+v %v", cd, err)
		}
	})
	t.Run("ErrImport", func(t *testing.T) {
		_, err := c.ImportCodes(ctx, admin, "acme", "summer", []string{"A1", "a-1"}, catalog.CodeSpec{})
		wantCode(t, err, protocol.CodeConflict, "codes[1]")
		_, err = c.ImportCodes(ctx, admin, "acme", "summer", []string{"NEW1", "summer10"}, catalog.CodeSpec{})
		wantCode(t, err, protocol.CodeConflict, "codes[1]")
		if _, err := c.Code(ctx, "acme", "NEW1"); protocol.ErrorCode(err) != protocol.CodeNotFound {
			t.Fatalf("a failed import stored NEW1: %v", err)
		}
		_, err = c.ImportCodes(ctx, admin, "acme", "summer", []string{"ok", "  "}, catalog.CodeSpec{})
		wantCode(t, err, protocol.CodeInvalidInput, "codes[1]")
		_, err = c.ImportCodes(ctx, admin, "acme", "summer", nil, catalog.CodeSpec{})
		wantCode(t, err, protocol.CodeInvalidInput, "codes")
		_, err = c.ImportCodes(ctx, admin, "acme", "summer", []string{"X9"}, catalog.CodeSpec{Stores: []protocol.StoreID{"a b"}})
		wantCode(t, err, protocol.CodeInvalidInput, "stores[0]")
	})
	t.Run("Revoke", func(t *testing.T) {
		cd, err := c.RevokeCode(ctx, admin, "acme", "summer10")
		if err != nil || cd.RevokedAt.IsZero() {
			t.Fatalf("%+v %v", cd, err)
		}
		_, err = c.RevokeCode(ctx, admin, "acme", "SUMMER10")
		wantCode(t, err, protocol.CodeConflict, "")
		_, err = c.RevokeCode(ctx, admin, "acme", "NOPE")
		wantCode(t, err, protocol.CodeNotFound, "")
	})
}

func TestTokensAndRotation(t *testing.T) {
	ctx := context.Background()
	c, clk := MustOpen(t)
	if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("sorry", "active", percent10)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCustomer(ctx, admin, "acme", catalog.Customer{ID: "c1", Email: "a@example.com", Tier: "gold", Segment: "vip"}); err != nil {
		t.Fatal(err)
	}
	expires := clk.Now().Add(30 * 24 * time.Hour)
	tok, err := c.IssueToken(ctx, admin, "acme", catalog.TokenRequest{Campaign: "sorry", Customer: "c1", Expires: expires})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(text string) (token.Claims, error) {
		ks, err := c.KeySet(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		return token.Verify(ks, "acme", text, clk.Now())
	}
	t.Run("OK", func(t *testing.T) {
		cl, err := verify(tok.Text)
		if err != nil || cl.Serial != tok.Serial || cl.Tier != "gold" || cl.Segment != "vip" || cl.Customer != "c1" || cl.Uses != 1 {
			t.Fatalf("claims %+v %v", cl, err)
		}
		f, found, err := c.CodeFacts(ctx, "acme", tok.Serial)
		if err != nil || !found || f.MaxUses != 1 {
			t.Fatalf("facts %+v %v %v", f, found, err)
		}
		list, err := c.CustomerTokens(ctx, "acme", "c1", 0)
		if err != nil || len(list) != 1 || list[0].Text != tok.Text {
			t.Fatalf("customer tokens %+v %v", list, err)
		}
	})
	t.Run("Rotate", func(t *testing.T) {
		old, _ := c.SigningKey(ctx, "acme")
		info, err := c.RotateSigningKey(ctx, admin, "acme")
		if err != nil || info.KID == old.KeyID {
			t.Fatalf("rotate %+v %v", info, err)
		}
		if _, err := verify(tok.Text); err != nil {
			t.Fatalf("a token of the old key no longer verifies: %v", err)
		}
		keys, _ := c.SigningKeys(ctx, "acme")
		if len(keys) != 2 || keys[1].KID != old.KeyID || !keys[1].NotAfter.Equal(expires) {
			t.Fatalf("keys after rotation %+v", keys)
		}
		tok2, err := c.IssueToken(ctx, admin, "acme", catalog.TokenRequest{Campaign: "sorry"})
		if err != nil || tok2.KID != info.KID {
			t.Fatalf("new token %+v %v", tok2, err)
		}
		clk.Add(31 * 24 * time.Hour) // past the old key's last token
		if keys, _ := c.SigningKeys(ctx, "acme"); len(keys) != 1 || keys[0].KID != info.KID {
			t.Fatalf("old key still listed %+v", keys)
		}
		if _, err := verify(tok2.Text); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Revoke", func(t *testing.T) {
		if _, err := c.RevokeToken(ctx, admin, "acme", tok.Serial); err != nil {
			t.Fatal(err)
		}
		_, err := c.RevokeToken(ctx, admin, "acme", tok.Serial)
		wantCode(t, err, protocol.CodeConflict, "")
	})
	t.Run("ErrIssue", func(t *testing.T) {
		_, err := c.IssueToken(ctx, admin, "acme", catalog.TokenRequest{Campaign: "nope"})
		wantCode(t, err, protocol.CodeNotFound, "campaign")
		_, err = c.IssueToken(ctx, admin, "acme", catalog.TokenRequest{Campaign: "sorry", Customer: "nobody"})
		wantCode(t, err, protocol.CodeNotFound, "customer")
		_, err = c.IssueToken(ctx, admin, "acme", catalog.TokenRequest{Campaign: "sorry", Expires: clk.Now().Add(-time.Hour)})
		wantCode(t, err, protocol.CodeInvalidInput, "expires")
		_, err = c.IssueToken(ctx, admin, "acme", catalog.TokenRequest{Campaign: "sorry", Expires: clk.Now().Add(5 * 365 * 24 * time.Hour)})
		wantCode(t, err, protocol.CodeInvalidInput, "expires")
		if _, err := c.StopCampaign(ctx, admin, "acme", "sorry"); err != nil {
			t.Fatal(err)
		}
		_, err = c.IssueToken(ctx, admin, "acme", catalog.TokenRequest{Campaign: "sorry"})
		wantCode(t, err, protocol.CodeCampaignStopped, "campaign")
	})
}

func TestCustomers(t *testing.T) {
	ctx := context.Background()
	c, _ := MustOpen(t)
	cu := catalog.Customer{ID: "c1", Email: "ann@example.com", Name: "Ann", Phone: "+49 30 1234", Tier: "gold", Attributes: map[string]string{"city": "Berlin"}}
	t.Run("OK", func(t *testing.T) {
		if _, err := c.CreateCustomer(ctx, admin, "acme", cu); err != nil {
			t.Fatal(err)
		}
		cu.Tier = "platinum"
		if _, err := c.UpdateCustomer(ctx, admin, "acme", cu); err != nil {
			t.Fatal(err)
		}
		got, err := c.Customer(ctx, "acme", "c1")
		if err != nil || got.Tier != "platinum" || got.Attributes["city"] != "Berlin" || got.Protocol().Tier != "platinum" {
			t.Fatalf("%+v %v", got, err)
		}
		list, err := c.Customers(ctx, "acme", "", 10)
		if err != nil || len(list) != 1 {
			t.Fatalf("%+v %v", list, err)
		}
	})
	t.Run("Erase", func(t *testing.T) {
		got, err := c.EraseCustomer(ctx, admin, "acme", "c1")
		if err != nil || got.ErasedAt.IsZero() {
			t.Fatalf("%+v %v", got, err)
		}
		got, _ = c.Customer(ctx, "acme", "c1")
		if got.Email != "" || got.Name != "" || got.Phone != "" || got.Tier != "" || got.Attributes != nil || got.ErasedAt.IsZero() {
			t.Fatalf("personal data left: %+v", got)
		}
		var leaks int
		if err := c.DB().QueryRow(`SELECT COUNT(*) FROM catalog_audit WHERE before LIKE '%ann@%' OR after LIKE '%ann@%' OR after LIKE '%Berlin%'`).Scan(&leaks); err != nil || leaks != 0 {
			t.Fatalf("audit still holds personal data in %d rows (%v)", leaks, err)
		}
		h, err := c.CustomerHistory(ctx, "acme", "c1", 0)
		if err != nil || len(h) != 3 || h[2].Action != "customer.erase" {
			t.Fatalf("history %+v %v", h, err)
		}
		_, err = c.UpdateCustomer(ctx, admin, "acme", cu)
		wantCode(t, err, protocol.CodeConflict, "")
		_, err = c.EraseCustomer(ctx, admin, "acme", "c1")
		wantCode(t, err, protocol.CodeConflict, "")
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		_, err := c.CreateCustomer(ctx, admin, "acme", catalog.Customer{ID: ""})
		wantCode(t, err, protocol.CodeInvalidInput, "id")
		_, err = c.CreateCustomer(ctx, admin, "acme", catalog.Customer{ID: "c2", Tier: strings.Repeat("x", 65)})
		wantCode(t, err, protocol.CodeInvalidInput, "tier")
		_, err = c.CreateCustomer(ctx, admin, "acme", catalog.Customer{ID: "c1"})
		wantCode(t, err, protocol.CodeConflict, "id")
		_, err = c.UpdateCustomer(ctx, admin, "acme", catalog.Customer{ID: "c9"})
		wantCode(t, err, protocol.CodeNotFound, "")
	})
}

func TestAgents(t *testing.T) {
	ctx := context.Background()
	c, _ := MustOpen(t)
	a, secret, err := c.RegisterAgent(ctx, admin, catalog.Agent{Tenant: "acme", ID: "till-1", Store: snapshot.Store{ID: "berlin-1", TimeZone: "Europe/Berlin"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		if a.Envelope.Currency != "EUR" || a.Envelope.Count != snapshot.DefaultEnvelope.Count {
			t.Fatalf("envelope %+v", a.Envelope)
		}
		if ok, err := c.CheckAgentSecret(ctx, "acme", "till-1", secret); !ok || err != nil {
			t.Fatalf("check: %v %v", ok, err)
		}
		k, err := c.Authenticate(ctx, secret)
		if err != nil || !c.AgentKey(k, "acme", "till-1") || c.AgentKey(k, "acme", "till-2") {
			t.Fatalf("agent key %+v %v", k, err)
		}
	})
	t.Run("ErrSecret", func(t *testing.T) {
		for _, tt := range []struct {
			tenant protocol.TenantID
			agent  protocol.AgentID
			secret string
		}{{"acme", "till-1", secret + "x"}, {"acme", "till-2", secret}, {"other", "till-1", secret}, {"acme", "till-1", ""}} {
			if ok, err := c.CheckAgentSecret(ctx, tt.tenant, tt.agent, tt.secret); ok || err != nil {
				t.Fatalf("%+v: ok=%v err=%v", tt, ok, err)
			}
		}
	})
	t.Run("Rotate", func(t *testing.T) {
		s2, err := c.RotateAgentSecret(ctx, admin, "acme", "till-1")
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.CheckAgentSecret(ctx, "acme", "till-1", secret); ok {
			t.Fatal("old secret still accepted")
		}
		if ok, _ := c.CheckAgentSecret(ctx, "acme", "till-1", s2); !ok {
			t.Fatal("new secret refused")
		}
		secret = s2
	})
	t.Run("Envelope", func(t *testing.T) {
		e := snapshot.RiskEnvelope{Currency: "EUR", PerRedemption: 10_00, Count: 5, MaxStaleSeconds: 3600}
		if _, err := c.SetEnvelope(ctx, admin, "acme", "till-1", e); err != nil {
			t.Fatal(err)
		}
		got, _ := c.Agent(ctx, "acme", "till-1")
		if got.Envelope != e {
			t.Fatalf("%+v", got.Envelope)
		}
		_, err := c.SetEnvelope(ctx, admin, "acme", "till-1", snapshot.RiskEnvelope{Count: -3})
		wantCode(t, err, protocol.CodeInvalidInput, "envelope.count")
	})
	t.Run("List", func(t *testing.T) {
		// The list decodes each distinct envelope once: every agent still
		// gets its own, as its own read has it.
		for _, id := range []protocol.AgentID{"till-2", "till-3"} {
			if _, _, err := c.RegisterAgent(ctx, admin, catalog.Agent{Tenant: "acme", ID: id, Store: snapshot.Store{ID: "berlin-2"}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.SetEnvelope(ctx, admin, "acme", "till-3", snapshot.RiskEnvelope{Currency: "EUR", PerRedemption: 20_00, Count: 9, MaxStaleSeconds: 60}); err != nil {
			t.Fatal(err)
		}
		list, err := c.Agents(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 3 {
			t.Fatalf("%d agents listed, want 3", len(list))
		}
		for _, got := range list {
			want, err := c.Agent(ctx, "acme", got.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("listed %+v, read alone %+v", got, want)
			}
		}
	})
	t.Run("ErrRegister", func(t *testing.T) {
		_, _, err := c.RegisterAgent(ctx, admin, catalog.Agent{Tenant: "acme", ID: "till-1", Store: snapshot.Store{ID: "s"}})
		wantCode(t, err, protocol.CodeConflict, "id")
		_, _, err = c.RegisterAgent(ctx, admin, catalog.Agent{Tenant: "acme", ID: "till-9", Store: snapshot.Store{ID: "s", TimeZone: "Mars/Olympus"}})
		wantCode(t, err, protocol.CodeInvalidInput, "store.time_zone")
		_, _, err = c.RegisterAgent(ctx, admin, catalog.Agent{Tenant: "acme", ID: "till-9"})
		wantCode(t, err, protocol.CodeInvalidInput, "store.id")
		_, _, err = c.RegisterAgent(ctx, admin, catalog.Agent{Tenant: "nope", ID: "till-9", Store: snapshot.Store{ID: "s"}})
		wantCode(t, err, protocol.CodeNotFound, "")
	})
}

// TestSnapshotDelta checks that a delta merged into the full snapshot of
// its base version gives the full snapshot of the new version.
func TestSnapshotDelta(t *testing.T) {
	ctx := context.Background()
	c, clk := MustOpen(t)
	if _, _, err := c.RegisterAgent(ctx, admin, catalog.Agent{Tenant: "acme", ID: "till-1", Store: snapshot.Store{ID: "berlin-1", TimeZone: "Europe/Berlin"}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON(id, "active", percent10)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.ImportCodes(ctx, admin, "acme", "a", []string{"A-1", "A-2", "A-3"}, catalog.CodeSpec{}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.IssueToken(ctx, admin, "acme", catalog.TokenRequest{Campaign: "b"})
	if err != nil {
		t.Fatal(err)
	}
	base, err := c.Snapshot(ctx, "acme", "till-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(base.Campaigns) != 3 || len(base.Codes) != 3 || len(base.Keys) != 1 || base.IsDelta() {
		t.Fatalf("base %+v", base)
	}
	// Changes after the base.
	clk.Add(time.Minute)
	if _, err := c.StopCampaign(ctx, admin, "acme", "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevokeCode(ctx, admin, "acme", "A-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevokeToken(ctx, admin, "acme", tok.Serial); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportCodes(ctx, admin, "acme", "c", []string{"C-1"}, catalog.CodeSpec{Uses: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RotateSigningKey(ctx, admin, "acme"); err != nil {
		t.Fatal(err)
	}
	delta, err := c.Snapshot(ctx, "acme", "till-1", base.Version)
	if err != nil {
		t.Fatal(err)
	}
	if !delta.IsDelta() || len(delta.Campaigns) != 1 || delta.Campaigns[0].ID != "b" || len(delta.Codes) != 1 || len(delta.Revocations) != 2 {
		t.Fatalf("delta %+v", delta)
	}
	full, err := c.Snapshot(ctx, "acme", "till-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := snapshot.Merge(base, delta)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := snapshot.Encode(merged)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := snapshot.Encode(full)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mb, fb) {
		m, _ := json.Marshal(merged)
		f, _ := json.Marshal(full)
		t.Fatalf("merged delta differs from full:\n%s\n%s", m, f)
	}
	if _, err := snapshot.Decode(fb); err != nil {
		t.Fatalf("the hub's own snapshot does not decode: %v", err)
	}
	t.Run("SinceBeyond", func(t *testing.T) {
		s, err := c.Snapshot(ctx, "acme", "till-1", full.Version+100)
		if err != nil || s.IsDelta() {
			t.Fatalf("%+v %v", s, err)
		}
	})
	t.Run("ErrUnknownAgent", func(t *testing.T) {
		_, err := c.Snapshot(ctx, "acme", "till-9", 0)
		wantCode(t, err, protocol.CodeNotFound, "")
	})
}

func TestIdempotency(t *testing.T) {
	ctx := context.Background()
	c, _ := MustOpen(t)
	h1, h2 := []byte("request-1"), []byte("request-2")
	if _, found, err := c.Recall(ctx, "acme", "k1", h1); found || err != nil {
		t.Fatalf("new key: %v %v", found, err)
	}
	if err := c.Remember(ctx, "acme", "k1", h1, catalog.Remembered{Status: 200, Body: []byte(`{"ok":true}`)}); err != nil {
		t.Fatal(err)
	}
	if err := c.Remember(ctx, "acme", "k1", h1, catalog.Remembered{Status: 500, Body: []byte(`x`)}); err != nil {
		t.Fatal(err)
	}
	r, found, err := c.Recall(ctx, "acme", "k1", h1)
	if err != nil || !found || r.Status != 200 || string(r.Body) != `{"ok":true}` {
		t.Fatalf("%+v %v %v", r, found, err)
	}
	_, _, err = c.Recall(ctx, "acme", "k1", h2)
	wantCode(t, err, protocol.CodeIdempotencyReuse, "")
	if _, found, _ := c.Recall(ctx, "other", "k1", h1); found {
		t.Fatal("idempotency keys leak across tenants")
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	c, _ := MustOpen(b)
	ctx := context.Background()
	_, secret, err := c.CreateKey(ctx, admin, "acme", catalog.RoleSupport, "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Authenticate(ctx, secret); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSnapshot(b *testing.B) {
	c, _ := MustOpen(b)
	ctx := context.Background()
	if _, _, err := c.RegisterAgent(ctx, admin, catalog.Agent{Tenant: "acme", ID: "till-1", Store: snapshot.Store{ID: "s1"}}); err != nil {
		b.Fatal(err)
	}
	for i := range 20 {
		id := fmt.Sprintf("c%02d", i)
		if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON(id, "active", percent10)); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := c.GenerateCodes(ctx, admin, "acme", "c00", catalog.GenerateRequest{Count: 1000}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s, err := c.Snapshot(ctx, "acme", "till-1", 0)
		if err != nil || len(s.Codes) != 1000 {
			b.Fatal(err)
		}
	}
}

// TestAtomicChange: a change that fails leaves no audit entry and no
// version bump, because both are written in the change's transaction.
func TestAtomicChange(t *testing.T) {
	ctx := context.Background()
	c, _ := MustOpen(t)
	if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("summer", "active", percent10)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportCodes(ctx, admin, "acme", "summer", []string{"A1"}, catalog.CodeSpec{}); err != nil {
		t.Fatal(err)
	}
	v, _ := c.Version(ctx, "acme")
	before, _ := c.Audit(ctx, "acme", 0, 0)
	// B1 would be new, A1 collides: the whole import fails.
	if _, err := c.ImportCodes(ctx, admin, "acme", "summer", []string{"B1", "A1"}, catalog.CodeSpec{}); protocol.ErrorCode(err) != protocol.CodeConflict {
		t.Fatalf("err = %v", err)
	}
	if v2, _ := c.Version(ctx, "acme"); v2 != v {
		t.Fatalf("version moved %d → %d on a failed change", v, v2)
	}
	if after, _ := c.Audit(ctx, "acme", 0, 0); len(after) != len(before) {
		t.Fatalf("audit grew %d → %d on a failed change", len(before), len(after))
	}
	if _, err := c.Code(ctx, "acme", "B1"); protocol.ErrorCode(err) != protocol.CodeNotFound {
		t.Fatalf("B1 stored by a failed import: %v", err)
	}
	// Every successful change bumped the version once and was audited
	// with that version.
	entries, _ := c.Audit(ctx, "acme", 0, 0)
	last := entries[len(entries)-1]
	if last.Version != v || last.Action != "codes.import" {
		t.Fatalf("last audit entry %+v, version %d", last, v)
	}
}

// TestTenantIsolation: nothing of one tenant is found through another.
func TestTenantIsolation(t *testing.T) {
	ctx := context.Background()
	c, _ := MustOpen(t)
	if _, err := c.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "other", Name: "Other", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("summer", "active", percent10)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportCodes(ctx, admin, "acme", "summer", []string{"SECRET"}, catalog.CodeSpec{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCustomer(ctx, admin, "acme", catalog.Customer{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.IssueToken(ctx, admin, "acme", catalog.TokenRequest{Campaign: "summer"})
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"campaign": func() error { _, err := c.Campaign(ctx, "other", "summer"); return err }(),
		"code":     func() error { _, err := c.Code(ctx, "other", "SECRET"); return err }(),
		"customer": func() error { _, err := c.Customer(ctx, "other", "c1"); return err }(),
		"token":    func() error { _, err := c.Token(ctx, "other", tok.Serial); return err }(),
	} {
		if protocol.ErrorCode(err) != protocol.CodeNotFound {
			t.Errorf("%s of acme visible to other: %v", name, err)
		}
	}
	ks, _ := c.KeySet(ctx, "other")
	if _, err := token.Verify(ks, "other", tok.Text, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)); err == nil {
		t.Error("acme's token verifies for other")
	}
	if _, found, _ := c.CampaignFacts(ctx, "other", "summer"); found {
		t.Error("acme's campaign facts found for other")
	}
	list, _ := c.Campaigns(ctx, "other", 0)
	tenants, _ := c.Tenants(ctx)
	if len(list) != 0 || len(tenants) != 2 {
		t.Errorf("campaigns of other %d, tenants %d", len(list), len(tenants))
	}
}
