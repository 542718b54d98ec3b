package webhooks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"

	"github.com/punchcard/punchcard/protocol"
)

// The relay: it moves the events of the logs (Options.Sources) into River
// jobs, one per event and matching endpoint.
//
// A round that inserts jobs moves the source's cursor in webhook_cursors
// in the same transaction as the inserts, so that no event is moved
// twice or lost, whatever crashes when. A round that inserts no job (no
// enabled endpoint matches its events, by far the common case) moves the
// cursor in memory only: the ledger's and the catalog's writers wake the
// relay after every commit that wrote events (every ingest drain, every
// online group), and a write transaction per wake cost a good part of the
// relay's CPU. The cursor in memory is written lazily: with the next round
// that inserts jobs, at the poll when it is Options.CursorSave old, before
// any endpoint is created, changed or enabled, and at Close.
//
// Why that is safe. The cursor in webhook_cursors is never ahead of an
// event that got jobs (a round with jobs writes its cursor with them), so
// after a crash the relay reads again, from the cursor written last, only
// events whose rounds inserted no job, and judges them again against the
// endpoints: those are the endpoints they were judged against the first
// time, since this process writes its cursor before it changes an
// endpoint in a way that can make an event match (create, update, enable;
// changes and rounds exclusive under relayState.mu), and a deletion or a
// disabling only removes matches. An endpoint created after a round gets
// no event that round saw anyway: it gets the events written from its
// creation on (the created filter). So the events read again insert no
// job again: none is delivered twice, and none that had no endpoint is
// delivered after the crash. (Another hub changing endpoints in the same
// webhooks.db between a round and a crash is the exception; the worst it
// can do is deliver, once, an event that the endpoint would otherwise not
// have got.)
//
// Rounds without endpoints. While no tenant has an enabled endpoint, a
// wake runs no round at all (no read of the log): the relay reads the
// logs at its poll only (RelayInterval), where it also checks
// webhook_endpoints again for another process's changes, so its cursor
// stays near the end of the logs. This process's endpoint changes wake the
// relay at once. A poll that finds no enabled endpoint does not read the
// events either: it moves the cursor to the log's last event (a
// HeadSource's EventsHead), in memory as a round without jobs does. That
// is what reading them would do, since none can match: the endpoints are
// checked and the cursor moved under relayState.mu, and an endpoint
// created later gets only the events written from its creation on.
// (Reading the events only to pass them was ~4 % of the CPU in a
// catch-up's profile.)

// CursorSaveInterval is how long the relay keeps a cursor moved by rounds
// without jobs in memory before it writes it (Options.CursorSave).
const CursorSaveInterval = 5 * time.Second

// endpoints known to the relay.
const (
	endpointsUnknown int32 = iota // check webhook_endpoints at the next round
	endpointsNone                 // no enabled endpoint: wakes run no round
	endpointsSome
)

type relayState struct {
	// mu is held for a round and for an endpoint change, so a change
	// never falls between a round's read of the endpoints and its cursor.
	mu     sync.Mutex
	cursor map[string]int64 // where the next round reads on from, by source
	saved  map[string]int64 // what webhook_cursors holds, as far as we know
	since  time.Time        // when cursor first ran ahead of saved
	// endpoints is endpointsUnknown, endpointsNone or endpointsSome.
	endpoints atomic.Int32
	kick      chan struct{} // an endpoint change: run a round now
	rounds    atomic.Int64  // rounds that read the logs (tests)
}

func (r *relayState) init() {
	r.cursor = map[string]int64{}
	r.saved = map[string]int64{}
	r.kick = make(chan struct{}, 1)
}

func (s *Service) relayLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.RelayInterval)
	defer t.Stop()
	poll := true // the first round is a poll
	for {
		s.relayRound(ctx, poll)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			poll = true
		case <-s.relay.kick:
			poll = false
		case <-s.opts.Wake: // nil without a Wake: never ready
			poll = false
		}
	}
}

