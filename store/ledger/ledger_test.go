package ledger_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/ledger"
)

const tenant protocol.TenantID = "acme"

// fixture is testdata/facts.json: the campaigns and codes the tests use.
type fixture struct {
	Tenant    protocol.TenantID `json:"tenant"`
	Campaigns map[protocol.CampaignID]struct {
		MaxCount    int64             `json:"max_count"`
		MaxDiscount int64             `json:"max_discount"`
		PerCustomer int64             `json:"per_customer"`
		Currency    protocol.Currency `json:"currency"`
		StoppedAt   time.Time         `json:"stopped_at"`
	} `json:"campaigns"`
	Codes map[protocol.CodeID]struct {
		MaxUses        int64 `json:"max_uses"`
		GiftCard       bool  `json:"gift_card"`
		InitialBalance int64 `json:"initial_balance"`
	} `json:"codes"`
}

// MustFacts loads testdata/facts.json into a MemFacts.
func MustFacts(tb testing.TB) *ledger.MemFacts {
	tb.Helper()
	b, err := os.ReadFile("testdata/facts.json")
	if err != nil {
		tb.Fatal(err)
	}
	var fx fixture
	if err := json.Unmarshal(b, &fx); err != nil {
		tb.Fatal(err)
	}
	f := &ledger.MemFacts{}
	for id, c := range fx.Campaigns {
		f.SetCampaign(fx.Tenant, id, ledger.CampaignFacts{MaxCount: c.MaxCount, MaxDiscount: c.MaxDiscount, PerCustomer: c.PerCustomer,
			Currency: c.Currency, StoppedAt: c.StoppedAt})
	}
	for id, c := range fx.Codes {
		f.SetCode(fx.Tenant, id, ledger.CodeFacts{MaxUses: c.MaxUses, GiftCard: c.GiftCard, InitialBalance: c.InitialBalance})
	}
	return f
}

// clock is a settable Now.
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

var t0 = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

// MustOpen opens a ledger on a temp file with the fixture facts.
func MustOpen(tb testing.TB) (*ledger.Ledger, *clock) {
	tb.Helper()
	c := &clock{t: t0}
	l, err := ledger.Open(context.Background(), migratedCopy(tb), ledger.Options{Facts: MustFacts(tb), Now: c.Now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		rep, err := l.Verify(context.Background())
		if err != nil {
			tb.Error(err)
		} else if !rep.OK() {
			tb.Errorf("ledger does not verify: %v", rep.Diffs)
		}
		l.Close()
	})
	return l, c
}

// red builds a redemption of agent seq.
func red(agent protocol.AgentID, seq uint64, mod func(*protocol.Redemption)) protocol.Redemption {
	r := protocol.Redemption{
		ID: protocol.RedemptionID{Agent: agent, Seq: seq}, Kind: protocol.KindRedeem, Tenant: tenant, Store: "store-" + protocol.StoreID(agent),
		TxnID: fmt.Sprintf("%s-%d", agent, seq), Campaign: "loyalty", Currency: "EUR", Discount: 100, OrderTot: 1000,
		HLC: ledger.HLCFromTime(t0), Offline: true,
	}
	if mod != nil {
		mod(&r)
	}
	return r
}

func reds(agent protocol.AgentID, seqs ...uint64) []protocol.Redemption {
	out := make([]protocol.Redemption, len(seqs))
	for i, s := range seqs {
		out[i] = red(agent, s, nil)
	}
	return out
}

