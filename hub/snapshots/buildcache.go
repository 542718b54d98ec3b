package snapshots

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// buildKey is what a built snapshot depends on besides the agent's own
// fields (agent ID, envelope, allowances), which each request fills in:
// the tills of one store asking for the same versions share one build.
type buildKey struct {
	tenant  protocol.TenantID
	store   snapshot.Store
	since   uint64 // catalog version the delta starts from, 0 full
	uses    uint64 // the agent's code-use position
	hasUses bool   // the agent sent one (else a delta lists every used code)
	version uint64 // the catalog version it is built at
}

// buildCache coalesces and caches snapshot builds per buildKey: a
// request joins a build in flight for its key (singleflight), or takes a
// finished one built at the ledger's current code-use position (head).
// Entries are dropped after maxAge. A build joined in flight may be a
// little behind the position the request saw; it says so itself
// (Snapshot.Uses), and the agent's next delta starts from there, so
// nothing is lost.
type buildCache struct {
	maxAge time.Duration
	group  singleflight.Group

	mu      sync.Mutex
	entries map[buildKey]builtEntry
	swept   time.Time
}

type builtEntry struct {
	snap *snapshot.Snapshot // read only
	at   time.Time
}

func newBuildCache(maxAge time.Duration) *buildCache {
	return &buildCache{maxAge: maxAge, entries: map[buildKey]builtEntry{}}
}

// get returns the shared snapshot for k, building it with build when no
// fresh one is cached. The result must not be modified.
func (b *buildCache) get(ctx context.Context, k buildKey, head uint64, now time.Time, build func(context.Context, buildKey) (*snapshot.Snapshot, error)) (*snapshot.Snapshot, error) {
	b.mu.Lock()
	if e, ok := b.entries[k]; ok && e.snap.Uses == head && now.Sub(e.at) < b.maxAge {
		b.mu.Unlock()
		return e.snap, nil
	}
	b.mu.Unlock()
	name := fmt.Sprintf("%s\x00%v\x00%d\x00%d\x00%v\x00%d", k.tenant, k.store, k.since, k.uses, k.hasUses, k.version)
	v, err, _ := b.group.Do(name, func() (any, error) {
		// Detached from the first caller's request: the others wait on it.
		s, err := build(context.WithoutCancel(ctx), k)
		if err != nil {
			return nil, err
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if now.Sub(b.swept) >= b.maxAge {
			for key, e := range b.entries {
				if now.Sub(e.at) >= b.maxAge {
					delete(b.entries, key)
				}
			}
			b.swept = now
		}
		if b.maxAge > 0 {
			b.entries[k] = builtEntry{snap: s, at: now}
		}
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*snapshot.Snapshot), nil
}
