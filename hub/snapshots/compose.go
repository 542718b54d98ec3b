package snapshots

import (
	"context"
	"slices"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// compose assembles the shared part of agent's snapshot (everything but
// the agent's own fields) for the request of bk.since with code-use
// position uses (hasUses: the agent sent one): the store's catalog part
// (one build per store and versions, buildCache) with the ledger's code
// states laid over it, read now. It equals what the catalog's
// SnapshotWith builds with those states (TestComposedSameAsCatalog): a
// delta since bk.since with the codes changed after uses when the ledger
// still has them within MaxCodeChanges, else a full one.
//
// The states are read after the caller read the agent's Reflected, so
// they are at or after its position: an agent's fact they count beyond
// Reflected the agent counts twice, the safe side (it never counts one
// the figures miss).
//
// pre, when not nil, is the ledger's read for the request (SnapshotReader),
// with the codes changed after uses when it asked for them.
func (s *Service) compose(ctx context.Context, agent protocol.AgentID, store snapshot.Store, bk buildKey, uses uint64, hasUses bool, pre *protocol.SnapshotRead, now time.Time) (*snapshot.Snapshot, error) {
	since, usesSince := bk.since, uint64(0)
	var states map[protocol.CodeID]protocol.CodeState
	var head uint64
	var err error
	fullStates := func() error {
		usesSince = 0
		states, head, err = s.led.CodeStatesAt(ctx, bk.tenant)
		return err
	}
	if s.led != nil {
		ok := false
		if since > 0 && hasUses {
			if pre != nil {
				states, head, ok = pre.States, pre.Codes, pre.StatesOK
			} else if states, head, ok, err = s.led.CodeChanges(ctx, bk.tenant, uses, s.opts.MaxCodeChanges); err != nil {
				return nil, err
			}
			usesSince = uses
		}
		if !ok {
			if since > 0 && hasUses {
				since = 0 // too far behind, or another ledger's position: start over
			}
			if err := fullStates(); err != nil {
				return nil, err
			}
		}
	}
	bk.since = since
	part, err := s.part(ctx, agent, bk, now)
	if err != nil {
		return nil, err
	}
	if part.snap.Since == 0 && usesSince != 0 {
		// The catalog started over: a full snapshot needs every state.
		if err := fullStates(); err != nil {
			return nil, err
		}
	}
	if part.snap.Version != bk.version {
		// The catalog moved since the version the part's key (and its
		// exclusion signature) was read at: build this one the
		// catalog's way.
		return s.direct(ctx, bk.tenant, agent, since, states, head, usesSince)
	}
	snap := *part.snap // shared lists are read only from here on
	snap.Store = store // a part may be shared by stores alike
	snap.Uses, snap.UsesSince = head, usesSince
	if part.snap.Since == 0 {
		snap.UsesSince = 0
	}
	if len(states) == 0 {
		return &snap, nil
	}
	// Lay the states over the listed codes, as the catalog's snapshotCode
	// does, on a copy of the list.
	byID := make(map[protocol.CodeID]protocol.CodeState, len(states))
	for key, st := range states {
		byID[snapshot.HashCode(snap.CodeKey, key)] = st
	}
	codes := slices.Clone(snap.Codes)
	for i := range codes {
		if st, ok := byID[codes[i].Code]; ok {
			setState(&codes[i], st)
			delete(byID, codes[i].Code)
		}
	}
	if snap.Since > 0 && len(byID) > 0 {
		// A delta also lists each code whose state changed, known to the
		// catalog, live and admitted at this store: what the store's full
		// part lists (token serials, revoked codes and codes of excluded
		// campaigns are not in it).
		full, err := s.part(ctx, agent, buildKey{tenant: bk.tenant, store: bk.store, exclusion: bk.exclusion, version: bk.version}, now)
		if err != nil {
			return nil, err
		}
		if full.snap.Version != snap.Version {
			// The catalog moved between the two builds.
			return s.direct(ctx, bk.tenant, agent, snap.Since, states, head, usesSince)
		}
		idx := full.index()
		for id, st := range byID {
			if i, ok := idx[id]; ok {
				c := full.snap.Codes[i]
				setState(&c, st)
				codes = append(codes, c)
			}
		}
	}
	snap.Codes = codes
	snap.Normalize()
	return &snap, nil
}

// direct builds agent's snapshot the catalog's way, with the states,
// unshared: when the catalog moved under a request.
func (s *Service) direct(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, since uint64, states map[protocol.CodeID]protocol.CodeState, head, usesSince uint64) (*snapshot.Snapshot, error) {
	snap, err := s.cat.SnapshotWith(ctx, tenant, agent, since, states)
	if err != nil {
		return nil, err
	}
	snap.Uses, snap.UsesSince = head, usesSince
	if snap.Since == 0 {
		snap.UsesSince = 0 // the catalog started over
	}
	snap.Normalize()
	return snap, nil
}

// setState sets a listed code's ledger figures (catalog.snapshotCode).
func setState(c *snapshot.Code, st protocol.CodeState) {
	c.Used = max(st.Used, 0)
	if c.Balance != nil {
		c.Spent = max(st.Spent, 0)
	}
}

// part returns the catalog part of bk's store, built with agent's record
// (the catalog filters by the agent's store) without code states.
func (s *Service) part(ctx context.Context, agent protocol.AgentID, bk buildKey, now time.Time) (*built, error) {
	return s.builds.get(ctx, bk, now, func(ctx context.Context, bk buildKey) (*snapshot.Snapshot, error) {
		snap, err := s.cat.SnapshotWith(ctx, bk.tenant, agent, bk.since, nil)
		if err != nil {
			return nil, err
		}
		snap.Normalize()
		return snap, nil
	})
}
