package chaos_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/chaos"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/netcut"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/wire"
)

// cardBook is what the POS was told about each gift card: every sale and
// top-up answered (its fact), and what was spent from the card.
type cardBook struct {
	mu     sync.Mutex
	loaded map[string]int64 // card number → sale + top-ups answered
	spent  map[string]int64
	facts  []cluster.Acked
	seen   map[int64]string  // till seq → txn, to catch one fact told twice
	seqOf  map[string]uint64 // txn → the seq its answer named
}

func newCardBook() *cardBook {
	return &cardBook{loaded: map[string]int64{}, spent: map[string]int64{}, seen: map[int64]string{}, seqOf: map[string]uint64{}}
}

// told records an answered sale or top-up. A retry answered from the
// till's stored answer (same txn, same seq) is recorded once.
func (b *cardBook) told(t *testing.T, kind protocol.RedemptionKind, agentID protocol.AgentID, txn, code string, amount int64, out wire.GiftCard) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if out.Seq == 0 {
		t.Errorf("%s %s: the answer names no fact (seq 0): %+v", kind, txn, out)
		return
	}
	if prev, ok := b.seqOf[txn]; ok && prev != out.Seq {
		t.Errorf("%s %s answered as fact %d, and again as fact %d: recorded twice", kind, txn, prev, out.Seq)
	}
	b.seqOf[txn] = out.Seq
	if prev, ok := b.seen[int64(out.Seq)]; ok {
		if prev != txn {
			t.Errorf("seq %d answered for %s and for %s", out.Seq, prev, txn)
		}
		return
	}
	b.seen[int64(out.Seq)] = txn
	b.loaded[code] += amount
	b.facts = append(b.facts, cluster.Acked{Agent: string(agentID), Seq: int64(out.Seq), Kind: kind.String(), TxnID: txn, Spend: amount})
}

