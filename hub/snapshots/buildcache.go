package snapshots

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// buildKey is what a store's catalog part depends on: the tills of one
// store asking for the same catalog versions share one build, whatever
// their code-use positions (the code states are laid over it per request,
// compose.go), so that after a catalog change one build per store serves
// every till of the store.
type buildKey struct {
	tenant protocol.TenantID
	// store is the store the part is for, or zero when the part is shared
	// by every store whose exclusion signature is exclusion (the campaigns
	// a snapshot leaves out for it, limitedCampaigns.exclusion): the
	// catalog filters a snapshot by the store only through those.
	store     snapshot.Store
	exclusion string
	since     uint64 // catalog version the delta starts from, 0 full
	version   uint64 // the catalog version it is built at
}

// built is a catalog part: the store's snapshot without code states
// (every listed code at Used 0, Spent 0), normalized, read only.
type built struct {
	snap *snapshot.Snapshot
	at   time.Time
	// idx maps a listed code's ID (its keyed hash) to its index in
	// snap.Codes; made once, on the first lookup (a full part, for the
	// codes a delta's states name but its catalog changes do not list).
	idxOnce sync.Once
	idx     map[protocol.CodeID]int
}

func (b *built) index() map[protocol.CodeID]int {
	b.idxOnce.Do(func() {
		b.idx = make(map[protocol.CodeID]int, len(b.snap.Codes))
		for i, c := range b.snap.Codes {
			b.idx[c.Code] = i
		}
	})
	return b.idx
}

// buildCache coalesces and caches the catalog parts per buildKey: a
// request takes a finished part without a lock (sync.Map), joins a build
// in flight for its key (singleflight), or starts one. Entries are dropped
// after maxAge (a part depends on the clock too: retired keys and expired
// token revocations drop out). Builds counts the builds made (tests and
// metrics).
type buildCache struct {
	maxAge time.Duration
	group  singleflight.Group
	sem    chan struct{} // bounds the builds running at once

	entries sync.Map // buildKey -> *built
	swept   atomic.Int64
	Builds  atomic.Int64
}

func newBuildCache(maxAge time.Duration, maxBuilds int) *buildCache {
	return &buildCache{maxAge: maxAge, sem: make(chan struct{}, max(maxBuilds, 1))}
}

// get returns the part for k, building it with build when no fresh one is
// cached. The result must not be modified.
func (b *buildCache) get(ctx context.Context, k buildKey, now time.Time, build func(context.Context, buildKey) (*snapshot.Snapshot, error)) (*built, error) {
	if e, ok := b.entries.Load(k); ok && now.Sub(e.(*built).at) < b.maxAge {
		return e.(*built), nil
	}
	name := fmt.Sprintf("%s\x00%v\x00%q\x00%d\x00%d", k.tenant, k.store, k.exclusion, k.since, k.version)
	ch := b.group.DoChan(name, func() (any, error) {
		// Detached from the first caller's request: the others wait on it.
		ctx := context.WithoutCancel(ctx)
		b.sem <- struct{}{}
		defer func() { <-b.sem }()
		if e, ok := b.entries.Load(k); ok && now.Sub(e.(*built).at) < b.maxAge {
			return e, nil // built while this one waited
		}
		s, err := build(ctx, k)
		if err != nil {
			return nil, err
		}
		b.Builds.Add(1)
		e := &built{snap: s, at: now}
		if b.maxAge > 0 {
			b.entries.Store(k, e)
		}
		if last := b.swept.Load(); now.UnixNano()-last >= int64(b.maxAge) && b.swept.CompareAndSwap(last, now.UnixNano()) {
			b.entries.Range(func(key, v any) bool {
				if now.Sub(v.(*built).at) >= b.maxAge {
					b.entries.CompareAndDelete(key, v)
				}
				return true
			})
		}
		return e, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*built), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
