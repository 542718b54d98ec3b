package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// Agent routes: the agent authenticates with its own key (role agent); the
// tenant and agent come from the key, never from the request.

// ContentTypeCBOR is the media type of snapshots.
const ContentTypeCBOR = "application/cbor"

// agentSnapshot serves GET /v1/agent/snapshot?since=V&uses=U: a full
// snapshot (since absent or 0) or the delta after catalog version V, as
// CBOR (JSON with Accept: application/json, for people).
//
// U is the agent's code-use position (snapshot.Snapshot.Uses): a delta
// then lists only the codes whose uses or spending changed after it
// (ledger.CodeChanges, an index range), so it costs the changes since, not
// every code ever used. An agent more than MaxCodeChanges changes behind,
// or at a position the ledger does not know, gets a full snapshot. Without
// U a delta lists every used code, as before the sequence.
//
// Builds are shared by the agents of one store (buildCache): concurrent
// requests for the same store, versions and positions build once, and a
// build is reused while the ledger's code-use position has not moved. The ETag covers everything but the
// generation time; the last ETag of each agent is remembered with the
// state it was computed at (catalog version, code-use position,
// allowances), so a poll that changes nothing costs a version lookup, the
// allowance queries and one position lookup, and answers 304.
func (s *Server) agentSnapshot(c *fiber.Ctx, k catalog.Key) error {
	since, err := queryInt(c, "since")
	if err != nil {
		return err
	}
	uses, err := queryInt(c, "uses")
	if err != nil {
		return err
	}
	hasUses := c.Query("uses") != ""
	ctx := c.UserContext()
	comp, err := s.rulesFor(ctx, k.Tenant)
	if err != nil {
		return err
	}
	eff := uint64(since)
	if eff > comp.version {
		eff = 0 // as the catalog does: an unknown future version gets a full snapshot
	}
	var allow []protocol.Allowance
	var head uint64
	led, _ := s.cfg.Ledger.(snapshotLedger)
	if s.cfg.Ledger != nil {
		if allow, err = s.allowances(c, k, comp); err != nil {
			return err
		}
	}
	var refl *snapshot.Reflected
	if rl, ok := s.cfg.Ledger.(reflectedLedger); ok && led != nil {
		// The code-use position and which of this agent's facts the code
		// states there count, read together (ledger.Reflected).
		refl = &snapshot.Reflected{}
		if head, refl.Watermark, refl.Beyond, err = rl.Reflected(ctx, k.Tenant, k.Agent); err != nil {
			return err
		}
	} else if led != nil {
		if head, err = led.CodeHead(ctx, k.Tenant); err != nil {
			return err
		}
	}
	inm := c.Get(fiber.HeaderIfNoneMatch)
	ck := snapKey{k.Tenant, k.Agent}
	now := s.cfg.Now()
	s.mu.Lock()
	ent, hit := s.snaps[ck]
	s.mu.Unlock()
	// The agent holds the body of ent.etag, so it is at ent's state.
	hit = hit && ent.version == comp.version && ent.head == head && now.Before(ent.validUntil) && slices.Equal(ent.allow, allow)
	if hit && inm != "" && etagMatch(inm, ent.etag) {
		c.Set(fiber.HeaderETag, ent.etag)
		c.Set(fiber.HeaderCacheControl, "private, no-cache")
		c.Set("X-Snapshot-Version", itoa(ent.version))
		return c.SendStatus(http.StatusNotModified)
	}
	ag, err := s.cat.Agent(ctx, k.Tenant, k.Agent)
	if err != nil {
		return err
	}
	bk := buildKey{tenant: k.Tenant, store: ag.Store, since: eff, uses: uint64(uses), hasUses: hasUses, version: comp.version}
	if eff == 0 {
		bk.uses, bk.hasUses = 0, false // a full snapshot is the same for every position
	}
	shared, err := s.builds.get(ctx, bk, head, now,
		func(ctx context.Context, bk buildKey) (*snapshot.Snapshot, error) {
			return s.buildSnapshot(ctx, led, k.Agent, bk)
		})
	if err != nil {
		return err
	}
	if refl != nil && shared.Uses < head {
		// A build joined in flight, read before this agent's watermark:
		// its figures may miss facts the watermark says they count.
		if shared, err = s.buildSnapshot(ctx, led, k.Agent, bk); err != nil {
			return err
		}
	}
	snap := *shared // shared lists are read only from here on
	snap.Agent, snap.Envelope, snap.Allowances, snap.Reflected = k.Agent, ag.Envelope, allow, refl
	generated := snap.GeneratedAt
	snap.GeneratedAt = 0
	body, err := snapshot.Encode(&snap)
	if err != nil {
		return err
	}
	etag := snapshot.ETag(body)
	if snap.Version == comp.version {
		s.mu.Lock()
		s.snaps[ck] = snapEntry{version: snap.Version, head: snap.Uses, allow: snap.Allowances, etag: etag, validUntil: keysValidUntil(&snap, now)}
		s.mu.Unlock()
	}
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderCacheControl, "private, no-cache")
	c.Set("X-Snapshot-Version", itoa(snap.Version))
	if inm != "" && etagMatch(inm, etag) {
		return c.SendStatus(http.StatusNotModified)
	}
	snap.GeneratedAt = generated
	if strings.Contains(c.Get(fiber.HeaderAccept), fiber.MIMEApplicationJSON) {
		return c.JSON(snap)
	}
	if body, err = snapshot.Encode(&snap); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, ContentTypeCBOR)
	return c.Send(body)
}

