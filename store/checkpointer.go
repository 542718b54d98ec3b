package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// The background checkpointer (issue 10, the fleet's ack latency
// spikes). By default SQLite checkpoints the WAL inside the commit that
// takes it past 1,000 pages (wal_autocheckpoint): at fleet load that was
// the hub's ingest writer, several times a second, copying the WAL into
// the database file and fsyncing it while it held the write gate and the
// tills' Acks waited behind it. With Options.NoAutoCheckpoint no commit
// checkpoints; a Checkpointer runs PASSIVE checkpoints on a pooled
// connection of its own goroutine instead, often enough to keep the WAL
// small. A PASSIVE checkpoint takes no lock a writer or a reader waits
// for: it copies what no reader still needs and leaves the rest for the
// next round, and the first writer after a complete one starts the WAL
// over from its beginning (so the file stops growing).
//
// A writer starts the WAL over only when, as its transaction begins,
// every frame is copied. Under a steady stream of commits a checkpoint
// running beside them never catches up: each one ends with newer frames
// than it copied, and the WAL grows for as long as the stream lasts
// (what wal_autocheckpoint=0 alone did to the fleet). So once the WAL
// holds RestartPages or more, a round copies what it can beside the
// writers and then, with the writers held back (Quiesce: the ledger's
// write gate), copies the few frames committed meanwhile: that hold is
// one small checkpoint, where SQLite's own one in a commit copied all
// 1,000 pages and fsynced the database file in the committing writer.
//
// It is small only if the round beside the writers copied nearly
// everything. A long read (at fleet scale, a list of every till: 100-270
// ms) pins the frames committed after it began: a round beside it stops
// there, and a round under Quiesce either stops there too (the writers
// held back for nothing: the WAL cannot start over while the reader
// needs it) or, if the reader ended meanwhile, copies the whole backlog
// with the writers held (at the fleet, 10 such holds in the 8 s after a
// campaign change kept ingest's writer waiting 0.85 s). So a round holds
// the writers back only when at most FinishPages were left after the
// copy beside them; otherwise the next round, beside the writers, copies
// the backlog first. Holding back is deferred at most MaxDeferred rounds
// in a row, so that a writer faster than the copy cannot keep the WAL
// growing without bound.

// DefaultCheckpointEvery is CheckpointerOptions.Every's default: at the
// fleet's ~5,000 WAL pages a second, a round copies a few hundred pages.
const DefaultCheckpointEvery = 100 * time.Millisecond

// DefaultRestartPages is CheckpointerOptions.RestartPages's default:
// SQLite's own wal_autocheckpoint.
const DefaultRestartPages = 1000

// DefaultFinishPages is CheckpointerOptions.FinishPages's default: what
// the fleet's ingest commits in about 50 ms.
const DefaultFinishPages = 256

// DefaultMaxDeferred is CheckpointerOptions.MaxDeferred's default: a
// second of rounds at DefaultCheckpointEvery.
const DefaultMaxDeferred = 10

// CheckpointerOptions configure StartCheckpointer.
type CheckpointerOptions struct {
	Every time.Duration // between rounds; default DefaultCheckpointEvery
	// Quiesce, when set, holds back the database's writers until the
	// returned func is called (see above); nil: rounds never do.
	Quiesce func() (release func())
	// RestartPages is the WAL size (frames) from which a round finishes
	// under Quiesce; default DefaultRestartPages.
	RestartPages int64
	// FinishPages is the most frames a round may have left uncopied
	// beside the writers and still finish under Quiesce (see above);
	// default DefaultFinishPages.
	FinishPages int64
	// MaxDeferred is the most rounds in a row that may skip finishing
	// under Quiesce because more than FinishPages were left; the next one
	// finishes whatever is left. Default DefaultMaxDeferred.
	MaxDeferred int
	Logger      *slog.Logger // a failed round is logged (at most once a minute); default slog.Default()
}

// Checkpointer runs PASSIVE checkpoints of a database in the background.
type Checkpointer struct {
	db     *sql.DB
	opts   CheckpointerOptions
	cancel context.CancelFunc
	wg     sync.WaitGroup

	rounds, copied, busy, errors, ns, passes, held, restarts atomic.Int64
	heldNs, deferredN                                        atomic.Int64

	mu                sync.Mutex // Round's
	prevLog, prevDone int64
	deferred          int       // rounds in a row that did not finish under Quiesce
	lastLog           time.Time // the loop's own
}

