// Package snapshot is what the hub hands an agent so that it can decide
// offline: the tenant's public keys, campaigns, plain codes, revocations,
// the agent's allowances and its offline risk envelope, all at one catalog
// version.
//
// A snapshot is either full (Since == 0) or a delta (Since > 0) that holds
// only the campaigns, codes and revocations changed after version Since (a
// delta with Since == Version changes no catalog entry but still carries
// fresh keys, allowances and envelope). A delta also lists the codes whose
// use or spending changed in the hub's ledger after UsesSince (every used
// code when UsesSince is 0), changed in the catalog or not, so that Used
// and Spent stay current between catalog versions at a cost of the
// changes since.
// The small parts that matter most for safety — keys, allowances, the risk
// envelope and the store — are always sent whole, so an agent never keeps
// a stale allowance because a delta forgot to mention it. Merge applies a
// delta to the snapshot it was computed against.
//
// The hub filters a snapshot to the agent's store: a campaign whose store
// conditions (Eligibility.Stores, Eligibility.Regions) cannot admit the
// store is left out with its plain codes, and a delta withdraws such a
// campaign by ID (Withdrawn) when a change excludes it.
//
// Campaigns are rules.Campaign values, the same type the hub validated and
// evaluates, so agent and hub decide from identical data.
//
// Snapshots travel as CBOR (protocol.EncMode, so equal snapshots give equal
// bytes and a stable ETag). Decode is outside input for the agent and is
// bounded by protocol.MaxSnapshotBytes and protocol.MaxSnapshotNested.
package snapshot

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	"github.com/fxamacker/cbor/v2"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// Limits on a decoded snapshot beyond the byte and nesting limits.
const (
	MaxItems     = 1 << 20 // elements of any one list (codes, revocations, ...)
	MaxMapPairs  = 4096    // pairs of one map (customer attributes and the like)
	MaxKeys      = 64      // public keys of a tenant
	MaxTZLen     = 64      // IANA time zone name
	MaxRegionLen = 64
)

// Revocation kinds.
const (
	RevokeCode  = "code"  // a plain code
	RevokeToken = "token" // a signed token serial
)

