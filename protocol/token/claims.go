package token

import (
	"errors"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/punchcard/punchcard/protocol"
)

// Claims are what a token says. Times are whole seconds: Issue drops any
// fraction, and Verify returns them in UTC.
type Claims struct {
	Tenant     protocol.TenantID   // iss (1): the issuing tenant; Issue fills it from the key
	Customer   protocol.CustomerID // sub (2), optional: the customer the reward was issued to
	Expires    time.Time           // exp (4), required: the token is refused from this instant on
	NotBefore  time.Time           // nbf (5), optional: refused before this instant (less ClockSkew)
	IssuedAt   time.Time           // iat (6), required
	Serial     protocol.CodeID     // cti (7), required: unique per tenant; the ledger's key for uses
	Campaign   protocol.CampaignID // -1, required
	Uses       uint32              // -2, required, at least 1: how many redemptions the token allows
	Tier       string              // -3, optional: loyalty tier the reward was issued for
	Segment    string              // -4, optional: customer segment the reward was issued for
	Value      protocol.Money      // -5, optional (zero = none): a fixed value such as a gift amount
	Store      protocol.StoreID    // -6, optional: valid only in this store
	StoreGroup string              // -7, optional: valid only in stores of this group
}

// Claim keys. 1 to 7 are the CWT registered claims (RFC 8392); the others
// are small negative integers, one byte each on the wire. RFC 8392 reserves
// values below -65536 for private use, but those take five bytes each; since
// a claims map is only ever read under the "PC1" text version, the smaller
// keys are a deliberate trade for a denser QR code.
const (
	keyIss        = 1
	keySub        = 2
	keyExp        = 4
	keyNbf        = 5
	keyIat        = 6
	keyCti        = 7
	keyCampaign   = -1
	keyUses       = -2
	keyTier       = -3
	keySegment    = -4
	keyValue      = -5
	keyStore      = -6
	keyStoreGroup = -7
)

type claimsWire struct {
	Iss        string          `cbor:"1,keyasint"`
	Sub        string          `cbor:"2,keyasint,omitempty"`
	Exp        int64           `cbor:"4,keyasint"`
	Nbf        int64           `cbor:"5,keyasint,omitempty"`
	Iat        int64           `cbor:"6,keyasint"`
	Cti        []byte          `cbor:"7,keyasint"`
	Campaign   string          `cbor:"-1,keyasint"`
	Uses       uint32          `cbor:"-2,keyasint"`
	Tier       string          `cbor:"-3,keyasint,omitempty"`
	Segment    string          `cbor:"-4,keyasint,omitempty"`
	Value      *protocol.Money `cbor:"-5,keyasint,omitempty"`
	Store      string          `cbor:"-6,keyasint,omitempty"`
	StoreGroup string          `cbor:"-7,keyasint,omitempty"`
}

// Validate reports the first missing or out-of-range claim as
// invalid_input naming the field.
func (c Claims) Validate() error {
	ids := []struct{ field, v string }{
		{"tenant", string(c.Tenant)},
		{"serial", string(c.Serial)},
		{"campaign", string(c.Campaign)},
	}
	for _, id := range ids {
		if err := protocol.ValidateID(id.field, id.v); err != nil {
			return asField(err, id.field)
		}
	}
	opt := []struct{ field, v string }{
		{"customer", string(c.Customer)},
		{"tier", c.Tier},
		{"segment", c.Segment},
		{"store", string(c.Store)},
		{"store_group", c.StoreGroup},
	}
	for _, id := range opt {
		if id.v == "" {
			continue
		}
		if err := protocol.ValidateID(id.field, id.v); err != nil {
			return asField(err, id.field)
		}
	}
	if c.IssuedAt.IsZero() || c.IssuedAt.Unix() <= 0 {
		return protocol.FieldError("issued_at", "issued_at is required")
	}
	if c.Expires.IsZero() || c.Expires.Unix() <= c.IssuedAt.Unix() {
		return protocol.FieldError("expires", "expires must be after issued_at")
	}
	if !c.NotBefore.IsZero() && (c.NotBefore.Unix() <= 0 || c.NotBefore.Unix() >= c.Expires.Unix()) {
		return protocol.FieldError("not_before", "not_before must be before expires")
	}
	if c.Uses < 1 {
		return protocol.FieldError("uses", "uses must be at least 1")
	}
	if c.Value != (protocol.Money{}) {
		if err := c.Value.Currency.Validate(); err != nil {
			return asField(err, "value.currency")
		}
		if c.Value.Amount <= 0 {
			return protocol.FieldError("value.amount", "value must be positive")
		}
	}
	return nil
}

func asField(err error, field string) error {
	if e, ok := err.(*protocol.Error); ok {
		return &protocol.Error{Code: e.Code, Message: e.Message, Field: field}
	}
	return err
}

func (c Claims) marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	w := claimsWire{
		Iss:        string(c.Tenant),
		Sub:        string(c.Customer),
		Exp:        c.Expires.Unix(),
		Iat:        c.IssuedAt.Unix(),
		Cti:        []byte(c.Serial),
		Campaign:   string(c.Campaign),
		Uses:       c.Uses,
		Tier:       c.Tier,
		Segment:    c.Segment,
		Store:      string(c.Store),
		StoreGroup: c.StoreGroup,
	}
	if !c.NotBefore.IsZero() {
		w.Nbf = c.NotBefore.Unix()
	}
	if c.Value != (protocol.Money{}) {
		v := c.Value
		w.Value = &v
	}
	b, err := protocol.EncMode.Marshal(w)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeInternal, "encode claims: %v", err)
	}
	return b, nil
}

// parseClaims decodes a claims map strictly: unknown keys, wrong types,
// missing required claims and invalid values are token_malformed. A newer
// claim is never silently ignored, because ignoring a restriction would
// grant more than the issuer meant; new claims come with a new text version.
func parseClaims(b []byte) (Claims, error) {
	var w claimsWire
	if err := claimsDec.Unmarshal(b, &w); err != nil {
		var unknown *cbor.UnknownFieldError
		if errors.As(err, &unknown) {
			return Claims{}, malformed("unknown claim")
		}
		return Claims{}, cborError(err)
	}
	if w.Exp <= 0 || w.Iat <= 0 || w.Nbf < 0 {
		return Claims{}, malformed("a time is missing or negative")
	}
	c := Claims{
		Tenant:     protocol.TenantID(w.Iss),
		Customer:   protocol.CustomerID(w.Sub),
		Expires:    time.Unix(w.Exp, 0).UTC(),
		IssuedAt:   time.Unix(w.Iat, 0).UTC(),
		Serial:     protocol.CodeID(w.Cti),
		Campaign:   protocol.CampaignID(w.Campaign),
		Uses:       w.Uses,
		Tier:       w.Tier,
		Segment:    w.Segment,
		Store:      protocol.StoreID(w.Store),
		StoreGroup: w.StoreGroup,
	}
	if w.Nbf != 0 {
		c.NotBefore = time.Unix(w.Nbf, 0).UTC()
	}
	if w.Value != nil {
		if *w.Value == (protocol.Money{}) {
			return Claims{}, malformed("the value is empty")
		}
		c.Value = *w.Value
	}
	if err := c.Validate(); err != nil {
		return Claims{}, malformed("a claim is missing or out of range")
	}
	return c, nil
}