// relayRound reads every log on from its cursor, unless it is a wake and
// no endpoint is enabled. A poll checks the endpoints again and writes a
// cursor that is CursorSaveInterval old.
func (s *Service) relayRound(ctx context.Context, poll bool) {
	s.relay.mu.Lock()
	defer s.relay.mu.Unlock()
	if poll || s.relay.endpoints.Load() == endpointsUnknown {
		var some bool
		if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled = 1)`).Scan(&some); err != nil {
			if ctx.Err() == nil {
				s.log.Error("webhooks: relay: endpoints", slog.Any("err", err))
			}
			s.relay.endpoints.Store(endpointsUnknown)
		} else if some {
			s.relay.endpoints.Store(endpointsSome)
		} else {
			s.relay.endpoints.Store(endpointsNone)
		}
	}
	none := s.relay.endpoints.Load() == endpointsNone
	if !poll && none {
		return
	}
	for name, src := range s.opts.Sources {
		if hs, ok := src.(HeadSource); ok && none {
			if err := s.skipToHead(ctx, name, hs); err != nil && ctx.Err() == nil {
				s.log.Error("webhooks: relay", slog.String("source", name), slog.Any("err", err))
			}
			continue
		}
		for {
			n, err := s.relayOnce(ctx, name, src)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Error("webhooks: relay", slog.String("source", name), slog.Any("err", err))
				}
				break
			}
			if n < DefaultRelayBatch {
				break
			}
		}
	}
	if poll {
		if err := s.saveCursorsLocked(ctx, false); err != nil && ctx.Err() == nil {
			s.log.Error("webhooks: relay cursor", slog.Any("err", err))
		}
	}
}

// RelayOnce moves the next events of one log into jobs: the cursor's
// move and the jobs' inserts are one transaction; without a job the
// cursor moves in memory (see above). It reports how many events it
// moved.
func (s *Service) RelayOnce(ctx context.Context, name string, src Source) (int, error) {
	s.relay.mu.Lock()
	defer s.relay.mu.Unlock()
	return s.relayOnce(ctx, name, src)
}

// cursorOf is the source's cursor, read from webhook_cursors the first
// time. The caller holds relay.mu.
func (s *Service) cursorOf(ctx context.Context, name string) (int64, error) {
	cursor, ok := s.relay.cursor[name]
	if !ok {
		if err := s.db.QueryRowContext(ctx, `SELECT seq FROM webhook_cursors WHERE source = ?`, name).Scan(&cursor); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("webhooks: cursor: %w", err)
		}
		s.relay.cursor[name], s.relay.saved[name] = cursor, cursor
	}
	return cursor, nil
}

// skipToHead moves the source's cursor, in memory, to its last event: a
// poll's round with no enabled endpoint. The caller holds relay.mu.
func (s *Service) skipToHead(ctx context.Context, name string, src HeadSource) error {
	cursor, err := s.cursorOf(ctx, name)
	if err != nil {
		return err
	}
	head, err := src.EventsHead(ctx)
	if err != nil {
		return fmt.Errorf("webhooks: events head: %w", err)
	}
	if head > cursor {
		s.moveCursor(name, head)
	}
	return nil
}

func (s *Service) relayOnce(ctx context.Context, name string, src Source) (int, error) {
	s.relay.rounds.Add(1)
	cursor, err := s.cursorOf(ctx, name)
	if err != nil {
		return 0, err
	}
	es, err := src.EventsAfter(ctx, cursor, DefaultRelayBatch)
	if err != nil || len(es) == 0 {
		return 0, err
	}
	// The endpoints are read after the events: an endpoint created after
	// this read was created after the events were written, and gets none
	// of them (the created filter below).
	eps := map[protocol.TenantID][]endpointRow{}
	var params []river.InsertManyParams
	for _, e := range es {
		list, ok := eps[e.Tenant]
		if !ok {
			if list, err = enabledEndpoints(ctx, s.db, e.Tenant); err != nil {
				return 0, err
			}
			eps[e.Tenant] = list
		}
		for _, ep := range list {
			// An endpoint gets the events written from its creation on,
			// however late the relay reads them: a relay that ran just
			// before the endpoint was created must not differ from one
			// that ran just after.
			if ep.matches(e.Type) && e.At.UnixMicro() >= ep.created {
				params = append(params, river.InsertManyParams{Args: jobOf(ep.id, e)})
			}
		}
	}
	last := es[len(es)-1].Seq
	if len(params) == 0 {
		s.moveCursor(name, last)
		return len(es), nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("webhooks: relay: %w", err)
	}
	defer tx.Rollback()
	// Read again under the write lock: another hub on this file may have
	// moved it since this process last wrote it.
	var again int64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM webhook_cursors WHERE source = ?`, name).Scan(&again); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("webhooks: cursor: %w", err)
	}
	if again != s.relay.saved[name] {
		// The next round reads on from there.
		s.relay.cursor[name], s.relay.saved[name] = again, again
		return 0, nil
	}
	if _, err := s.river.InsertManyTx(ctx, tx, params); err != nil {
		return 0, fmt.Errorf("webhooks: relay insert: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_cursors (source, seq) VALUES (?, ?) ON CONFLICT (source) DO UPDATE SET seq = excluded.seq`,
		name, last); err != nil {
		return 0, fmt.Errorf("webhooks: cursor: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("webhooks: relay commit: %w", err)
	}
	s.relay.cursor[name], s.relay.saved[name] = last, last
	s.wakeRiver()
	return len(es), nil
}

// moveCursor moves a source's cursor in memory only.
func (s *Service) moveCursor(name string, seq int64) {
	if s.allSaved() {
		s.relay.since = s.opts.Now()
	}
	s.relay.cursor[name] = seq
}

func (s *Service) allSaved() bool {
	for name, c := range s.relay.cursor {
		if c != s.relay.saved[name] {
			return false
		}
	}
	return true
}

// saveCursors writes the cursors moved in memory: all of them with now,
// else those CursorSaveInterval old.
func (s *Service) saveCursors(ctx context.Context, now bool) error {
	s.relay.mu.Lock()
	defer s.relay.mu.Unlock()
	return s.saveCursorsLocked(ctx, now)
}

func (s *Service) saveCursorsLocked(ctx context.Context, now bool) error {
	if s.allSaved() || !now && s.opts.Now().Sub(s.relay.since) < s.opts.CursorSave {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("webhooks: cursor: %w", err)
	}
	defer tx.Rollback()
	moved := map[string]int64{}
	for name, c := range s.relay.cursor {
		if c == s.relay.saved[name] {
			continue
		}
		var again int64
		if err := tx.QueryRowContext(ctx, `SELECT seq FROM webhook_cursors WHERE source = ?`, name).Scan(&again); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("webhooks: cursor: %w", err)
		}
		if again != s.relay.saved[name] {
			// Another hub on this file moved it: read on from there.
			moved[name] = again
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_cursors (source, seq) VALUES (?, ?) ON CONFLICT (source) DO UPDATE SET seq = excluded.seq`,
			name, c); err != nil {
			return fmt.Errorf("webhooks: cursor: %w", err)
		}
		moved[name] = c
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("webhooks: cursor: %w", err)
	}
	for name, c := range moved {
		s.relay.cursor[name], s.relay.saved[name] = c, c
	}
	s.relay.since = time.Time{}
	return nil
}

// endpointChange runs change (an endpoint's creation, update or
// enabling: a change that can make events match) after writing the
// cursors moved in memory, with no round running, and wakes the relay.
// A deletion or disabling passes grow false: it writes no cursor.
func (s *Service) endpointChange(ctx context.Context, grow bool, change func() error) error {
	s.relay.mu.Lock()
	if grow {
		if err := s.saveCursorsLocked(ctx, true); err != nil {
			s.relay.mu.Unlock()
			return err
		}
	}
	err := change()
	s.relay.endpoints.Store(endpointsUnknown)
	s.relay.mu.Unlock()
	select {
	case s.relay.kick <- struct{}{}:
	default:
	}
	return err
}