// Snapshot is one agent's view of its tenant's catalog at Version.
type Snapshot struct {
	Format      uint16               `json:"format" cbor:"1,keyasint"`                    // protocol.Version of the encoding
	Version     uint64               `json:"version" cbor:"2,keyasint"`                   // the tenant's catalog version
	Since       uint64               `json:"since,omitempty" cbor:"3,keyasint,omitempty"` // 0 = full; else a delta after this version
	Tenant      protocol.TenantID    `json:"tenant" cbor:"4,keyasint"`
	Agent       protocol.AgentID     `json:"agent" cbor:"5,keyasint"`
	Store       Store                `json:"store" cbor:"6,keyasint"`
	GeneratedAt int64                `json:"generated_at" cbor:"7,keyasint"`                  // Unix microseconds, hub clock
	Keys        []PublicKey          `json:"keys" cbor:"8,keyasint"`                          // always whole
	Campaigns   []rules.Campaign     `json:"campaigns,omitempty" cbor:"9,keyasint,omitempty"` // only the changed ones in a delta
	Codes       []Code               `json:"codes,omitempty" cbor:"10,keyasint,omitempty"`
	Revocations []Revocation         `json:"revocations,omitempty" cbor:"11,keyasint,omitempty"`
	Allowances  []protocol.Allowance `json:"allowances,omitempty" cbor:"12,keyasint,omitempty"` // always whole
	Envelope    RiskEnvelope         `json:"envelope" cbor:"13,keyasint"`                       // always whole
	// Withdrawn, only in a delta, lists campaigns the agent must drop with
	// their codes: they changed after Since and their store conditions no
	// longer admit this agent's store, so a full snapshot leaves them out.
	// Additive (an older agent ignores it and keeps enforcing the store
	// conditions itself).
	Withdrawn []protocol.CampaignID `json:"withdrawn,omitempty" cbor:"14,keyasint,omitempty"`
	// CodeKey, when set (CodeKeySize bytes, always whole), means that
	// Codes[].Code and the IDs of code Revocations are not the codes but
	// their keyed hashes (HashCode): a till's disk or a copied snapshot
	// then holds no gift card number or single-use code, and the till
	// hashes what is presented to look it up (LookupID). Token serials
	// are not hashed. Empty: plain codes (a hub before keyed hashes).
	CodeKey []byte `json:"code_key,omitempty" cbor:"15,keyasint,omitempty"`
	// Uses is the code-use position the Used and Spent of Codes were read
	// at: the tenant's count of code-use changes in the hub's ledger. The
	// agent keeps it and asks for the codes changed after it (the uses
	// query parameter), so a delta costs the changes since, never every
	// code ever used. 0: unknown (a hub before the sequence).
	Uses uint64 `json:"uses,omitempty" cbor:"16,keyasint,omitempty"`
	// UsesSince, only in a delta, is the code-use position the delta's
	// code states start from: it lists only the codes whose uses or
	// spending changed after it (besides those changed in the catalog).
	// 0 in a delta: it lists every code the ledger has a use of (a hub
	// before the sequence, or an agent that sent no position).
	UsesSince uint64 `json:"uses_since,omitempty" cbor:"17,keyasint,omitempty"`
	// Reflected says which of this agent's own facts the Used and Spent of
	// Codes count, read with them: the agent adds its own facts beyond
	// it to the figures, so what it knows of a code is exact (the hub's
	// figure plus its own facts the figure does not count yet). Always
	// whole; in a delta it is for the merged codes too (a code unchanged
	// since the base had no fact of this agent applied meanwhile). Nil: a
	// hub before Reflected (the agent then adds every own fact).
	Reflected *Reflected `json:"reflected,omitempty" cbor:"18,keyasint,omitempty"`
	// Segments are the computed segments (protocol/segment) of the
	// customers in a segment that one of the snapshot's campaigns names,
	// as the hub last stored them, by customer ID ascending; always whole
	// (additive, key 20: an older agent ignores it and admits only by the
	// static segment). The till adds a known customer's entry to the
	// customer it decides for.
	Segments []CustomerSegments `json:"segments,omitempty" cbor:"20,keyasint,omitempty"`
	// Tiers are customers' tiers as the hub's tier programme set them
	// (protocol/tiers): a full snapshot lists every customer with a tier,
	// a delta those whose tier changed after Since ("" = no tier any
	// more). The till's decision takes a listed customer's tier over the
	// one the POS presents.
	Tiers []CustomerTier `json:"tiers,omitempty" cbor:"19,keyasint,omitempty"`
	// Customers is the customer-state position Tiers and Segments were
	// read at: the tenant's count of customer-state changes (a tier, a
	// segment membership) in the hub's ledger, which moves without the
	// catalog Version. The agent keeps it and asks for the customers
	// changed after it (the customers query parameter). 0: a hub before
	// the sequence (Tiers then follow Since and Segments are whole).
	// Additive (key 21).
	Customers uint64 `json:"customers,omitempty" cbor:"21,keyasint,omitempty"`
	// CustomersSince, with Customers set, is the customer-state position
	// Tiers and Segments start from: they list only the customers whose
	// state changed after it (a tier "" and an entry with no segments
	// remove the customer's), to be laid over the agent's lists
	// (MergeTiers, MergeSegments). 0: Tiers and Segments are whole, and
	// replace the agent's. It may be set in a snapshot whose catalog part
	// is current (Since == Version). Additive (key 22).
	CustomersSince uint64 `json:"customers_since,omitempty" cbor:"22,keyasint,omitempty"`
}

// CustomersFit reports whether the customer state of delta d can be laid
// over base: d lists every customer changed after base's position (it
// starts at or before it) and was read no earlier. A delta whose
// customer state is whole (CustomersSince 0) always fits.
func CustomersFit(base, d *Snapshot) bool {
	return d.CustomersSince == 0 || (d.CustomersSince <= base.Customers && d.Customers >= base.Customers)
}

// MergeCustomers sets out's Tiers and Segments from base's and d's: whole
// from d when d's customer state is whole, laid over base's when it is a
// customer-state delta (CustomersSince), and as before the sequence for
// a hub without it (tiers merged by catalog version, segments whole).
func MergeCustomers(out, base, d *Snapshot) {
	switch {
	case d.CustomersSince > 0:
		out.Tiers = MergeTiers(base.Tiers, d.Tiers)
		out.Segments = MergeSegments(base.Segments, d.Segments)
	case d.Customers > 0:
		out.Tiers, out.Segments = d.Tiers, d.Segments
	default:
		out.Tiers = MergeTiers(base.Tiers, d.Tiers)
		out.Segments = d.Segments
	}
}

