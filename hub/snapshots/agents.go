package snapshots

import (
	"context"
	"fmt"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/catalog"
)

// AgentLister lists a tenant's agents in one read (store/catalog). With
// it, the first snapshot request after a catalog change reads every
// agent's record of the tenant at once for the others: an announcement
// makes each of the tenant's tills fetch within seconds, and one read of
// ten thousand rows costs a fraction of ten thousand reads of one.
type AgentLister interface {
	Agents(ctx context.Context, tenant protocol.TenantID) ([]catalog.Agent, error)
}

// tenantAgents are a tenant's agents read at (or after) a catalog version.
type tenantAgents struct {
	version uint64
	byID    map[protocol.AgentID]catalog.Agent
}

// agent returns the agent's record, read again only when the tenant's
// catalog version moved from version (a change to it moves the version):
// from the tenant's list at the version when the catalog lists agents
// (one read per tenant and version, shared by concurrent requests), else
// on its own.
func (s *Service) agent(ctx context.Context, k snapKey, version uint64) (catalog.Agent, error) {
	if s.lister != nil {
		if ta, err := s.tenantAgents(ctx, k.tenant, version); err == nil {
			if ag, ok := ta.byID[k.agent]; ok {
				return ag, nil
			}
		}
		// Not listed (registered after the list was read) or the list
		// failed: the agent's own read says.
	}
	if e, ok := s.agents.Load(k); ok && e.(agentAt).version == version {
		return e.(agentAt).ag, nil
	}
	ag, err := s.cat.Agent(ctx, k.tenant, k.agent)
	if err != nil {
		return catalog.Agent{}, err
	}
	s.agents.Store(k, agentAt{version: version, ag: ag})
	return ag, nil
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
