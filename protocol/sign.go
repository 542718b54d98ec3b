package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
)

// The hub signs everything it sends down with one Ed25519 key (kept in
// the hub's database, shared by every hub replica), and an agent verifies
// it against the public key pinned in its configuration at registration.
// The broker, the network and every other MQTT client are not trusted: a
// forged, altered, retained or misdirected down message fails VerifyDown.
//
// What is signed is the envelope without its signature: type, version,
// id, tenant, sender (HubSender), recipient agent, time and the body's
// exact bytes, behind a domain-separation prefix, so a signature made for
// one till, one tenant or one message type is valid for no other.
//
// A genuine message can still be replayed to the agent it was made for;
// down messages are built so that this is harmless: an Ack only deletes
// what the hub applied (and never beyond the agent's own last seq), a
// Resend or SnapshotAnnounce only causes traffic, and an AllowanceRecall
// returns allowance the agent asks for again on its next sync.

// HubKeySize is the length of the hub's public key in bytes.
const HubKeySize = ed25519.PublicKeySize

// downSigContext separates down-message signatures from any other use of
// an Ed25519 key.
const downSigContext = "punchcard down message v2\x00"

// FormatHubKey is the text form of the hub's public key, as registration
// returns it and an agent's configuration holds it: the 32 bytes in
// unpadded base64url (43 characters).
func FormatHubKey(pub ed25519.PublicKey) string {
	return base64.RawURLEncoding.EncodeToString(pub)
}

// ParseHubKey reads FormatHubKey's text, ignoring surrounding white space
// (a key file's newline). It returns CodeInvalidInput.
func ParseHubKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, Errorf(CodeInvalidInput, "hub key is required")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != HubKeySize {
		return nil, Errorf(CodeInvalidInput, "hub key is not %d bytes of unpadded base64url", HubKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// downSigInput is what SignDown signs and VerifyDown checks: the envelope
// without Sig, as a canonical CBOR array behind downSigContext. The body
// is taken as the exact bytes received, never re-encoded.
//
// It is written by hand (appendSigInput): the same bytes as EncMode's
// canonical encoding of the array (TestSigInputCanonical), without the
// boxing and reflection of a generic Marshal on the hub's Ack path.
func downSigInput(env Envelope) ([]byte, error) {
	return appendSigInput(make([]byte, 0, sigInputSize(env)), env), nil
}

// sigInputSize bounds the length of downSigInput's result.
func sigInputSize(env Envelope) int {
	return len(downSigContext) + 1 + 2 + 3 + 5*9 + len(env.ID) + len(env.Tenant) + len(env.Sender) + len(env.To) + len(env.Body)
}

// appendSigInput appends downSigContext and the canonical CBOR array
// [type, version, id, tenant, sender, to, sent, body] to b.
func appendSigInput(b []byte, env Envelope) []byte {
	b = append(b, downSigContext...)
	b = append(b, 0x88) // array of 8
	b = AppendCBORHead(b, 0, uint64(env.Type))
	b = AppendCBORHead(b, 0, uint64(env.Version))
	b = appendCBORText(b, env.ID)
	b = appendCBORText(b, string(env.Tenant))
	b = appendCBORText(b, string(env.Sender))
	b = appendCBORText(b, string(env.To))
	if env.Sent >= 0 {
		b = AppendCBORHead(b, 0, uint64(env.Sent))
	} else {
		b = AppendCBORHead(b, 1, uint64(-(env.Sent + 1)))
	}
	b = AppendCBORHead(b, 2, uint64(len(env.Body)))
	return append(b, env.Body...)
}

func appendCBORText(b []byte, s string) []byte {
	return append(AppendCBORHead(b, 3, uint64(len(s))), s...)
}

// AppendCBORHead appends a CBOR item head of major type major and argument
// n in its shortest form (RFC 8949, 4.2.1).
func AppendCBORHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// SignDown encodes a down message of type t for agent to of tenant,
// signed with the hub's key: what the hub publishes on an agent's down or
// snapshot topic. It refuses what EncodeMessage refuses, an up type or an
// invalid recipient (CodeInvalidInput), and a key of the wrong size.
//
// It encodes the body once and the envelope once (the same bytes as
// EncodeMessage followed by DecodeEnvelope, adding To and Sig, made
// before: TestSignDownSameBytes); the Ed25519 signature is most of its
// cost.
func SignDown(key ed25519.PrivateKey, t MsgType, tenant TenantID, to AgentID, id string, sentMicros int64, body any) ([]byte, error) {
	if !t.Down() {
		return nil, Errorf(CodeInvalidInput, "%s is not a down message", t)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, Errorf(CodeInvalidInput, "hub signing key is %d bytes, not %d", len(key), ed25519.PrivateKeySize)
	}
	if err := ValidateID("recipient", string(to)); err != nil {
		return nil, err
	}
	if err := ValidateID("tenant", string(tenant)); err != nil {
		return nil, err
	}
	if n := batchLen(body); n > MaxBatchSize {
		return nil, Errorf(CodeMessageTooLarge, "batch has %d redemptions, more than %d", n, MaxBatchSize)
	}
	b, err := EncMode.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode %s body: %w", t, err)
	}
	env := Envelope{Type: t, Version: Version, ID: id, Tenant: tenant, Sender: HubSender, Sent: sentMicros, Body: b, To: to}
	var in [256]byte // the signed input of an Ack or announcement fits
	msg := appendSigInput(in[:0], env)
	env.Sig = ed25519.Sign(key, msg)
	out, err := EncMode.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode %s envelope: %w", t, err)
	}
	if len(out) > MaxMessageBytes {
		return nil, Errorf(CodeMessageTooLarge, "%s message is %d bytes, more than %d", t, len(out), MaxMessageBytes)
	}
	return out, nil
}