// MergeSegments lays a customer-state delta's segment entries over a full
// list: a listed customer takes the delta's segments, none removes them.
func MergeSegments(base, d []CustomerSegments) []CustomerSegments {
	if len(d) == 0 {
		return base
	}
	m := make(map[protocol.CustomerID][]string, len(base)+len(d))
	for _, c := range base {
		m[c.Customer] = c.Segments
	}
	for _, c := range d {
		m[c.Customer] = c.Segments
	}
	out := make([]CustomerSegments, 0, len(m))
	for c, gs := range m {
		if len(gs) > 0 {
			out = append(out, CustomerSegments{Customer: c, Segments: gs})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Customer < out[j].Customer })
	return out
}

// CustomerTier is one customer's current tier.
type CustomerTier struct {
	Customer protocol.CustomerID `json:"customer" cbor:"1,keyasint"`
	Tier     string              `json:"tier,omitempty" cbor:"2,keyasint,omitempty"`
}

// CustomerSegments is one customer's computed segments in a snapshot.
type CustomerSegments struct {
	Customer protocol.CustomerID `json:"customer" cbor:"1,keyasint"`
	Segments []string            `json:"segments" cbor:"2,keyasint"`
}

// MaxSegmentCustomers bounds Snapshot.Segments.
const MaxSegmentCustomers = 100_000

// MaxReflectedBeyond bounds Reflected.Beyond (the hub's ack carries as
// many at most).
const MaxReflectedBeyond = 1000

// Reflected is the hub's account of an agent's facts that its figures
// count: every seq up to Watermark (the hub's contiguous watermark for
// the agent) and each seq of Beyond (applied above a gap), ascending.
type Reflected struct {
	Watermark uint64   `json:"watermark" cbor:"1,keyasint"`
	Beyond    []uint64 `json:"beyond,omitempty" cbor:"2,keyasint,omitempty"`
}

// Keyed code hashes.
const (
	// CodeKeySize is the size of a tenant's code hashing key.
	CodeKeySize = 32
	// CodeHashSize is how much of the HMAC-SHA256 a snapshot keeps: 128
	// bits, hex-encoded to 32 characters. Collisions among the at most
	// MaxItems codes of a snapshot (birthday bound about 2^-88) and a
	// presented code matching a listed hash by chance (2^-108) are out of
	// reach, and guessing a code from its hash is no easier than
	// with the full 256 bits: it is the key plus the code's own entropy
	// that protect it, not the hash length. Half the bytes of the full
	// HMAC matter for a snapshot of a million codes.
	CodeHashSize = 16
)

// HashCode is the keyed hash a snapshot lists a code under:
// hex(HMAC-SHA256(key, code)[:CodeHashSize]), code being the code's key
// (codes.Normalize of the printed form).
func HashCode(key []byte, code protocol.CodeID) protocol.CodeID {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(code))
	return protocol.CodeID(hex.EncodeToString(m.Sum(nil)[:CodeHashSize]))
}

// LookupID is the ID a code (its key, codes.Normalize of what was
// presented) has in s's Codes and code Revocations: its HashCode when s
// has a CodeKey, else the code itself.
func (s *Snapshot) LookupID(code protocol.CodeID) protocol.CodeID {
	if len(s.CodeKey) == 0 {
		return code
	}
	return HashCode(s.CodeKey, code)
}

// Store is where the agent stands: the rules use its ID, region and time
// zone (day and hour windows are in the store's local time).
type Store struct {
	ID       protocol.StoreID `json:"id" cbor:"1,keyasint"`
	Region   string           `json:"region,omitempty" cbor:"2,keyasint,omitempty"`
	TimeZone string           `json:"time_zone,omitempty" cbor:"3,keyasint,omitempty"` // IANA name, e.g. "Europe/Berlin"
	Group    string           `json:"group,omitempty" cbor:"4,keyasint,omitempty"`     // store group for code binding
}

