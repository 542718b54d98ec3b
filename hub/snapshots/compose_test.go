package snapshots_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// countingCatalog is the real catalog, counting the snapshot builds asked
// of it by since (0: full).
type countingCatalog struct {
	*catalog.Catalog
	mu     sync.Mutex
	builds map[uint64]int
}

func (c *countingCatalog) SnapshotWith(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, since uint64, states map[protocol.CodeID]protocol.CodeState) (*snapshot.Snapshot, error) {
	c.mu.Lock()
	c.builds[since]++
	c.mu.Unlock()
	return c.Catalog.SnapshotWith(ctx, tenant, agent, since, states)
}

func (c *countingCatalog) count(since uint64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.builds[since]
}

// storeFleet adds tills till-2..till-n to till-1's store s1, till-x at
// store s2, till-y at store s3, a multi-use code campaign "multi" (codes M1, M2, M3), a
// campaign "elsewhere" only for store s2 with code E1, and returns the
// code keys.
func storeFleet(t *testing.T, cat *catalog.Catalog, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 2; i <= n; i++ {
		if _, _, err := cat.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: protocol.AgentID(fmt.Sprintf("till-%d", i)), Store: snapshot.Store{ID: "s1"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := cat.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: "till-x", Store: snapshot.Store{ID: "s2"}}); err != nil {
		t.Fatal(err)
	}
	// Store s3 excludes what s1 excludes ("elsewhere"): one part for both.
	if _, _, err := cat.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: "till-y", Store: snapshot.Store{ID: "s3", Region: "north"}}); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		`{"schema":1,"id":"multi","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`,
		`{"schema":1,"id":"elsewhere","tenant":"acme","status":"active","currency":"EUR","eligibility":{"stores":["s2"]},"reward":{"kind":"percent_off","percent_bp":500}}`,
	} {
		if _, err := cat.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cat.ImportCodes(ctx, catalog.System, "acme", "multi", []string{"M1", "M2", "M3"}, catalog.CodeSpec{Uses: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.ImportCodes(ctx, catalog.System, "acme", "elsewhere", []string{"E1"}, catalog.CodeSpec{Uses: -1}); err != nil {
		t.Fatal(err)
	}
}

// use records one use of code at agent (store store) with seq, through
// the ledger's apply path, as ingest does.
func use(t *testing.T, led *ledger.Ledger, agent protocol.AgentID, store protocol.StoreID, seq uint64, campaign protocol.CampaignID, code protocol.CodeID) {
	t.Helper()
	r := protocol.Redemption{ID: protocol.RedemptionID{Agent: agent, Seq: seq}, Kind: protocol.KindRedeem, Tenant: "acme", Store: store,
		TxnID: fmt.Sprintf("t-%s-%d", agent, seq), Campaign: campaign, Code: code, Currency: "EUR", Discount: 100, OrderTot: 1000,
		HLC: ledger.HLCFromTime(time.Date(2026, 11, 23, 9, 0, 0, int(seq), time.UTC)), Offline: true}
	if _, _, err := led.ApplyBatch(context.Background(), "acme", agent, []protocol.Redemption{r}); err != nil {
		t.Fatal(err)
	}
}

func codeUses(s *snapshot.Snapshot) map[protocol.CodeID]int64 {
	m := map[protocol.CodeID]int64{}
	for _, c := range s.Codes {
		m[c.Code] = c.Used
	}
	return m
}

// TestOneBuildPerStore pins the coalescing of the fetch storm after a
// catalog change: every till of a store fetching the delta to the new
// version, concurrently or one after the other while code uses keep
// moving the ledger's position, costs one catalog build of that delta
// (the code states are laid over it per request, and are exact for
// each). A poll with the ETag it holds while nothing changed for it is a
// 304 without any build. (Before: one build per distinct code-use
// position, so every till of the store built its own after a code use.)
func TestOneBuildPerStore(t *testing.T) {
	ctx := context.Background()
	cat, led := mustStores(t)
	const n = 8
	storeFleet(t, cat, n)
	cc := &countingCatalog{Catalog: cat, builds: map[uint64]int{}}
	s, err := snapshots.New(cc, snapshots.Options{Ledger: led, MaxConcurrent: 4})
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	use(t, led, "till-1", "s1", seq+1, "multi", "M1")
	seq++
	// Every till holds the current version, each at its own position.
	held := map[protocol.AgentID]snapshots.Answer{}
	for i := 1; i <= n; i++ {
		ag := protocol.AgentID(fmt.Sprintf("till-%d", i))
		a, err := s.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: ag})
		if err != nil {
			t.Fatal(err)
		}
		held[ag] = a
		use(t, led, "till-1", "s1", seq+1, "multi", "M2")
		seq++
	}
	if got := cc.count(0); got != 1 {
		t.Errorf("%d full builds for %d tills of one store, want 1", got, n)
	}
	// 304: the ETag held, nothing changed for the agent since.
	a1, err := s.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-1"})
	if err != nil {
		t.Fatal(err)
	}
	before := cc.count(a1.Version)
	nm, err := s.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-1", Since: a1.Version, Uses: a1.Snapshot.Uses, HasUses: true, IfNoneMatch: a1.ETag})
	if err != nil {
		t.Fatal(err)
	}
	if !nm.NotModified || nm.ETag != a1.ETag || nm.Snapshot != nil {
		t.Fatalf("poll with the held ETag, nothing changed: %+v, want a 304 with %s", nm, a1.ETag)
	}
	if got := cc.count(a1.Version); got != before {
		t.Errorf("the 304 built %d snapshots", got-before)
	}

	// The change: a new campaign, then the storm.
	v0 := a1.Version
	doc := `{"schema":1,"id":"winter","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":500}}`
	if _, err := cat.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	fetch := func(i int) (snapshots.Answer, error) {
		ag := protocol.AgentID(fmt.Sprintf("till-%d", i))
		h := held[ag]
		return s.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: ag, Since: v0, Uses: h.Snapshot.Uses, HasUses: true, IfNoneMatch: h.ETag})
	}
	// Half of the store's tills at once.
	var wg sync.WaitGroup
	var failed atomic.Int64
	answers := make([]snapshots.Answer, n+1)
	for i := 1; i <= n/2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := fetch(i)
			if err != nil {
				failed.Add(1)
				t.Error(err)
			}
			answers[i] = a
		}()
	}
	wg.Wait()
	// The other half one after the other, a code use before each.
	for i := n/2 + 1; i <= n; i++ {
		use(t, led, "till-1", "s1", seq+1, "multi", "M3")
		seq++
		a, err := fetch(i)
		if err != nil {
			t.Fatal(err)
		}
		answers[i] = a
	}
	if failed.Load() > 0 {
		t.FailNow()
	}
	if got := cc.count(v0); got != 1 {
		t.Errorf("%d builds of the delta since %d for %d tills of one store, want 1", got, v0, n)
	}
	// Another store that excludes the same campaigns shares the part; a
	// store that excludes others builds its own.
	for _, c := range []struct {
		agent  protocol.AgentID
		store  protocol.StoreID
		builds int
	}{{"till-y", "s3", 1}, {"till-x", "s2", 2}} {
		a, err := s.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: c.agent, Since: v0, Uses: 0, HasUses: true})
		if err != nil {
			t.Fatal(err)
		}
		if a.Snapshot.Store.ID != c.store || a.Snapshot.Agent != c.agent {
			t.Errorf("%s: store %+v agent %s", c.agent, a.Snapshot.Store, a.Snapshot.Agent)
		}
		if got := cc.count(v0); got != c.builds {
			t.Errorf("after %s (store %s): %d builds of the delta, want %d", c.agent, c.store, got, c.builds)
		}
	}
	// Each answer is exact for its agent: the new campaign, and the code
	// uses at the position it says.
	for i := 1; i <= n; i++ {
		a := answers[i]
		if a.NotModified || a.Snapshot == nil || a.Snapshot.Since != v0 || a.Version <= v0 {
			t.Fatalf("till-%d: %+v", i, a)
		}
		found := false
		for _, c := range a.Snapshot.Campaigns {
			found = found || c.ID == "winter"
		}
		if !found {
			t.Errorf("till-%d: the delta lacks the new campaign", i)
		}
	}
	// The last till's delta counts every use so far.
	last := codeUses(answers[n].Snapshot)
	m3 := snapshot.HashCode(answers[n].Snapshot.CodeKey, "M3")
	if last[m3] != int64(n/2) {
		t.Errorf("last delta: M3 used %d, want %d (%v)", last[m3], n/2, last)
	}
}

