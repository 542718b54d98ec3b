package catalog

import (
	"encoding/json"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Actor is who makes a change, as the audit log records it.
type Actor struct {
	Tenant protocol.TenantID // "" for a platform key
	KeyID  string            // the API key; "" for the system (bootstrap)
	Role   Role
}

func (a Actor) String() string {
	if a.KeyID == "" {
		return "system"
	}
	return "key:" + a.KeyID
}

// System is the actor of changes the hub makes by itself (bootstrap).
var System = Actor{Role: RolePlatform}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID      int64             `json:"id"`
	Tenant  protocol.TenantID `json:"tenant"`
	Actor   string            `json:"actor"`
	Action  string            `json:"action"`
	Target  string            `json:"target"`
	Before  json.RawMessage   `json:"before,omitempty"`
	After   json.RawMessage   `json:"after,omitempty"`
	Version uint64            `json:"version"`
	At      time.Time         `json:"at"`
}

// MaxIdempotencyKey bounds an Idempotency-Key header.
const MaxIdempotencyKey = 128

// Remembered is the stored answer to a request with an idempotency key.
type Remembered struct {
	Status int
	Body   []byte
}

// MaxListLimit bounds the items of one list answer.
const MaxListLimit = 1000
