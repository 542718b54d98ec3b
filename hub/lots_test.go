package hub_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
)

// TestPointsExpiryLoop: the hub's scheduled expiry (-points-expiry-every)
// journals points_expired for a lot once it is due, without anyone
// reading or burning the customer's points.
func TestPointsExpiryLoop(t *testing.T) {
	ctx := context.Background()
	h, err := hub.Open(ctx, hub.Options{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", MetricsAddr: "-",
		BootstrapKey: testKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PointsExpiryInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	exp := time.Now().Add(time.Second)
	if _, err := h.Ledger.Redeem(ctx, protocol.Redemption{Kind: protocol.KindEarn, Tenant: "acme", Store: "web", TxnID: "e1",
		Customer: "c1", Points: 25, Expires: exp.UnixMicro()}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the points_expired entry of the expiry loop", func() (bool, string) {
		es, err := h.Ledger.CustomerEntries(ctx, "acme", "c1", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range es {
			found = found || (e.Entry == pledger.EntryPointsExpired && e.Points == -25)
		}
		return found && len(es) == 2, fmt.Sprintf("%+v", es)
	})
	if rep, err := h.Ledger.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify %+v, %v", rep, err)
	}
}
