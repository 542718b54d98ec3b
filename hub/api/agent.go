package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/wire"
)

// Agent routes: the agent authenticates with its own key (role agent); the
// tenant and agent come from the key, never from the request.

// ContentTypeCBOR is the media type of snapshots.
const ContentTypeCBOR = wire.ContentTypeCBOR

// agentSnapshot serves GET /v1/agent/snapshot?since=V&uses=U&customers=C: a full
// snapshot (since absent or 0) or the delta after catalog version V, as
// CBOR (JSON with Accept: application/json, for people). U is the agent's
// code-use position, C its customer-state position. The Snapshots service assembles it (hub/snapshots);
// this adapter reads the query and If-None-Match and writes ETag,
// Cache-Control and X-Snapshot-Version.
func (s *Server) agentSnapshot(c *fiber.Ctx, k manage.Key) error {
	since, err := queryInt(c, wire.QuerySince)
	if err != nil {
		return err
	}
	uses, err := queryInt(c, wire.QueryUses)
	if err != nil {
		return err
	}
	customers, err := queryInt(c, wire.QueryCustomers)
	if err != nil {
		return err
	}
	ans, err := s.snap.Snapshot(c.UserContext(), snapshots.Request{Tenant: k.Tenant, Agent: k.Agent, Since: uint64(since),
		Uses: uint64(uses), HasUses: c.Query(wire.QueryUses) != "", IfNoneMatch: c.Get(fiber.HeaderIfNoneMatch),
		Customers: uint64(customers), HasCustomers: c.Query(wire.QueryCustomers) != ""})
	if err != nil {
		if protocol.ErrorCode(err) == protocol.CodeUnavailable {
			c.Set(fiber.HeaderRetryAfter, "2") // the turns are taken: back off
		}
		return err
	}
	c.Set(fiber.HeaderETag, ans.ETag)
	c.Set(fiber.HeaderCacheControl, "private, no-cache")
	c.Set(wire.HeaderSnapshotVersion, strconv.FormatUint(ans.Version, 10))
	if ans.NotModified {
		return c.SendStatus(http.StatusNotModified)
	}
	if strings.Contains(c.Get(fiber.HeaderAccept), fiber.MIMEApplicationJSON) {
		return c.JSON(ans.Snapshot)
	}
	body := ans.Body
	if body == nil {
		if body, err = snapshot.Encode(ans.Snapshot); err != nil {
			return err
		}
	}
	c.Set(fiber.HeaderContentType, ContentTypeCBOR)
	return c.Send(body)
}
