// Package token issues and verifies signed reward tokens: what a reward's QR
// code holds, so that an offline agent can accept a coupon issued after its
// last sync without asking the hub.
//
// A token is a COSE_Sign1 message (RFC 9052, tag 18) whose protected header
// is {1: -8 (EdDSA), 4: kid} and whose payload is a CBOR claims map with small
// integer keys (CWT, RFC 8392, where a registered claim fits). It is signed
// with the tenant's Ed25519 key. The text form is the prefix "PC1" followed
// by the COSE bytes in package b32's scanner-safe alphabet. See
// docs/token.md for the claims table and the verification order.
package token

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/b32"
)

// Text form and size limits.
const (
	// Magic starts every token text. It is in the b32 alphabet, so the whole
	// text stays QR alphanumeric.
	Magic = "PC"
	// TextVersion is the version character after Magic. A new claims layout
	// or signature scheme gets a new character; old agents then answer
	// token_unknown_version instead of misreading it.
	TextVersion = '1'
	// Prefix is Magic + TextVersion.
	Prefix = "PC1"
	// MaxBytes bounds the COSE bytes of a token. A typical token is about a
	// sixth of this; anything larger is not ours.
	MaxBytes = 1024
	// MaxTextLen bounds the text form, checked before any decoding.
	MaxTextLen = len(Prefix) + (MaxBytes*8+4)/5
	// ClockSkew is how far a till's clock may lag the issuer's: a token
	// issued a moment ago by the hub is accepted by a till whose clock is up
	// to this much behind. Only not-before is widened; expiry is exact, so a
	// till never extends a reward.
	ClockSkew = 2 * time.Minute
)

// SigningKey is a tenant's private signing key. Only the hub holds these.
type SigningKey struct {
	Tenant  protocol.TenantID
	KeyID   protocol.KeyID // the COSE kid; unique across tenants
	Private ed25519.PrivateKey
}

// Public returns the verification half of k, without a not-after limit.
func (k SigningKey) Public() PublicKey {
	pub, _ := k.Private.Public().(ed25519.PublicKey)
	return PublicKey{Tenant: k.Tenant, KeyID: k.KeyID, Key: pub}
}

// PublicKey is what a verifier knows about one kid.
type PublicKey struct {
	Tenant protocol.TenantID
	KeyID  protocol.KeyID
	Key    ed25519.PublicKey
	// NotAfter, when not zero, is the last instant the key may be used to
	// verify. On rotation the hub sets it to the retirement time plus the
	// longest token lifetime, so outstanding tokens stay valid until then.
	NotAfter time.Time
}

// KeySet finds verification keys. The agent implements it over its synced
// snapshot, the hub over its key catalog.
type KeySet interface {
	// LookupKey returns the key with the given kid. It returns an error
	// matching ErrUnknownKey (errors.Is) when the kid is not known; any other
	// error (a storage failure) is passed through Verify unchanged.
	LookupKey(kid protocol.KeyID) (PublicKey, error)
}

// ErrUnknownKey is the answer of a KeySet for a kid it does not know.
var ErrUnknownKey = protocol.NewError(protocol.CodeUnknownKey)

// KeyMap is a KeySet held in memory, keyed by kid.
type KeyMap map[protocol.KeyID]PublicKey

var _ KeySet = KeyMap(nil)

// LookupKey implements KeySet.
func (m KeyMap) LookupKey(kid protocol.KeyID) (PublicKey, error) {
	k, ok := m[kid]
	if !ok {
		return PublicKey{}, ErrUnknownKey
	}
	return k, nil
}

// Add puts k into m under its KeyID and returns m, for chaining in tests.
func (m KeyMap) Add(k PublicKey) KeyMap { m[k.KeyID] = k; return m }

// Issue signs c with key and returns the token text. It fails with
// invalid_input when a claim is missing or out of range, or when c.Tenant is
// set and differs from key.Tenant.
func Issue(key SigningKey, c Claims) (string, error) {
	b, err := IssueCOSE(key, c)
	if err != nil {
		return "", err
	}
	return EncodeText(b), nil
}