func statesAt(t *testing.T, led *ledger.Ledger) map[protocol.CodeID]protocol.CodeState {
	t.Helper()
	st, _, err := led.CodeStatesAt(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestComposedSameAsCatalog: the snapshot laid together from the store's
// catalog part and the code states equals the catalog's own build with
// those states, full and delta: used codes of the store, a code of a
// campaign not for the store, a revoked code.
func TestComposedSameAsCatalog(t *testing.T) {
	ctx := context.Background()
	cat, led := mustStores(t)
	storeFleet(t, cat, 2)
	s, err := snapshots.New(cat, snapshots.Options{Ledger: led})
	if err != nil {
		t.Fatal(err)
	}
	use(t, led, "till-1", "s1", 1, "multi", "M1")
	use(t, led, "till-x", "s2", 1, "elsewhere", "E1")
	full, err := s.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-2"})
	if err != nil {
		t.Fatal(err)
	}
	sameAsCatalog(t, cat, "full", full.Snapshot, 0, statesAt(t, led))
	use(t, led, "till-1", "s1", 2, "multi", "M2")
	use(t, led, "till-1", "s1", 3, "multi", "M3")
	use(t, led, "till-x", "s2", 2, "elsewhere", "E1")
	if _, err := cat.RevokeCode(ctx, catalog.System, "acme", "M3"); err != nil {
		t.Fatal(err)
	}
	d, err := s.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-2", Since: full.Version, Uses: full.Snapshot.Uses, HasUses: true})
	if err != nil {
		t.Fatal(err)
	}
	changes, _, ok, err := led.CodeChanges(ctx, "acme", full.Snapshot.Uses, 1000)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	sameAsCatalog(t, cat, "delta", d.Snapshot, full.Version, changes)
	for _, ag := range []protocol.AgentID{"till-y", "till-x"} {
		dy, err := s.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: ag, Since: full.Version, Uses: full.Snapshot.Uses, HasUses: true})
		if err != nil {
			t.Fatal(err)
		}
		sameAsCatalog(t, cat, "delta of "+string(ag), dy.Snapshot, full.Version, changes)
	}
	if len(d.Snapshot.Codes) != 1 || len(d.Snapshot.Revocations) != 1 {
		t.Errorf("delta: codes %+v revocations %+v, want M2 and M3's revocation", d.Snapshot.Codes, d.Snapshot.Revocations)
	}
}

