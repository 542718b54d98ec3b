package token

import (
	"errors"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/punchcard/punchcard/protocol"
)

// A points statement is what a customer's QR code carries so that a till
// that cannot reach the hub can still take their points as payment: the
// hub signs "customer C of tenant T could spend P points at instant A",
// valid for a short time. It is a COSE_Sign1 message like a reward token,
// signed with the same tenant key and written in the same text form
// ("PC1" + b32), but its claims map is a different one: it has a points
// claim (-8) and no campaign or uses, so neither ever verifies as the
// other (each decoder refuses the other's claims as unknown).
//
// A till that accepts a statement offline spends at most Points against
// its Serial, less its own earlier burns against the same serial
// (store/agentdb); see docs/security.md for what a copied statement can
// cost and how it is bounded.

// StatementMaxLifetime bounds a statement's validity (expires - issued):
// it is a snapshot of a balance, which goes stale.
const StatementMaxLifetime = 24 * time.Hour

// Statement is what a points statement says. Times are whole seconds.
type Statement struct {
	Tenant   protocol.TenantID   // iss (1): the issuing tenant; IssueStatement fills it from the key
	Customer protocol.CustomerID // sub (2), required: whose points these are
	Expires  time.Time           // exp (4), required: refused from this instant on
	IssuedAt time.Time           // iat (6), required
	Serial   protocol.CodeID     // cti (7), required: unique per tenant; a till's key for its burns
	Points   int64               // -8, required, > 0: the spendable points stated
	AsOf     time.Time           // -9, required: the instant the balance was read at the hub
}

// statementWire is the claims map: the registered claims, then -8
// points and -9 as_of.
type statementWire struct {
	Iss    string `cbor:"1,keyasint"`
	Sub    string `cbor:"2,keyasint"`
	Exp    int64  `cbor:"4,keyasint"`
	Iat    int64  `cbor:"6,keyasint"`
	Cti    []byte `cbor:"7,keyasint"`
	Points int64  `cbor:"-8,keyasint"`
	AsOf   int64  `cbor:"-9,keyasint"`
}

// Validate reports the first missing or out-of-range claim as
// invalid_input naming the field.
func (s Statement) Validate() error {
	for _, id := range []struct{ field, v string }{
		{"tenant", string(s.Tenant)}, {"customer", string(s.Customer)}, {"serial", string(s.Serial)},
	} {
		if err := protocol.ValidateID(id.field, id.v); err != nil {
			return asField(err, id.field)
		}
	}
	if s.Points <= 0 {
		return protocol.FieldError("points", "points must be positive")
	}
	if s.IssuedAt.IsZero() || s.IssuedAt.Unix() <= 0 {
		return protocol.FieldError("issued_at", "issued_at is required")
	}
	if s.AsOf.IsZero() || s.AsOf.Unix() <= 0 || s.AsOf.Unix() > s.IssuedAt.Unix() {
		return protocol.FieldError("as_of", "as_of is required and not after issued_at")
	}
	if s.Expires.Unix() <= s.IssuedAt.Unix() {
		return protocol.FieldError("expires", "expires must be after issued_at")
	}
	if s.Expires.Unix()-s.IssuedAt.Unix() > int64(StatementMaxLifetime/time.Second) {
		return protocol.FieldError("expires", "a statement is valid at most %s", StatementMaxLifetime)
	}
	return nil
}

// IssueStatement signs s with key and returns its text. Reason codes:
// invalid_input (a claim missing or out of range, or s.Tenant set and not
// key.Tenant), internal (no private key).
func IssueStatement(key SigningKey, s Statement) (string, error) {
	if s.Tenant == "" {
		s.Tenant = key.Tenant
	}
	if s.Tenant != key.Tenant {
		return "", protocol.FieldError("tenant", "statement is for tenant %q but the key belongs to %q", s.Tenant, key.Tenant)
	}
	if err := s.Validate(); err != nil {
		return "", err
	}
	payload, err := protocol.EncMode.Marshal(statementWire{Iss: string(s.Tenant), Sub: string(s.Customer), Exp: s.Expires.Unix(),
		Iat: s.IssuedAt.Unix(), Cti: []byte(s.Serial), Points: s.Points, AsOf: s.AsOf.Unix()})
	if err != nil {
		return "", protocol.Errorf(protocol.CodeInternal, "encode statement: %v", err)
	}
	b, err := signPayload(key, payload)
	if err != nil {
		return "", err
	}
	return EncodeText(b), nil
}

// VerifyStatement checks a statement text for tenant and customer at now
// and returns its claims; nothing in them is believed before the
// signature is checked. Reason codes, in order: those of Verify (text,
// structure, key, tenant, signature, expiry; a reward token is
// token_malformed here), then statement_wrong_customer when customer is
// set and the statement is another customer's.
func VerifyStatement(keys KeySet, tenant protocol.TenantID, customer protocol.CustomerID, text string, now time.Time) (Statement, error) {
	b, err := DecodeText(text)
	if err != nil {
		return Statement{}, err
	}
	msg, err := parseSign1(b)
	if err != nil {
		return Statement{}, err
	}
	s, err := parseStatement(msg.Payload)
	if err != nil {
		return Statement{}, err
	}
	if err := checkSigned(keys, tenant, msg, validity{iss: s.Tenant, exp: s.Expires, iat: s.IssuedAt}, now); err != nil {
		return Statement{}, err
	}
	if customer != "" && s.Customer != customer {
		return Statement{}, protocol.NewError(protocol.CodeStatementCustomer)
	}
	return s, nil
}

// parseStatement decodes a statement's claims strictly (unknown claims,
// wrong types, missing or invalid values: token_malformed).
func parseStatement(b []byte) (Statement, error) {
	var w statementWire
	if err := claimsDec.Unmarshal(b, &w); err != nil {
		var unknown *cbor.UnknownFieldError
		if errors.As(err, &unknown) {
			return Statement{}, malformed("unknown claim: not a points statement")
		}
		return Statement{}, cborError(err)
	}
	if w.Exp <= 0 || w.Iat <= 0 || w.AsOf <= 0 {
		return Statement{}, malformed("a time is missing or negative")
	}
	s := Statement{Tenant: protocol.TenantID(w.Iss), Customer: protocol.CustomerID(w.Sub), Expires: time.Unix(w.Exp, 0).UTC(),
		IssuedAt: time.Unix(w.Iat, 0).UTC(), Serial: protocol.CodeID(w.Cti), Points: w.Points, AsOf: time.Unix(w.AsOf, 0).UTC()}
	if err := s.Validate(); err != nil {
		return Statement{}, malformed("a claim is missing or out of range")
	}
	return s, nil
}