// IssueCOSE is Issue without the text form: the COSE_Sign1 bytes.
func IssueCOSE(key SigningKey, c Claims) ([]byte, error) {
	if len(key.Private) != ed25519.PrivateKeySize {
		return nil, protocol.Errorf(protocol.CodeInternal, "signing key %q has no Ed25519 private key", key.KeyID)
	}
	if err := protocol.ValidateID("key id", string(key.KeyID)); err != nil {
		return nil, err
	}
	if c.Tenant == "" {
		c.Tenant = key.Tenant
	}
	if c.Tenant != key.Tenant {
		return nil, protocol.FieldError("tenant", "claims are for tenant %q but the key belongs to %q", c.Tenant, key.Tenant)
	}
	payload, err := c.marshal()
	if err != nil {
		return nil, err
	}
	return signPayload(key, payload)
}

// signPayload signs a claims payload into COSE_Sign1 bytes.
func signPayload(key SigningKey, payload []byte) ([]byte, error) {
	if len(key.Private) != ed25519.PrivateKeySize {
		return nil, protocol.Errorf(protocol.CodeInternal, "signing key %q has no Ed25519 private key", key.KeyID)
	}
	if err := protocol.ValidateID("key id", string(key.KeyID)); err != nil {
		return nil, err
	}
	prot := encodeProtected(key.KeyID)
	sig := ed25519.Sign(key.Private, sigStructure(prot, payload))
	out := encodeSign1(prot, payload, sig)
	if len(out) > MaxBytes {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "token would be %d bytes, more than %d", len(out), MaxBytes)
	}
	return out, nil
}

// EncodeText returns the text form of COSE bytes: Prefix + b32.
func EncodeText(cose []byte) string {
	dst := make([]byte, 0, len(Prefix)+b32.EncodedLen(len(cose)))
	dst = append(dst, Prefix...)
	return string(b32.AppendEncode(dst, cose))
}

// DecodeText returns the COSE bytes of a token text as scanned or typed. It
// normalizes with b32.Normalize and checks, in order: token_empty,
// token_oversized, token_bad_prefix, token_unknown_version,
// token_bad_character (with the 1-based position in the trimmed text) and
// token_truncated.
func DecodeText(text string) ([]byte, error) {
	// Check the raw length first so a huge input costs no copy.
	if len(text) > 4*MaxTextLen {
		return nil, errOversizedText(len(text))
	}
	s := b32.Normalize(text)
	if s == "" {
		return nil, protocol.NewError(protocol.CodeTokenEmpty)
	}
	if len(s) > MaxTextLen {
		return nil, errOversizedText(len(s))
	}
	if !strings.HasPrefix(s, Magic) {
		return nil, protocol.NewError(protocol.CodeTokenPrefix)
	}
	if len(s) == len(Magic) {
		return nil, protocol.Errorf(protocol.CodeTokenTruncated, "Only the start of the code was read. Please scan again.")
	}
	if s[len(Magic)] != TextVersion {
		return nil, protocol.Errorf(protocol.CodeTokenVersion, "This code has version %q, which this till does not know. Please update the till.", s[len(Magic):len(Magic)+1])
	}
	b, err := b32.Decode(s[len(Prefix):])
	if err != nil {
		var ce *b32.CharError
		switch {
		case errors.As(err, &ce):
			return nil, protocol.Errorf(protocol.CodeTokenAlphabet,
				"The code contains %s at position %d, which does not belong. Please scan again.",
				describeChar(ce.Char), ce.Pos+len(Prefix)+1)
		default: // b32.ErrLength, b32.ErrTrailingBits: characters are missing
			return nil, protocol.NewError(protocol.CodeTokenTruncated)
		}
	}
	if len(b) == 0 {
		return nil, protocol.Errorf(protocol.CodeTokenTruncated, "Only the start of the code was read. Please scan again.")
	}
	return b, nil
}

func describeChar(c byte) string {
	switch {
	case c == ' ':
		return "a space"
	case c < 0x20 || c == 0x7f:
		return fmt.Sprintf("a control character (0x%02X)", c)
	case c >= 0x80:
		return "a non-ASCII character"
	default:
		return fmt.Sprintf("%q", rune(c))
	}
}

