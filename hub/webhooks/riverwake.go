package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riversqlite"
)

// Waking River's fetch. SQLite has no LISTEN/NOTIFY: River's SQLite
// driver writes a notification row in the inserting transaction
// (river_notification) and its listener reads that table every 50 ms (a
// fixed interval in riversqlite v0.51.2); the notification wakes the
// producer's fetch. River cannot wake its fetch at the commit itself: the
// relay inserts with InsertManyTx, in its own transaction with the
// cursor's move, and River does not know when that commits. So the relay,
// after its commit, wakes the listener: wakeDriver is River's SQLite
// driver whose listener (wakeListener) also answers a local wake at once,
// with the insert notification River's producer listens for (topic
// river_insert, the default queue), so the producer fetches without
// waiting for the next read of river_notification. Every other
// notification (leadership, queue control, inserts of other processes)
// still arrives by the table, as before. River's fetch poll
// (Options.PollInterval) is then only the fallback for retries that came
// due and for lost notifications.

// insertTopic and insertPayload are River's insert notification for the
// default queue (river/internal/notifier.NotificationTopicInsert and the
// producer's insertPayload).
const insertTopic = "river_insert"

var insertPayload = func() string {
	b, _ := json.Marshal(map[string]string{"queue": river.QueueDefault})
	return string(b)
}()

// wakeDriver is riversqlite's driver with a listener that a local wake
// interrupts.
type wakeDriver struct {
	*riversqlite.Driver
	wake chan struct{}
}

func newWakeDriver(db *sql.DB) *wakeDriver {
	return &wakeDriver{Driver: riversqlite.New(db), wake: make(chan struct{}, 1)}
}

func (d *wakeDriver) GetListener(params *riverdriver.GetListenenerParams) riverdriver.Listener {
	return &wakeListener{Listener: d.Driver.GetListener(params), wake: d.wake}
}

// signal wakes the listener without blocking: wakes while one is pending
// fold into it.
func (d *wakeDriver) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// wakeListener waits for the SQLite listener's next notification or a
// local wake, whichever comes first.
type wakeListener struct {
	riverdriver.Listener
	wake chan struct{}
}

func (l *wakeListener) WaitForNotification(ctx context.Context) (*riverdriver.Notification, error) {
	select {
	case <-l.wake:
		return &riverdriver.Notification{Topic: insertTopic, Payload: insertPayload}, nil
	default:
	}
	type result struct {
		n   *riverdriver.Notification
		err error
	}
	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan result, 1)
	go func() {
		n, err := l.Listener.WaitForNotification(inner)
		ch <- result{n, err}
	}()
	select {
	case r := <-ch:
		return r.n, r.err
	case <-l.wake:
		// Interrupt the table's reader (it keeps what it read and not yet
		// handed out for its next call). A notification it returned
		// meanwhile goes first; the wake stays for the next call.
		cancel()
		r := <-ch
		if r.err == nil {
			select {
			case l.wake <- struct{}{}:
			default:
			}
			return r.n, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return &riverdriver.Notification{Topic: insertTopic, Payload: insertPayload}, nil
	}
}

// wakeRiver makes River's producer fetch now (no-op with NoRiverWake).
func (s *Service) wakeRiver() {
	if s.opts.NoRiverWake || s.drv == nil {
		return
	}
	s.drv.signal()
}
