package hub_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestRelayWakesOnCommit: with the relay's poll at an hour, a catalog
// change and a till's facts committed in this hub are relayed and
// delivered all the same, because their commits wake the relay
// (ledger.Options.OnEvents, catalog.Catalog.OnEvents, webhooks.Options.Wake).
func TestRelayWakesOnCommit(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	got := map[string]bool{}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("webhook-id")] = true
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	h, err := hub.Open(ctx, hub.Options{
		DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", MetricsAddr: "-",
		BootstrapKey: bootstrapKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Webhooks: hub.WebhookOptions{RelayInterval: time.Hour, AllowPrivate: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if _, err := h.Catalog.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Webhooks.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: rcv.URL}); err != nil {
		t.Fatal(err)
	}
	doc := `{"schema":1,"id":"summer","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000},"limits":{"max_redemptions":100}}`
	if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	rs := []protocol.Redemption{{ID: protocol.RedemptionID{Agent: "till-1", Seq: 1}, Kind: protocol.KindRedeem, Tenant: "acme", Store: "s1",
		TxnID: "t1", Campaign: "summer", Currency: "EUR", Discount: 100, OrderTot: 1000, HLC: ledger.HLCFromTime(time.Now())}}
	if _, _, err := h.Ledger.ApplyBatch(ctx, "acme", "till-1", rs); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, src := range []interface {
		EventsAfter(context.Context, int64, int) ([]protocol.Event, error)
	}{h.Catalog, h.Ledger} {
		es, err := src.EventsAfter(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			ids = append(ids, e.ID)
		}
	}
	if len(ids) < 2 {
		t.Fatalf("events written: %v, want the campaign's and the fact's", ids)
	}
	deadline, ok := t.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Minute)
	}
	for {
		mu.Lock()
		n := 0
		for _, id := range ids {
			if got[id] {
				n++
			}
		}
		mu.Unlock()
		if n == len(ids) {
			break
		}
		if time.Until(deadline) < 5*time.Second {
			t.Fatalf("%d of the events %v delivered with the relay's poll at an hour: the commits did not wake it", n, ids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
