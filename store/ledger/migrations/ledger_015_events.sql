-- The event log (issue 13): one row per business event, written in the
-- transaction of the change it reports (a fact applied, a conflict, points
-- expired, a tier change, a budget threshold crossed), so that an event
-- exists exactly when its change does. seq orders the log for the webhook
-- relay (hub/webhooks), which reads it by a cursor. The event's stable
-- public id (webhook-id of every delivery) is 'evt_l' || hex(seq) || '_'
-- || salt: found by primary key, with no index of its own (a random id
-- under a UNIQUE index cost an extra B-tree page per commit), and the
-- random salt keeps a seq reused after a restore from backup from
-- repeating an id a receiver has seen. body is the
-- event's JSON data, of version v (docs/events.md). Rows older than the
-- retention (hub -event-retention) are deleted by the hub's periodic job.
CREATE TABLE ledger_events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    salt   TEXT    NOT NULL DEFAULT (lower(hex(randomblob(6)))),
    tenant TEXT    NOT NULL,
    type   TEXT    NOT NULL,
    at     INTEGER NOT NULL, -- Unix microseconds, hub clock
    v      INTEGER NOT NULL DEFAULT 1,
    body   TEXT    NOT NULL
);
CREATE INDEX ledger_events_at ON ledger_events (at);

-- A till (ledger_agents row) goes stale when the hub has not heard from it
-- for the hub's -till-stale-after; ReviewTills flips this flag and writes
-- till.stale or till.back in the same transaction.
ALTER TABLE ledger_agents ADD COLUMN stale INTEGER NOT NULL DEFAULT 0;