// VerifyDown checks that env is a down message from the hub for agent to
// of tenant, signed with pub. It returns CodeBadSignature for a missing or
// wrong signature, CodeWrongTenant for another tenant's message, and
// CodeForbidden for a message addressed to another agent, from another
// sender, or of an up type.
func VerifyDown(pub ed25519.PublicKey, env Envelope, tenant TenantID, to AgentID) error {
	switch {
	case !env.Type.Down():
		return Errorf(CodeForbidden, "%s is not a down message", env.Type)
	case env.Sender != HubSender:
		return Errorf(CodeForbidden, "down message from %q, not the hub", env.Sender)
	case env.Tenant != tenant:
		return Errorf(CodeWrongTenant, "down message for tenant %q, not %q", env.Tenant, tenant)
	case env.To != to:
		return Errorf(CodeForbidden, "down message for agent %q, not %q", env.To, to)
	case len(env.Sig) == 0:
		return Errorf(CodeBadSignature, "down message is not signed")
	case len(pub) != HubKeySize:
		return Errorf(CodeBadSignature, "no hub key to verify with")
	case len(env.Sig) != ed25519.SignatureSize:
		return Errorf(CodeBadSignature, "signature is %d bytes, not %d", len(env.Sig), ed25519.SignatureSize)
	}
	msg, err := downSigInput(env)
	if err != nil {
		return Errorf(CodeBadSignature, "down message cannot be verified: %v", err)
	}
	if !ed25519.Verify(pub, msg, env.Sig) {
		return Errorf(CodeBadSignature, "down message signature does not verify with the pinned hub key")
	}
	return nil
}

// DecodeDown is the agent's whole check of a payload from its down or
// snapshot topic: DecodeEnvelope, VerifyDown, then DecodeBody. It returns
// the envelope and its body (a pointer, as NewBody gives), or the first
// refusal: DecodeEnvelope's and DecodeBody's codes, or VerifyDown's.
func DecodeDown(data []byte, pub ed25519.PublicKey, tenant TenantID, to AgentID) (Envelope, any, error) {
	env, err := DecodeEnvelope(data)
	if err != nil {
		return Envelope{}, nil, err
	}
	if err := VerifyDown(pub, env, tenant, to); err != nil {
		return Envelope{}, nil, err
	}
	body := NewBody(env.Type)
	if err := DecodeBody(env, body); err != nil {
		return Envelope{}, nil, err
	}
	return env, body, nil
}
