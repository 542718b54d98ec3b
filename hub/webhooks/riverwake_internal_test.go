package webhooks

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/riverqueue/river/riverdriver"

	"github.com/punchcard/punchcard/protocol"
)

type noSource struct{}

func (noSource) EventsAfter(context.Context, int64, int) ([]protocol.Event, error) { return nil, nil }

// TestWakeListener: River's SQLite listener (the real one, on a real
// webhooks.db) answers a local wake at once with River's insert
// notification, while no notification row exists, whether the wake comes
// before or during the wait; notifications written to river_notification
// still arrive; a cancelled wait ends. Without the wake the wait would
// block until a row is written (it polls the table).
func TestWakeListener(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "webhooks.db"), Options{Sources: map[string]Source{"x": noSource{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	l := s.drv.GetListener(&riverdriver.GetListenenerParams{})
	if err := l.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	if err := l.Listen(ctx, insertTopic); err != nil {
		t.Fatal(err)
	}
	wait := func(ctx context.Context) chan error {
		done := make(chan error, 1)
		go func() {
			n, err := l.WaitForNotification(ctx)
			if err == nil && (n.Topic != insertTopic || n.Payload != `{"queue":"default"}`) {
				err = errors.New("notification " + n.Topic + " " + n.Payload)
			}
			done <- err
		}()
		return done
	}
	s.wakeRiver() // before the wait
	if err := <-wait(ctx); err != nil {
		t.Fatal(err)
	}
	done := wait(ctx) // during the wait (or before it starts: the same)
	s.wakeRiver()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A row of river_notification (as River writes in an inserting
	// transaction) arrives through the table, no wake needed.
	if err := s.drv.GetExecutor().NotifyMany(ctx, &riverdriver.NotifyManyParams{Topic: insertTopic, Payload: []string{`{"queue":"default"}`}}); err != nil {
		t.Fatal(err)
	}
	if err := <-wait(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done = wait(cctx)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled wait: %v", err)
	}
}
