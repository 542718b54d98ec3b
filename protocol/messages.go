package protocol

import (
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// MsgType says what an envelope's body is. Values travel on the wire; never
// renumber.
type MsgType uint8

// Message types. "up" messages go agent → hub, "down" messages hub → agent.
const (
	MsgBatch            MsgType = 1 // up: redemptions from the outbox (Batch)
	MsgAck              MsgType = 2 // down: what the hub has applied (Ack)
	MsgResend           MsgType = 3 // down: the hub saw a gap (Resend)
	MsgSnapshotAnnounce MsgType = 4 // down, retained: a new snapshot exists (SnapshotAnnounce)
	MsgAgentState       MsgType = 5 // up: heartbeat with the agent's state (AgentState)
	MsgAllowanceRecall  MsgType = 6 // down: give unused allowance back (AllowanceRecall)
)

func (t MsgType) String() string {
	switch t {
	case MsgBatch:
		return "batch"
	case MsgAck:
		return "ack"
	case MsgResend:
		return "resend"
	case MsgSnapshotAnnounce:
		return "snapshot_announce"
	case MsgAgentState:
		return "agent_state"
	case MsgAllowanceRecall:
		return "allowance_recall"
	}
	return fmt.Sprintf("msg_type_%d", uint8(t))
}

// Known reports whether t is a message type of this protocol version. A new
// message type is a new protocol version, so DecodeEnvelope refuses unknown
// types as malformed.
func (t MsgType) Known() bool { return t >= MsgBatch && t <= MsgAllowanceRecall }

// Down reports whether messages of type t go hub → agent, and so must be
// signed by the hub (SignDown) and verified by the agent (VerifyDown).
func (t MsgType) Down() bool {
	switch t {
	case MsgAck, MsgResend, MsgSnapshotAnnounce, MsgAllowanceRecall:
		return true
	}
	return false
}

// NewBody returns a pointer to a zero body of the type that messages of type
// t carry (*Batch for MsgBatch, …), ready for DecodeBody, and nil for an
// unknown type.
func NewBody(t MsgType) any {
	switch t {
	case MsgBatch:
		return new(Batch)
	case MsgAck:
		return new(Ack)
	case MsgResend:
		return new(Resend)
	case MsgSnapshotAnnounce:
		return new(SnapshotAnnounce)
	case MsgAgentState:
		return new(AgentState)
	case MsgAllowanceRecall:
		return new(AllowanceRecall)
	}
	return nil
}

// bodyType is the message type whose body v (a pointer) is, and 0 for any
// other type.
func bodyType(v any) MsgType {
	switch v.(type) {
	case *Batch:
		return MsgBatch
	case *Ack:
		return MsgAck
	case *Resend:
		return MsgResend
	case *SnapshotAnnounce:
		return MsgSnapshotAnnounce
	case *AgentState:
		return MsgAgentState
	case *AllowanceRecall:
		return MsgAllowanceRecall
	}
	return 0
}

// batchLen is the number of redemptions when body is a Batch, else -1.
func batchLen(body any) int {
	switch b := body.(type) {
	case Batch:
		return len(b.Redemptions)
	case *Batch:
		if b != nil {
			return len(b.Redemptions)
		}
	case *RawBatch:
		if b != nil {
			return len(b.Redemptions)
		}
	}
	return -1
}

// Envelope wraps every MQTT payload. The hub checks Tenant and Sender
// against the topic the message arrived on and the broker identity of the
// publisher: an agent speaks only for itself, under its own tenant.
type Envelope struct {
	Type    MsgType         `cbor:"1,keyasint"`
	Version uint16          `cbor:"2,keyasint"`
	ID      string          `cbor:"3,keyasint"` // unique per sender, for logs and de-duplication
	Tenant  TenantID        `cbor:"4,keyasint"`
	Sender  AgentID         `cbor:"5,keyasint"` // the agent, or HubSender for down messages
	Sent    int64           `cbor:"6,keyasint"` // Unix microseconds, sender's clock (advisory only)
	Body    cbor.RawMessage `cbor:"7,keyasint"`
	// To is the agent a down message is for (version 2): the signature
	// binds it, so a genuine message for one till is refused by another.
	To AgentID `cbor:"8,keyasint,omitempty"`
	// Sig is the hub's Ed25519 signature of a down message (version 2,
	// SignDown); up messages carry none.
	Sig []byte `cbor:"9,keyasint,omitempty"`
}

// HubSender is the Sender of messages the hub publishes, and the agent ID of
// redemptions the hub makes itself for online channels.
const HubSender AgentID = "hub"

// Batch carries redemptions in increasing sequence order. A batch may be
// resent: the hub applies each (agent, seq) once.
type Batch struct {
	Redemptions []Redemption `cbor:"1,keyasint"`
}

// Ack tells an agent what the hub has durably applied: every seq up to and
// including Watermark, plus the listed seqs beyond it (applied out of order,
// while an earlier one is still missing). The agent deletes exactly those
// outbox rows, never on the broker's PUBACK.
type Ack struct {
	Watermark uint64   `cbor:"1,keyasint"`
	Beyond    []uint64 `cbor:"2,keyasint,omitempty"`
}

// Resend asks an agent to publish again the seqs From..To inclusive. The
// agent resends what it still has in its outbox; To == 0 means "everything
// from From on".
type Resend struct {
	From uint64 `cbor:"1,keyasint"`
	To   uint64 `cbor:"2,keyasint"`
}

// SnapshotAnnounce tells an agent that snapshot Version is ready for it; the
// agent pulls it over HTTP and reports the version it applied in AgentState.
type SnapshotAnnounce struct {
	Version uint64 `cbor:"1,keyasint"`
	ETag    string `cbor:"2,keyasint,omitempty"`
	// Spread, when not 0, is a window in milliseconds: the agent pulls the
	// snapshot at a random moment within it rather than at once, so that
	// the tills of a tenant, all told at once, do not all fetch at once.
	// The hub sets it from the number of agents it announces to. Additive
	// (an older agent fetches at once).
	Spread uint32 `cbor:"3,keyasint,omitempty"`
}

// AgentState is the agent's periodic heartbeat.
type AgentState struct {
	SnapshotVersion uint64 `cbor:"1,keyasint"`
	LastSeq         uint64 `cbor:"2,keyasint"` // highest seq the agent has assigned
	OutboxDepth     int64  `cbor:"3,keyasint"` // rows not yet acknowledged
	HLC             uint64 `cbor:"4,keyasint"`
}

// AllowanceRecall asks an agent to stop using its allowance for Campaign
// and return what is left over HTTP (all campaigns when Campaign is empty).
type AllowanceRecall struct {
	Campaign CampaignID `cbor:"1,keyasint,omitempty"`
}

var messageDecMode = mustDecMode(MessageLimits)

func mustDecMode(l DecodeLimits) cbor.DecMode {
	dm, err := NewDecMode(l)
	if err != nil {
		panic(fmt.Sprintf("protocol: cbor dec mode: %v", err))
	}
	return dm
}

// EncodeMessage wraps body in an envelope of type t from sender and returns
// the CBOR bytes for an MQTT payload. It refuses what DecodeEnvelope and
// DecodeBody would refuse on the other side: an unknown type, an invalid
// tenant or sender (CodeInvalidInput), a batch of more than MaxBatchSize
// redemptions or a payload over MaxMessageBytes (CodeMessageTooLarge).
func EncodeMessage(t MsgType, tenant TenantID, sender AgentID, id string, sentMicros int64, body any) ([]byte, error) {
	if !t.Known() {
		return nil, Errorf(CodeInvalidInput, "unknown message type %d", uint8(t))
	}
	if err := ValidateID("tenant", string(tenant)); err != nil {
		return nil, err
	}
	if err := ValidateID("sender", string(sender)); err != nil {
		return nil, err
	}
	if n := batchLen(body); n > MaxBatchSize {
		return nil, Errorf(CodeMessageTooLarge, "batch has %d redemptions, more than %d", n, MaxBatchSize)
	}
	b, err := EncMode.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode %s body: %w", t, err)
	}
	env := Envelope{Type: t, Version: Version, ID: id, Tenant: tenant, Sender: sender, Sent: sentMicros, Body: b}
	out, err := EncMode.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode %s envelope: %w", t, err)
	}
	if len(out) > MaxMessageBytes {
		return nil, Errorf(CodeMessageTooLarge, "%s message is %d bytes, more than %d", t, len(out), MaxMessageBytes)
	}
	return out, nil
}