func errOversizedText(n int) error {
	return protocol.Errorf(protocol.CodeTokenOversized, "This code is %d characters long, more than %d; it is not genuine.", n, MaxTextLen)
}

// Verify checks a token text for tenant at time now and returns its claims.
// Nothing in the claims is acted on before the signature has been checked.
// Reason codes, in the order they are checked: token_empty,
// token_oversized, token_bad_prefix, token_unknown_version,
// token_bad_character, token_truncated, token_too_deep, token_malformed,
// bad_algorithm, unknown_key, wrong_tenant, bad_signature, token_expired
// (also for a key past its NotAfter), token_not_yet_valid. A KeySet
// failure other than unknown_key is returned as is.
func Verify(keys KeySet, tenant protocol.TenantID, text string, now time.Time) (Claims, error) {
	b, err := DecodeText(text)
	if err != nil {
		return Claims{}, err
	}
	return VerifyCOSE(keys, tenant, b, now)
}

// VerifyCOSE is Verify for COSE_Sign1 bytes, for callers that carry tokens in
// binary (CBOR messages) rather than as text.
func VerifyCOSE(keys KeySet, tenant protocol.TenantID, cose []byte, now time.Time) (Claims, error) {
	msg, err := parseSign1(cose)
	if err != nil {
		return Claims{}, err
	}
	// Parse (but do not yet believe) the claims, so that a payload that is
	// not even CBOR is reported as damaged rather than as forged.
	claims, err := parseClaims(msg.Payload)
	if err != nil {
		return Claims{}, err
	}
	if err := checkSigned(keys, tenant, msg, validity{iss: claims.Tenant, exp: claims.Expires, iat: claims.IssuedAt, nbf: claims.NotBefore}, now); err != nil {
		return Claims{}, err
	}
	return claims, nil
}

// validity is what checkSigned needs of a parsed, not yet believed claims
// map: its issuer and times.
type validity struct {
	iss           protocol.TenantID
	exp, iat, nbf time.Time
}

// checkSigned checks the key, tenant, signature and times of a parsed
// COSE_Sign1 for tenant at now: unknown_key, wrong_tenant, bad_signature,
// token_expired, token_not_yet_valid. Reward tokens and points statements
// share it.
func checkSigned(keys KeySet, tenant protocol.TenantID, msg sign1, v validity, now time.Time) error {
	key, err := keys.LookupKey(msg.KeyID)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			// A key this side does not know, on a token that names another
			// tenant: say "another brand" rather than suggest a sync would
			// help. The unverified iss only picks the reason for a refusal;
			// nothing is ever accepted on it.
			if v.iss != tenant {
				return protocol.NewError(protocol.CodeWrongTenant)
			}
			return protocol.Errorf(protocol.CodeUnknownKey,
				"This code was signed with key %q, which the till does not know yet.", msg.KeyID)
		}
		return fmt.Errorf("token: look up key %q: %w", msg.KeyID, err)
	}
	if key.Tenant != tenant {
		return protocol.NewError(protocol.CodeWrongTenant)
	}
	if len(key.Key) != ed25519.PublicKeySize ||
		!ed25519.Verify(key.Key, sigStructure(msg.Protected, msg.Payload), msg.Signature) {
		return protocol.NewError(protocol.CodeBadSignature)
	}
	// From here on the claims are the issuer's.
	if v.iss != key.Tenant {
		return protocol.NewError(protocol.CodeWrongTenant)
	}
	if !key.NotAfter.IsZero() && now.After(key.NotAfter) {
		return protocol.Errorf(protocol.CodeTokenExpired, "This code was signed with a retired key and has expired.")
	}
	if !now.Before(v.exp) {
		return protocol.NewError(protocol.CodeTokenExpired)
	}
	start := v.nbf
	if v.iat.After(start) {
		start = v.iat
	}
	if now.Add(ClockSkew).Before(start) {
		return protocol.NewError(protocol.CodeTokenNotYet)
	}
	return nil
}
