package chaos_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/chaos"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/proc"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// TestHoldSurvivesHubKill: a till asks online first for the single-use
// code and the hub holds it; the hub is SIGKILLed and restarted on the
// same data. The hold is in the ledger database, so the restarted hub
// still refuses the code to a second till and to the web shop, until the
// hold expires (-hold-ttl, short here), after which the code is free
// again (the first till's sale never arrived). Before, holds lived in the
// hub's memory and the restarted hub accepted the code at once.
func TestHoldSurvivesHubKill(t *testing.T) {
	const ttl = 15 * time.Second
	t.Setenv("PUNCHCARD_HOLD_TTL", ttl.String()) // the hub process inherits it
	e := chaos.Setup(t, 0, 0, "")
	ctx := context.Background()
	secrets := map[protocol.AgentID]string{}
	till := func(id protocol.AgentID, st protocol.StoreID) cluster.HubAPI {
		reg, err := e.Admin.RegisterAgent(ctx, chaos.Tenant, id, snapshot.Store{ID: st, TimeZone: "Europe/Berlin"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		secrets[id] = reg.Secret
		return e.C.Platform.As(reg.Secret)
	}
	one, two := till("till-1", "store-1"), till("till-2", "store-2")
	authorize := func(api cluster.HubAPI, txn string, hold bool) (protocol.Code, bool) {
		t.Helper()
		in := decide.AuthorizeRequest{TxnID: txn, Hold: hold,
			Order:       protocol.Order{ID: "o-" + txn, Currency: chaos.Currency, Lines: []protocol.Line{{SKU: "tee", Quantity: 1, UnitPrice: 20_00}}},
			Redeemables: []decide.AuthorizeInput{{Code: chaos.OnceCode}}}
		var out decide.AuthorizeResponse
		if err := api.C.Do(ctx, http.MethodPost, decide.PathAuthorize, in, &out); err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Decision.Results {
			if r.Index == 0 {
				return r.Reason, out.Held
			}
		}
		t.Fatalf("no result for the code: %+v", out)
		return "", false
	}
	// taken is at or before the hub's clock when it takes the hold. The
	// hub times the hold by the wall clock, so the test does too
	// (Round(0) drops the monotonic reading): a VM's wall clock stepped
	// against the monotonic one made the code free "14.95 s" after a 15 s
	// hold in a CI run.
	taken := time.Now().Round(0)
	elapsed := func() time.Duration { return time.Now().Round(0).Sub(taken) }
	if reason, held := authorize(one, "sale-1", true); reason != "" || !held {
		t.Fatalf("first till: reason %q held %v, want the code applied and held", reason, held)
	}
	if reason, _ := authorize(two, "sale-2", false); reason != protocol.CodeCodeUsed {
		t.Fatalf("second till before the kill: %q, want %s", reason, protocol.CodeCodeUsed)
	}
	if err := e.C.Hub.Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	<-e.C.Hub.Proc.Done()
	if err := e.C.Hub.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	reason, _ := authorize(two, "sale-2", false)
	if elapsed() < ttl && reason != protocol.CodeCodeUsed {
		t.Fatalf("second till after the restart: %q, want %s: the hold was lost", reason, protocol.CodeCodeUsed)
	}
	web := cluster.OnlineRequest{Store: cluster.OnlineStore{ID: "web", TimeZone: "Europe/Berlin"},
		Order:       protocol.Order{ID: "o-web", Currency: chaos.Currency, Lines: []protocol.Line{{SKU: "tee", Quantity: 1, UnitPrice: 20_00}}},
		Redeemables: []cluster.Presented{{Code: chaos.OnceCode}}}
	out, err := e.Admin.Validate(ctx, chaos.Tenant, web)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Decision.Results) == 0 || out.Decision.Results[0].Reason != protocol.CodeCodeUsed {
		if elapsed() < ttl {
			t.Fatalf("web shop after the restart: %+v, want %s", out.Decision.Results, protocol.CodeCodeUsed)
		}
	}
	// A second hub process on the same database file (the start of
	// several hubs) counts the hold too.
	bin, err := cluster.FindBinary(chaos.Build(t), cluster.HubBinary)
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.C.Sup.StartReady(ctx, proc.Spec{Name: "hub-2", Path: bin,
		Args:     []string{"-http", "127.0.0.1:0", "-data", e.C.Hub.DataDir, "-metrics", "-", "-mqtt", "127.0.0.1:0"},
		ReadyLog: regexp.MustCompile(`"msg":"hub: HTTP API listening","addr":"([^"]+)"`), ReadyURL: "http://{addr}/healthz"})
	if err != nil {
		t.Fatal(err)
	}
	two2 := cluster.HubAPI{C: cluster.NewClient("http://"+second.Reported()[1], secrets["till-2"])}
	if reason, _ := authorize(two2, "sale-2", false); elapsed() < ttl && reason != protocol.CodeCodeUsed {
		t.Fatalf("second till at a second hub on the database: %q, want %s", reason, protocol.CodeCodeUsed)
	}
	if err := second.Stop(); err != nil {
		t.Logf("stopping the second hub: %v", err)
	}
	// The first till's sale never arrives: the hold expires, and the code
	// is free again (polled, no fixed wait).
	testutil.Eventually(t, fmt.Sprintf("the hold to expire (ttl %v)", ttl), func() (bool, string) {
		reason, held := authorize(two, "sale-3", true)
		return reason == "" && held, fmt.Sprintf("reason %q held %v", reason, held)
	})
	if elapsed() < ttl {
		t.Fatalf("the code was free %v after the hold, before its ttl %v", elapsed(), ttl)
	}
}