// DecodeEnvelope decodes an MQTT payload within MessageLimits. It returns
// CodeMessageTooLarge, CodeMessageMalformed or CodeUnsupportedVersion.
//
// The version is judged before the rest: a message from a newer peer whose
// envelope no longer decodes as this version's is still reported as
// CodeUnsupportedVersion, so the operator learns to upgrade rather than
// hunt for damage.
func DecodeEnvelope(data []byte) (Envelope, error) {
	var env Envelope
	if len(data) > MaxMessageBytes {
		return env, Errorf(CodeMessageTooLarge, "message is %d bytes, more than %d", len(data), MaxMessageBytes)
	}
	if err := messageDecMode.Unmarshal(data, &env); err != nil {
		if v, ok := peekVersion(data); ok && v > Version {
			return Envelope{}, unsupportedVersion(v)
		}
		return Envelope{}, malformed("envelope", err)
	}
	if env.Version == 0 || env.Version > Version {
		return Envelope{}, unsupportedVersion(uint64(env.Version))
	}
	if env.Type == 0 {
		return Envelope{}, Errorf(CodeMessageMalformed, "envelope has no type")
	}
	if !env.Type.Known() {
		return Envelope{}, Errorf(CodeMessageMalformed, "envelope has unknown type %d", uint8(env.Type))
	}
	if err := ValidateID("tenant", string(env.Tenant)); err != nil {
		return Envelope{}, Errorf(CodeMessageMalformed, "envelope: %s", err.(*Error).Message)
	}
	if err := ValidateID("sender", string(env.Sender)); err != nil {
		return Envelope{}, Errorf(CodeMessageMalformed, "envelope: %s", err.(*Error).Message)
	}
	if env.To != "" {
		if err := ValidateID("recipient", string(env.To)); err != nil {
			return Envelope{}, Errorf(CodeMessageMalformed, "envelope: %s", err.(*Error).Message)
		}
	}
	if len(env.Body) == 0 {
		return Envelope{}, Errorf(CodeMessageMalformed, "envelope has no body")
	}
	return env, nil
}

