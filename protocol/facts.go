package protocol

import "github.com/fxamacker/cbor/v2"

// Bounds of a fact (Redemption). They are the hub's, and the till checks
// them before it commits a fact, so that no fact the hub would refuse ever
// reaches an outbox.
const (
	MaxCodeLen    = 128     // Code: a plain code or a token serial
	MaxTxnIDLen   = 128     // TxnID: the POS's transaction id
	MaxOrderIDLen = 128     // OrderID: the POS's order id
	MaxSeq        = 1 << 62 // ID.Seq, Ref.Seq and Snapshot
	MaxAmount     = 1 << 50 // Discount, Spend, OrderTot and |Points|, minor units or points
	MaxHLC        = 1<<63 - 1
	MaxExpires    = 253402300799999999 // Expires: 9999-12-31T23:59:59.999999Z in Unix microseconds
)

// Validate is the one check of a fact. The till runs it on every fact
// before it commits the fact to its outbox (store/agentdb), so that what it
// cannot send is refused at the POS; the hub's ledger runs it (through
// ValidateFrom) on every fact it receives, and quarantines what fails,
// never the facts around it.
//
// It checks the form, never the business content: a redemption is a fact
// the hub accounts for, it does not refuse it. That is: a known kind; IDs
// (tenant, agent, store, campaign, customer) that ValidateID accepts, the
// optional ones when set; seqs in 1..MaxSeq; a valid currency when set;
// code, txn id and order id within their bounds; amounts within
// ±MaxAmount (Discount, Spend and OrderTot not negative); an HLC within
// int64; and on a rollback the Ref it voids.
//
// It returns CodeInvalidInput with Field set to the fact's JSON field
// ("order_id", "customer", "id.seq", …).
func (r Redemption) Validate() error {
	id := func(field, v string) error {
		if err := ValidateID(field, v); err != nil {
			return FieldError(field, "%s", err.(*Error).Message)
		}
		return nil
	}
	opt := func(field, v string) error {
		if v == "" {
			return nil
		}
		return id(field, v)
	}
	if err := id("tenant", string(r.Tenant)); err != nil {
		return err
	}
	if err := id("id.agent", string(r.ID.Agent)); err != nil {
		return err
	}
	if r.ID.Seq == 0 || r.ID.Seq > MaxSeq {
		return FieldError("id.seq", "seq must be between 1 and 2^62")
	}
	if (r.Kind < KindRedeem || r.Kind > KindBurn) && !r.Kind.Loads() && r.Kind != KindCashOut {
		return FieldError("kind", "unknown redemption kind %d", r.Kind)
	}
	if err := opt("store", string(r.Store)); err != nil {
		return err
	}
	if err := opt("campaign", string(r.Campaign)); err != nil {
		return err
	}
	if err := opt("customer", string(r.Customer)); err != nil {
		return err
	}
	if len(r.Code) > MaxCodeLen {
		return FieldError("code", "code is longer than %d characters", MaxCodeLen)
	}
	if len(r.TxnID) > MaxTxnIDLen {
		return FieldError("txn_id", "txn_id is longer than %d characters", MaxTxnIDLen)
	}
	if len(r.OrderID) > MaxOrderIDLen {
		return FieldError("order_id", "order id is longer than %d characters", MaxOrderIDLen)
	}
	if r.Currency != "" {
		if err := r.Currency.Validate(); err != nil {
			return FieldError("currency", "%s", err.(*Error).Message)
		}
	}
	for _, a := range []struct {
		field  string
		v, min int64
	}{{"discount", r.Discount, 0}, {"spend", r.Spend, 0}, {"order_total", r.OrderTot, 0}, {"points", r.Points, -MaxAmount}} {
		if a.v < a.min || a.v > MaxAmount {
			return FieldError(a.field, "%s must be between %d and 2^50", a.field, a.min)
		}
	}
	if r.HLC > MaxHLC {
		return FieldError("hlc", "hlc is out of range")
	}
	if r.Snapshot > MaxSeq {
		return FieldError("snapshot_version", "snapshot version is out of range")
	}
	if r.Cap != nil {
		if r.Kind != KindEarn && r.Kind != KindRedeem {
			return FieldError("cap", "only an earn or a redeem counts against a period cap")
		}
		if err := r.Cap.validate(r.Kind == KindRedeem); err != nil {
			return err
		}
	}
	if r.Expires != 0 && (r.Kind != KindEarn || r.Expires < 0 || r.Expires > MaxExpires) {
		return FieldError("expires", "only an earn's points expire, at a time between 1970 and 9999")
	}
	if err := r.validateLoad(); err != nil {
		return err
	}
	if err := r.validateCashOut(); err != nil {
		return err
	}
	if r.Kind == KindRollback && r.Ref == nil {
		return FieldError("ref", "a rollback names the redemption it voids")
	}
	if r.Ref != nil {
		if err := id("ref.agent", string(r.Ref.Agent)); err != nil {
			return err
		}
		if r.Ref.Seq == 0 || r.Ref.Seq > MaxSeq {
			return FieldError("ref.seq", "ref seq must be between 1 and 2^62")
		}
	}
	return nil
}