func sameAsCatalog(t *testing.T, cat *catalog.Catalog, name string, got *snapshot.Snapshot, since uint64, states map[protocol.CodeID]protocol.CodeState) {
	t.Helper()
	want, err := cat.SnapshotWith(context.Background(), got.Tenant, got.Agent, since, states)
	if err != nil {
		t.Fatal(err)
	}
	want.Normalize()
	for _, c := range []struct {
		field     string
		got, want any
	}{
		{"version", got.Version, want.Version}, {"since", got.Since, want.Since}, {"store", got.Store, want.Store},
		{"campaigns", got.Campaigns, want.Campaigns}, {"codes", got.Codes, want.Codes}, {"revocations", got.Revocations, want.Revocations},
		{"withdrawn", got.Withdrawn, want.Withdrawn}, {"keys", got.Keys, want.Keys}, {"code key", got.CodeKey, want.CodeKey},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: %s: got %+v, the catalog's %+v", name, c.field, c.got, c.want)
		}
	}
}

// TestAnnounceSpread: an announcement asks the agents to spread their
// fetches over agents ÷ FetchRate seconds, at most MaxSpread; none for
// a single agent or with FetchRate < 0.
func TestAnnounceSpread(t *testing.T) {
	ctx := context.Background()
	cat, _ := mustStores(t)
	storeFleet(t, cat, 10) // 12 agents in all
	for _, c := range []struct {
		opts snapshots.AnnouncerOptions
		want uint32
	}{
		{snapshots.AnnouncerOptions{FetchRate: 10}, 1200},
		{snapshots.AnnouncerOptions{FetchRate: 10, MaxSpread: 500 * time.Millisecond}, 500},
		{snapshots.AnnouncerOptions{FetchRate: -1}, 0},
		{snapshots.AnnouncerOptions{}, 12 * 1000 / snapshots.DefaultFetchRate},
	} {
		pub := &publisher{sent: make(chan struct{}, 16)}
		a := snapshots.NewAnnouncer(cat, pub, c.opts)
		if err := a.Announce(ctx, "acme", 7); err != nil {
			t.Fatal(err)
		}
		a.Close()
		if len(pub.anns) != 12 || pub.anns[0].Spread != c.want || pub.anns[11].Spread != c.want {
			t.Errorf("%+v: %d announcements, spread %d ms, want 12 of %d ms", c.opts, len(pub.anns), pub.anns[0].Spread, c.want)
		}
	}
}