// CheckpointStats are a Checkpointer's counters since it started.
type CheckpointStats struct {
	Rounds int64         // checkpoints that had frames to copy
	Frames int64         // WAL frames they copied into the database file
	Busy   int64         // rounds that could not copy everything (a reader or a writer in the way): the rest waits for the next
	Errors int64         // rounds that failed
	Time   time.Duration // spent in rounds that had frames to copy
	Passes int64         // rounds run, whether they copied or not
	Held   int64         // rounds finished with the writers held back (Quiesce)
	// Deferred counts the rounds that did not finish under Quiesce
	// although the WAL held RestartPages or more, because more than
	// FinishPages were left after the copy beside the writers (a reader
	// in the way, or a backlog to copy first).
	Deferred int64
	// HeldTime is the time writers were held back by them (from the
	// moment Quiesce returned).
	HeldTime time.Duration
	// Restarts counts the rounds that found the WAL started over since
	// the round before (a writer began it again after a complete
	// checkpoint): what keeps it bounded.
	Restarts int64
}

// StartCheckpointer starts checkpointing db (opened with
// Options.NoAutoCheckpoint) every opts.Every until Close.
func StartCheckpointer(db *sql.DB, opts CheckpointerOptions) *Checkpointer {
	if opts.Every <= 0 {
		opts.Every = DefaultCheckpointEvery
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RestartPages <= 0 {
		opts.RestartPages = DefaultRestartPages
	}
	if opts.FinishPages <= 0 {
		opts.FinishPages = DefaultFinishPages
	}
	if opts.MaxDeferred <= 0 {
		opts.MaxDeferred = DefaultMaxDeferred
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Checkpointer{db: db, opts: opts, cancel: cancel}
	c.wg.Add(1)
	go c.loop(ctx)
	return c
}

func (c *Checkpointer) loop(ctx context.Context) {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.Round(ctx); err != nil && ctx.Err() == nil {
			c.errors.Add(1)
			if time.Since(c.lastLog) > time.Minute {
				c.lastLog = time.Now()
				c.opts.Logger.Warn("store: background checkpoint", slog.Any("error", err))
			}
		}
	}
}

// Round runs one round now (the loop calls it): a PASSIVE checkpoint
// and, when the WAL holds RestartPages or more of which at most
// FinishPages are left uncopied, another with the writers held back
// (see above).
func (c *Checkpointer) Round(ctx context.Context) error {
	defer c.passes.Add(1)
	log, done, err := c.passive(ctx)
	if err != nil || log < c.opts.RestartPages || c.opts.Quiesce == nil {
		return err
	}
	c.mu.Lock()
	deferred := log-done > c.opts.FinishPages && c.deferred < c.opts.MaxDeferred
	if deferred {
		c.deferred++
	} else {
		c.deferred = 0
	}
	c.mu.Unlock()
	if deferred {
		c.deferredN.Add(1)
		return nil
	}
	release := c.opts.Quiesce()
	t0 := time.Now()
	_, _, err = c.passive(ctx)
	release()
	c.held.Add(1)
	c.heldNs.Add(int64(time.Since(t0)))
	return err
}

// passive runs one PASSIVE checkpoint and returns the WAL's frames and
// how many of them are copied.
func (c *Checkpointer) passive(ctx context.Context) (log, done int64, err error) {
	t0 := time.Now()
	var busy int64
	if err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done); err != nil {
		return 0, 0, fmt.Errorf("store: checkpoint: %w", err)
	}
	d := time.Since(t0)
	if busy != 0 || (log >= 0 && done < log) {
		c.busy.Add(1)
	}
	// log is the WAL's frames, done those copied so far (by any round,
	// since the WAL last started over): what this round copied is the
	// growth of done, or all of it in a WAL started over since.
	c.mu.Lock()
	n := done
	if log >= c.prevLog && done >= c.prevDone {
		n = done - c.prevDone
	} else {
		c.restarts.Add(1)
	}
	c.prevLog, c.prevDone = log, done
	c.mu.Unlock()
	if n > 0 {
		c.rounds.Add(1)
		c.copied.Add(n)
		c.ns.Add(int64(d))
	}
	return log, done, nil
}

// Stats returns the counters.
func (c *Checkpointer) Stats() CheckpointStats {
	return CheckpointStats{Rounds: c.rounds.Load(), Frames: c.copied.Load(), Busy: c.busy.Load(), Errors: c.errors.Load(), Time: time.Duration(c.ns.Load()),
		Passes: c.passes.Load(), Held: c.held.Load(), HeldTime: time.Duration(c.heldNs.Load()),
		Restarts: c.restarts.Load(), Deferred: c.deferredN.Load()}
}

// Close stops the checkpointer (a round under way finishes first).
func (c *Checkpointer) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}