// snapshotLedger is what snapshots need of the ledger beyond Ledger: the
// code-use sequence (store/ledger/snapshotq.go). A ledger without it gets
// snapshots without code states.
type snapshotLedger interface {
	CodeHead(ctx context.Context, tenant protocol.TenantID) (uint64, error)
	CodeStatesAt(ctx context.Context, tenant protocol.TenantID) (map[protocol.CodeID]ledger.CodeState, uint64, error)
	CodeChanges(ctx context.Context, tenant protocol.TenantID, after uint64, limit int) (map[protocol.CodeID]ledger.CodeState, uint64, bool, error)
}

var _ snapshotLedger = (*ledger.Ledger)(nil)

// reflectedLedger tells which of an agent's facts the code states at a
// code-use position count (store/ledger/reflected.go).
type reflectedLedger interface {
	Reflected(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID) (head, watermark uint64, beyond []uint64, err error)
}

var _ reflectedLedger = (*ledger.Ledger)(nil)

// buildSnapshot builds the snapshot of bk's store (with agent's record:
// the catalog filters by the agent's store) at the catalog's current
// version: a delta since bk.since with the codes changed after bk.uses
// when the ledger still has them within MaxCodeChanges, else a full one.
// Its lists are normalized, so that concurrent encodes only read them.
func (s *Server) buildSnapshot(ctx context.Context, led snapshotLedger, agent protocol.AgentID, bk buildKey) (*snapshot.Snapshot, error) {
	since, usesSince := bk.since, uint64(0)
	var states map[protocol.CodeID]ledger.CodeState
	var head uint64
	var err error
	if led != nil {
		ok := false
		if since > 0 && bk.hasUses {
			states, head, ok, err = led.CodeChanges(ctx, bk.tenant, bk.uses, s.cfg.MaxCodeChanges)
			if err != nil {
				return nil, err
			}
			usesSince = bk.uses
		}
		if !ok {
			if since > 0 && bk.hasUses {
				since = 0 // too far behind, or another ledger's position: start over
			}
			usesSince = 0
			if states, head, err = led.CodeStatesAt(ctx, bk.tenant); err != nil {
				return nil, err
			}
		}
	}
	snap, err := s.cat.SnapshotWith(ctx, bk.tenant, agent, since, states)
	if err != nil {
		return nil, err
	}
	if snap.Since == 0 {
		usesSince = 0 // the catalog started over
	}
	snap.Uses, snap.UsesSince = head, usesSince
	snap.Normalize()
	return snap, nil
}

// snapKey and snapEntry remember each agent's last snapshot ETag.
type snapKey struct {
	tenant protocol.TenantID
	agent  protocol.AgentID
}

type snapEntry struct {
	version    uint64
	head       uint64 // the code-use position of the body
	allow      []protocol.Allowance
	etag       string
	validUntil time.Time // a retired key drops out of the snapshot then
}

// maxETagAge bounds how long a remembered ETag is trusted without a
// rebuild, whatever the keys say.
const maxETagAge = 10 * time.Minute

func keysValidUntil(snap *snapshot.Snapshot, now time.Time) time.Time {
	until := now.Add(maxETagAge)
	for _, k := range snap.Keys {
		if k.NotAfter != 0 {
			if t := time.UnixMicro(k.NotAfter); t.Before(until) {
				until = t
			}
		}
	}
	return until
}

func itoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}

// etagMatch implements If-None-Match: a list of tags or "*"; weak
// comparison, as RFC 9110 asks for If-None-Match.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