// ValidateFrom is Validate for a fact that agent of tenant reports (the
// identity the hub has matched to the MQTT topic and the publisher): it
// also refuses, with CodeForbidden, a fact that speaks for another tenant
// (field "tenant") or agent ("id.agent").
//
// A fact that names no tenant or agent at all is not a forgery but a
// damaged fact: Validate's invalid_input.
func (r Redemption) ValidateFrom(tenant TenantID, agent AgentID) error {
	if r.Tenant != tenant && r.Tenant != "" {
		return &Error{Code: CodeForbidden, Message: "fact of tenant " + quote(string(r.Tenant)) + " from agent " + quote(string(agent)) + " of tenant " + quote(string(tenant)), Field: "tenant"}
	}
	if r.ID.Agent != agent && r.ID.Agent != "" {
		return &Error{Code: CodeForbidden, Message: "fact of agent " + quote(string(r.ID.Agent)) + " from agent " + quote(string(agent)), Field: "id.agent"}
	}
	return r.Validate()
}

func quote(s string) string {
	if len(s) > MaxIDLen {
		s = s[:MaxIDLen] + "…"
	}
	return "\"" + s + "\""
}

// RawBatch is a Batch body whose facts are kept as the bytes received: the
// hub decodes and judges each fact on its own (DecodeFact), so that one
// damaged fact is quarantined with its bytes while the others apply.
type RawBatch struct {
	Redemptions []cbor.RawMessage `cbor:"1,keyasint"`
}

// DecodeFact decodes one fact of a RawBatch within MessageLimits. When it
// does not decode, the error is CodeMessageMalformed and id is the fact's
// RedemptionID as far as it could still be read (zero Seq when it could
// not), so that the hub can quarantine it under its seq.
func DecodeFact(raw []byte) (r Redemption, id RedemptionID, err error) {
	if err := messageDecMode.Unmarshal(raw, &r); err != nil {
		return Redemption{}, peekFactID(raw), malformed("fact", err)
	}
	return r, r.ID, nil
}

// peekFactID reads only the ID (key 1) of a fact that did not decode in
// full; other keys may hold anything.
func peekFactID(raw []byte) RedemptionID {
	var m map[uint64]cbor.RawMessage
	if err := messageDecMode.Unmarshal(raw, &m); err != nil {
		return RedemptionID{}
	}
	var id struct {
		Agent cbor.RawMessage `cbor:"1,keyasint"`
		Seq   uint64          `cbor:"2,keyasint"`
	}
	if b, ok := m[1]; !ok || messageDecMode.Unmarshal(b, &id) != nil {
		return RedemptionID{}
	}
	var agent string
	if messageDecMode.Unmarshal(id.Agent, &agent) != nil {
		agent = ""
	}
	return RedemptionID{Agent: AgentID(agent), Seq: id.Seq}
}

// FactSeqOK reports whether seq can number a fact (1..MaxSeq).
func FactSeqOK(seq uint64) bool { return seq >= 1 && seq <= MaxSeq }
