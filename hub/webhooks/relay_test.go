package webhooks_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/webhooks"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/ledger"
)

// factsOf applies n redemptions of tenant's till seq from..from+n-1 and
// returns the ids of the events they wrote and the last event's seq.
func (e *env) factsOf(t *testing.T, tenant protocol.TenantID, from, n int) ([]string, int64) {
	t.Helper()
	ctx := context.Background()
	before, err := e.l.EventsAfter(ctx, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	agent := protocol.AgentID("till-" + string(tenant))
	var rs []protocol.Redemption
	for i := range n {
		seq := uint64(from + i)
		rs = append(rs, protocol.Redemption{ID: protocol.RedemptionID{Agent: agent, Seq: seq}, Kind: protocol.KindRedeem, Tenant: tenant,
			Store: "s1", TxnID: fmt.Sprint("t", seq), Campaign: "c", Currency: "EUR", Discount: 100, OrderTot: 1000, HLC: ledger.HLCFromTime(time.Now())})
	}
	if _, _, err := e.l.ApplyBatch(ctx, tenant, agent, rs); err != nil {
		t.Fatal(err)
	}
	var after int64
	if len(before) > 0 {
		after = before[len(before)-1].Seq
	}
	es, err := e.l.EventsAfter(ctx, after, 1<<30)
	if err != nil || len(es) == 0 {
		t.Fatalf("events: %d %v", len(es), err)
	}
	var ids []string
	for _, ev := range es {
		ids = append(ids, ev.ID)
	}
	return ids, es[len(es)-1].Seq
}

// crashAndReopen stops e's service as a SIGKILL would (no cursor
// written) and opens and starts a new one on the same files.
func (e *env) crashAndReopen(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	e.s.Crash()
	s, err := webhooks.Open(ctx, filepath.Join(e.dir, "webhooks.db"), webhooks.Options{AllowPrivate: true, Sources: map[string]webhooks.Source{"ledger": e.l},
		RetryBase: 10 * time.Millisecond, RetryCap: 100 * time.Millisecond, RelayInterval: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond,
		Timeout: 5 * time.Second, CursorSave: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	e.s = s
}

// savedCursor is the relay's cursor in webhooks.db.
func (e *env) savedCursor(t *testing.T) int64 {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(e.dir, "webhooks.db"), store.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var seq int64
	if err := db.QueryRow(`SELECT COALESCE((SELECT seq FROM webhook_cursors WHERE source = 'ledger'), 0)`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

// TestPollWithoutEndpointsReadsNoEvents: while no endpoint is enabled,
// the relay's polls move its cursor past the events without reading them
// (a read per poll of every event written since, only to pass it, was
// ~4 % of a catch-up's CPU: this check fails on the code before); an
// endpoint created then gets the events written after it.
func TestPollWithoutEndpointsReadsNoEvents(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	for i := range 3 {
		_, last := e.factsOf(t, "acme", 1+10*i, 10)
		waitFor(t, "the relay past the events", func() bool { return e.s.RelayCursor("ledger") == last })
	}
	if n := e.s.RelayReads(); n != 0 {
		t.Fatalf("the relay read the log %d times with no endpoint", n)
	}
	rcv := newReceiver(t, 0)
	ep, err := e.s.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: rcv.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	rcv.setSecrets(ep.Secret)
	after, _ := e.factsOf(t, "acme", 31, 5)
	waitFor(t, "the events written after the endpoint's creation", func() bool { return rcv.has(after) })
	if n := e.s.RelayReads(); n == 0 {
		t.Fatal("the relay delivered without reading the log")
	}
}

// TestRestartAfterRoundsWithoutEndpoints: relay rounds that insert no job
// (no endpoint) write no cursor (they cost a write transaction each in
// webhooks.db, after every commit of the ledger that wrote events: this
// check fails on the code before); a hub killed after them reads those
// events again, and an endpoint created after the restart gets only the
// events written from its creation on, each once.
func TestRestartAfterRoundsWithoutEndpoints(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *webhooks.Options) { o.CursorSave = time.Hour })
	before, last := e.factsOf(t, "acme", 1, 20)
	waitFor(t, "the relay past the events", func() bool { return e.s.RelayCursor("ledger") == last })
	if seq := e.savedCursor(t); seq != 0 {
		t.Fatalf("rounds without jobs wrote the cursor (%d): a write transaction each", seq)
	}
	e.crashAndReopen(t)
	before2, last := e.factsOf(t, "acme", 21, 5)
	waitFor(t, "the relay past the events after the restart", func() bool { return e.s.RelayCursor("ledger") == last })
	rcv := newReceiver(t, 0)
	ep, err := e.s.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: rcv.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if seq := e.savedCursor(t); seq != last {
		t.Fatalf("cursor written before the endpoint's creation: %d, want %d", seq, last)
	}
	rcv.setSecrets(ep.Secret)
	after, _ := e.factsOf(t, "acme", 26, 10)
	waitFor(t, "the events written after the endpoint's creation", func() bool { return rcv.has(after) })
	// The receiver has them before River records the jobs completed; a
	// crash in between hands those jobs back and delivers them again, as
	// at-least-once delivery allows. Wait for the jobs, then crash: the
	// relay must not insert them again.
	waitFor(t, "an empty backlog before the second crash", func() bool { n, err := e.s.Backlog(ctx); return err == nil && n == 0 })
	e.crashAndReopen(t) // and once more: nothing is delivered again
	after2, _ := e.factsOf(t, "acme", 36, 5)
	waitFor(t, "the events written after the second restart", func() bool { return rcv.has(after2) })
	waitFor(t, "an empty backlog", func() bool { n, err := e.s.Backlog(ctx); return err == nil && n == 0 })
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, id := range append(before, before2...) {
		if rcv.got[id] != 0 {
			t.Errorf("event %s, written before the endpoint was created, was delivered to it", id)
		}
	}
	for _, id := range append(after, after2...) {
		if rcv.got[id] != 1 {
			t.Errorf("event %s delivered %d times, want once", id, rcv.got[id])
		}
	}
}

// TestDeliveredAcrossLazyCursor: an endpoint of one tenant gets each of
// its events once when rounds without jobs (another tenant's events) came
// between its rounds, and the hub is killed with such rounds not yet
// written.
func TestDeliveredAcrossLazyCursor(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *webhooks.Options) { o.CursorSave = time.Hour })
	rcv := newReceiver(t, 0)
	ep, err := e.s.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: rcv.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	rcv.setSecrets(ep.Secret)
	var want []string
	from := map[protocol.TenantID]int{"acme": 1, "other": 1}
	write := func(tenant protocol.TenantID, n int) ([]string, int64) {
		ids, last := e.factsOf(t, tenant, from[tenant], n)
		from[tenant] += n
		waitFor(t, "the relay past the events", func() bool { return e.s.RelayCursor("ledger") == last })
		return ids, last
	}
	for round := range 3 {
		ids, _ := write("acme", 5)
		want = append(want, ids...)
		_, _ = write("other", 7)
		_, last := write("other", 3)
		waitFor(t, "the deliveries", func() bool { return rcv.has(want) })
		waitFor(t, "an empty backlog", func() bool { n, err := e.s.Backlog(ctx); return err == nil && n == 0 })
		if seq := e.savedCursor(t); seq >= last {
			t.Fatalf("round %d: the rounds without jobs wrote the cursor", round)
		}
		e.crashAndReopen(t)
	}
	ids, _ := write("acme", 5)
	want = append(want, ids...)
	waitFor(t, "the deliveries", func() bool { return rcv.has(want) })
	waitFor(t, "an empty backlog", func() bool { n, err := e.s.Backlog(ctx); return err == nil && n == 0 })
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, id := range want {
		if rcv.got[id] != 1 {
			t.Errorf("event %s delivered %d times, want once", id, rcv.got[id])
		}
	}
	if len(rcv.got) != len(want) {
		t.Errorf("%d events delivered, want %d (acme's)", len(rcv.got), len(want))
	}
}

// TestCloseWritesCursor: Close writes the cursor the relay moved in
// memory.
func TestCloseWritesCursor(t *testing.T) {
	ctx := context.Background()
	e := openEnv(t, func(o *webhooks.Options) { o.CursorSave = time.Hour }, true)
	_, last := e.factsOf(t, "acme", 1, 5)
	if n, err := e.s.RelayOnce(ctx, "ledger", e.l); err != nil || n != 5 {
		t.Fatalf("relay: %d %v", n, err)
	}
	if seq := e.savedCursor(t); seq != 0 {
		t.Fatalf("cursor %d written without a job", seq)
	}
	if err := e.s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if seq := e.savedCursor(t); seq != last {
		t.Fatalf("cursor after Close %d, want %d", seq, last)
	}
}