// peekVersion reads only the version key of an envelope that did not decode
// in full. Keys of other types are skipped, so a newer envelope layout still
// yields its version.
func peekVersion(data []byte) (uint64, bool) {
	var m map[uint64]cbor.RawMessage
	if err := messageDecMode.Unmarshal(data, &m); err != nil {
		return 0, false
	}
	raw, ok := m[2]
	if !ok {
		return 0, false
	}
	var v uint64
	if err := messageDecMode.Unmarshal(raw, &v); err != nil {
		return 0, false
	}
	return v, true
}

func unsupportedVersion(v uint64) error {
	return Errorf(CodeUnsupportedVersion, "message version %d; this side speaks %d", v, Version)
}

// DecodeBody decodes the envelope's body into v, within MessageLimits. When
// v is one of this package's body types it must match env.Type (NewBody
// gives the right one). It returns CodeMessageMalformed, or
// CodeMessageTooLarge for a batch of more than MaxBatchSize redemptions.
func DecodeBody(env Envelope, v any) error {
	if len(env.Body) > MaxMessageBytes {
		return Errorf(CodeMessageTooLarge, "%s body is %d bytes, more than %d", env.Type, len(env.Body), MaxMessageBytes)
	}
	if bt := bodyType(v); bt != 0 && env.Type != 0 && bt != env.Type {
		return Errorf(CodeMessageMalformed, "a %s message has no %s body", env.Type, bt)
	}
	if err := messageDecMode.Unmarshal(env.Body, v); err != nil {
		return malformed(env.Type.String(), err)
	}
	if n := batchLen(v); n > MaxBatchSize {
		return Errorf(CodeMessageTooLarge, "batch has %d redemptions, more than %d", n, MaxBatchSize)
	}
	return nil
}

// malformed turns a cbor error into CodeMessageMalformed with a message
// that names the kind of damage, for the hub's logs.
func malformed(what string, err error) error {
	var (
		nested *cbor.MaxNestedLevelError
		arr    *cbor.MaxArrayElementsError
		pairs  *cbor.MaxMapPairsError
		dup    *cbor.DupMapKeyError
		indef  *cbor.IndefiniteLengthError
		tags   *cbor.TagsMdError
		extra  *cbor.ExtraneousDataError
		typ    *cbor.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &nested):
		return Errorf(CodeMessageMalformed, "%s is nested too deeply", what)
	case errors.As(err, &arr), errors.As(err, &pairs):
		return Errorf(CodeMessageMalformed, "%s has too many elements", what)
	case errors.As(err, &dup):
		return Errorf(CodeMessageMalformed, "%s has a duplicate map key", what)
	case errors.As(err, &indef):
		return Errorf(CodeMessageMalformed, "%s uses an indefinite length", what)
	case errors.As(err, &tags):
		return Errorf(CodeMessageMalformed, "%s uses a CBOR tag", what)
	case errors.As(err, &extra):
		return Errorf(CodeMessageMalformed, "%s has trailing bytes", what)
	case errors.As(err, &typ):
		return Errorf(CodeMessageMalformed, "%s has a field of the wrong type: %v", what, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(CodeMessageMalformed, "%s is truncated", what)
	}
	return Errorf(CodeMessageMalformed, "%s is not valid CBOR: %v", what, err)
}

// Validate checks a whole batch as its sender should have built it:
// every fact passes ValidateFrom(tenant, sender) (its error's Field
// prefixed with "redemptions[i].") and seqs strictly increase
// (CodeMessageMalformed). It is all or nothing, for tests and tools; the
// hub judges fact by fact (store/ledger), so that one bad fact never
// holds back the others.
func (b Batch) Validate(tenant TenantID, sender AgentID) error {
	var prev uint64
	for i, r := range b.Redemptions {
		at := "redemptions[" + itoa(i) + "]."
		if err := r.ValidateFrom(tenant, sender); err != nil {
			e := *err.(*Error)
			e.Field = at + e.Field
			return &e
		}
		if r.ID.Seq <= prev {
			return &Error{Code: CodeMessageMalformed, Message: fmt.Sprintf("seq %d follows %d; a batch is in increasing seq order", r.ID.Seq, prev), Field: at + "id.seq"}
		}
		prev = r.ID.Seq
	}
	return nil
}
