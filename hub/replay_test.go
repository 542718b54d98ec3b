package hub_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestReplayCoversBothLogs: a replay (POST …/webhooks/{id}/replay) finds
// the events of the catalog's log (campaign changes) as well as the
// ledger's: one catalog event by its id, and a time range holding events
// of both logs. The events are written before the endpoint exists, so
// only the replay delivers them. Fails when the replay reads the ledger's
// log alone (the catalog event is not_found, the range misses it).
func TestReplayCoversBothLogs(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	got := map[string]int{}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("webhook-id")]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	h, err := hub.Open(ctx, hub.Options{
		DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", MetricsAddr: "-",
		BootstrapKey: bootstrapKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Webhooks: hub.WebhookOptions{AllowPrivate: true},
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
	t0 := time.Now().Add(-time.Second)
	if _, err := h.Catalog.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
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
	var catIDs, ids []string
	var last time.Time
	for i, src := range []interface {
		EventsAfter(context.Context, int64, int) ([]protocol.Event, error)
	}{h.Catalog, h.Ledger} {
		es, err := src.EventsAfter(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Tenant != "acme" {
				continue
			}
			if i == 0 {
				catIDs = append(catIDs, e.ID)
			}
			ids = append(ids, e.ID)
			if e.At.After(last) {
				last = e.At
			}
		}
	}
	if len(catIDs) == 0 || len(ids) == len(catIDs) {
		t.Fatalf("events written: %v (catalog %v), want the campaign's and the fact's", ids, catIDs)
	}
	// The endpoint is created after every event (an endpoint gets the
	// events from its creation on): the relay delivers none of them.
	for !time.Now().After(last) {
		time.Sleep(time.Millisecond)
	}
	ep, err := h.Webhooks.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: rcv.URL})
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Webhooks.Replay(ctx, "acme", ep.ID, protocol.WebhookReplay{EventID: catIDs[0]})
	if err != nil || res.Queued != 1 {
		t.Fatalf("replay of the catalog event %s: %+v %v", catIDs[0], res, err)
	}
	waitDelivered(t, &mu, got, catIDs[:1])
	to := time.Now().Add(time.Second)
	res, err = h.Webhooks.Replay(ctx, "acme", ep.ID, protocol.WebhookReplay{From: &t0, To: &to})
	if err != nil || res.Queued != len(ids) {
		t.Fatalf("replay of the range: %+v %v, want %d queued (%v)", res, err, len(ids), ids)
	}
	waitDelivered(t, &mu, got, ids)
	mu.Lock()
	defer mu.Unlock()
	for id := range got {
		if !slices.Contains(ids, id) {
			t.Errorf("delivered %s, not an event of the replays", id)
		}
	}
}

func waitDelivered(t *testing.T, mu *sync.Mutex, got map[string]int, ids []string) {
	t.Helper()
	deadline, ok := t.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Minute)
	}
	for {
		mu.Lock()
		n := 0
		for _, id := range ids {
			if got[id] > 0 {
				n++
			}
		}
		mu.Unlock()
		if n == len(ids) {
			return
		}
		if time.Until(deadline) < 5*time.Second {
			t.Fatalf("%d of the events %v delivered", n, ids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
