package protocol

import "time"

// TimePrecision is the precision of every time the hub and the agent
// answer with and store: microseconds, what SQLite keeps (UnixMicro). A
// time is cut to it when it is made, so that what a write answers is what
// a later read answers.
const TimePrecision = time.Microsecond

// APITime is t as the APIs show it: UTC, cut to TimePrecision. JSON writes
// it in RFC 3339 with up to six fractional digits (trailing zeros left
// out, as encoding/json does).
func APITime(t time.Time) time.Time { return t.UTC().Truncate(TimePrecision) }
