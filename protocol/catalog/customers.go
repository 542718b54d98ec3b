package catalog

import (
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Customer is a tenant's customer. Email, Name and Phone are personal data
// that EraseCustomer removes; the ID stays (as a pseudonym) so that the
// ledger's amounts and the tokens issued keep adding up.
type Customer struct {
	ID         protocol.CustomerID `json:"id"`
	Email      string              `json:"email,omitempty"`
	Name       string              `json:"name,omitempty"`
	Phone      string              `json:"phone,omitempty"`
	Segment    string              `json:"segment,omitempty"`
	Tier       string              `json:"tier,omitempty"`
	Attributes map[string]string   `json:"attributes,omitempty"`
	CreatedAt  time.Time           `json:"created_at"`
	UpdatedAt  time.Time           `json:"updated_at"`
	ErasedAt   time.Time           `json:"erased_at,omitzero"`
}

// Protocol is what the rules may know of the customer.
func (cu Customer) Protocol() protocol.Customer {
	return protocol.Customer{ID: cu.ID, Segment: cu.Segment, Tier: cu.Tier, Attributes: cu.Attributes}
}

// CustomerData is everything the catalog keeps about one customer, for a
// data export (GDPR right of access): the profile, every token issued to
// them, and every audit entry about them or their tokens.
type CustomerData struct {
	Customer Customer     `json:"customer"`
	Tokens   []Token      `json:"tokens"`
	Audit    []AuditEntry `json:"audit"`
}
