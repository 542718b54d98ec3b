package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
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
func downSigInput(env Envelope) ([]byte, error) {
	b, err := EncMode.Marshal([]any{uint8(env.Type), env.Version, env.ID, string(env.Tenant), string(env.Sender),
		string(env.To), env.Sent, []byte(env.Body)})
	if err != nil {
		return nil, err
	}
	return append([]byte(downSigContext), b...), nil
}

// SignDown encodes a down message of type t for agent to of tenant,
// signed with the hub's key: what the hub publishes on an agent's down or
// snapshot topic. It refuses what EncodeMessage refuses, an up type or an
// invalid recipient (CodeInvalidInput), and a key of the wrong size.
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
	plain, err := EncodeMessage(t, tenant, HubSender, id, sentMicros, body)
	if err != nil {
		return nil, err
	}
	env, err := DecodeEnvelope(plain)
	if err != nil {
		return nil, err
	}
	env.To = to
	msg, err := downSigInput(env)
	if err != nil {
		return nil, err
	}
	env.Sig = ed25519.Sign(key, msg)
	out, err := EncMode.Marshal(env)
	if err != nil {
		return nil, err
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
