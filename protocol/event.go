package protocol

import (
	"encoding/json"
	"time"
)

// Event is one entry of the hub's event log (docs/events.md): what the hub
// tells the rest of the business, written in the transaction of the change
// it reports. The ledger and the catalog each keep a log; Seq orders one
// log, ID is stable across every delivery of the event.
type Event struct {
	Seq    int64
	ID     string
	Tenant TenantID
	Type   string
	At     time.Time
	V      int // the body's version
	Body   json.RawMessage
}
