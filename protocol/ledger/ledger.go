package ledger

import (
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// CampaignBalance is what a campaign has used, and how much of its budget
// is escrowed in agents' outstanding allowances.
type CampaignBalance struct {
	Count, Discount, OrderValue int64 // used, net of rollbacks
	ReservedCount               int64 // Σ max(0, outstanding count) over agents
	ReservedAmount              int64 // Σ max(0, outstanding discount) over agents
}

// ConflictKind names a violation that offline operation made possible.
type ConflictKind string

// Conflict kinds. They are stored and shown; never rename one.
const (
	ConflictCodeReused       ConflictKind = "code_reused"        // a code used more often than it allows
	ConflictGiftCardOverdraw ConflictKind = "giftcard_overdrawn" // a gift card spent beyond its balance
	ConflictCustomerLimit    ConflictKind = "customer_limit"     // a per-customer limit broken (often across stores)
	ConflictAfterKillSwitch  ConflictKind = "after_kill_switch"  // redeemed after the campaign was stopped
	ConflictAllowanceOverrun ConflictKind = "allowance_overrun"  // an agent redeemed beyond its allowance
	ConflictPointsOverdrawn  ConflictKind = "points_overdrawn"   // more points burned than the customer had
	ConflictFutureTime       ConflictKind = "future_time"        // the agent's clock is far ahead of the hub's
	// ConflictEffectMismatch (store/ledger, rederive.go): a till's discount or points
	// are not what the rules give its sale.
	// ConflictEarnCapExceeded, "earn_cap_exceeded" (store/ledger, periods.go): a
	// till's earn took a customer past a period-capped earning rule.
	// ConflictOrderValueExceeded, "order_value_exceeded" (store/ledger,
	// periods.go): a till's redemptions took a campaign past max_order_value.
)

// Conflict is one recorded violation, with both sides when there are two:
// Redemption is the one that broke the limit, Other the earlier one it
// collides with (nil for a kill switch or an allowance overrun).
type Conflict struct {
	ID         int64
	Tenant     protocol.TenantID
	Kind       ConflictKind
	Campaign   protocol.CampaignID
	Code       protocol.CodeID
	Customer   protocol.CustomerID
	Redemption protocol.RedemptionID
	Other      *protocol.RedemptionID
	Detail     string
	At         time.Time
}

// Quarantined is a fact the hub received but could not apply: it failed
// protocol.Redemption.ValidateFrom (a tampered till, or one of an older
// version whose facts this hub no longer accepts), spoke for another
// tenant or agent, or did not decode while still naming its seq. It is
// kept with its bytes as received and counts toward its agent's
// watermark, so that the Ack covers it and the till's other facts are
// never held back by it. It touches no balance: Verify is unaffected.
//
// It is filed under the identity the fact arrived with (the sending
// agent's tenant and agent, as matched to the MQTT topic and the broker
// login), never under the tenant or agent a forged fact claims: a till
// cannot put anything in another tenant's quarantine.
type Quarantined struct {
	ID      int64
	Tenant  protocol.TenantID
	Agent   protocol.AgentID
	Seq     uint64
	Code    protocol.Code // invalid_input, forbidden or message_malformed
	Field   string        // the fact's offending field, when known
	Message string
	Raw     []byte // the fact's CBOR as received
	At      time.Time
}

// CustomerEntry is one journal entry naming a customer, as a customer's
// data export (GDPR right of access) shows it.
type CustomerEntry struct {
	ID         int64                  `json:"id"`
	Entry      string                 `json:"entry"` // redeem, rollback, earn, burn
	Redemption protocol.RedemptionID  `json:"redemption"`
	Store      protocol.StoreID       `json:"store,omitempty"`
	TxnID      string                 `json:"txn_id,omitempty"`
	Campaign   protocol.CampaignID    `json:"campaign,omitempty"`
	Code       protocol.CodeID        `json:"code,omitempty"`
	OrderID    string                 `json:"order_id,omitempty"`
	Currency   protocol.Currency      `json:"currency,omitempty"`
	Discount   int64                  `json:"discount"`
	Spend      int64                  `json:"spend"`
	Points     int64                  `json:"points"`
	OrderTotal int64                  `json:"order_total"`
	Offline    bool                   `json:"offline"`
	Of         *protocol.RedemptionID `json:"of,omitempty"` // a rollback: the redemption it voids
	At         time.Time              `json:"at"`           // when the till made it (its HLC)
	ReceivedAt time.Time              `json:"received_at"`  // when the hub recorded it
}
