package decide

import (
	"context"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/token"
)

// Mem is a Source over fixed values, for callers that hold everything in
// memory already (a rules playground, the golden cases). The zero value
// knows nothing: unknown codes, no keys, no uses, unlimited budgets.
type Mem struct {
	Codes        map[protocol.CodeID]Code
	KeySet       token.KeyMap
	Revoked      map[protocol.CodeID]bool
	Used         map[protocol.CodeID]Use
	Customers    map[protocol.CustomerID]protocol.Customer
	Points       int64
	CustomerUsed map[protocol.CampaignID]int64
	Budgets      map[protocol.CampaignID]rules.Budget
	// PeriodEarned is what the customer earned in the current period of
	// each capped rule.
	PeriodEarned map[rules.EarnKey]int64
}

var _ Source = (*Mem)(nil)

// Code implements Source.
func (m *Mem) Code(_ context.Context, key protocol.CodeID) (Code, bool, error) {
	c, ok := m.Codes[key]
	return c, ok, nil
}

// Keys implements Source.
func (m *Mem) Keys(context.Context) (token.KeySet, error) {
	if m.KeySet == nil {
		return token.KeyMap{}, nil
	}
	return m.KeySet, nil
}

// TokenRevoked implements Source.
func (m *Mem) TokenRevoked(_ context.Context, serial protocol.CodeID) (bool, error) {
	return m.Revoked[serial], nil
}

// Uses implements Source.
func (m *Mem) Uses(_ context.Context, key protocol.CodeID, _ Code) (Use, error) {
	return m.Used[key], nil
}

// Customer implements Source: a known ID gets its stored profile, any
// other customer is taken as presented.
func (m *Mem) Customer(_ context.Context, c protocol.Customer) (protocol.Customer, int64, error) {
	if k, ok := m.Customers[c.ID]; ok {
		return k, m.Points, nil
	}
	return c, m.Points, nil
}

// CustomerUses implements Source.
func (m *Mem) CustomerUses(_ context.Context, _ protocol.CustomerID, campaign protocol.CampaignID) (int64, error) {
	return m.CustomerUsed[campaign], nil
}

// Budget implements Source: unlimited when not listed.
func (m *Mem) Budget(_ context.Context, campaign protocol.CampaignID) (rules.Budget, error) {
	if b, ok := m.Budgets[campaign]; ok {
		return b, nil
	}
	return rules.Budget{Count: -1, Amount: -1}, nil
}

// Earned implements Source: PeriodEarned by key, else 0.
func (m *Mem) Earned(_ context.Context, _ protocol.CustomerID, keys []protocol.PeriodKey) ([]int64, error) {
	out := make([]int64, len(keys))
	for i, k := range keys {
		out[i] = m.PeriodEarned[rules.EarnKey{Campaign: k.Campaign, Rule: k.Rule}]
	}
	return out, nil
}
