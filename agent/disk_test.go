package agent_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/agentdb"
)

// TestStorageFull: with a free-space threshold injected above what the
// data directory's file system has, the POS gets storage_full (507) for a
// new sale, and a rollback of an earlier sale still passes.
func TestStorageFull(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	open := func(min int64) *env {
		db, err := agentdb.Open(ctx, path, agentdb.Options{MinFreeBytes: min})
		if err != nil {
			t.Fatal(err)
		}
		a, err := agent.New(ctx, agenttest.Tenant, agenttest.Agent, db)
		if err != nil {
			t.Fatal(err)
		}
		e := &env{a: a, db: db, link: &link{count: 5}}
		n := time.Now()
		e.now.Store(&n)
		a.Now, a.POSToken, a.Logger = func() time.Time { return *e.now.Load() }, agenttest.POSToken, discardLogger()
		a.SetLink(e.link)
		e.srv = httptest.NewServer(a.Handler())
		return e
	}
	e := open(0)
	if _, err := e.a.ApplySnapshot(ctx, agenttest.Encode(t, agenttest.Small(1, 10)), "etag"); err != nil {
		t.Fatal(err)
	}
	if r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeSummer))); r.Status != http.StatusOK {
		t.Fatalf("redeem: %d %s", r.Status, r.Raw)
	}
	free, ok := e.db.FreeBytes()
	e.srv.Close()
	e.db.Close()
	if !ok {
		t.Skip("free space unknown on this platform")
	}
	e = open(int64(free) + 1<<40)
	defer func() { e.srv.Close(); e.db.Close() }()
	r := e.post(t, "/v1/redeem", redeem("T2", basket(100_00, agenttest.CodeSummer)))
	if r.Status != http.StatusInsufficientStorage || r.code() != string(protocol.CodeStorageFull) {
		t.Fatalf("redeem on a full disk: %d %s", r.Status, r.Raw)
	}
	if r := e.post(t, "/v1/rollback", agent.RollbackRequest{TxnID: "T1"}); r.Status != http.StatusOK {
		t.Fatalf("rollback on a full disk: %d %s", r.Status, r.Raw)
	}
}
