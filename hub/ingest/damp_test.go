package ingest_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/punchcard/punchcard/hub/ingest"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestResendDamped: a till that publishes a batch again while the first
// one still waits to be recorded (under load, after its ack timeout) has
// the re-sends dropped, not prepared and recorded a second and third
// time; the one Ack after the commit answers them, and a re-send after
// that commit is applied (a no-op) and acked again. The writer is held
// back by the test holding SQLite's write lock.
func TestResendDamped(t *testing.T) {
	ctx := context.Background()
	env := startInline(t)
	path := filepath.Join(t.TempDir(), "hub.db")
	l, err := ledger.Open(ctx, path, ledger.Options{Facts: &ledger.MemFacts{}, Store: store.Options{BusyTimeoutMS: int(patience(t).Milliseconds())}})
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(l, ingest.Options{SigningKey: hubKey, Inline: env.inline, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		if rep, err := l.Verify(context.Background()); err != nil || !rep.OK() {
			t.Errorf("ledger verify: %+v %v", rep.Diffs, err)
		}
		l.Close()
	})
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lock, err := db.BeginTx(ctx, nil) // _txlock=immediate: the write lock
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, env, "till-1")
	a.send(1, 2, 3)
	waitFor(t, "the first batch handed to the writer", func() bool { return in.Stats().Drains == 1 })
	a.send(1, 2, 3)
	a.send(2, 3)
	waitFor(t, "two re-sends damped", func() bool { return in.Stats().Damped == 2 })
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if ack := a.ack(); ack.Watermark != 3 {
		t.Fatalf("ack %+v, want watermark 3", ack)
	}
	a.send(1, 2, 3) // after the commit: applied (nothing new) and acked
	if ack := a.ack(); ack.Watermark != 3 {
		t.Fatalf("ack %+v, want watermark 3", ack)
	}
	waitFor(t, "the second Ack counted", func() bool { return in.Stats().Acks == 2 })
	s := in.Stats()
	if s.Batches != 2 || s.Damped != 2 || s.Acks != 2 || s.Errors != 0 {
		t.Fatalf("stats %+v: want 2 batches recorded, 2 damped, 2 acks", s)
	}
	if n, err := l.Agent(ctx, "acme", "till-1"); err != nil || n.Watermark != 3 {
		t.Fatalf("agent %+v, %v", n, err)
	}
}
