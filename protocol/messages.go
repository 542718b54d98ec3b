package protocol

import (
	"errors"
	"fmt"

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
// the CBOR bytes for an MQTT payload.
func EncodeMessage(t MsgType, tenant TenantID, sender AgentID, id string, sentMicros int64, body any) ([]byte, error) {
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
func DecodeEnvelope(data []byte) (Envelope, error) {
	var env Envelope
	if len(data) > MaxMessageBytes {
		return env, Errorf(CodeMessageTooLarge, "message is %d bytes, more than %d", len(data), MaxMessageBytes)
	}
	if err := messageDecMode.Unmarshal(data, &env); err != nil {
		return Envelope{}, malformed("envelope", err)
	}
	if env.Version == 0 || env.Version > Version {
		return Envelope{}, Errorf(CodeUnsupportedVersion, "message version %d; this side speaks %d", env.Version, Version)
	}
	if env.Type == 0 {
		return Envelope{}, Errorf(CodeMessageMalformed, "envelope has no type")
	}
	return env, nil
}

// DecodeBody decodes the envelope's body into v, within MessageLimits.
func DecodeBody(env Envelope, v any) error {
	if err := messageDecMode.Unmarshal(env.Body, v); err != nil {
		return malformed(env.Type.String(), err)
	}
	if b, ok := v.(*Batch); ok && len(b.Redemptions) > MaxBatchSize {
		return Errorf(CodeMessageTooLarge, "batch has %d redemptions, more than %d", len(b.Redemptions), MaxBatchSize)
	}
	return nil
}

func malformed(what string, err error) error {
	var me *cbor.MaxNestedLevelError
	if errors.As(err, &me) {
		return Errorf(CodeMessageMalformed, "%s is nested too deeply", what)
	}
	return Errorf(CodeMessageMalformed, "%s is not valid CBOR: %v", what, err)
}