func TestApplyBatch(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		l, _ := MustOpen(t)
		ack, cs, err := l.ApplyBatch(ctx, tenant, "till-1", reds("till-1", 1, 2, 3))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ack.Watermark, uint64(3); got != want || len(ack.Beyond) != 0 || len(cs) != 0 {
			t.Fatalf("ack = %+v, conflicts %v; want watermark %d", ack, cs, want)
		}
		b, err := l.Campaign(ctx, tenant, "loyalty")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := b, (ledger.CampaignBalance{Count: 3, Discount: 300, OrderValue: 3000}); got != want {
			t.Fatalf("balance = %+v, want %+v", got, want)
		}
	})
	t.Run("Duplicate", func(t *testing.T) {
		l, _ := MustOpen(t)
		for i := 0; i < 3; i++ { // redelivery of the same batch, and of a part of it
			if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", reds("till-1", 1, 2)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", reds("till-1", 2)); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := l.Campaign(ctx, tenant, "loyalty")
		if got, want := b.Count, int64(2); got != want {
			t.Fatalf("count = %d, want %d", got, want)
		}
		rep, err := l.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rep.Entries, int64(2); got != want {
			t.Fatalf("journal entries = %d, want %d", got, want)
		}
	})
	t.Run("OutOfOrder", func(t *testing.T) {
		l, _ := MustOpen(t)
		ack, _, err := l.ApplyBatch(ctx, tenant, "till-1", reds("till-1", 6, 1, 2, 5))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint(ack), fmt.Sprint(protocol.Ack{Watermark: 2, Beyond: []uint64{5, 6}}); got != want {
			t.Fatalf("ack = %s, want %s", got, want)
		}
		rs, ok := ledger.Gap(ack)
		if got, want := rs, (protocol.Resend{From: 3, To: 4}); !ok || got != want {
			t.Fatalf("gap = %+v %v, want %+v", got, ok, want)
		}
		ack, _, err = l.ApplyBatch(ctx, tenant, "till-1", reds("till-1", 4, 3))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fmt.Sprint(ack), fmt.Sprint(protocol.Ack{Watermark: 6}); got != want {
			t.Fatalf("ack = %s, want %s", got, want)
		}
		if _, ok := ledger.Gap(ack); ok {
			t.Fatal("gap after filling it")
		}
		a, err := l.Agent(ctx, tenant, "till-1")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := a.Watermark, uint64(6); got != want {
			t.Fatalf("stored watermark = %d, want %d", got, want)
		}
		b, _ := l.Campaign(ctx, tenant, "loyalty")
		if got, want := b.Count, int64(6); got != want {
			t.Fatalf("count = %d, want %d", got, want)
		}
	})
	t.Run("AgentsAreSeparate", func(t *testing.T) {
		l, _ := MustOpen(t)
		res, err := l.ApplyBatches(ctx, []ledger.Batch{
			{Tenant: tenant, Agent: "till-1", Redemptions: reds("till-1", 1, 2)},
			{Tenant: tenant, Agent: "till-2", Redemptions: reds("till-2", 1)},
			{Tenant: "other", Agent: "till-1", Redemptions: []protocol.Redemption{red("till-1", 1, func(r *protocol.Redemption) { r.Tenant = "other" })}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []uint64{2, 1, 1} {
			if res[i].Err != nil || res[i].Ack.Watermark != want {
				t.Fatalf("result %d = %+v, want watermark %d", i, res[i], want)
			}
		}
	})
	// A bad fact is quarantined, counted toward the watermark and listed
	// with its bytes; the facts around it apply (the original ledger
	// refused the whole batch, forever).
	for _, tc := range []struct {
		name  string
		mod   func(*protocol.Redemption)
		code  protocol.Code
		field string
	}{
		{"QuarantineOtherAgent", func(r *protocol.Redemption) { r.ID.Agent = "till-2" }, protocol.CodeForbidden, "id.agent"},
		{"QuarantineOtherTenant", func(r *protocol.Redemption) { r.Tenant = "evil" }, protocol.CodeForbidden, "tenant"},
		{"QuarantineKind", func(r *protocol.Redemption) { r.Kind = 99 }, protocol.CodeInvalidInput, "kind"},
		// Gift card facts (giftcards.go): a top-up of nothing, a load on
		// a redeem, a sale with no card, a cash-out of nothing.
		{"QuarantineTopUpZero", func(r *protocol.Redemption) { r.Kind, r.Code, r.Points = protocol.KindTopUp, "CARD1", 0 }, protocol.CodeInvalidInput, "load"},
		{"QuarantineLoadOnRedeem", func(r *protocol.Redemption) { r.Load = 5 }, protocol.CodeInvalidInput, "load"},
		{"QuarantineIssueNoCode", func(r *protocol.Redemption) { r.Kind, r.Load, r.Points = protocol.KindIssue, 5_00, 0 }, protocol.CodeInvalidInput, "code"},
		{"QuarantineCashOutZero", func(r *protocol.Redemption) { r.Kind, r.Code, r.Points = protocol.KindCashOut, "CARD1", 0 }, protocol.CodeInvalidInput, "spend"},
		{"QuarantineNegativeDiscount", func(r *protocol.Redemption) { r.Discount = -5 }, protocol.CodeInvalidInput, "discount"},
		{"QuarantineRollbackWithoutRef", func(r *protocol.Redemption) { r.Kind = protocol.KindRollback }, protocol.CodeInvalidInput, "ref"},
		{"QuarantineBadCampaign", func(r *protocol.Redemption) { r.Campaign = "a/b" }, protocol.CodeInvalidInput, "campaign"},
		{"QuarantineLongOrderID", func(r *protocol.Redemption) { r.OrderID = strings.Repeat("o", 129) }, protocol.CodeInvalidInput, "order_id"},
		{"QuarantineCustomerSpace", func(r *protocol.Redemption) { r.Customer = "a b" }, protocol.CodeInvalidInput, "customer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := MustOpen(t)
			poison := red("till-1", 2, tc.mod)
			batch := []protocol.Redemption{red("till-1", 1, nil), poison, red("till-1", 3, nil)}
			res, err := l.ApplyBatches(ctx, []ledger.Batch{{Tenant: tenant, Agent: "till-1", Redemptions: batch}})
			if err != nil {
				t.Fatal(err)
			}
			r := res[0]
			if r.Err != nil || r.Ack.Watermark != 3 || len(r.Ack.Beyond) != 0 {
				t.Fatalf("result = %+v, want watermark 3", r)
			}
			if len(r.Quarantined) != 1 || r.Quarantined[0].Seq != 2 || r.Quarantined[0].Code != tc.code || r.Quarantined[0].Field != tc.field {
				t.Fatalf("quarantined = %+v, want seq 2 %s on %s", r.Quarantined, tc.code, tc.field)
			}
			if b, _ := l.Campaign(ctx, tenant, "loyalty"); b.Count != 2 {
				t.Fatalf("campaign count = %d, want 2 (the good facts)", b.Count)
			}
			want, _ := protocol.EncMode.Marshal(poison)
			qs, err := l.Quarantine(ctx, tenant, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(qs) != 1 || qs[0].Agent != "till-1" || qs[0].Seq != 2 || !bytes.Equal(qs[0].Raw, want) || qs[0].Message == "" {
				t.Fatalf("listed = %+v", qs)
			}
			if other, _ := l.Quarantine(ctx, "evil", 0, 0); len(other) != 0 {
				t.Fatalf("a forged tenant sees %+v", other)
			}
			// A resend of the same batch changes nothing and is acked alike.
			res, err = l.ApplyBatches(ctx, []ledger.Batch{{Tenant: tenant, Agent: "till-1", Redemptions: batch}})
			if err != nil || res[0].Ack.Watermark != 3 || len(res[0].Quarantined) != 0 {
				t.Fatalf("resend = %+v, %v", res, err)
			}
			// So does a good fact under the quarantined seq.
			if ack, _, err := l.ApplyBatch(ctx, tenant, "till-1", reds("till-1", 2)); err != nil || ack.Watermark != 3 {
				t.Fatalf("good fact under a quarantined seq: %+v %v", ack, err)
			}
			if b, _ := l.Campaign(ctx, tenant, "loyalty"); b.Count != 2 {
				t.Fatalf("campaign count = %d after a fact under a quarantined seq", b.Count)
			}
			rep, err := l.Verify(ctx)
			if err != nil || !rep.OK() || rep.Entries != 2 {
				t.Fatalf("verify = %+v, %v", rep, err)
			}
		})
	}
	t.Run("QuarantineMalformedKeepsRawBytes", func(t *testing.T) {
		l, _ := MustOpen(t)
		raw := []byte{0xa2, 0x01, 0xa2, 0x01, 0x66, 't', 'i', 'l', 'l', '-', '1', 0x02, 0x02, 0x02, 0x63, 'b', 'a', 'd'}
		_, id, derr := protocol.DecodeFact(raw)
		if derr == nil || id.Seq != 2 {
			t.Fatalf("fixture decodes: %v %v", id, derr)
		}
		res, err := l.ApplyBatches(ctx, []ledger.Batch{{Tenant: tenant, Agent: "till-1",
			Redemptions: []protocol.Redemption{red("till-1", 1, nil), {ID: id}, red("till-1", 3, nil), red("till-1", 0, nil)},
			Raw:         [][]byte{nil, raw, nil, nil},
			Malformed:   []error{nil, derr, nil, nil},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if r := res[0]; r.Err != nil || r.Ack.Watermark != 3 || r.Dropped != 1 || len(r.Quarantined) != 1 || r.Quarantined[0].Code != protocol.CodeMessageMalformed {
			t.Fatalf("result = %+v", r)
		}
		qs, _ := l.Quarantine(ctx, tenant, 0, 10)
		if len(qs) != 1 || !bytes.Equal(qs[0].Raw, raw) {
			t.Fatalf("listed = %+v", qs)
		}
		if rep, err := l.Verify(ctx); err != nil || !rep.OK() {
			t.Fatalf("verify = %+v, %v", rep, err)
		}
	})
	t.Run("ErrBadIdentity", func(t *testing.T) {
		l, _ := MustOpen(t)
		_, _, err := l.ApplyBatch(ctx, tenant, "till 1", reds("till 1", 1))
		if got, want := protocol.ErrorCode(err), protocol.CodeInvalidInput; got != want {
			t.Fatalf("error = %v, want %s", err, want)
		}
		if rep, _ := l.Verify(ctx); rep.Entries != 0 {
			t.Fatalf("refused batch left %d journal entries", rep.Entries)
		}
	})
	t.Run("ErrHubAgent", func(t *testing.T) {
		l, _ := MustOpen(t)
		_, _, err := l.ApplyBatch(ctx, tenant, protocol.HubSender, reds(protocol.HubSender, 1))
		if got, want := protocol.ErrorCode(err), protocol.CodeForbidden; got != want {
			t.Fatalf("error = %v, want %s", err, want)
		}
	})
}

func TestConflicts(t *testing.T) {
	ctx := context.Background()
	stopped, _ := time.Parse(time.RFC3339, "2026-06-01T12:00:00Z")
	for _, tc := range []struct {
		name      string
		a, b      func(*protocol.Redemption) // till-1 seq 1, till-2 seq 1
		kind      ledger.ConflictKind
		wantOther bool
	}{
		{"CodeReused",
			func(r *protocol.Redemption) { r.Code = "ONCE-1" },
			func(r *protocol.Redemption) { r.Code = "ONCE-1" },
			ledger.ConflictCodeReused, true},
		{"GiftCardOverdrawn",
			func(r *protocol.Redemption) { r.Code, r.Spend, r.Campaign = "GIFT-0001", 3000, "" },
			func(r *protocol.Redemption) { r.Code, r.Spend, r.Campaign = "GIFT-0001", 3000, "" },
			ledger.ConflictGiftCardOverdraw, true},
		{"CustomerLimitAcrossStores",
			func(r *protocol.Redemption) { r.Campaign, r.Customer = "summer", "alice" },
			func(r *protocol.Redemption) { r.Campaign, r.Customer = "summer", "alice" },
			ledger.ConflictCustomerLimit, true},
		{"AfterKillSwitch",
			func(r *protocol.Redemption) {
				r.Campaign, r.HLC = "stopped", ledger.HLCFromTime(stopped.Add(-time.Minute))
			},
			func(r *protocol.Redemption) {
				r.Campaign, r.HLC = "stopped", ledger.HLCFromTime(stopped.Add(time.Minute))|7
			},
			ledger.ConflictAfterKillSwitch, false},
		{"AllowanceOverrun",
			func(r *protocol.Redemption) { r.Campaign = "loyalty" },
			func(r *protocol.Redemption) { r.Campaign = "budget100" },
			ledger.ConflictAllowanceOverrun, false},
		{"PointsOverdrawn",
			func(r *protocol.Redemption) { r.Kind, r.Customer, r.Points = protocol.KindEarn, "bob", 50 },
			func(r *protocol.Redemption) { r.Kind, r.Customer, r.Points = protocol.KindBurn, "bob", -80 },
			ledger.ConflictPointsOverdrawn, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, clk := MustOpen(t)
			clk.Add(3 * time.Hour) // the facts arrive after the kill switch of the fixture
			_, cs, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{red("till-1", 1, tc.a)})
			if err != nil || len(cs) != 0 {
				t.Fatalf("first side: conflicts %v, err %v", cs, err)
			}
			_, cs, err = l.ApplyBatch(ctx, tenant, "till-2", []protocol.Redemption{red("till-2", 1, tc.b)})
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != 1 || cs[0].Kind != tc.kind {
				t.Fatalf("conflicts = %+v, want one %s", cs, tc.kind)
			}
			c := cs[0]
			if got, want := c.Redemption, (protocol.RedemptionID{Agent: "till-2", Seq: 1}); got != want {
				t.Fatalf("conflict redemption = %v, want %v", got, want)
			}
			if tc.wantOther {
				if c.Other == nil || *c.Other != (protocol.RedemptionID{Agent: "till-1", Seq: 1}) {
					t.Fatalf("conflict other side = %v, want till-1/1", c.Other)
				}
			}
			stored, err := l.Conflicts(ctx, tenant, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(stored) != 1 || stored[0].Kind != tc.kind || stored[0].ID != c.ID || fmt.Sprint(stored[0].Other) != fmt.Sprint(c.Other) {
				t.Fatalf("stored conflicts = %+v, want %+v", stored, c)
			}
			// Both facts are recorded, nothing is dropped.
			rep, _ := l.Verify(ctx)
			if got, want := rep.Entries, int64(2); got != want {
				t.Fatalf("journal entries = %d, want %d", got, want)
			}
			// Redelivery of the conflicting batch records nothing new.
			if _, cs, _ := l.ApplyBatch(ctx, tenant, "till-2", []protocol.Redemption{red("till-2", 1, tc.b)}); len(cs) != 0 {
				t.Fatalf("redelivery raised conflicts %v", cs)
			}
		})
	}
	t.Run("FutureTime", func(t *testing.T) {
		l, _ := MustOpen(t) // the hub's clock is t0
		ahead := red("till-1", 1, func(r *protocol.Redemption) { r.HLC = ledger.HLCFromTime(t0.Add(ledger.MaxClockSkew + time.Second)) })
		near := red("till-1", 2, func(r *protocol.Redemption) { r.HLC = ledger.HLCFromTime(t0.Add(ledger.MaxClockSkew)) })
		_, cs, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{ahead, near})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].Kind != ledger.ConflictFutureTime || cs[0].Redemption.Seq != 1 {
			t.Fatalf("conflicts = %+v, want one future_time for seq 1", cs)
		}
	})
	t.Run("GiftCardBalance", func(t *testing.T) {
		l, _ := MustOpen(t)
		gift := func(r *protocol.Redemption) { r.Code, r.Spend, r.Campaign = "GIFT-0001", 3000, "" }
		if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{red("till-1", 1, gift), red("till-1", 2, gift)}); err != nil {
			t.Fatal(err)
		}
		spent, _ := l.GiftCardSpent(ctx, tenant, "GIFT-0001")
		if got, want := 5000-spent, int64(-1000); got != want {
			t.Fatalf("gift card balance = %d, want %d", got, want)
		}
	})
}

func TestRollback(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	orig := red("till-1", 1, func(r *protocol.Redemption) {
		r.Code, r.Customer, r.Campaign, r.Points = "ONCE-1", "alice", "summer", 10
	})
	undo := orig
	undo.ID.Seq, undo.Kind, undo.Ref = 2, protocol.KindRollback, &orig.ID
	again := undo
	again.ID.Seq = 3
	if _, cs, err := l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{orig, undo, again}); err != nil || len(cs) != 0 {
		t.Fatalf("apply: %v %v", cs, err)
	}
	b, _ := l.Campaign(ctx, tenant, "summer")
	uses, _ := l.CodeUses(ctx, tenant, "ONCE-1")
	pts, _ := l.Points(ctx, tenant, "alice")
	if b.Count != 0 || b.Discount != 0 || uses != 0 || pts != 0 {
		t.Fatalf("after rollback: balance %+v, uses %d, points %d; want zeros", b, uses, pts)
	}
	// The code is free again: another till may use it without a conflict.
	if _, cs, err := l.ApplyBatch(ctx, tenant, "till-2", []protocol.Redemption{red("till-2", 1, func(r *protocol.Redemption) { r.Code = "ONCE-1" })}); err != nil || len(cs) != 0 {
		t.Fatalf("reuse after rollback: %v %v", cs, err)
	}
}

