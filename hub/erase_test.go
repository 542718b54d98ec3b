package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestEraseLeavesNoBytes writes a customer with distinctive personal data,
// changes it (so older versions of the row and the audit copies exist),
// issues tokens to it, erases it, and then scans the raw bytes of the
// hub's database file and its WAL for every value: none may be left, and a
// support key no longer gets the token text.
func TestEraseLeavesNoBytes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h, err := hub.Open(ctx, hub.Options{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", MetricsAddr: "-",
		BootstrapKey: testKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if _, err := h.Catalog.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	doc := `{"schema":1,"id":"summer","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`
	if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	cu := catalog.Customer{ID: "cust-7", Name: "Zelda Quixotebury", Email: "zq.erase-me@example.org", Phone: "+49 30 5550199",
		Tier: "platinum-zqx", Segment: "segment-zqx", Attributes: map[string]string{"date_of_birth": "1987-03-14"}}
	if _, err := h.Catalog.CreateCustomer(ctx, catalog.System, "acme", cu); err != nil {
		t.Fatal(err)
	}
	secrets := []string{cu.Name, cu.Email, cu.Phone, cu.Tier, cu.Segment, "1987-03-14"}
	for _, name := range []string{"Zelda Q. Quixotebury", "Zelda Quixotebury-Ng"} {
		cu.Name = name
		if _, err := h.Catalog.UpdateCustomer(ctx, catalog.System, "acme", cu); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, name)
	}
	var serials []string
	for range 3 {
		tk, err := h.Catalog.IssueToken(ctx, catalog.System, "acme", catalog.TokenRequest{Campaign: "summer", Customer: cu.ID})
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, tk.Text)
		serials = append(serials, string(tk.Serial))
	}
	// Half the history in the database file, half in the WAL.
	if _, err := h.Catalog.DB().ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
		t.Fatal(err)
	}
	cu.Email = "zq.second-address@example.org"
	if _, err := h.Catalog.UpdateCustomer(ctx, catalog.System, "acme", cu); err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, cu.Email)

	if _, err := h.Catalog.EraseCustomer(ctx, catalog.System, "acme", cu.ID); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{hub.DefaultDBName, hub.DefaultDBName + "-wal"} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("%s still holds %q after the erase", name, s)
			}
		}
	}

	// Support cannot read (or render) the token text any more.
	key, secret, err := h.Catalog.CreateKey(ctx, catalog.System, "acme", catalog.RoleSupport, "support")
	if err != nil || key.ID == "" {
		t.Fatal(err)
	}
	for _, serial := range serials {
		req, _ := http.NewRequest("GET", "/v1/tenants/acme/tokens/"+serial, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		res, err := h.API.Test(req)
		if err != nil {
			t.Fatal(err)
		}
		var tk struct {
			Text  string `json:"text"`
			QRURL string `json:"qr_url"`
		}
		err = json.NewDecoder(res.Body).Decode(&tk)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 || tk.Text != "" || tk.QRURL != "" {
			t.Fatalf("support reads token %s: %d %+v %v", serial, res.StatusCode, tk, err)
		}
		req, _ = http.NewRequest("GET", "/v1/tenants/acme/tokens/"+serial+"/qr.png", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		res, err = h.API.Test(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusConflict {
			t.Fatalf("qr.png of an erased customer's token: %d, want 409", res.StatusCode)
		}
	}
}