// PublicKey is a tenant signing key the agent verifies tokens with. A
// rotated key stays in the list until NotAfter (the expiry of the last
// token it signed), so tokens issued before a rotation keep working.
type PublicKey struct {
	KID      protocol.KeyID `json:"kid" cbor:"1,keyasint"`
	Public   []byte         `json:"public" cbor:"2,keyasint"`                        // Ed25519, 32 bytes
	NotAfter int64          `json:"not_after,omitempty" cbor:"3,keyasint,omitempty"` // Unix microseconds; 0 = current key
}

// Code is a plain code (printed voucher, gift card number) the agent checks
// against this list instead of a signature. Uses and balances change in
// the ledger without a catalog version, so a snapshot cannot be trusted
// for them: a single-use code or gift card is safe offline only when bound
// to the store (BoundTo) or within the agent's risk envelope; what slips
// through is a conflict at reconciliation.
type Code struct {
	Code     protocol.CodeID     `json:"code" cbor:"1,keyasint"` // the key: codes.Normalize of the printed code
	Campaign protocol.CampaignID `json:"campaign" cbor:"2,keyasint"`
	Uses     int64               `json:"uses" cbor:"3,keyasint"`                        // uses allowed in total, -1 = unlimited
	Used     int64               `json:"used,omitempty" cbor:"4,keyasint,omitempty"`    // uses the hub's ledger knew of (every till's, net of rollbacks)
	Balance  *protocol.Money     `json:"balance,omitempty" cbor:"5,keyasint,omitempty"` // gift card: the balance loaded; what is left is Balance − Spent
	Stores   []protocol.StoreID  `json:"stores,omitempty" cbor:"6,keyasint,omitempty"`  // bound to these stores; empty = any
	Group    string              `json:"group,omitempty" cbor:"7,keyasint,omitempty"`   // bound to this store group
	// Spent is what the hub's ledger knew to be spent from a gift card
	// (every till's, net of rollbacks), in Balance's currency. Balance
	// stays the loaded value so that a till adds to Spent its own spending
	// the figure does not count yet (Snapshot.Reflected says which), as
	// with Used: exact, without counting its synced spending twice.
	Spent int64 `json:"spent,omitempty" cbor:"8,keyasint,omitempty"`
}

// BoundTo reports whether the code is bound to the store s (by ID or
// group), which is what makes a single-use code safe to redeem offline.
func (c Code) BoundTo(s Store) bool {
	if c.Group != "" && c.Group == s.Group {
		return true
	}
	for _, id := range c.Stores {
		if id == s.ID {
			return true
		}
	}
	return false
}

// Revocation withdraws a plain code or a token serial.
type Revocation struct {
	Kind string          `json:"kind" cbor:"1,keyasint"` // RevokeCode or RevokeToken
	ID   protocol.CodeID `json:"id" cbor:"2,keyasint"`
	At   int64           `json:"at" cbor:"3,keyasint"` // Unix microseconds
}

// RiskEnvelope bounds what an agent may give away without the hub, like the
// floor limits of an offline card terminal. Amounts are minor units of
// Currency; 0 means "nothing offline" for that cap, -1 means unlimited.
type RiskEnvelope struct {
	Currency        protocol.Currency `json:"currency,omitempty" cbor:"1,keyasint,omitempty"`
	PerRedemption   int64             `json:"per_redemption" cbor:"2,keyasint"`    // largest discount or spend of one offline redemption
	PerCampaign     int64             `json:"per_campaign" cbor:"3,keyasint"`      // offline total per campaign between syncs
	TotalAmount     int64             `json:"total_amount" cbor:"4,keyasint"`      // offline total over all campaigns between syncs
	Count           int64             `json:"count" cbor:"5,keyasint"`             // offline redemptions between syncs
	MaxStaleSeconds int64             `json:"max_stale_seconds" cbor:"6,keyasint"` // refuse offline redemptions this long after the last sync
}

// DefaultEnvelope is a conservative envelope for a newly registered agent.
var DefaultEnvelope = RiskEnvelope{
	PerRedemption:   50_00,
	PerCampaign:     500_00,
	TotalAmount:     1000_00,
	Count:           200,
	MaxStaleSeconds: 24 * 3600,
}

