package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/uplink"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/agentdb"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

const bootstrapKey = "bootstrap-key-for-tests-0123456789"

// TestPoisonFactDoesNotStallTill: a till whose outbox holds a fact the hub
// cannot apply (written beneath the till's validator, as a tampered till or
// an older version would) and a row that is not even CBOR, each followed
// by good facts. The real sync client
// publishes them with the till's real credentials through the real
// embedded broker. The good facts reach the ledger, the outbox drains, the
// bad fact is listed by the API with its bytes (to its tenant only),
// counted in the metrics, and Verify stays clean. On the original hub the
// whole batch was refused every few seconds, for ever, and the outbox
// never drained.
func TestPoisonFactDoesNotStallTill(t *testing.T) {
	ctx := context.Background()
	h := MustRun(t)
	for _, id := range []protocol.TenantID{"acme", "beta"} {
		if _, err := h.Catalog.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: id, Name: string(id), Currency: "EUR"}); err != nil {
			t.Fatal(err)
		}
	}
	_, secret, err := h.Catalog.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: "till-1", Store: snapshot.Store{ID: "s1"}})
	if err != nil {
		t.Fatal(err)
	}

	// The till's database, with its outbox written directly.
	path := filepath.Join(t.TempDir(), "agent.db")
	db, err := agentdb.Open(ctx, path, agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	fact := func(seq uint64, mod func(*protocol.Redemption)) protocol.Redemption {
		r := protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: seq}, Kind: protocol.KindEarn, Tenant: "acme", Store: "s1",
			TxnID: "T" + string(rune('0'+seq)), Customer: "c-1", Currency: "EUR", Points: 10, OrderTot: 10_00,
			HLC: ledger.HLCFromTime(time.Now()), Offline: true}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	facts := []protocol.Redemption{
		fact(1, nil),
		fact(2, func(r *protocol.Redemption) { r.OrderID = strings.Repeat("o", 129) }),
		fact(3, nil),
		fact(4, nil),
		fact(5, nil), // its body is damaged below
		fact(6, nil),
	}
	raw, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var poison []byte
	for _, f := range facts {
		body, err := protocol.EncMode.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if f.ID.Seq == 2 {
			poison = body
		}
		if f.ID.Seq == 5 {
			body = []byte{0xff, 0x00} // not CBOR at all
		}
		if _, err := raw.ExecContext(ctx, `INSERT INTO outbox (seq, campaign, risk, body) VALUES (?, '', 0, ?)`, f.ID.Seq, body); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.ExecContext(ctx, `UPDATE agent_state SET next_seq = 7 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db, err = agentdb.Open(ctx, path, agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := agent.New(ctx, "acme", "till-1", db)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	a.Logger = quiet
	hubKey, err := h.Catalog.HubPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := uplink.New(uplink.Options{Tenant: "acme", Agent: "till-1", BrokerURL: h.Broker.URL(), HubURL: "http://" + h.HTTPAddr(),
		Secret: secret, HubKey: hubKey, FlushEvery: 20 * time.Millisecond, ResendAfter: 500 * time.Millisecond, HTTPRetries: 1, Logger: quiet}, a, db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a.SetLink(c)

	testutil.Eventually(t, "the outbox to drain up to seq 6", func() (bool, string) {
		st, err := db.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.OutboxDepth == 0 && st.AckedWatermark == 6, fmt.Sprintf("%+v, ingest %+v", st, h.Ingest.Stats())
	})
	if p, _ := h.Ledger.Points(ctx, "acme", "c-1"); p != 40 {
		t.Fatalf("points = %d, want 40 (the four good facts)", p)
	}
	if rep, err := h.Ledger.Verify(ctx); err != nil || !rep.OK() || rep.Entries != 4 {
		t.Fatalf("verify = %+v, %v", rep, err)
	}

	list := func(tenant string) []struct {
		Redemption protocol.RedemptionID `json:"redemption"`
		Code       protocol.Code         `json:"code"`
		Field      string                `json:"field"`
		Raw        []byte                `json:"raw"`
	} {
		req, _ := http.NewRequest("GET", "http://"+h.HTTPAddr()+"/v1/tenants/"+tenant+"/quarantine", nil)
		req.Header.Set("Authorization", "Bearer "+bootstrapKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Items []struct {
				Redemption protocol.RedemptionID `json:"redemption"`
				Code       protocol.Code         `json:"code"`
				Field      string                `json:"field"`
				Raw        []byte                `json:"raw"`
			} `json:"items"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET quarantine of %s: %d %v", tenant, resp.StatusCode, err)
		}
		return out.Items
	}
	qs := list("acme")
	if len(qs) != 2 || qs[0].Redemption != (protocol.RedemptionID{Agent: "till-1", Seq: 2}) || qs[0].Code != protocol.CodeInvalidInput ||
		qs[0].Field != "order_id" || !bytes.Equal(qs[0].Raw, poison) ||
		qs[1].Redemption != (protocol.RedemptionID{Agent: "till-1", Seq: 5}) || qs[1].Code != protocol.CodeInvalidInput {
		t.Fatalf("quarantine = %+v", qs)
	}
	if other := list("beta"); len(other) != 0 {
		t.Fatalf("another tenant sees %+v", other)
	}
	if _, metrics := get(t, "http://"+h.MetricsAddr()+"/metrics"); !strings.Contains(metrics, "punchcard_ingest_quarantined_total 2\n") {
		t.Fatalf("metrics lack the quarantined fact:\n%s", metrics)
	}
}
