package ledger

import (
	"context"
	"sync"

	"github.com/punchcard/punchcard/protocol"
)

// MemFacts is an in-memory Facts, for tests, demos and a hub running
// without a catalog. The zero value is empty and ready to use.
type MemFacts struct {
	mu        sync.RWMutex
	campaigns map[key2]CampaignFacts
	codes     map[key2]CodeFacts
}

var _ Facts = (*MemFacts)(nil)

// SetCampaign records (or replaces) a campaign's facts.
func (m *MemFacts) SetCampaign(t protocol.TenantID, c protocol.CampaignID, f CampaignFacts) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.campaigns == nil {
		m.campaigns = map[key2]CampaignFacts{}
	}
	m.campaigns[key2{string(t), string(c)}] = f
}

// SetCode records (or replaces) a code's facts.
func (m *MemFacts) SetCode(t protocol.TenantID, c protocol.CodeID, f CodeFacts) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.codes == nil {
		m.codes = map[key2]CodeFacts{}
	}
	m.codes[key2{string(t), string(c)}] = f
}

// CampaignFacts implements Facts.
func (m *MemFacts) CampaignFacts(_ context.Context, t protocol.TenantID, c protocol.CampaignID) (CampaignFacts, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	f, ok := m.campaigns[key2{string(t), string(c)}]
	return f, ok, nil
}

// CodeFacts implements Facts.
func (m *MemFacts) CodeFacts(_ context.Context, t protocol.TenantID, c protocol.CodeID) (CodeFacts, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	f, ok := m.codes[key2{string(t), string(c)}]
	return f, ok, nil
}