// IsDelta reports whether s holds only the changes after s.Since.
func (s *Snapshot) IsDelta() bool { return s.Since > 0 }

// Key returns the public key kid, if present.
func (s *Snapshot) Key(kid protocol.KeyID) (PublicKey, bool) {
	for _, k := range s.Keys {
		if k.KID == kid {
			return k, true
		}
	}
	return PublicKey{}, false
}

// Normalize sorts every list by its key so that equal snapshots encode to
// equal bytes. A list already sorted is only read, so that several
// goroutines may encode copies of one normalized snapshot that share its
// lists (the hub's per-store build cache).
func (s *Snapshot) Normalize() {
	sortIf(s.Keys, func(i, j int) bool { return s.Keys[i].KID < s.Keys[j].KID })
	sortIf(s.Campaigns, func(i, j int) bool { return s.Campaigns[i].ID < s.Campaigns[j].ID })
	sortIf(s.Codes, func(i, j int) bool { return s.Codes[i].Code < s.Codes[j].Code })
	sortIf(s.Revocations, func(i, j int) bool {
		a, b := s.Revocations[i], s.Revocations[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.ID < b.ID
	})
	sortIf(s.Allowances, func(i, j int) bool { return s.Allowances[i].Campaign < s.Allowances[j].Campaign })
	sortIf(s.Withdrawn, func(i, j int) bool { return s.Withdrawn[i] < s.Withdrawn[j] })
	sortIf(s.Tiers, func(i, j int) bool { return s.Tiers[i].Customer < s.Tiers[j].Customer })
	if s.Reflected != nil {
		sortIf(s.Reflected.Beyond, func(i, j int) bool { return s.Reflected.Beyond[i] < s.Reflected.Beyond[j] })
	}
}

func sortIf(x any, less func(i, j int) bool) {
	if !sort.SliceIsSorted(x, less) {
		sort.Slice(x, less)
	}
}

// Encode normalizes s and returns its canonical CBOR. It returns
// CodeMessageTooLarge when the result exceeds protocol.MaxSnapshotBytes.
func Encode(s *Snapshot) ([]byte, error) {
	if s.Format == 0 {
		s.Format = protocol.Version
	}
	s.Normalize()
	b, err := protocol.EncMode.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("snapshot: encode: %w", err)
	}
	if len(b) > protocol.MaxSnapshotBytes {
		return nil, protocol.Errorf(protocol.CodeMessageTooLarge, "snapshot is %d bytes, more than %d", len(b), protocol.MaxSnapshotBytes)
	}
	return b, nil
}

// ETag is a strong HTTP entity tag for encoded snapshot bytes.
func ETag(encoded []byte) string {
	h := sha256.Sum256(encoded)
	return `"` + hex.EncodeToString(h[:16]) + `"`
}

// Limits are the CBOR decoding limits for snapshots.
var Limits = protocol.DecodeLimits{
	MaxBytes:        protocol.MaxSnapshotBytes,
	MaxNestedLevels: protocol.MaxSnapshotNested,
	MaxArrayLen:     MaxItems,
	MaxMapPairs:     MaxMapPairs,
}

var decMode = mustDecMode()

func mustDecMode() cbor.DecMode {
	dm, err := protocol.NewDecMode(Limits)
	if err != nil {
		panic(fmt.Sprintf("snapshot: cbor dec mode: %v", err))
	}
	return dm
}