// TestGiftCardsSurviveKills (issue 12, "gift cards with real processes,
// kill -9 mid-sync"): a till cut off from the hub sells gift cards, tops
// them up and takes payments from them; its agent is SIGKILLed right after
// a sale and while sales and top-ups are in flight, restarted, and the POS
// retries what got no answer under the same transaction. Then the link
// comes back and the hub is SIGKILLed: in even rounds after it applied the
// whole backlog while its acks were held up on the way back (the till
// then sends all of it again to the restarted hub), in odd rounds while it
// ingests the backlog (more than one batch); it is restarted. Afterwards every card's balance at the
// hub is exactly what the POS was told (sales and top-ups less payments),
// each sale and top-up is in the ledger exactly once (its own seq, no
// second fact for its transaction), no conflict was recorded, and the
// ledger verifies.
func TestGiftCardsSurviveKills(t *testing.T) {
	e := chaos.SetupWith(t, 1, 0, cluster.Options{Metrics: true})
	ctx := context.Background()
	till := e.Agents[0]
	gift := rules.Campaign{Schema: rules.SchemaVersion, ID: giftCampaign, Tenant: chaos.Tenant, Currency: chaos.Currency, Status: rules.StatusActive,
		Reward: rules.Reward{Kind: rules.RewardGiftCard, MultiUse: true}}
	if _, err := e.Admin.CreateCampaign(ctx, gift); err != nil {
		t.Fatal(err)
	}
	tv, err := e.Admin.GetTenant(ctx, chaos.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if err := till.WaitSynced(ctx, tv.Version, testutil.Patience(t)); err != nil {
		t.Fatal(err)
	}
	// More facts than one batch (protocol.DefaultBatchSize, 256), so the
	// hub's kill lands between batches of the backlog.
	rounds, cards, topUps := 2, 30, 8
	if chaos.Long() {
		rounds = 4
	}
	book := newCardBook()
	sell := func(txn, code string, amount int64) error {
		out, err := till.POS.SellCard(ctx, wire.GiftCardSale{TxnID: txn, Campaign: giftCampaign, Code: code, Amount: amount})
		if err == nil {
			book.told(t, protocol.KindIssue, till.ID, txn, code, amount, out)
		}
		return err
	}
	topUp := func(txn, code string, amount int64) error {
		out, err := till.POS.TopUpCard(ctx, code, wire.GiftCardTopUp{TxnID: txn, Amount: amount})
		if err == nil {
			book.told(t, protocol.KindTopUp, till.ID, txn, code, amount, out)
		}
		return err
	}
	// must retries a request that got no answer (the agent was down) until
	// it is answered, as a POS does; a refusal fails the test.
	must := func(what string, do func() error) {
		t.Helper()
		var last error
		testutil.Eventually(t, what+" answered", func() (bool, string) {
			last = do()
			if c := cluster.Code(last); c != "" {
				t.Fatalf("%s refused: %v", what, last)
			}
			return last == nil, fmt.Sprint(last)
		})
	}
	kill := func(why string) {
		t.Helper()
		if err := till.Proc.Kill(); err != nil {
			t.Fatal(err)
		}
		testutil.Closed(t, "the agent to exit after SIGKILL", till.Proc.Done())
		t.Logf("agent SIGKILLed %s", why)
	}
	restart := func() {
		t.Helper()
		if err := till.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	killAgent := func(why string) { t.Helper(); kill(why); restart() }
	var all []string // every card number, in order of sale
	for r := range rounds {
		till.Cut(netcut.Reset)
		testutil.Eventually(t, "the till notices it is offline", func() (bool, string) {
			st, err := till.POS.Status(ctx)
			return err == nil && !st.Online, fmt.Sprint(st.Online, err)
		})
		// Sales, top-ups (of this round's cards and of earlier rounds',
		// which the till knows from its snapshot) and payments, offline.
		var round []string
		for i := range cards {
			code := fmt.Sprintf("KILL-%d-%04d", r, i)
			must("sale of "+code, func() error { return sell(fmt.Sprintf("sale-%d-%d", r, i), code, int64(10_00+i*100)) })
			round = append(round, code)
		}
		all = append(all, round...)
		for j := range topUps {
			for i, code := range all {
				if j > 0 && i%3 != 0 && i < len(all)-len(round) {
					continue // earlier rounds' cards: a few top-ups each
				}
				must("top-up of "+code, func() error { return topUp(fmt.Sprintf("topup-%d-%d-%d", r, j, i), code, int64(1_00+j*10+i)) })
			}
		}
		for i, code := range round {
			if i%2 == 0 {
				amount := int64(5_00 + i)
				_, o, err := e.RedeemCodeSpend(ctx, till, code, amount)
				if o != chaos.Accepted {
					t.Fatalf("offline payment of %d from %s: %v", amount, code, err)
				}
				book.spent[code] += amount
			}
		}

		// The agent is SIGKILLed right after a sale was answered, and
		// right after a top-up: the restarted agent has both (the same
		// answer to the POS's retry, the same fact).
		saleTxn, saleCode := fmt.Sprintf("sale-%d-kill", r), fmt.Sprintf("KILL-%d-K", r)
		must("the sale before the kill", func() error { return sell(saleTxn, saleCode, 25_00) })
		all = append(all, saleCode)
		killAgent("right after a sale was answered")
		must("the sale's retry after the restart", func() error { return sell(saleTxn, saleCode, 25_00) })
		upTxn := fmt.Sprintf("topup-%d-kill", r)
		must("the top-up before the kill", func() error { return topUp(upTxn, saleCode, 5_00) })
		killAgent("right after a top-up was answered")
		must("the top-up's retry after the restart", func() error { return topUp(upTxn, saleCode, 5_00) })

		// And while sales and top-ups are in flight on four POS lanes:
		// what got no answer is retried under its transaction.
		type req struct {
			txn, code string
			amount    int64
			sale      bool
		}
		const lanes = 4
		var wg sync.WaitGroup
		pending := make(chan req, 1000)
		stop := make(chan struct{})
		started := make(chan struct{}, lanes)
		for l := range lanes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; ; k++ {
					select {
					case <-stop:
						return
					default:
					}
					q := req{txn: fmt.Sprintf("lane-%d-%d-%d", r, l, k), code: fmt.Sprintf("KILL-%d-L%d-%d", r, l, k), amount: int64(20_00 + k), sale: true}
					if k%2 == 1 { // top up the card this lane sold just before
						q = req{txn: fmt.Sprintf("lane-%d-%d-%d", r, l, k), code: fmt.Sprintf("KILL-%d-L%d-%d", r, l, k-1), amount: int64(3_00 + k)}
					}
					var err error
					if q.sale {
						err = sell(q.txn, q.code, q.amount)
					} else {
						err = topUp(q.txn, q.code, q.amount)
					}
					if k == 1 {
						started <- struct{}{}
					}
					if err != nil {
						if c := cluster.Code(err); c != "" && !(c == protocol.CodeUnknownCode && !q.sale) {
							t.Errorf("%s refused: %v", q.txn, err)
						}
						// No answer: retried below. A top-up of a card
						// whose sale got no answer waits for that retry.
						pending <- q
						return
					}
				}
			}()
		}
		for range lanes {
			testutil.Receive(t, "a POS lane to sell", started)
		}
		kill("while four POS lanes sold and topped up")
		close(stop)
		wg.Wait() // the lanes read till.POS, which the restart replaces
		restart()
		close(pending)
		var retry []req
		for q := range pending {
			retry = append(retry, q)
		}
		sort.Slice(retry, func(i, j int) bool { return retry[i].sale && !retry[j].sale })
		for _, q := range retry {
			if q.sale {
				must("the retry of "+q.txn, func() error { return sell(q.txn, q.code, q.amount) })
			} else {
				must("the retry of "+q.txn, func() error { return topUp(q.txn, q.code, q.amount) })
			}
		}
		for l := range lanes {
			for k := 0; ; k += 2 {
				code := fmt.Sprintf("KILL-%d-L%d-%d", r, l, k)
				book.mu.Lock()
				_, sold := book.loaded[code]
				book.mu.Unlock()
				if !sold {
					break
				}
				all = append(all, code)
			}
		}
		t.Logf("round %d: %d gift card facts answered offline so far, %d retried after the kill", r, len(book.facts), len(retry))

		st, err := till.POS.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		backlog := st.OutboxDepth
		if r%2 == 0 {
			// Back online with the hub's answers held up on the way back
			// (netcut.Delay): the hub applies the whole backlog, its acks
			// wait in the link; the hub is SIGKILLed then, the held acks
			// are lost with the link, and the till sends everything again
			// to the restarted hub, which must apply none of it twice.
			till.MQTT.Delay(8 * time.Second)
			till.Heal()
			applied := false
			testutil.Eventually(t, "the hub applies the backlog, or an ack gets through", func() (bool, string) {
				if st, err := till.POS.Status(ctx); err == nil && st.OutboxDepth < backlog {
					return true, ""
				}
				for _, code := range all {
					g, err := e.Admin.GiftCard(ctx, chaos.Tenant, code)
					if err != nil || g.Loaded != book.loaded[code] || g.Spent != book.spent[code] {
						return false, fmt.Sprintf("%s: loaded %d spent %d, want %d %d (%v)", code, g.Loaded, g.Spent, book.loaded[code], book.spent[code], err)
					}
				}
				applied = true
				return true, ""
			})
			if err := e.C.Hub.Proc.Kill(); err != nil {
				t.Fatal(err)
			}
			till.MQTT.Cut(netcut.Reset) // the held acks die with the link
			testutil.Closed(t, "the hub to exit after SIGKILL", e.C.Hub.Proc.Done())
			st, _ = till.POS.Status(ctx)
			if applied && st.OutboxDepth == backlog {
				t.Logf("round %d: hub SIGKILLed after applying all %d facts, none of them acknowledged to the till", r, backlog)
			} else {
				t.Logf("round %d: an ack got through before the hub applied everything; hub SIGKILLed with %d of %d facts in the till's outbox", r, st.OutboxDepth, backlog)
			}
			if err := e.C.Hub.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			// The answers are still held up: the till publishes its
			// outbox again to the restarted hub, which holds all of it.
			// It sends the whole backlog, unless the restarted hub's
			// first (delayed) ack reaches it first: that ack's watermark
			// covers every fact the hub holds, so the till rightly sends
			// no more (seen in CI: 256 of 297 resent, the outbox empty).
			// Either way the checks below find every fact exactly once.
			till.Heal()
			testutil.Eventually(t, "the till sends the restarted hub its backlog again, or hears from it that it holds all of it", func() (bool, string) {
				n, err := e.C.Hub.Metric(ctx, "punchcard_ingest_redemptions_total")
				if err == nil && n >= float64(backlog) {
					return true, ""
				}
				st, serr := till.POS.Status(ctx)
				return serr == nil && n > 0 && st.OutboxDepth == 0, fmt.Sprintf("%v resent (%v), outbox %d (%v)", n, err, st.OutboxDepth, serr)
			})
			till.MQTT.Delay(0)
		} else {
			// Back online: the hub is SIGKILLed while it ingests the
			// backlog (more than one batch), and restarted.
			till.Heal()
			waitOutboxBelow(t, ctx, till, int(backlog))
			if err := e.C.Hub.Proc.Kill(); err != nil {
				t.Fatal(err)
			}
			testutil.Closed(t, "the hub to exit after SIGKILL", e.C.Hub.Proc.Done())
			st, _ = till.POS.Status(ctx)
			t.Logf("round %d: hub SIGKILLed mid-ingest with %d of %d facts still in the till's outbox", r, st.OutboxDepth, backlog)
			if err := e.C.Hub.Restart(ctx); err != nil {
				t.Fatal(err)
			}
		}
		e.Drain(ctx, testutil.Patience(t))
	}

	// Every card's balance at the hub is what the POS was told (the till's
	// outbox is empty: the hub acknowledged, so applied, every fact).
	for _, code := range all {
		g, err := e.Admin.GiftCard(ctx, chaos.Tenant, code)
		if want := book.loaded[code] - book.spent[code]; err != nil || g.Balance.Amount != want || g.Loaded != book.loaded[code] || g.Spent != book.spent[code] {
			t.Errorf("%s at the hub: balance %d loaded %d spent %d, want %d %d %d (%v)", code, g.Balance.Amount, g.Loaded, g.Spent, want, book.loaded[code], book.spent[code], err)
		}
	}
	cs, err := e.Admin.Conflicts(ctx, chaos.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Errorf("conflicts recorded: %v", cs)
	}
	// Every process stopped: the ledger file verifies, and holds each
	// sale, top-up and payment the POS was told of exactly once.
	if err := e.C.Close(); err != nil {
		t.Logf("stop: %v", err)
	}
	au, err := cluster.OpenAudit(ctx, e.C.Hub.LedgerPath())
	if err != nil {
		t.Fatal(err)
	}
	defer au.Close()
	if rep, err := au.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("ledger does not verify: %s %v", cluster.Summary(rep), err)
	}
	entries, err := au.Entries(ctx, chaos.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	acked := append(e.Acked(), book.facts...)
	for _, v := range cluster.CheckAcked(acked, entries) {
		t.Errorf("each sale and top-up once: %s", v)
	}
	t.Logf("checked: %d cards, %d sale/top-up facts and %d payments as told, %d journal facts", len(all), len(book.facts), len(e.Acked()), len(entries))
}