// TestAnnounceEven: when the fetch window is longer than twice Tail, an
// announcement asks every agent to fetch within Tail (the first too), so
// the agents, told at an even pace over the window less Tail, fetch at an
// even rate; a window up to twice Tail keeps the announcements' spread to
// what is left of it, the first the whole window.
func TestAnnounceEven(t *testing.T) {
	ctx := context.Background()
	cat, _ := mustStores(t)
	storeFleet(t, cat, 10) // 12 agents in all
	for _, c := range []struct {
		name        string
		opts        snapshots.AnnouncerOptions
		first, most uint32 // ms
	}{
		// A window of 600 ms: the agents are told over 500 ms, each to
		// fetch within 100 ms.
		{"Even", snapshots.AnnouncerOptions{FetchRate: 20, Tail: 100 * time.Millisecond}, 100, 100},
		// A window of 120 ms, not longer than twice Tail.
		{"Short", snapshots.AnnouncerOptions{FetchRate: 100, Tail: 100 * time.Millisecond}, 120, 120},
		{"TailOff", snapshots.AnnouncerOptions{FetchRate: 20, Tail: -1}, 600, 600},
	} {
		t.Run(c.name, func(t *testing.T) {
			pub := &agentPublisher{byAgent: map[protocol.AgentID][]protocol.SnapshotAnnounce{}}
			a := snapshots.NewAnnouncer(cat, pub, c.opts)
			defer a.Close()
			if err := a.Announce(ctx, "acme", 7); err != nil {
				t.Fatal(err)
			}
			if got, want := len(pub.byAgent), 12; got != want {
				t.Fatalf("%d agents told, want %d", got, want)
			}
			if got := pub.order[0].Spread; got != c.first {
				t.Errorf("the first announcement's spread: %d ms, want %d", got, c.first)
			}
			for i, ann := range pub.order {
				if ann.Spread > c.most {
					t.Errorf("announcement %d: spread %d ms, want at most %d", i, ann.Spread, c.most)
				}
			}
		})
	}
}

// gatedCatalog is the real catalog whose builds wait for the gate.
type gatedCatalog struct {
	*catalog.Catalog
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedCatalog) SnapshotWith(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, since uint64, states map[protocol.CodeID]protocol.CodeState) (*snapshot.Snapshot, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
	return g.Catalog.SnapshotWith(ctx, tenant, agent, since, states)
}