// Decode parses and checks a snapshot from the hub. It returns
// CodeMessageTooLarge, CodeMessageMalformed (with the offending field when
// the structure is wrong) or CodeUnsupportedVersion; never a panic.
func Decode(data []byte) (*Snapshot, error) {
	if len(data) > protocol.MaxSnapshotBytes {
		return nil, protocol.Errorf(protocol.CodeMessageTooLarge, "snapshot is %d bytes, more than %d", len(data), protocol.MaxSnapshotBytes)
	}
	var s Snapshot
	if err := decMode.Unmarshal(data, &s); err != nil {
		var me *cbor.MaxNestedLevelError
		if errors.As(err, &me) {
			return nil, protocol.Errorf(protocol.CodeMessageMalformed, "snapshot is nested too deeply")
		}
		return nil, protocol.Errorf(protocol.CodeMessageMalformed, "snapshot is not valid CBOR: %v", err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

func malformed(field, format string, args ...any) error {
	return &protocol.Error{Code: protocol.CodeMessageMalformed, Message: fmt.Sprintf(format, args...), Field: field}
}

// Validate checks the structure of a snapshot: identifiers, key sizes,
// statuses and envelope signs. It does not parse the campaign rules; the
// rules engine does that and reports its own field paths.
func (s *Snapshot) Validate() error {
	if s.Format == 0 || s.Format > protocol.Version {
		return protocol.Errorf(protocol.CodeUnsupportedVersion, "snapshot format %d; this side speaks %d", s.Format, protocol.Version)
	}
	if s.Version == 0 {
		return malformed("version", "snapshot version is 0")
	}
	if s.Since > s.Version {
		return malformed("since", "delta since %d is after version %d", s.Since, s.Version)
	}
	if s.UsesSince > s.Uses || (s.UsesSince != 0 && !s.IsDelta()) {
		return malformed("uses_since", "code uses since %d in a snapshot at %d (delta since %d)", s.UsesSince, s.Uses, s.Since)
	}
	if s.CustomersSince > s.Customers || (s.CustomersSince != 0 && !s.IsDelta()) {
		return malformed("customers_since", "customer state since %d in a snapshot at %d (delta since %d)", s.CustomersSince, s.Customers, s.Since)
	}
	if err := checkID("tenant", string(s.Tenant)); err != nil {
		return err
	}
	if err := checkID("agent", string(s.Agent)); err != nil {
		return err
	}
	if err := checkID("store.id", string(s.Store.ID)); err != nil {
		return err
	}
	if len(s.Store.TimeZone) > MaxTZLen {
		return malformed("store.time_zone", "time zone is longer than %d", MaxTZLen)
	}
	if len(s.Store.Region) > MaxRegionLen || len(s.Store.Group) > MaxRegionLen {
		return malformed("store.region", "region or group is longer than %d", MaxRegionLen)
	}
	if len(s.CodeKey) != 0 && len(s.CodeKey) != CodeKeySize {
		return malformed("code_key", "code key is %d bytes, want %d", len(s.CodeKey), CodeKeySize)
	}
	if len(s.Segments) > MaxSegmentCustomers {
		return malformed("segments", "%d customers, more than %d", len(s.Segments), MaxSegmentCustomers)
	}
	for i, c := range s.Segments {
		if err := checkIDAt("segments", i, ".customer", string(c.Customer)); err != nil {
			return err
		}
		if len(c.Segments) > 64 {
			return malformed(fmt.Sprintf("segments[%d].segments", i), "%d segments, more than 64", len(c.Segments))
		}
	}
	if len(s.Keys) > MaxKeys {
		return malformed("keys", "%d keys, more than %d", len(s.Keys), MaxKeys)
	}
	for i, k := range s.Keys {
		if err := checkIDAt("keys", i, ".kid", string(k.KID)); err != nil {
			return err
		}
		if len(k.Public) != ed25519.PublicKeySize {
			return malformed(fmt.Sprintf("keys[%d].public", i), "public key is %d bytes, want %d", len(k.Public), ed25519.PublicKeySize)
		}
	}
	for i, c := range s.Campaigns {
		if err := checkIDAt("campaigns", i, ".id", string(c.ID)); err != nil {
			return err
		}
		if c.Tenant != s.Tenant {
			return malformed(fmt.Sprintf("campaigns[%d].tenant", i), "campaign of tenant %q in snapshot of %q", c.Tenant, s.Tenant)
		}
		if err := c.Validate(); err != nil {
			var pe *protocol.Error
			if errors.As(err, &pe) && pe.Code == protocol.CodeUnsupportedVersion {
				return err
			}
			field := fmt.Sprintf("campaigns[%d]", i)
			if pe != nil && pe.Field != "" {
				field += "." + pe.Field
			}
			return malformed(field, "%s", protocol.PublicError(err).Message)
		}
	}
	for i, c := range s.Codes {
		if c.Code == "" || len(c.Code) > protocol.MaxIDLen {
			return malformed(fmt.Sprintf("codes[%d].code", i), "code must be 1 to %d characters", protocol.MaxIDLen)
		}
		if err := checkIDAt("codes", i, ".campaign", string(c.Campaign)); err != nil {
			return err
		}
		if c.Spent < 0 {
			return malformed(fmt.Sprintf("codes[%d].spent", i), "spent %d is negative", c.Spent)
		}
		if c.Uses < -1 || c.Used < 0 {
			return malformed(fmt.Sprintf("codes[%d].uses", i), "uses %d, used %d", c.Uses, c.Used)
		}
		if c.Balance != nil && c.Balance.Currency.Validate() != nil {
			return malformed(fmt.Sprintf("codes[%d].balance.currency", i), "bad currency %q", c.Balance.Currency)
		}
	}
	for i, r := range s.Revocations {
		if r.Kind != RevokeCode && r.Kind != RevokeToken {
			return malformed(fmt.Sprintf("revocations[%d].kind", i), "unknown kind %q", r.Kind)
		}
		if r.ID == "" || len(r.ID) > protocol.MaxIDLen {
			return malformed(fmt.Sprintf("revocations[%d].id", i), "id must be 1 to %d characters", protocol.MaxIDLen)
		}
	}
	for i, id := range s.Withdrawn {
		if err := checkIDAt("withdrawn", i, "", string(id)); err != nil {
			return err
		}
	}
	for i, t := range s.Tiers {
		if err := checkIDAt("tiers", i, ".customer", string(t.Customer)); err != nil {
			return err
		}
		if len(t.Tier) > protocol.MaxIDLen {
			return malformed(fmt.Sprintf("tiers[%d].tier", i), "tier must be at most %d characters", protocol.MaxIDLen)
		}
	}
	if r := s.Reflected; r != nil {
		if r.Watermark > 1<<62 || len(r.Beyond) > MaxReflectedBeyond {
			return malformed("reflected", "watermark or beyond out of range")
		}
		for i, q := range r.Beyond {
			if q <= r.Watermark || q > 1<<62 || (i > 0 && q <= r.Beyond[i-1]) {
				return malformed(fmt.Sprintf("reflected.beyond[%d]", i), "not ascending above the watermark")
			}
		}
	}
	for i, a := range s.Allowances {
		if a.Tenant != s.Tenant || a.Agent != s.Agent {
			return malformed(fmt.Sprintf("allowances[%d]", i), "allowance for %s/%s in snapshot of %s/%s", a.Tenant, a.Agent, s.Tenant, s.Agent)
		}
		if a.Count < -1 || a.Amount < -1 {
			return malformed(fmt.Sprintf("allowances[%d]", i), "negative allowance")
		}
	}
	e := s.Envelope
	for _, f := range []struct {
		name string
		v    int64
	}{{"per_redemption", e.PerRedemption}, {"per_campaign", e.PerCampaign}, {"total_amount", e.TotalAmount}, {"count", e.Count}, {"max_stale_seconds", e.MaxStaleSeconds}} {
		if f.v < -1 {
			return malformed("envelope."+f.name, "%s is %d; use -1 for unlimited", f.name, f.v)
		}
	}
	if e.Currency != "" && e.Currency.Validate() != nil {
		return malformed("envelope.currency", "bad currency %q", e.Currency)
	}
	return nil
}

func checkID(field, s string) error {
	if err := protocol.ValidateID(field, s); err != nil {
		return malformed(field, "%s", err.(*protocol.Error).Message)
	}
	return nil
}

// checkIDAt is checkID for list[i].suffix, building the field path only
// on error: a snapshot can hold a million codes.
func checkIDAt(list string, i int, suffix, s string) error {
	if err := protocol.ValidateID("id", s); err != nil {
		return checkID(fmt.Sprintf("%s[%d]%s", list, i, suffix), s)
	}
	return nil
}

// ErrBaseMismatch is returned by Merge when a delta was computed against
// another version than the base's. The agent then asks for a full snapshot.
var ErrBaseMismatch = protocol.Errorf(protocol.CodeConflict, "delta does not apply to this snapshot version")

// UsesFit reports whether the code states of delta d can be laid over
// base: d lists every code changed after base's code-use position (it
// starts at or before it) and was read no earlier. A delta with
// UsesSince 0 lists every used code and always fits.
func UsesFit(base, d *Snapshot) bool {
	return d.UsesSince == 0 || (d.UsesSince <= base.Uses && d.Uses >= base.Uses)
}

// Merge applies delta d to the full snapshot base and returns the new full
// snapshot: withdrawn campaigns are dropped with their codes, campaigns and
// codes are replaced by key, revocations added (a
// revoked code leaves Codes, as the hub leaves it out of a full snapshot),
// keys, allowances, envelope and store taken whole. base is not modified. It returns ErrBaseMismatch unless
// d.Since == base.Version and both are for the same tenant, agent and store
// (the hub filters a snapshot by the store) and hash codes with the same
// CodeKey.
func Merge(base *Snapshot, d *Snapshot) (*Snapshot, error) {
	if base.IsDelta() {
		return nil, protocol.Errorf(protocol.CodeConflict, "base snapshot is itself a delta")
	}
	if !d.IsDelta() {
		c := *d
		return &c, nil
	}
	if d.Since != base.Version || d.Tenant != base.Tenant || d.Agent != base.Agent || d.Store != base.Store {
		// A moved store: the base was filtered for another store.
		return nil, ErrBaseMismatch
	}
	if !bytes.Equal(d.CodeKey, base.CodeKey) {
		// The base's codes are listed under other IDs.
		return nil, ErrBaseMismatch
	}
	if !UsesFit(base, d) || !CustomersFit(base, d) {
		return nil, ErrBaseMismatch
	}
	out := *d
	out.Since = 0
	out.UsesSince = 0
	out.CustomersSince = 0
	out.Withdrawn = nil
	withdrawn := make(map[protocol.CampaignID]bool, len(d.Withdrawn))
	for _, id := range d.Withdrawn {
		withdrawn[id] = true
	}

	camp := make(map[protocol.CampaignID]rules.Campaign, len(base.Campaigns)+len(d.Campaigns))
	for _, c := range base.Campaigns {
		if !withdrawn[c.ID] {
			camp[c.ID] = c
		}
	}
	for _, c := range d.Campaigns {
		camp[c.ID] = c
	}
	out.Campaigns = make([]rules.Campaign, 0, len(camp))
	for _, c := range camp {
		out.Campaigns = append(out.Campaigns, c)
	}

	codes := make(map[protocol.CodeID]Code, len(base.Codes)+len(d.Codes))
	for _, c := range base.Codes {
		if !withdrawn[c.Campaign] {
			codes[c.Code] = c
		}
	}
	for _, c := range d.Codes {
		codes[c.Code] = c
	}
	for _, r := range d.Revocations {
		if r.Kind == RevokeCode {
			delete(codes, r.ID) // a revoked code leaves the list, as in a full snapshot
		}
	}
	out.Codes = make([]Code, 0, len(codes))
	for _, c := range codes {
		out.Codes = append(out.Codes, c)
	}

	type rk struct {
		kind string
		id   protocol.CodeID
	}
	revs := make(map[rk]Revocation, len(base.Revocations)+len(d.Revocations))
	for _, r := range base.Revocations {
		revs[rk{r.Kind, r.ID}] = r
	}
	for _, r := range d.Revocations {
		revs[rk{r.Kind, r.ID}] = r
	}
	out.Revocations = make([]Revocation, 0, len(revs))
	for _, r := range revs {
		out.Revocations = append(out.Revocations, r)
	}
	out.Keys = append([]PublicKey(nil), d.Keys...)
	out.Allowances = append([]protocol.Allowance(nil), d.Allowances...)
	MergeCustomers(&out, base, d)
	out.Normalize()
	return &out, nil
}

// MergeTiers lays a delta's tier changes over a full list: a listed
// customer takes the delta's tier, "" removes them.
func MergeTiers(base, d []CustomerTier) []CustomerTier {
	if len(d) == 0 {
		return append([]CustomerTier(nil), base...)
	}
	m := make(map[protocol.CustomerID]string, len(base)+len(d))
	for _, t := range base {
		m[t.Customer] = t.Tier
	}
	for _, t := range d {
		m[t.Customer] = t.Tier
	}
	out := make([]CustomerTier, 0, len(m))
	for c, t := range m {
		if t != "" {
			out = append(out, CustomerTier{Customer: c, Tier: t})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Customer < out[j].Customer })
	return out
}
