package catalog

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Distribution kinds: what each recipient of a distribution gets.
const (
	DistributeCode  = "code"  // a new single-use plain code of the campaign
	DistributeToken = "token" // a signed token of the campaign naming the customer
)

// Distribution states.
const (
	DistributionRunning = "running" // codes or tokens being made (Done < Total)
	DistributionDone    = "done"    // every recipient has one: exportable
	DistributionFailed  = "failed"  // stopped at Error; publishing again resumes
)

// MaxDistributionList bounds the recipients one publish call takes (a list
// body or a segment); a distribution grows by publishing again.
const MaxDistributionList = 100_000

// DistributionRequest publishes a campaign's codes or tokens to a list of
// customers or to a segment's members (exactly one of Customers and
// Segment). Publishing again under the same distribution ID with the same
// campaign and kind is idempotent: recipients already in it keep their
// code, new ones get theirs.
type DistributionRequest struct {
	Campaign  protocol.CampaignID   `json:"campaign"`
	Kind      string                `json:"kind"` // DistributeCode or DistributeToken
	Customers []protocol.CustomerID `json:"customers,omitempty"`
	Segment   string                `json:"segment,omitempty"`
	// Expires is the tokens' expiry (kind token); default now +
	// DefaultTokenTTL at the time each token is made.
	Expires time.Time `json:"expires,omitzero"`
}

// Distribution is a distribution's record and progress.
type Distribution struct {
	ID        string              `json:"id"`
	Campaign  protocol.CampaignID `json:"campaign"`
	Kind      string              `json:"kind"`
	Segment   string              `json:"segment,omitempty"` // the last segment published to it
	State     string              `json:"state"`
	Total     int64               `json:"total"` // recipients
	Done      int64               `json:"done"`  // recipients with their code or token
	Error     string              `json:"error,omitempty"`
	Expires   time.Time           `json:"expires,omitzero"`
	CreatedAt time.Time           `json:"created_at"`
	UpdatedAt time.Time           `json:"updated_at"`
}

// DistributionRef names a distribution (the ones left running, which the
// hub's distributor resumes after a restart).
type DistributionRef struct {
	Tenant protocol.TenantID
	ID     string
}

// DistributionItem is one recipient's line of an export: N is its place in
// the distribution (1, 2, …, in the order published), Code the printed code
// or the token's serial, and Text what is printed and put in the QR code
// (the printed code, or the token text).
type DistributionItem struct {
	N        int64               `json:"n"`
	Customer protocol.CustomerID `json:"customer"`
	Code     string              `json:"code"`
	Text     string              `json:"text"`
}

// Validate checks a request's shape (not whether the campaign or segment
// exist). Reason code: invalid_input with the field.
func (r DistributionRequest) Validate() error {
	if err := protocol.ValidateID("campaign", string(r.Campaign)); err != nil {
		return protocol.WithField("campaign", err)
	}
	if r.Kind != DistributeCode && r.Kind != DistributeToken {
		return protocol.FieldError("kind", "kind must be %q or %q", DistributeCode, DistributeToken)
	}
	switch {
	case (len(r.Customers) == 0) == (r.Segment == ""):
		return protocol.FieldError("customers", "give either customers or a segment")
	case r.Segment != "":
		if err := protocol.ValidateID("segment", r.Segment); err != nil {
			return protocol.WithField("segment", err)
		}
	}
	return CheckRecipients(r.Customers)
}

// CheckRecipients refuses a list of more than MaxDistributionList
// customers, an invalid customer ID, or one listed twice (which would get
// one code: a mail merge would print it twice). Reason code: invalid_input,
// field customers[i].
func CheckRecipients(cs []protocol.CustomerID) error {
	if len(cs) > MaxDistributionList {
		return protocol.FieldError("customers", "at most %d customers in one call; publish again to add more", MaxDistributionList)
	}
	seen := make(map[protocol.CustomerID]int, len(cs))
	for i, c := range cs {
		f := fmt.Sprintf("customers[%d]", i)
		if err := protocol.ValidateID("customer", string(c)); err != nil {
			return protocol.WithField(f, err)
		}
		if j, dup := seen[c]; dup {
			return protocol.FieldError(f, "customer %q is listed twice (also customers[%d])", c, j)
		}
		seen[c] = i
	}
	return nil
}

// ErrNoCustomerColumn is ParseRecipientsCSV's answer to a header without a
// customer column.
var ErrNoCustomerColumn = errors.New(`the CSV header has no "customer" column`)

// ParseRecipientsCSV reads a CSV list of recipients, as a mail-merge tool
// exports it: a header row naming a "customer" column (any letter case,
// a UTF-8 byte order mark allowed; other columns such as name or email are
// ignored), then one row per customer. Blank lines are skipped. It checks
// the list with CheckRecipients and stops reading after
// MaxDistributionList rows. Reason code: invalid_input (field customers,
// or customers[i] for row i+2 of the file).
func ParseRecipientsCSV(r io.Reader) ([]protocol.CustomerID, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // rows are checked here, with a clearer message
	cr.ReuseRecord = true
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, protocol.FieldError("customers", "the CSV list is empty")
	}
	if err != nil {
		return nil, protocol.FieldError("customers", "CSV: %v", err)
	}
	col := -1
	for i, h := range head {
		if strings.EqualFold(strings.TrimSpace(h), "customer") {
			col = i
			break
		}
	}
	if col < 0 {
		return nil, protocol.FieldError("customers", "%v", ErrNoCustomerColumn)
	}
	var out []protocol.CustomerID
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, protocol.FieldError(fmt.Sprintf("customers[%d]", len(out)), "CSV: %v", err)
		}
		if col >= len(rec) {
			line, _ := cr.FieldPos(0)
			return nil, protocol.FieldError(fmt.Sprintf("customers[%d]", len(out)), "CSV line %d has no customer column", line)
		}
		if len(out) == MaxDistributionList {
			return nil, protocol.FieldError("customers", "at most %d customers in one call; publish again to add more", MaxDistributionList)
		}
		out = append(out, protocol.CustomerID(strings.TrimSpace(rec[col])))
	}
	if len(out) == 0 {
		return nil, protocol.FieldError("customers", "the CSV list has a header but no customers")
	}
	return out, CheckRecipients(out)
}
