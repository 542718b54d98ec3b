package api

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// Agent routes: the agent authenticates with its own key (role agent); the
// tenant and agent come from the key, never from the request.

// ContentTypeCBOR is the media type of snapshots.
const ContentTypeCBOR = "application/cbor"

// agentSnapshot serves GET /v1/agent/snapshot?since=V: a full snapshot
// (since absent or 0) or the delta after version V, as CBOR (JSON with
// Accept: application/json, for people). The ETag covers everything but
// the generation time, so an agent polling with If-None-Match gets 304
// until its catalog, keys, envelope, allowances or the ledger's code uses
// and gift card spending change. The last ETag of each agent is remembered
// with what it was computed from (catalog version, since, allowances, the
// ledger's journal mark), so a poll that changes nothing costs a version
// lookup, the allowance queries and one journal lookup, not a snapshot
// build. The mark covers every tenant: a busy ledger means more rebuilds,
// but the ETag is of the body, so an agent whose codes did not change still
// gets 304.
func (s *Server) agentSnapshot(c *fiber.Ctx, k catalog.Key) error {
	since, err := queryInt(c, "since")
	if err != nil {
		return err
	}
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
	var mark int64
	if s.cfg.Ledger != nil {
		if allow, err = s.allowances(c, k, comp); err != nil {
			return err
		}
		if mark, err = s.cfg.Ledger.JournalMark(ctx); err != nil {
			return err
		}
	}
	inm := c.Get(fiber.HeaderIfNoneMatch)
	ck := snapKey{k.Tenant, k.Agent}
	now := s.cfg.Now()
	s.mu.Lock()
	ent, hit := s.snaps[ck]
	s.mu.Unlock()
	hit = hit && ent.since == eff && ent.version == comp.version && ent.mark == mark && now.Before(ent.validUntil) && slices.Equal(ent.allow, allow)
	if hit && inm != "" && etagMatch(inm, ent.etag) {
		c.Set(fiber.HeaderETag, ent.etag)
		c.Set(fiber.HeaderCacheControl, "private, no-cache")
		c.Set("X-Snapshot-Version", itoa(ent.version))
		return c.SendStatus(http.StatusNotModified)
	}
	var states map[protocol.CodeID]ledger.CodeState
	if s.cfg.Ledger != nil {
		if states, err = s.cfg.Ledger.CodeStates(ctx, k.Tenant); err != nil {
			return err
		}
	}
	snap, err := s.cat.SnapshotWith(ctx, k.Tenant, k.Agent, eff, states)
	if err != nil {
		return err
	}
	snap.Allowances = allow
	generated := snap.GeneratedAt
	snap.GeneratedAt = 0
	body, err := snapshot.Encode(snap)
	if err != nil {
		return err
	}
	etag := snapshot.ETag(body)
	if snap.Version == comp.version {
		s.mu.Lock()
		s.snaps[ck] = snapEntry{since: eff, version: snap.Version, mark: mark, allow: snap.Allowances, etag: etag, validUntil: keysValidUntil(snap, now)}
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
	if body, err = snapshot.Encode(snap); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, ContentTypeCBOR)
	return c.Send(body)
}

// snapKey and snapEntry remember each agent's last snapshot ETag.
type snapKey struct {
	tenant protocol.TenantID
	agent  protocol.AgentID
}

type snapEntry struct {
	since, version uint64
	mark           int64 // ledger.JournalMark when built
	allow          []protocol.Allowance
	etag           string
	validUntil     time.Time // a retired key drops out of the snapshot then
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

// allowances lists what the agent holds of every active limited campaign,
// as the hub sees it (granted − returned − used and synced), by campaign.
func (s *Server) allowances(c *fiber.Ctx, k catalog.Key, comp compiled) ([]protocol.Allowance, error) {
	ids := make([]protocol.CampaignID, 0, len(comp.camps))
	for id := range comp.camps {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []protocol.Allowance
	for _, id := range ids {
		cp := comp.camps[id]
		l := cp.Rules.Limits
		if cp.Rules.Status != rules.StatusActive || (l.MaxRedemptions == 0 && l.MaxDiscount == 0) {
			continue
		}
		n, amt, err := s.cfg.Ledger.Outstanding(c.UserContext(), k.Tenant, k.Agent, id)
		if err != nil {
			return nil, err
		}
		a := protocol.Allowance{Tenant: k.Tenant, Agent: k.Agent, Campaign: id, Count: max(n, 0), Amount: max(amt, 0), Currency: cp.Rules.Currency}
		if l.MaxRedemptions == 0 {
			a.Count = -1
		}
		if l.MaxDiscount == 0 {
			a.Amount = -1
		}
		if a.Count == 0 || a.Amount == 0 {
			continue // nothing to redeem offline
		}
		out = append(out, a)
	}
	return out, nil
}

type allowanceRequest struct {
	Campaign protocol.CampaignID `json:"campaign"`
}

// requestAllowance tops up the agent's allowance of one campaign through
// the ledger's escrow.
func (s *Server) requestAllowance(c *fiber.Ctx, k catalog.Key) error {
	if err := s.needLedger(); err != nil {
		return err
	}
	var req allowanceRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := protocol.ValidateID("campaign", string(req.Campaign)); err != nil {
		return fieldOf("campaign", err)
	}
	a, err := s.cfg.Ledger.GrantAllowance(c.UserContext(), k.Tenant, k.Agent, req.Campaign)
	if err != nil {
		return err
	}
	return c.JSON(a)
}

type allowanceReturn struct {
	Campaign protocol.CampaignID `json:"campaign"`
	Count    int64               `json:"count"`
	Amount   int64               `json:"amount"`
}

// returnAllowance gives unused allowance back to the campaign's pool.
func (s *Server) returnAllowance(c *fiber.Ctx, k catalog.Key) error {
	if err := s.needLedger(); err != nil {
		return err
	}
	var req allowanceReturn
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := protocol.ValidateID("campaign", string(req.Campaign)); err != nil {
		return fieldOf("campaign", err)
	}
	if req.Count < 0 || req.Amount < 0 {
		return protocol.FieldError("count", "count and amount must not be negative")
	}
	a, err := s.cfg.Ledger.ReturnAllowance(c.UserContext(), protocol.Allowance{Tenant: k.Tenant, Agent: k.Agent, Campaign: req.Campaign, Count: req.Count, Amount: req.Amount})
	if err != nil {
		return err
	}
	return c.JSON(a)
}