func TestRedeem(t *testing.T) {
	ctx := context.Background()
	online := func(mod func(*protocol.Redemption)) protocol.Redemption {
		r := protocol.Redemption{Kind: protocol.KindRedeem, Tenant: tenant, Store: "web", Campaign: "loyalty", Currency: "EUR", Discount: 100, OrderTot: 1000}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	for _, tc := range []struct {
		name  string
		setup func(*ledger.Ledger, *clock)
		r     protocol.Redemption
		code  protocol.Code
	}{
		{"OK", nil, online(func(r *protocol.Redemption) { r.Code = "ONCE-1" }), ""},
		{"ErrCampaignStopped", func(_ *ledger.Ledger, c *clock) { c.Add(3 * time.Hour) }, // past the fixture's stop time
			online(func(r *protocol.Redemption) { r.Campaign = "stopped" }), protocol.CodeCampaignStopped},
		{"ErrCampaignUnknown", nil, online(func(r *protocol.Redemption) { r.Campaign = "nope" }), protocol.CodeCampaignUnknown},
		{"ErrCodeUnknown", nil, online(func(r *protocol.Redemption) { r.Code = "NOPE" }), protocol.CodeUnknownCode},
		{"ErrCodeUsed", func(l *ledger.Ledger, _ *clock) {
			l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{red("till-1", 1, func(r *protocol.Redemption) { r.Code = "ONCE-2" })})
		}, online(func(r *protocol.Redemption) { r.Code = "ONCE-2" }), protocol.CodeCodeUsed},
		{"ErrInsufficientBalance", nil, online(func(r *protocol.Redemption) { r.Campaign, r.Code, r.Spend = "", "GIFT-0001", 5001 }), protocol.CodeInsufficientFunds},
		{"ErrCustomerRequired", nil, online(func(r *protocol.Redemption) { r.Campaign = "summer" }), protocol.CodeCustomerRequired},
		{"ErrCustomerLimit", func(l *ledger.Ledger, _ *clock) {
			l.ApplyBatch(ctx, tenant, "till-1", []protocol.Redemption{red("till-1", 1, func(r *protocol.Redemption) { r.Campaign, r.Customer = "summer", "alice" })})
		}, online(func(r *protocol.Redemption) { r.Campaign, r.Customer = "summer", "alice" }), protocol.CodeCustomerLimit},
		{"ErrInsufficientPoints", nil, online(func(r *protocol.Redemption) { r.Kind, r.Customer, r.Points = protocol.KindBurn, "bob", -1 }), protocol.CodeInsufficientPts},
		{"ErrBudgetExhausted", func(l *ledger.Ledger, _ *clock) {
			for i := 0; i < 20; i++ { // 20 agents hold all 100 between them (5 each)
				if _, err := l.GrantAllowance(ctx, tenant, protocol.AgentID(fmt.Sprintf("till-%d", i)), "budget100"); err != nil {
					panic(err)
				}
			}
		}, online(func(r *protocol.Redemption) { r.Campaign = "budget100" }), protocol.CodeBudgetExhausted},
		{"ErrDiscountBudget", nil, online(func(r *protocol.Redemption) { r.Campaign, r.Discount = "money", 10001 }), protocol.CodeBudgetExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, c := MustOpen(t)
			if tc.setup != nil {
				tc.setup(l, c)
			}
			got, err := l.Redeem(ctx, tc.r)
			if code := protocol.ErrorCode(err); code != tc.code {
				t.Fatalf("Redeem error = %v, want code %q", err, tc.code)
			}
			if tc.code != "" {
				return
			}
			if got.ID.Agent != protocol.HubSender || got.ID.Seq != 1 {
				t.Fatalf("id = %v, want hub/1", got.ID)
			}
			b, _ := l.Campaign(ctx, tenant, got.Campaign)
			if b.Count != 1 {
				t.Fatalf("count = %d, want 1", b.Count)
			}
		})
	}
	t.Run("Idempotent", func(t *testing.T) {
		l, _ := MustOpen(t)
		r := online(func(r *protocol.Redemption) { r.TxnID = "web-42" })
		first, err := l.Redeem(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		second, err := l.Redeem(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if first.ID != second.ID {
			t.Fatalf("repeat got %v, want %v", second.ID, first.ID)
		}
		r.Discount++
		if _, err := l.Redeem(ctx, r); protocol.ErrorCode(err) != protocol.CodeIdempotencyReuse {
			t.Fatalf("changed repeat: %v, want %s", err, protocol.CodeIdempotencyReuse)
		}
		b, _ := l.Campaign(ctx, tenant, "loyalty")
		if b.Count != 1 {
			t.Fatalf("count = %d, want 1", b.Count)
		}
	})
	t.Run("Rollback", func(t *testing.T) {
		l, _ := MustOpen(t)
		first, err := l.Redeem(ctx, online(func(r *protocol.Redemption) { r.Code = "ONCE-1" }))
		if err != nil {
			t.Fatal(err)
		}
		undo := protocol.Redemption{Kind: protocol.KindRollback, Tenant: tenant, Ref: &first.ID}
		if _, err := l.Redeem(ctx, undo); err != nil {
			t.Fatal(err)
		}
		undo.TxnID = "x"
		if _, err := l.Redeem(ctx, undo); protocol.ErrorCode(err) != protocol.CodeAlreadyRolledBack {
			t.Fatalf("second rollback: %v", err)
		}
		if _, err := l.Redeem(ctx, online(func(r *protocol.Redemption) { r.Code = "ONCE-1" })); err != nil {
			t.Fatalf("code after rollback: %v", err)
		}
	})
}

// TestRedeemConcurrentSingleUse: 50 concurrent online redemptions of a
// single-use code give exactly one success.
func TestRedeemConcurrentSingleUse(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	var ok, used atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.Redeem(ctx, protocol.Redemption{Kind: protocol.KindRedeem, Tenant: tenant, Store: "web", TxnID: fmt.Sprint("web-", i),
				Campaign: "loyalty", Code: "ONCE-1", Currency: "EUR", Discount: 100})
			switch protocol.ErrorCode(err) {
			case "":
				ok.Add(1)
			case protocol.CodeCodeUsed:
				used.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || used.Load() != 49 {
		t.Fatalf("successes = %d, code_already_used = %d; want 1 and 49", ok.Load(), used.Load())
	}
	if uses, _ := l.CodeUses(ctx, tenant, "ONCE-1"); uses != 1 {
		t.Fatalf("uses = %d, want 1", uses)
	}
}

// TestAllowanceBudgetHolds drains a 100-redemption budget with 20 agents
// working concurrently through allowances (plus the hub's online channel),
// and checks after every step that used + escrowed never passes 100.
func TestAllowanceBudgetHolds(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	const budget = 100
	check := func() {
		b, err := l.Campaign(ctx, tenant, "budget100")
		if err != nil {
			t.Error(err)
			return
		}
		if b.Count+b.ReservedCount > budget {
			t.Errorf("used %d + escrowed %d > budget %d", b.Count, b.ReservedCount, budget)
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		agent := protocol.AgentID(fmt.Sprintf("till-%02d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seq uint64
			for round := 0; ; round++ {
				a, err := l.GrantAllowance(ctx, tenant, agent, "budget100")
				if protocol.ErrorCode(err) == protocol.CodeBudgetExhausted {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				// Use part of the allowance offline (at most 3 per round, so
				// agents interleave), then give the rest back every other round.
				n := min(a.Count, 3)
				var batch []protocol.Redemption
				for j := int64(0); j < n; j++ {
					seq++
					batch = append(batch, red(agent, seq, func(r *protocol.Redemption) { r.Campaign = "budget100" }))
				}
				if _, cs, err := l.ApplyBatch(ctx, tenant, agent, batch); err != nil || len(cs) != 0 {
					t.Errorf("%s: conflicts %v, err %v", agent, cs, err)
					return
				}
				check()
				if round%2 == 1 {
					left, _, _ := l.Outstanding(ctx, tenant, agent, "budget100")
					if _, err := l.ReturnAllowance(ctx, protocol.Allowance{Tenant: tenant, Agent: agent, Campaign: "budget100", Count: left}); err != nil {
						t.Error(err)
						return
					}
				}
				check()
			}
		}()
	}
	wg.Add(1)
	go func() { // the web shop competes for the same budget
		defer wg.Done()
		for i := 0; ; i++ {
			_, err := l.Redeem(ctx, protocol.Redemption{Kind: protocol.KindRedeem, Tenant: tenant, Store: "web", Campaign: "budget100", Currency: "EUR", Discount: 1})
			if protocol.ErrorCode(err) == protocol.CodeBudgetExhausted {
				b, _ := l.Campaign(ctx, tenant, "budget100")
				if b.Count+b.ReservedCount >= budget {
					return
				}
				time.Sleep(time.Millisecond)
				continue
			}
			if err != nil {
				t.Error(err)
				return
			}
			check()
		}
	}()
	wg.Wait()
	b, err := l.Campaign(ctx, tenant, "budget100")
	if err != nil {
		t.Fatal(err)
	}
	// Agents that stopped may still hold escrow; what is used plus held is
	// exactly the budget, and never more.
	if got, want := b.Count+b.ReservedCount, int64(budget); got != want {
		t.Fatalf("used %d + escrowed %d = %d, want %d", b.Count, b.ReservedCount, got, want)
	}
	if cs, _ := l.Conflicts(ctx, tenant, 0, 0); len(cs) != 0 {
		t.Fatalf("conflicts: %v", cs)
	}
}

func TestGrantAllowance(t *testing.T) {
	ctx := context.Background()
	t.Run("SizedFromRate", func(t *testing.T) {
		l, c := MustOpen(t)
		a, err := l.GrantAllowance(ctx, tenant, "till-1", "budget100")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := a.Count, int64(ledger.DefaultAllowanceMinCount); got != want || a.Amount != -1 || a.Grant != 1 {
			t.Fatalf("first grant = %+v, want count %d (the minimum), amount -1, grant 1", a, want)
		}
		// 5 redemptions in the last hour → target 5 × 4h/1h = 20; the
		// agent used all 5 so it holds 0 and gets 20.
		var batch []protocol.Redemption
		for i := uint64(1); i <= 5; i++ {
			batch = append(batch, red("till-1", i, func(r *protocol.Redemption) { r.Campaign = "budget100" }))
		}
		if _, cs, err := l.ApplyBatch(ctx, tenant, "till-1", batch); err != nil || len(cs) != 0 {
			t.Fatal(cs, err)
		}
		c.Add(time.Minute)
		a, err = l.GrantAllowance(ctx, tenant, "till-1", "budget100")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := a.Count, int64(20); got != want || a.Grant != 2 {
			t.Fatalf("second grant = %+v, want count %d, grant 2", a, want)
		}
		// Asking again gives nothing: the agent holds its target.
		if a, err = l.GrantAllowance(ctx, tenant, "till-1", "budget100"); err != nil || a.Count != 0 {
			t.Fatalf("third grant = %+v, %v; want count 0", a, err)
		}
	})
	t.Run("RateWindow", func(t *testing.T) {
		// Only the redemptions received in the last hour size a grant:
		// 6 received 2 h ago and 3 a minute ago → 3 × 4h/1h = 12.
		l, c := MustOpen(t)
		if _, err := l.GrantAllowance(ctx, tenant, "till-1", "budget100"); err != nil {
			t.Fatal(err)
		}
		apply := func(from, to uint64) {
			var batch []protocol.Redemption
			for i := from; i <= to; i++ {
				batch = append(batch, red("till-1", i, func(r *protocol.Redemption) { r.Campaign = "budget100" }))
			}
			if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", batch); err != nil {
				t.Fatal(err)
			}
		}
		apply(1, 6)
		c.Add(2 * time.Hour)
		apply(7, 9)
		c.Add(time.Minute)
		a, err := l.GrantAllowance(ctx, tenant, "till-1", "budget100")
		if err != nil {
			t.Fatal(err)
		}
		if a.Count != 12 {
			t.Fatalf("grant = %+v, want count 12 (3 redemptions in the window)", a)
		}
	})
	t.Run("Amount", func(t *testing.T) {
		l, _ := MustOpen(t)
		a, err := l.GrantAllowance(ctx, tenant, "till-1", "money")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := a.Amount, int64(ledger.DefaultAllowanceMinAmount); got != want || a.Count != -1 {
			t.Fatalf("grant = %+v, want amount %d and count -1", a, want)
		}
	})
	t.Run("Unlimited", func(t *testing.T) {
		l, _ := MustOpen(t)
		a, err := l.GrantAllowance(ctx, tenant, "till-1", "loyalty")
		if err != nil || a.Count != -1 || a.Amount != -1 {
			t.Fatalf("grant = %+v, %v; want -1/-1", a, err)
		}
	})
	for _, tc := range []struct {
		name, campaign string
		agent          protocol.AgentID
		code           protocol.Code
	}{
		{"ErrCampaignUnknown", "nope", "till-1", protocol.CodeCampaignUnknown},
		{"ErrHub", "budget100", protocol.HubSender, protocol.CodeInvalidInput},
		{"ErrBadAgent", "budget100", "a b", protocol.CodeInvalidInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := MustOpen(t)
			if _, err := l.GrantAllowance(ctx, tenant, tc.agent, protocol.CampaignID(tc.campaign)); protocol.ErrorCode(err) != tc.code {
				t.Fatalf("error = %v, want %s", err, tc.code)
			}
		})
	}
	t.Run("ReturnCapped", func(t *testing.T) {
		l, _ := MustOpen(t)
		if _, err := l.GrantAllowance(ctx, tenant, "till-1", "budget100"); err != nil {
			t.Fatal(err)
		}
		got, err := l.ReturnAllowance(ctx, protocol.Allowance{Tenant: tenant, Agent: "till-1", Campaign: "budget100", Count: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if got.Count != ledger.DefaultAllowanceMinCount {
			t.Fatalf("returned %d, want %d (all outstanding, no more)", got.Count, ledger.DefaultAllowanceMinCount)
		}
		if n, _, _ := l.Outstanding(ctx, tenant, "till-1", "budget100"); n != 0 {
			t.Fatalf("outstanding after return = %d", n)
		}
	})
}

func TestVerifyDetectsTampering(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	l, err := ledger.Open(ctx, path, ledger.Options{Facts: MustFacts(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", reds("till-1", 1, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.GrantAllowance(ctx, tenant, "till-1", "budget100"); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(ctx)
	if err != nil || !rep.OK() || rep.Rows == 0 {
		t.Fatalf("clean ledger: %+v, %v", rep, err)
	}
	for _, q := range []string{
		`UPDATE ledger_campaigns SET discount = discount + 1`,
		`UPDATE ledger_allowances SET granted_count = 99 WHERE campaign = 'budget100'`,
		`INSERT INTO ledger_codes (tenant, code, uses) VALUES ('acme', 'GHOST', 3)`,
	} {
		if _, err := l.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	rep, err = l.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rep.Diffs), 3; got != want {
		t.Fatalf("diffs = %v, want %d", rep.Diffs, want)
	}
}

func TestSharedDatabase(t *testing.T) {
	// The ledger's migrations coexist with another store's in one file.
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "hub.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE catalog_x (id INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		l, err := ledger.New(ctx, db, ledger.Options{Facts: &ledger.MemFacts{}})
		if err != nil {
			t.Fatal(err)
		}
		l.Close() // does not close db
	}
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
}
