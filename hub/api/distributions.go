package api

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/distribute"
	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/protocol"
	pcatalog "github.com/punchcard/punchcard/protocol/catalog"
)

// --- distributions (issue 13) ---------------------------------------------

// exportTimeout bounds one streamed export (100,000 QR codes take about a
// minute on a small machine).
const exportTimeout = 30 * time.Minute

func (s *Server) distributionRoutes() []route {
	const t = "/v1/tenants/:tenant"
	return []route{
		{method: "PUT", path: t + "/distributions/:distribution", roles: rolesMarketer, changes: true, handler: s.putDistribution},
		{method: "GET", path: t + "/distributions/:distribution", roles: rolesRead, handler: s.getDistribution},
		{method: "GET", path: t + "/distributions/:distribution/codes.csv", roles: rolesMarketer, handler: s.distributionCSV},
		{method: "GET", path: t + "/distributions/:distribution/qr.zip", roles: rolesMarketer, handler: s.distributionZIP},
	}
}

func (s *Server) distributor() (*distribute.Service, error) {
	if s.cfg.Distribute == nil {
		return nil, protocol.Errorf(protocol.CodeUnavailable, "distributions are not available on this hub")
	}
	return s.cfg.Distribute, nil
}

// putDistribution takes a JSON DistributionRequest or, with Content-Type
// text/csv, a CSV list with a customer column and campaign, kind and
// (tokens) expires in the query.
func (s *Server) putDistribution(c *fiber.Ctx, k manage.Key) error {
	ds, err := s.distributor()
	if err != nil {
		return err
	}
	var req pcatalog.DistributionRequest
	mt, _, _ := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if mt == "text/csv" {
		if req.Customers, err = pcatalog.ParseRecipientsCSV(bytes.NewReader(c.Body())); err != nil {
			return err
		}
		req.Campaign, req.Kind = protocol.CampaignID(c.Query("campaign")), c.Query("kind")
		if e := c.Query("expires"); e != "" {
			if req.Expires, err = time.Parse(time.RFC3339, e); err != nil {
				return protocol.FieldError("expires", "expires must be an RFC 3339 time")
			}
		}
	} else if err := decodeJSON(c, &req); err != nil {
		return err
	}
	d, err := ds.Publish(c.UserContext(), k.Actor(), tenantOf(c), c.Params("distribution"), req)
	if err != nil {
		return err
	}
	st := http.StatusOK
	if d.State == pcatalog.DistributionRunning {
		st = http.StatusAccepted // GET it for the progress
	}
	return c.Status(st).JSON(d)
}

func (s *Server) getDistribution(c *fiber.Ctx, _ manage.Key) error {
	ds, err := s.distributor()
	if err != nil {
		return err
	}
	d, err := ds.Distribution(c.UserContext(), tenantOf(c), c.Params("distribution"))
	if err != nil {
		return err
	}
	return c.JSON(d)
}

func (s *Server) distributionCSV(c *fiber.Ctx, _ manage.Key) error {
	return s.export(c, "text/csv; charset=utf-8", "codes.csv", (*distribute.Service).WriteCSV)
}

func (s *Server) distributionZIP(c *fiber.Ctx, _ manage.Key) error {
	return s.export(c, "application/zip", "qr.zip", (*distribute.Service).WriteZIP)
}

// export checks that the distribution is done, then streams it: the body
// is written page by page as the client reads it (fasthttp's stream
// writer), never held whole. An error after the first byte can only cut
// the stream short (the client sees a truncated CSV or a ZIP without its
// central directory), and is logged.
func (s *Server) export(c *fiber.Ctx, contentType, name string, write func(*distribute.Service, context.Context, io.Writer, protocol.TenantID, string) error) error {
	ds, err := s.distributor()
	if err != nil {
		return err
	}
	tenant, id := tenantOf(c), c.Params("distribution")
	if err := ds.Check(c.UserContext(), tenant, id); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, contentType)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+id+"-"+name+`"`)
	log := s.cfg.Logger
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
		defer cancel()
		if err := write(ds, ctx, w, tenant, id); err != nil {
			log.Error("api: export distribution", slog.String("distribution", id), slog.Any(logKeyErr, err))
		}
		w.Flush()
	})
	return nil
}
