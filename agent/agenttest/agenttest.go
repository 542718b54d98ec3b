// Package agenttest builds the snapshots, keys and tokens the agent's tests
// and benchmarks run on: real rules.Campaign values, real Ed25519 keys and
// real signed tokens, encoded exactly as the hub sends them.
package agenttest

import (
	"crypto/ed25519"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/token"
)

// Fixture identity.
const (
	Tenant  protocol.TenantID = "acme"
	Agent   protocol.AgentID  = "till-1"
	StoreID protocol.StoreID  = "berlin-1"
	KeyID   protocol.KeyID    = "acme-k1"
)

// POSToken is the POS API token the agent tests set (Agent.POSToken) and
// send (AuthorizePOS).
const POSToken = "agenttest-pos-token-0123456789"

// AuthorizePOS adds the POS API's token header to req.
func AuthorizePOS(req *http.Request, token string) {
	req.Header.Set("Authorization", "Bearer "+token)
}

// Campaigns and codes of Small.
const (
	CampPercent protocol.CampaignID = "pct10" // 10% off, limited budget (needs allowance)
	CampAmount  protocol.CampaignID = "amt5"  // 5.00 off, unlimited
	CampGift    protocol.CampaignID = "gift"  // gift cards
	CodeSummer                      = "SUMMER10"
	CodeOnce                        = "ONCE-1"  // single use, not bound to a store
	CodeBound                       = "BOUND-1" // single use, bound to StoreID
	CodeGift                        = "GIFT-1"  // gift card, 50.00
	CodeRevoked                     = "GONE-1"
)

// Key is the fixture tenant's signing key (deterministic).
func Key() token.SigningKey {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "punchcard agent test signing key")
	return token.SigningKey{Tenant: Tenant, KeyID: KeyID, Private: ed25519.NewKeyFromSeed(seed)}
}

func campaign(id protocol.CampaignID, r rules.Reward, lim rules.Limits) rules.Campaign {
	return rules.Campaign{Schema: rules.SchemaVersion, ID: id, Tenant: Tenant, Status: rules.StatusActive, Currency: "EUR",
		Reward: r, Limits: lim, StartsAt: time.Unix(1_700_000_000, 0).UTC()}
}

// Small is a snapshot with a few campaigns and codes, an allowance of
// allowCount redemptions for CampPercent and the default risk envelope.
func Small(version uint64, allowCount int64) *snapshot.Snapshot {
	k := Key()
	return &snapshot.Snapshot{
		Format: protocol.Version, Version: version, Tenant: Tenant, Agent: Agent,
		Store:       snapshot.Store{ID: StoreID, TimeZone: "Europe/Berlin", Group: "city"},
		GeneratedAt: time.Now().UnixMicro(),
		Keys:        []snapshot.PublicKey{{KID: k.KeyID, Public: k.Public().Key}},
		Campaigns: []rules.Campaign{
			campaign(CampPercent, rules.Reward{Kind: rules.RewardPercentOff, PercentBP: 1000}, rules.Limits{MaxRedemptions: 1_000_000}),
			campaign(CampAmount, rules.Reward{Kind: rules.RewardAmountOff, Amount: 500}, rules.Limits{}),
			campaign(CampGift, rules.Reward{Kind: rules.RewardGiftCard, MultiUse: true}, rules.Limits{}),
		},
		Codes: []snapshot.Code{
			{Code: CodeSummer, Campaign: CampPercent, Uses: -1},
			{Code: "ONCE1", Campaign: CampAmount, Uses: 1},
			{Code: "BOUND1", Campaign: CampAmount, Uses: 1, Stores: []protocol.StoreID{StoreID}},
			{Code: "GIFT1", Campaign: CampGift, Uses: -1, Balance: &protocol.Money{Amount: 50_00, Currency: "EUR"}},
		},
		Revocations: []snapshot.Revocation{{Kind: snapshot.RevokeCode, ID: "GONE1", At: 1}},
		Allowances:  []protocol.Allowance{{Tenant: Tenant, Agent: Agent, Campaign: CampPercent, Grant: 1, Count: allowCount, Amount: -1, Currency: "EUR"}},
		Envelope:    snapshot.DefaultEnvelope,
	}
}

// Large is a snapshot with n campaigns and m single-use plain codes
// ("C0000001"…) spread over them, for benchmarks. Campaigns are unlimited
// so that no allowance runs out during a benchmark.
func Large(n, m int) *snapshot.Snapshot {
	s := Small(1, -1)
	s.Campaigns = s.Campaigns[:0]
	for i := range n {
		s.Campaigns = append(s.Campaigns, campaign(protocol.CampaignID(fmt.Sprintf("camp%04d", i)),
			rules.Reward{Kind: rules.RewardPercentOff, PercentBP: int64(100 + i%900)}, rules.Limits{}))
	}
	s.Codes = make([]snapshot.Code, 0, m)
	for i := range m {
		s.Codes = append(s.Codes, snapshot.Code{Code: protocol.CodeID(LargeCode(i)), Campaign: protocol.CampaignID(fmt.Sprintf("camp%04d", i%n)), Uses: 1, Stores: []protocol.StoreID{StoreID}})
	}
	s.Revocations = nil
	s.Allowances = nil
	s.Envelope.MaxStaleSeconds = -1
	return s
}

// LargeCode is the i-th code of Large.
func LargeCode(i int) string { return fmt.Sprintf("C%07d", i) }

// Encode encodes s as the hub does, failing tb on error.
func Encode(tb testing.TB, s *snapshot.Snapshot) []byte {
	tb.Helper()
	b, err := snapshot.Encode(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Token issues a signed token for campaign with the fixture key.
func Token(tb testing.TB, campaign protocol.CampaignID, serial protocol.CodeID, uses uint32, store protocol.StoreID) string {
	tb.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	txt, err := token.Issue(Key(), token.Claims{Campaign: campaign, Serial: serial, Uses: uses, IssuedAt: now.Add(-time.Minute),
		Expires: now.Add(24 * time.Hour), Store: store})
	if err != nil {
		tb.Fatal(err)
	}
	return txt
}

// Order is a simple valid order of total minor units.
func Order(id string, total int64) protocol.Order {
	return protocol.Order{ID: id, Currency: "EUR", Lines: []protocol.Line{{SKU: "sku-1", Category: "food", Quantity: 1, UnitPrice: total}}}
}

// Patience is how long a test waits for a condition: until a minute before
// the test binary's own deadline (go test -timeout), so that a loaded CI
// machine slows a test down without failing it; 10 minutes without one
// (testutil.Patience, shared by every package's tests).
func Patience(tb testing.TB) time.Duration { return testutil.Patience(tb) }