// TestSnapshotTurns: with every turn taken, a request waits at most
// MaxWait and is then refused with unavailable (503 and Retry-After at
// the API), rather than queueing without bound; the request holding the
// turn completes.
func TestSnapshotTurns(t *testing.T) {
	ctx := context.Background()
	cat, led := mustStores(t)
	storeFleet(t, cat, 2)
	g := &gatedCatalog{Catalog: cat, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	s, err := snapshots.New(g, snapshots.Options{Ledger: led, MaxConcurrent: 1, MaxWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() {
		_, err := s.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-1"})
		first <- err
	}()
	<-g.entered // till-1 holds the only turn
	_, err = s.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-2"})
	if got := protocol.ErrorCode(err); got != protocol.CodeUnavailable {
		t.Errorf("a request while the turn is taken: %v, want unavailable", err)
	}
	close(g.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-2"}); err != nil {
		t.Fatalf("after the turn is free: %v", err)
	}
}

// agentPublisher records each agent's announcements in order; the first
// announcement of version hold waits for release.
type agentPublisher struct {
	mu      sync.Mutex
	byAgent map[protocol.AgentID][]protocol.SnapshotAnnounce
	order   []protocol.SnapshotAnnounce
	hold    uint64
	held    chan struct{} // closed when the held announcement arrives
	release chan struct{}
}

func (p *agentPublisher) AnnounceSnapshot(_ context.Context, _ protocol.TenantID, ag protocol.AgentID, ann protocol.SnapshotAnnounce) error {
	p.mu.Lock()
	first := ann.Version == p.hold && p.held != nil
	if first {
		close(p.held)
		p.held = nil
	}
	p.mu.Unlock()
	if first {
		<-p.release
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.byAgent[ag] = append(p.byAgent[ag], ann)
	p.order = append(p.order, ann)
	return nil
}

func (p *agentPublisher) RecallAllowance(context.Context, protocol.TenantID, protocol.AgentID, protocol.CampaignID) error {
	return nil
}

// TestAnnouncePaced: a paced announcement tells every agent, in groups of
// AnnounceRate × 20 ms, each group with what is left of the window (the
// first the whole window, none longer than the one before); and a later
// announcement to the tenant, started while one is being paced, ends it:
// every agent's last announcement is the later version, and none is told
// the older version after the newer one.
func TestAnnouncePaced(t *testing.T) {
	ctx := context.Background()
	cat, _ := mustStores(t)
	storeFleet(t, cat, 10) // 12 agents in all
	// Groups of 4 (200 a second, every 20 ms), a window of 1.2 s.
	opts := snapshots.AnnouncerOptions{FetchRate: 10, AnnounceRate: 200}

	pub := &agentPublisher{byAgent: map[protocol.AgentID][]protocol.SnapshotAnnounce{}}
	a := snapshots.NewAnnouncer(cat, pub, opts)
	if err := a.Announce(ctx, "acme", 7); err != nil {
		t.Fatal(err)
	}
	if len(pub.order) != 12 || len(pub.byAgent) != 12 || a.Sent.Load() != 12 {
		t.Fatalf("%d announcements to %d agents (%d counted), want 12 to 12", len(pub.order), len(pub.byAgent), a.Sent.Load())
	}
	if pub.order[0].Spread != 1200 || pub.order[3].Spread != 1200 {
		t.Errorf("the first group's spread: %d, %d ms, want the whole window (1200 ms)", pub.order[0].Spread, pub.order[3].Spread)
	}
	for i := 1; i < len(pub.order); i++ {
		if pub.order[i].Spread > pub.order[i-1].Spread {
			t.Errorf("announcement %d: spread %d ms after %d ms: a later group asks for more than what is left", i, pub.order[i].Spread, pub.order[i-1].Spread)
		}
	}
	a.Close()

	pub = &agentPublisher{byAgent: map[protocol.AgentID][]protocol.SnapshotAnnounce{}, hold: 8, held: make(chan struct{}), release: make(chan struct{})}
	a = snapshots.NewAnnouncer(cat, pub, opts)
	defer a.Close()
	older := make(chan error, 1)
	held := pub.held
	go func() { older <- a.Announce(ctx, "acme", 8) }()
	<-held // version 8's first group is being sent
	newer := make(chan error, 1)
	go func() { newer <- a.Announce(ctx, "acme", 9) }()
	close(pub.release)
	if err := <-older; err != nil {
		t.Fatal(err)
	}
	if err := <-newer; err != nil {
		t.Fatal(err)
	}
	if len(pub.byAgent) != 12 {
		t.Fatalf("%d agents told, want 12", len(pub.byAgent))
	}
	for ag, anns := range pub.byAgent {
		if anns[len(anns)-1].Version != 9 {
			t.Errorf("%s: announcements %+v, want version 9 last", ag, anns)
		}
		for i := 1; i < len(anns); i++ {
			if anns[i].Version < anns[i-1].Version {
				t.Errorf("%s: told version %d after %d", ag, anns[i].Version, anns[i-1].Version)
			}
		}
	}
}
