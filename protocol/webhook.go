package protocol

import "time"

// Webhook bodies of the admin API (/v1/tenants/{t}/webhooks..., docs/events.md).

// WebhookEndpoint is a tenant's receiver of events.
type WebhookEndpoint struct {
	ID          string `json:"id"`
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
	// Types filters the events sent: exact types or prefixes ending in
	// ".*" ("fact.*"); empty sends every type.
	Types          []string   `json:"types"`
	Enabled        bool       `json:"enabled"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
	FailingSince   *time.Time `json:"failing_since,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	// Secret is the signing secret ("whsec_" + base64), only in the
	// answers of create and rotate-secret.
	Secret string `json:"secret,omitempty"`
}

// WebhookEndpointInput creates or changes an endpoint.
type WebhookEndpointInput struct {
	URL         string   `json:"url"`
	Description string   `json:"description,omitempty"`
	Types       []string `json:"types,omitempty"`
}

// WebhookDelivery is one attempt to deliver an event to an endpoint.
type WebhookDelivery struct {
	ID        int64     `json:"id"`
	EventID   string    `json:"event_id"`
	EventType string    `json:"event_type"`
	Attempt   int       `json:"attempt"`
	Status    int       `json:"status"` // the HTTP status; 0: no answer
	OK        bool      `json:"ok"`
	Error     string    `json:"error,omitempty"`
	Millis    int64     `json:"ms"`
	At        time.Time `json:"at"`
}

// WebhookReplay asks for one event (EventID) or the events of a time
// range [From, To) to be delivered again to one endpoint.
type WebhookReplay struct {
	EventID string     `json:"event_id,omitempty"`
	From    *time.Time `json:"from,omitempty"`
	To      *time.Time `json:"to,omitempty"`
}

// WebhookReplayResult says how many deliveries a replay queued.
type WebhookReplayResult struct {
	Queued int `json:"queued"`
}
