package snapshots_test

import (
	"context"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
)

// quietTill is an agent's poll state: what it holds and sends back.
type quietTill struct {
	id   protocol.AgentID
	req  snapshots.Request
	uses map[protocol.CodeID]int64 // the held body's figures, by key
}

func (q *quietTill) poll(t *testing.T, s *snapshots.Service) snapshots.Answer {
	t.Helper()
	a, err := s.Snapshot(context.Background(), q.req)
	if err != nil {
		t.Fatal(err)
	}
	if a.NotModified {
		return a
	}
	q.req.Since, q.req.Uses, q.req.HasUses, q.req.IfNoneMatch = a.Snapshot.Version, a.Snapshot.Uses, true, a.ETag
	q.req.Customers, q.req.HasCustomers = a.Snapshot.Customers, true
	for k, v := range codeUses(a.Snapshot) {
		q.uses[k] = v
	}
	return a
}

// TestQuietPoll pins which news a poll answers 304 over (quiet.go): uses
// of an unlimited code are quiet, a use of a single-use code is news for
// every till whose body is older than it (the tenant's news position is
// shared by its tills' polls), the quiet lasts QuietMaxAge from the
// body, and QuietMaxAge < 0 keeps the exact ETag (any move is a body).
func TestQuietPoll(t *testing.T) {
	ctx := context.Background()
	cat, led := mustStores(t)
	storeFleet(t, cat, 2)
	if _, err := cat.ImportCodes(ctx, catalog.System, "acme", "multi", []string{"ONCE", "ONCE2"}, catalog.CodeSpec{Uses: 1}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	s, err := snapshots.New(cat, snapshots.Options{Ledger: led, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t1 := &quietTill{id: "till-1", req: snapshots.Request{Tenant: "acme", Agent: "till-1"}, uses: map[protocol.CodeID]int64{}}
	t2 := &quietTill{id: "till-2", req: snapshots.Request{Tenant: "acme", Agent: "till-2"}, uses: map[protocol.CodeID]int64{}}
	first := t1.poll(t, s)
	t2.poll(t, s)
	m1, once := first.Snapshot.LookupID("M1"), first.Snapshot.LookupID("ONCE")
	seq := uint64(0)
	useAt := func(code protocol.CodeID) {
		seq++
		use(t, led, "till-x", "s2", seq, "multi", code)
	}
	want := func(name string, q *quietTill, notModified bool) {
		t.Helper()
		if a := q.poll(t, s); a.NotModified != notModified {
			t.Fatalf("%s: %s got NotModified %v, want %v", name, q.id, a.NotModified, notModified)
		}
	}

	t.Run("OK/UnlimitedIsQuiet", func(t *testing.T) {
		useAt("M1")
		useAt("M1")
		want("after two uses of M1", t1, true)
		want("after two uses of M1", t2, true)
		if s.Quiet.Load() != 2 {
			t.Fatalf("quiet %d, want 2", s.Quiet.Load())
		}
	})
	t.Run("OK/SingleUseIsNews", func(t *testing.T) {
		useAt("ONCE")
		useAt("M1") // an unlimited use after it does not hide it
		want("after a use of ONCE", t1, false)
		if t1.uses[once] != 1 || t1.uses[m1] != 3 {
			t.Fatalf("figures %v, want ONCE 1, M1 3", t1.uses)
		}
		want("again, nothing moved", t1, true)
		useAt("M1")
		want("after a use of M1", t1, true)
		// till-2's body is older than the use of ONCE: news, although
		// till-1's polls judged that range already.
		want("after a use of ONCE (older body)", t2, false)
		if t2.uses[once] != 1 || t2.uses[m1] != 4 {
			t.Fatalf("figures %v, want ONCE 1, M1 4", t2.uses)
		}
	})
	t.Run("OK/QuietMaxAge", func(t *testing.T) {
		useAt("M1")
		want("within QuietMaxAge", t2, true)
		now = now.Add(snapshots.DefaultQuietMaxAge)
		want("after QuietMaxAge", t2, false)
		if t2.uses[m1] != 5 {
			t.Fatalf("figures %v, want M1 5", t2.uses)
		}
	})
	t.Run("OK/Exact", func(t *testing.T) {
		exact, err := snapshots.New(cat, snapshots.Options{Ledger: led, Now: func() time.Time { return now }, QuietMaxAge: -1})
		if err != nil {
			t.Fatal(err)
		}
		t3 := &quietTill{id: "till-3", req: snapshots.Request{Tenant: "acme", Agent: "till-3"}, uses: map[protocol.CodeID]int64{}}
		if _, _, err := cat.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: "till-3", Store: first.Snapshot.Store}); err != nil {
			t.Fatal(err)
		}
		t3.poll(t, exact)
		if a := t3.poll(t, exact); !a.NotModified {
			t.Fatalf("exact ETag, nothing moved: %+v", a)
		}
		useAt("M1")
		if a := t3.poll(t, exact); a.NotModified || exact.Quiet.Load() != 0 {
			t.Fatalf("exact ETag after a use of M1: %+v (quiet %d), want a body", a, exact.Quiet.Load())
		}
	})
	t.Run("OK/FirstJudgement", func(t *testing.T) {
		// A fresh service's first judgement starts at the polling till's
		// body; a till with an older body still gets the news before it.
		fresh, err := snapshots.New(cat, snapshots.Options{Ledger: led, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		a := &quietTill{id: "till-1", req: snapshots.Request{Tenant: "acme", Agent: "till-1"}, uses: map[protocol.CodeID]int64{}}
		b := &quietTill{id: "till-2", req: snapshots.Request{Tenant: "acme", Agent: "till-2"}, uses: map[protocol.CodeID]int64{}}
		a.poll(t, fresh)
		b.poll(t, fresh)
		useAt("ONCE2")
		a.req.Since, a.req.IfNoneMatch = 0, "" // a full fetch: no judgement
		a.poll(t, fresh)
		useAt("M1")
		if ans := a.poll(t, fresh); !ans.NotModified {
			t.Fatalf("till-1 after a use of M1: %+v, want NotModified", ans)
		}
		if ans := b.poll(t, fresh); ans.NotModified {
			t.Fatal("till-2, whose body is older than the use of ONCE2: NotModified, want a body")
		}
	})
}
