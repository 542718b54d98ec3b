package api

import (
	"bufio"
	"context"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/hub/reports"
	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
)

// Reports (issue 13, Deliver 3): GET …/reports/{name} answers JSON or
// CSV (?format=csv or Accept: text/csv); GET …/exports/redemptions
// streams every fact of a range as CSV, rows written as they are read.

// exportFlushRows is how many export rows are buffered before they are
// sent: the client sees rows while the export runs.
const exportFlushRows = 1000

// exportWriteIdle is how long one flush of the export may wait for the
// client. The server's WriteTimeout is set once per response, which would
// cut every export longer than it (a million rows on a loaded machine);
// each flush moves the deadline on instead, so that only a client that
// stops reading is cut.
const exportWriteIdle = time.Minute

func (s *Server) reportsService() (*reports.Service, error) {
	if s.reports == nil {
		return nil, protocol.Errorf(protocol.CodeUnavailable, "this hub keeps no reports")
	}
	return s.reports, nil
}

// wantsCSV reads ?format= (json or csv) and, without it, the Accept header.
func wantsCSV(c *fiber.Ctx) (bool, error) {
	switch f := c.Query("format"); f {
	case "csv":
		return true, nil
	case "json":
		return false, nil
	case "":
		return strings.Contains(c.Get(fiber.HeaderAccept), "text/csv"), nil
	default:
		return false, protocol.FieldError("format", "format must be json or csv")
	}
}

func (s *Server) report(c *fiber.Ctx, _ manage.Key) error {
	svc, err := s.reportsService()
	if err != nil {
		return err
	}
	csvOut, err := wantsCSV(c)
	if err != nil {
		return err
	}
	res, err := svc.Report(c.UserContext(), tenantOf(c), c.Params("name"), c.Query("from"), c.Query("to"), c.Query("by"), c.Query("group"))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	if !csvOut {
		return c.JSON(res)
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+res.Report+`.csv"`)
	return res.WriteCSV(c.Response().BodyWriter())
}

func (s *Server) exportRedemptions(c *fiber.Ctx, k manage.Key) error {
	svc, err := s.reportsService()
	if err != nil {
		return err
	}
	if f := c.Query("format"); f != "" && f != "csv" {
		return protocol.FieldError("format", "the export is CSV only")
	}
	tenant := tenantOf(c)
	q, err := svc.ExportRange(c.UserContext(), tenant, c.Query("from"), c.Query("to"))
	if err != nil {
		return err
	}
	mask := !seesCodes(k)
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="redemptions-`+c.Query("from")+`-`+c.Query("to")+`.csv"`)
	log := s.cfg.Logger
	conn := c.Context().Conn()
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		// The handler has returned: the request's context is gone, and
		// a client that goes away shows as a failed write.
		x, err := reports.NewExportWriter(w)
		if err != nil {
			return
		}
		if mask {
			x.Mask = manage.MaskCode
		}
		n := 0
		err = svc.ExportStream(context.Background(), tenant, q, func(r *pledger.ExportRow) error {
			if err := x.Write(r); err != nil {
				return err
			}
			if n++; n%exportFlushRows == 0 {
				if err := x.Flush(); err != nil {
					return err
				}
				if conn != nil {
					_ = conn.SetWriteDeadline(time.Now().Add(exportWriteIdle))
				}
				return w.Flush()
			}
			return nil
		})
		if err == nil {
			err = x.Flush()
		}
		if err != nil {
			log.Warn("api: export stopped", logKeyErr, err, logKeyTenant, string(tenant), logKeyRows, n)
		}
	})
	return nil
}

type timeZoneBody struct {
	TimeZone string `json:"time_zone"`
}

func (s *Server) getTimeZone(c *fiber.Ctx, _ manage.Key) error {
	svc, err := s.reportsService()
	if err != nil {
		return err
	}
	tz, err := svc.TimeZone(c.UserContext(), tenantOf(c))
	if err != nil {
		return err
	}
	return c.JSON(timeZoneBody{tz})
}

func (s *Server) setTimeZone(c *fiber.Ctx, k manage.Key) error {
	svc, err := s.reportsService()
	if err != nil {
		return err
	}
	var req timeZoneBody
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	tz, err := svc.SetTimeZone(c.UserContext(), k.Actor(), tenantOf(c), req.TimeZone)
	if err != nil {
		return err
	}
	return c.JSON(timeZoneBody{tz})
}
