package wire

import (
	"time"
	"unicode/utf8"

	"github.com/punchcard/punchcard/protocol"
)

// PathCustomerEvents is the online channels' route for a customer's custom
// event (newsletter sign-up, review, birthday), under /v1/tenants/{t}: the
// hub runs the rules engine's event earning and records the points through
// the ledger's earn path, once per Idempotency-Key (the event's id).
const PathCustomerEvents = "/customers/:customer/events"

// Limits on a customer event.
const (
	MaxEventType       = 64
	MaxEventAttributes = 16
	MaxEventAttrLen    = 256
	// MaxEventAge is how far in the past an event's time may lie: its
	// points count in the period it happened in.
	MaxEventAge = 30 * 24 * time.Hour
	// MaxEventAhead tolerates a sender's clock ahead of the hub's.
	MaxEventAhead = 5 * time.Minute
)

// CustomerEvent is the body of POST …/customers/{c}/events.
type CustomerEvent struct {
	// Type names the event as the points programs' event rules do
	// ("newsletter_signup"): letters, digits, '-', '_' and '.'.
	Type string `json:"type"`
	// At is when it happened (RFC 3339); zero = now. At most MaxEventAge
	// ago and MaxEventAhead ahead.
	At time.Time `json:"at,omitzero"`
	// Attributes describe the event (a review's product); kept with the
	// request's idempotency record, not read by the rules.
	Attributes map[string]string `json:"attributes,omitempty"`
	// Store is where it happened: its time zone sets the period of a
	// capped event rule. Default: store "online" in UTC.
	Store *OnlineStore `json:"store,omitempty"`
}

// DefaultEventStore is the store of an event that names none.
var DefaultEventStore = OnlineStore{ID: "online", TimeZone: "UTC"}

// Validate checks an event from the outside against the hub's clock now
// and returns an invalid_input error naming the field.
func (e *CustomerEvent) Validate(now time.Time) error {
	if e.Type == "" {
		return protocol.FieldError("type", "the event type is required")
	}
	if len(e.Type) > MaxEventType {
		return protocol.FieldError("type", "the event type is longer than %d characters", MaxEventType)
	}
	if err := protocol.ValidateID("type", e.Type); err != nil {
		return protocol.WithField("type", err)
	}
	if !e.At.IsZero() {
		if e.At.After(now.Add(MaxEventAhead)) {
			return protocol.FieldError("at", "the event's time is in the future")
		}
		if e.At.Before(now.Add(-MaxEventAge)) {
			return protocol.FieldError("at", "the event is older than %d days", int(MaxEventAge/(24*time.Hour)))
		}
	}
	if len(e.Attributes) > MaxEventAttributes {
		return protocol.FieldError("attributes", "at most %d attributes", MaxEventAttributes)
	}
	for k, v := range e.Attributes {
		if k == "" || len(k) > MaxEventAttrLen || len(v) > MaxEventAttrLen || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return protocol.FieldError("attributes", "attribute names and values are UTF-8 of at most %d bytes, names not empty", MaxEventAttrLen)
		}
	}
	if e.Store != nil {
		if err := protocol.ValidateID("store.id", string(e.Store.ID)); err != nil {
			return protocol.WithField("store.id", err)
		}
	}
	return nil
}
