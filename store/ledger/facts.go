package ledger

import (
	"context"
	"sync"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
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

// MemSegments is an in-memory SegmentFacts, for tests and demos: segment
// definitions per tenant and attributes per customer. The zero value is
// empty and ready to use.
type MemSegments struct {
	mu    sync.RWMutex
	defs  map[protocol.TenantID][]segment.Definition
	attrs map[key2]map[string]string
}

var _ SegmentFacts = (*MemSegments)(nil)

// Set replaces the tenant's definitions.
func (m *MemSegments) Set(t protocol.TenantID, defs ...segment.Definition) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.defs == nil {
		m.defs = map[protocol.TenantID][]segment.Definition{}
	}
	m.defs[t] = defs
}

// SetAttributes replaces a customer's attributes.
func (m *MemSegments) SetAttributes(t protocol.TenantID, c protocol.CustomerID, a map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.attrs == nil {
		m.attrs = map[key2]map[string]string{}
	}
	m.attrs[key2{string(t), string(c)}] = a
}

// SegmentDefs implements SegmentFacts.
func (m *MemSegments) SegmentDefs(_ context.Context, t protocol.TenantID) ([]segment.Definition, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.defs[t], nil
}

// CustomerAttributes implements SegmentFacts.
func (m *MemSegments) CustomerAttributes(_ context.Context, t protocol.TenantID, c protocol.CustomerID) (map[string]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.attrs[key2{string(t), string(c)}], nil
}
