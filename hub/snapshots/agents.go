package snapshots

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/catalog"
)

// AgentLister lists a tenant's agents in one read (store/catalog). With
// it, once enough requests at one catalog version have read their agent's
// record on their own (BulkAfter, or an eighth of the agents the last list
// had), the next reads every agent's record of the tenant at once for the
// others: an announcement makes each of the tenant's tills fetch within
// seconds, and one read of ten thousand rows costs a fraction of ten
// thousand reads of one. A version that few agents fetch at (one of many
// changes made one after the other, agents registered one at a time)
// costs no list.
type AgentLister interface {
	Agents(ctx context.Context, tenant protocol.TenantID) ([]catalog.Agent, error)
}

// BulkAfter is how many agents' records at least are read one at a time
// at a catalog version before the tenant's list is read.
const BulkAfter = 32

// agentMisses counts the agent records of a tenant read one at a time at
// one catalog version.
type agentMisses struct {
	version uint64
	n       atomic.Int64
}

// tenantAgents are a tenant's agents read at (or after) a catalog version.
type tenantAgents struct {
	version uint64
	byID    map[protocol.AgentID]catalog.Agent
}

// agent returns the agent's record, read again only when the tenant's
// catalog version moved from version (a change to it moves the version):
// on its own, or from the tenant's list at the version once enough were
// (one read per tenant and version, shared by concurrent requests).
func (s *Service) agent(ctx context.Context, k snapKey, version uint64) (catalog.Agent, error) {
	if e, ok := s.lists.Load(k.tenant); ok && e.(*tenantAgents).version == version {
		if ag, ok := e.(*tenantAgents).byID[k.agent]; ok {
			return ag, nil
		}
	}
	if e, ok := s.agents.Load(k); ok && e.(agentAt).version == version {
		return e.(agentAt).ag, nil
	}
	if s.lister != nil && s.missed(k.tenant, version) {
		if ta, err := s.tenantAgents(ctx, k.tenant, version); err == nil {
			if ag, ok := ta.byID[k.agent]; ok {
				return ag, nil
			}
		}
		// Not listed (registered after the list was read) or the list
		// failed: the agent's own read says.
	}
	ag, err := s.cat.Agent(ctx, k.tenant, k.agent)
	if err != nil {
		return catalog.Agent{}, err
	}
	s.agents.Store(k, agentAt{version: version, ag: ag})
	return ag, nil
}

// missed counts one agent record of tenant read on its own at version and
// reports whether enough were to read the tenant's list instead.
func (s *Service) missed(tenant protocol.TenantID, version uint64) bool {
	m, _ := s.misses.Load(tenant)
	if m == nil || m.(*agentMisses).version != version {
		fresh := &agentMisses{version: version}
		if m == nil || m.(*agentMisses).version < version {
			s.misses.Store(tenant, fresh)
		}
		m = fresh
	}
	after := int64(BulkAfter)
	if e, ok := s.lists.Load(tenant); ok {
		after = max(after, int64(len(e.(*tenantAgents).byID)/8))
	}
	return m.(*agentMisses).n.Add(1) > after
}

// ShareAgents keeps agents, read at or after tenant's catalog version,
// as the tenant's list at that version (unless one at a later version is
// kept), for AnnouncerOptions.Listed: the announcer of a change reads
// every agent of the tenant to tell each, and the fetches the
// announcement brings then take their records from that list. Without it
// the first of them read their records one at a time (BulkAfter, or an
// eighth of the last list: 1,250 reads at 10,000 tills) and then the
// whole list again, a read of 100-270 ms some seconds after the change that
// held back the WAL's checkpoint while the fetches peaked. The list is
// not modified afterwards.
func (s *Service) ShareAgents(tenant protocol.TenantID, version uint64, agents []catalog.Agent) {
	ta := &tenantAgents{version: version, byID: make(map[protocol.AgentID]catalog.Agent, len(agents))}
	for _, a := range agents {
		if a.Tenant == tenant {
			ta.byID[a.ID] = a
		}
	}
	for {
		e, ok := s.lists.Load(tenant)
		if !ok {
			if _, loaded := s.lists.LoadOrStore(tenant, ta); !loaded {
				return
			}
			continue
		}
		if e.(*tenantAgents).version > version || s.lists.CompareAndSwap(tenant, e, ta) {
			return
		}
	}
}

// tenantAgents returns the tenant's agents at version, read once per
// version.
func (s *Service) tenantAgents(ctx context.Context, tenant protocol.TenantID, version uint64) (*tenantAgents, error) {
	if e, ok := s.lists.Load(tenant); ok && e.(*tenantAgents).version == version {
		return e.(*tenantAgents), nil
	}
	ch := s.listing.DoChan(fmt.Sprintf("%s\x00%d", tenant, version), func() (any, error) {
		if e, ok := s.lists.Load(tenant); ok && e.(*tenantAgents).version == version {
			return e, nil
		}
		ags, err := s.lister.Agents(context.WithoutCancel(ctx), tenant)
		if err != nil {
			return nil, err
		}
		ta := &tenantAgents{version: version, byID: make(map[protocol.AgentID]catalog.Agent, len(ags))}
		for _, a := range ags {
			ta.byID[a.ID] = a
		}
		if e, ok := s.lists.Load(tenant); !ok || e.(*tenantAgents).version < version {
			s.lists.Store(tenant, ta)
		}
		return ta, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*tenantAgents), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
