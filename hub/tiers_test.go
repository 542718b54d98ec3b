package hub_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// call makes an API call with the bootstrap key and returns the status and
// body, retrying while Run starts serving.
func call(t *testing.T, h *hub.Hub, method, path, body string) (int, string) {
	t.Helper()
	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ {
		req, _ := http.NewRequest(method, "http://"+h.HTTPAddr()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Type", "application/json")
		if resp, err = http.DefaultClient.Do(req); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTierEarnedAtTheTill pins issue 12's defect "a tier is a string set
// through the API; nothing earns, keeps or loses it": with a tier
// programme set through the API, a till's earning fact that reaches the
// threshold upgrades the customer in the ingest transaction (the catalog
// profile, the ledger's tier and its history agree), and the tills take
// it as a customer-state delta (the catalog version does not move).
// Bad programmes are refused with invalid_input and the field.
func TestTierEarnedAtTheTill(t *testing.T) {
	ctx := context.Background()
	h, a := runWithAgent(t, 50*time.Millisecond)
	if _, err := h.Catalog.CreateCustomer(ctx, catalog.System, "acme", catalog.Customer{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ body, field string }{
		{`{"tiers":[],"measure":"points","window":{"kind":"rolling","days":365}}`, "tiers"},
		{`{"tiers":[{"name":"gold","min":300},{"name":"silver","min":100}],"measure":"points","window":{"kind":"rolling","days":365}}`, "tiers[1].min"},
		{`{"tiers":[{"name":"gold","min":300}],"measure":"visits","window":{"kind":"rolling","days":365}}`, "measure"},
		{`{"tiers":[{"name":"gold","min":300}],"measure":"points","window":{"kind":"calendar","period":"week"}}`, "window.period"},
		{`{"tiers":[{"name":"gold","min":300}],"measure":"points","window":{"kind":"rolling","days":365},"time_zone":"Mars/Base"}`, "time_zone"},
	} {
		code, body := call(t, h, "PUT", "/v1/tenants/acme/tier-program", bad.body)
		var pe protocol.Error
		if json.Unmarshal([]byte(body), &pe); code != 400 || pe.Code != protocol.CodeInvalidInput || pe.Field != bad.field {
			t.Fatalf("%s: %d %s, want 400 invalid_input on %s", bad.body, code, body, bad.field)
		}
	}
	code, body := call(t, h, "PUT", "/v1/tenants/acme/tier-program",
		`{"tiers":[{"name":"silver","min":100},{"name":"gold","min":300}],"measure":"points","window":{"kind":"rolling","days":365},"grace_days":30,"time_zone":"Europe/Berlin"}`)
	if code != 200 {
		t.Fatalf("set tier programme: %d %s", code, body)
	}
	v0, _ := h.Catalog.Version(ctx, "acme")
	earn := func(seq uint64, points int64) {
		r := protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: seq}, Kind: protocol.KindEarn, Tenant: "acme", Store: "s1",
			TxnID: "t", Customer: "c1", Currency: "EUR", Points: points, OrderTot: 1000, HLC: ledger.HLCFromTime(time.Now()), Offline: true}
		payload, err := protocol.EncodeMessage(protocol.MsgBatch, "acme", "till-1", "m", 0, protocol.Batch{Redemptions: []protocol.Redemption{r}})
		if err != nil {
			t.Fatal(err)
		}
		a.c.Publish(protocol.UpTopic("acme", "till-1"), 1, false, payload).Wait()
		for {
			select {
			case ack := <-a.acks:
				if ack.Watermark >= seq {
					return
				}
			case <-time.After(testutil.Patience(t)):
				t.Fatalf("no ack for seq %d within %s", seq, testutil.Patience(t))
			}
		}
	}
	earn(1, 80)
	if cu, _ := h.Catalog.Customer(ctx, "acme", "c1"); cu.Tier != "" {
		t.Fatalf("tier %q after 80 points", cu.Tier)
	}
	earn(2, 250)
	cu, err := h.Catalog.Customer(ctx, "acme", "c1")
	if err != nil || cu.Tier != "gold" {
		t.Fatalf("tier %q (%v) after 330 points, want gold", cu.Tier, err)
	}
	// Deliberately changed (issue 10): the upgrade no longer moves the
	// catalog version (no announcement makes every till fetch); the
	// till's next poll takes it as a customer-state delta.
	if v, err := h.Catalog.Version(ctx, "acme"); err != nil || v != v0 {
		t.Fatalf("catalog version %d after the upgrade, want %d (%v)", v, v0, err)
	}
	full, err := h.Snapshots.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-1"})
	if err != nil {
		t.Fatal(err)
	}
	var d snapshots.Answer
	d, err = h.Snapshots.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-1", Since: v0, Uses: full.Snapshot.Uses, HasUses: true,
		Customers: 0, HasCustomers: true})
	if err != nil || d.Snapshot == nil || len(d.Snapshot.Tiers) != 1 || d.Snapshot.Tiers[0].Tier != "gold" || d.Snapshot.Customers == 0 || d.Snapshot.Since != v0 {
		t.Fatalf("the till's customer-state delta %+v (%v), want c1 gold", d.Snapshot, err)
	}
	code, body = call(t, h, "GET", "/v1/tenants/acme/customers/c1/tier", "")
	var st struct {
		Current struct{ Tier string }
		History []struct{ From, To, Reason, Fact string }
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 {
		t.Fatalf("customer tier: %d %s", code, body)
	}
	if st.Current.Tier != "gold" || len(st.History) != 1 || st.History[0].To != "gold" || st.History[0].Reason != "upgrade" || st.History[0].Fact != "till-1/2" {
		t.Fatalf("customer tier %+v", st)
	}
}
