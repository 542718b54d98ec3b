-- The event log (issue 13): one row per business event, written in the
-- transaction of the change it reports (a fact applied, a conflict, points
-- expired, a tier change, a budget threshold crossed), so that an event
-- exists exactly when its change does. seq orders the log for the webhook
-- relay (hub/webhooks), which reads it by a cursor; id is the event's
-- stable public id (webhook-id of every delivery of it); body is the
-- event's JSON data, of version v (docs/events.md). Rows older than the
-- retention (hub -event-retention) are deleted by the hub's periodic job.
CREATE TABLE ledger_events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    id     TEXT    NOT NULL UNIQUE DEFAULT ('evt_' || lower(hex(randomblob(12)))),
    tenant TEXT    NOT NULL,
    type   TEXT    NOT NULL,
    at     INTEGER NOT NULL, -- Unix microseconds, hub clock
    v      INTEGER NOT NULL DEFAULT 1,
    body   TEXT    NOT NULL
);
CREATE INDEX ledger_events_at ON ledger_events (at);
