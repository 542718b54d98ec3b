package snapshots_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// mustStores opens the real stores on one SQLite file, as the hub does,
// with tenant acme, agent till-1 and an active campaign with a budget.
func mustStores(tb testing.TB) (*catalog.Catalog, *ledger.Ledger) {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(tb.TempDir(), "hub.db"), store.Options{Sync: store.SyncNormal})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	cat, err := catalog.New(ctx, db)
	if err != nil {
		tb.Fatal(err)
	}
	led, err := ledger.New(ctx, db, ledger.Options{Facts: cat, Rules: cat})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { led.Close() })
	if _, err := cat.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := cat.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: "till-1", Store: snapshot.Store{ID: "s1"}}); err != nil {
		tb.Fatal(err)
	}
	doc := `{"schema":1,"id":"summer","tenant":"acme","status":"active","currency":"EUR","limits":{"max_redemptions":100},"reward":{"kind":"percent_off","percent_bp":1000}}`
	if _, err := cat.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
		tb.Fatal(err)
	}
	return cat, led
}

// TestSnapshot: a full snapshot, a 304 while nothing changed for the
// agent, still a 304 after a grant alone until QuietMaxAge (quiet.go: the
// grant's answer carries it), then a new body; a new body at once when
// the catalog changed.
func TestSnapshot(t *testing.T) {
	ctx := context.Background()
	cat, led := mustStores(t)
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	s, err := snapshots.New(cat, snapshots.Options{Ledger: led, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	req := snapshots.Request{Tenant: "acme", Agent: "till-1"}
	a, err := s.Snapshot(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if a.NotModified || a.Snapshot == nil || a.ETag == "" || a.Version == 0 || len(a.Snapshot.Campaigns) != 1 {
		t.Fatalf("first answer %+v", a)
	}
	if got := a.Snapshot.Allowances; len(got) != 0 {
		t.Errorf("allowances before any grant: %+v", got)
	}
	req.Since, req.IfNoneMatch = a.Version, a.ETag
	b, err := s.Snapshot(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !b.NotModified || b.ETag != a.ETag {
		t.Fatalf("unchanged: %+v, want NotModified with %s", b, a.ETag)
	}
	g, err := led.GrantAllowance(ctx, "acme", "till-1", "summer")
	if err != nil {
		t.Fatal(err)
	}
	quiet, err := s.Snapshot(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !quiet.NotModified || quiet.ETag != a.ETag || s.Quiet.Load() != 2 {
		t.Fatalf("a grant alone within QuietMaxAge: %+v (quiet %d), want NotModified with %s", quiet, s.Quiet.Load(), a.ETag)
	}
	now = now.Add(snapshots.DefaultQuietMaxAge)
	c, err := s.Snapshot(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if c.NotModified || len(c.Snapshot.Allowances) != 1 || c.Snapshot.Allowances[0].Count != g.Count {
		t.Fatalf("after a grant of %d: %+v", g.Count, c)
	}
	if _, err := cat.StopCampaign(ctx, catalog.System, "acme", "summer"); err != nil {
		t.Fatal(err)
	}
	req.IfNoneMatch = c.ETag
	d, err := s.Snapshot(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if d.NotModified || d.Version <= c.Version || len(d.Snapshot.Allowances) != 0 {
		t.Fatalf("after the stop: %+v", d)
	}
	for name, ans := range map[string]snapshots.Answer{"first": a, "after the grant": c, "after the stop": d} {
		checkBody(t, name, ans)
	}
}

// checkBody: an answer's Body is its snapshot's encoding, with its time,
// and its ETag that of the encoding without the time.
func checkBody(t *testing.T, name string, ans snapshots.Answer) {
	t.Helper()
	want, err := snapshot.Encode(ans.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Snapshot.GeneratedAt == 0 || !bytes.Equal(ans.Body, want) {
		t.Errorf("%s: body\n%x\nwant the snapshot's encoding\n%x", name, ans.Body, want)
	}
	untimed := *ans.Snapshot
	untimed.GeneratedAt = 0
	if b, err := snapshot.Encode(&untimed); err != nil || snapshot.ETag(b) != ans.ETag {
		t.Errorf("%s: ETag %s, want that of the body without its time (%v)", name, ans.ETag, err)
	}
}

// TestSnapshotUnknownAgent: not_found.
func TestSnapshotUnknownAgent(t *testing.T) {
	cat, led := mustStores(t)
	s, err := snapshots.New(cat, snapshots.Options{Ledger: led})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Snapshot(context.Background(), snapshots.Request{Tenant: "acme", Agent: "nobody"})
	if got := protocol.ErrorCode(err); got != protocol.CodeNotFound {
		t.Fatalf("code = %q, want not_found", got)
	}
}

// publisher records what the announcer sends.
type publisher struct {
	mu     sync.Mutex
	anns   []protocol.SnapshotAnnounce
	recall []protocol.CampaignID
	sent   chan struct{}
}

func (p *publisher) AnnounceSnapshot(_ context.Context, _ protocol.TenantID, _ protocol.AgentID, ann protocol.SnapshotAnnounce) error {
	p.mu.Lock()
	p.anns = append(p.anns, ann)
	p.mu.Unlock()
	p.sent <- struct{}{}
	return nil
}

func (p *publisher) RecallAllowance(_ context.Context, _ protocol.TenantID, _ protocol.AgentID, c protocol.CampaignID) error {
	p.mu.Lock()
	p.recall = append(p.recall, c)
	p.mu.Unlock()
	p.sent <- struct{}{}
	return nil
}

// TestAnnouncer: a change is announced to every agent with the version it
// is at, a stop recalls the campaign's allowances, and after Close
// nothing more is sent.
func TestAnnouncer(t *testing.T) {
	ctx := context.Background()
	cat, _ := mustStores(t)
	pub := &publisher{sent: make(chan struct{}, 8)}
	a := snapshots.NewAnnouncer(cat, pub, snapshots.AnnouncerOptions{})
	t.Cleanup(func() { a.Close() })
	v, err := cat.Version(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	a.Changed("acme", v)
	<-pub.sent
	a.Stopped("acme", "summer")
	<-pub.sent
	a.Close() // waits for anything still scheduled
	a.Changed("acme", v+1)
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if len(pub.anns) != 1 || pub.anns[0].Version != v {
		t.Errorf("announcements = %+v, want one of version %d", pub.anns, v)
	}
	if len(pub.recall) != 1 || pub.recall[0] != "summer" {
		t.Errorf("recalls = %v, want [summer]", pub.recall)
	}
}
