// Package distribute is the hub's distribution service (issue 13): it
// publishes a campaign's codes or tokens to a list of customers or to a
// segment's members, makes them in the background in chunks (one catalog
// transaction each, resumed after a restart), and exports them as a CSV
// for a mail merge or a ZIP of QR code PNGs with a CSV index for a print
// shop, streamed page by page so that memory stays flat at 100,000 codes.
package distribute

import (
	"archive/zip"
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/punchcard/punchcard/protocol"
	pcatalog "github.com/punchcard/punchcard/protocol/catalog"
	"github.com/punchcard/punchcard/protocol/segment"
	"github.com/punchcard/punchcard/qr"
)

// Catalog is what the service needs of the catalog store.
type Catalog interface {
	// PublishDistribution records the recipients (store/catalog).
	PublishDistribution(ctx context.Context, actor pcatalog.Actor, tenant protocol.TenantID, id string, req pcatalog.DistributionRequest) (pcatalog.Distribution, error)
	// FillDistribution makes the codes of up to limit waiting recipients
	// in one transaction; the version is the catalog's for the new codes.
	FillDistribution(ctx context.Context, actor pcatalog.Actor, tenant protocol.TenantID, id string, limit int) (pcatalog.Distribution, uint64, error)
	FailDistribution(ctx context.Context, tenant protocol.TenantID, id, reason string) error
	Distribution(ctx context.Context, tenant protocol.TenantID, id string) (pcatalog.Distribution, error)
	RunningDistributions(ctx context.Context) ([]pcatalog.DistributionRef, error)
	DistributionItems(ctx context.Context, tenant protocol.TenantID, id string, after int64, limit int) ([]pcatalog.DistributionItem, error)
	// Segment reads a segment's definition: not_found for an unknown one.
	Segment(ctx context.Context, tenant protocol.TenantID, id string) (segment.Definition, error)
}

// Members lists a segment's members as last computed (store/ledger).
type Members interface {
	SegmentMembers(ctx context.Context, tenant protocol.TenantID, seg string, after protocol.CustomerID, limit int) ([]protocol.CustomerID, error)
}

// Defaults.
const (
	DefaultChunk      = 500             // recipients per fill transaction
	DefaultRetryDelay = 2 * time.Second // after an internal error (a busy database)
	exportPage        = 1000            // items an export reads at a time
)

// Service publishes and exports distributions. Run makes the codes.
type Service struct {
	cat Catalog
	mem Members // nil: segments cannot be distributed to

	// QR draws the ZIP export's PNGs; default qr.NewEncoder().
	QR *qr.Encoder
	// Chunk is the recipients per fill transaction; default DefaultChunk.
	Chunk int
	// OnChange is told of each chunk's new catalog version, so that the
	// hub announces the new codes to the tills. It must not block.
	OnChange func(tenant protocol.TenantID, version uint64)
	Logger   *slog.Logger

	mu   sync.Mutex
	kick chan struct{}
	todo map[pcatalog.DistributionRef]bool
}

// New makes a service over the catalog and, for segments, the ledger's
// memberships (nil: publishing to a segment answers unavailable).
func New(cat Catalog, mem Members) *Service {
	return &Service{cat: cat, mem: mem, QR: qr.NewEncoder(), Chunk: DefaultChunk, Logger: slog.Default(),
		kick: make(chan struct{}, 1), todo: map[pcatalog.DistributionRef]bool{}}
}

// Log attribute keys.
const (
	logErr          = "err"
	logTenant       = "tenant"
	logDistribution = "distribution"
)

// Publish records distribution id (see catalog.PublishDistribution) for
// req's customers or for the current members of req.Segment, and queues
// the making of their codes; the answer's State and Done show the
// progress, which Distribution reads again. Reason codes: invalid_input,
// not_found (campaign, segment, customer), campaign_stopped, conflict,
// unavailable (a segment without the ledger).
func (s *Service) Publish(ctx context.Context, actor pcatalog.Actor, tenant protocol.TenantID, id string, req pcatalog.DistributionRequest) (pcatalog.Distribution, error) {
	if err := req.Validate(); err != nil {
		return pcatalog.Distribution{}, err
	}
	if req.Segment != "" {
		if s.mem == nil {
			return pcatalog.Distribution{}, protocol.Errorf(protocol.CodeUnavailable, "segments are not available on this hub")
		}
		if _, err := s.cat.Segment(ctx, tenant, req.Segment); err != nil {
			return pcatalog.Distribution{}, protocol.WithField("segment", err)
		}
		var after protocol.CustomerID
		for {
			page, err := s.mem.SegmentMembers(ctx, tenant, req.Segment, after, 5000)
			if err != nil {
				return pcatalog.Distribution{}, err
			}
			req.Customers = append(req.Customers, page...)
			if len(req.Customers) > pcatalog.MaxDistributionList {
				return pcatalog.Distribution{}, protocol.FieldError("segment", "segment %q has more than %d members", req.Segment, pcatalog.MaxDistributionList)
			}
			if len(page) < 5000 {
				break
			}
			after = page[len(page)-1]
		}
	}
	d, err := s.cat.PublishDistribution(ctx, actor, tenant, id, req)
	if err != nil {
		return d, err
	}
	if d.State == pcatalog.DistributionRunning {
		s.queue(pcatalog.DistributionRef{Tenant: tenant, ID: id})
	}
	return d, nil
}

// Distribution reads a distribution's record and progress. Reason codes:
// not_found.
func (s *Service) Distribution(ctx context.Context, tenant protocol.TenantID, id string) (pcatalog.Distribution, error) {
	return s.cat.Distribution(ctx, tenant, id)
}

func (s *Service) queue(r pcatalog.DistributionRef) {
	s.mu.Lock()
	s.todo[r] = true
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run makes the queued distributions' codes until ctx ends, starting with
// those a previous run left running (a restart or a crash).
func (s *Service) Run(ctx context.Context) {
	if refs, err := s.cat.RunningDistributions(ctx); err != nil {
		s.Logger.Error("distribute: running distributions", slog.Any(logErr, err))
	} else {
		for _, r := range refs {
			s.queue(r)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		for {
			s.mu.Lock()
			var r pcatalog.DistributionRef
			ok := false
			for k := range s.todo {
				r, ok = k, true
				delete(s.todo, k)
				break
			}
			s.mu.Unlock()
			if !ok {
				break
			}
			s.fill(ctx, r)
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// fill makes a distribution's codes chunk by chunk until it is done. A
// refusal (a public error: the campaign stopped, a customer erased) marks
// it failed; an internal error is logged and retried after
// DefaultRetryDelay.
func (s *Service) fill(ctx context.Context, r pcatalog.DistributionRef) {
	log := s.Logger.With(slog.String(logTenant, string(r.Tenant)), slog.String(logDistribution, r.ID))
	for ctx.Err() == nil {
		d, v, err := s.cat.FillDistribution(ctx, pcatalog.System, r.Tenant, r.ID, s.Chunk)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if pe := protocol.PublicError(err); pe.Code != protocol.CodeInternal {
				if ferr := s.cat.FailDistribution(ctx, r.Tenant, r.ID, pe.Message); ferr != nil {
					log.Error("distribute: fail", slog.Any(logErr, ferr))
				}
				log.Warn("distribute: stopped", slog.Any(logErr, err))
				return
			}
			log.Error("distribute: fill", slog.Any(logErr, err))
			select {
			case <-ctx.Done():
			case <-time.After(DefaultRetryDelay):
			}
			continue
		}
		if v != 0 && s.OnChange != nil {
			s.OnChange(r.Tenant, v)
		}
		if d.State != pcatalog.DistributionRunning {
			return
		}
	}
}

// ready returns the distribution when it is done: an export of a running
// or failed one would hand a print shop half a list. Reason codes:
// not_found, conflict.
func (s *Service) ready(ctx context.Context, tenant protocol.TenantID, id string) error {
	d, err := s.cat.Distribution(ctx, tenant, id)
	if err != nil {
		return err
	}
	if d.State != pcatalog.DistributionDone {
		return &protocol.Error{Code: protocol.CodeConflict, Message: fmt.Sprintf("distribution %q is %s (%d of %d made); export it when done", id, d.State, d.Done, d.Total)}
	}
	return nil
}

// each calls fn for every item of the distribution, a page at a time.
func (s *Service) each(ctx context.Context, tenant protocol.TenantID, id string, fn func(pcatalog.DistributionItem) error) error {
	return s.pages(ctx, tenant, id, func(page []pcatalog.DistributionItem) error {
		for _, it := range page {
			if err := fn(it); err != nil {
				return err
			}
		}
		return nil
	})
}

// pages calls fn for every page of exportPage items of the distribution.
func (s *Service) pages(ctx context.Context, tenant protocol.TenantID, id string, fn func([]pcatalog.DistributionItem) error) error {
	var after int64
	for {
		page, err := s.cat.DistributionItems(ctx, tenant, id, after, exportPage)
		if err != nil {
			return err
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		if len(page) < exportPage {
			return nil
		}
		after = page[len(page)-1].N
	}
}

// CSVHeader is the mail-merge CSV's header: n, the customer, the printed
// code or token serial, and the text to print or encode (the code itself,
// or the token).
var CSVHeader = []string{"n", "customer", "code", "text"}

// Check reports whether the distribution can be exported now, before a
// caller commits to a 200 and starts streaming. Reason codes: not_found,
// conflict (not done yet).
func (s *Service) Check(ctx context.Context, tenant protocol.TenantID, id string) error {
	return s.ready(ctx, tenant, id)
}

// WriteCSV streams a done distribution as CSV (CSVHeader), in its order.
// Reason codes: not_found, conflict.
func (s *Service) WriteCSV(ctx context.Context, w io.Writer, tenant protocol.TenantID, id string) error {
	if err := s.ready(ctx, tenant, id); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	rec := make([]string, 4)
	err := s.each(ctx, tenant, id, func(it pcatalog.DistributionItem) error {
		rec[0], rec[1], rec[2], rec[3] = strconv.FormatInt(it.N, 10), string(it.Customer), it.Code, it.Text
		return cw.Write(rec)
	})
	cw.Flush()
	return errors.Join(err, cw.Error())
}

// ZIPIndexHeader is the ZIP export's index.csv header: CSVHeader and the
// PNG's file name in the archive (empty, and no PNG, for a token whose
// customer was erased since: its text is blanked).
var ZIPIndexHeader = []string{"n", "customer", "code", "text", "file"}

// PNGName is the file name of item n's QR code in the ZIP export. Customer
// IDs are [A-Za-z0-9._-] only, and the number in front keeps "." and ".."
// from being names of their own.
func PNGName(it pcatalog.DistributionItem) string {
	return fmt.Sprintf("qr/%06d-%s.png", it.N, it.Customer)
}

// WriteZIP streams a done distribution as a ZIP archive: one QR code PNG
// per recipient (stored, PNG is compressed already) and then index.csv
// (ZIPIndexHeader). The index is written by a second pass over the
// items, so that nothing grows with the list. Reason codes: not_found,
// conflict.
func (s *Service) WriteZIP(ctx context.Context, w io.Writer, tenant protocol.TenantID, id string) error {
	if err := s.ready(ctx, tenant, id); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	zw := zip.NewWriter(bw)
	now := time.Now()
	// The QR codes of a page are drawn on every core (most of the
	// export's time), then written in order; a page's PNGs (about 1 KB
	// each) are all that is held.
	pngs := make([][]byte, exportPage)
	err := s.pages(ctx, tenant, id, func(page []pcatalog.DistributionItem) error {
		var g errgroup.Group
		g.SetLimit(runtime.GOMAXPROCS(0))
		for i, it := range page {
			if it.Text == "" {
				continue // a token of a customer since erased: no QR code
			}
			g.Go(func() error {
				png, err := s.QR.PNG(it.Text)
				if err != nil {
					return fmt.Errorf("distribute: qr of %d: %w", it.N, err)
				}
				pngs[i] = png
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		for i, it := range page {
			if it.Text == "" {
				continue
			}
			f, err := zw.CreateHeader(&zip.FileHeader{Name: PNGName(it), Method: zip.Store, Modified: now})
			if err != nil {
				return err
			}
			if _, err := f.Write(pngs[i]); err != nil {
				return err
			}
			pngs[i] = nil
		}
		return nil
	})
	if err != nil {
		return err
	}
	f, err := zw.CreateHeader(&zip.FileHeader{Name: "index.csv", Method: zip.Deflate, Modified: now})
	if err != nil {
		return err
	}
	cw := csv.NewWriter(f)
	if err := cw.Write(ZIPIndexHeader); err != nil {
		return err
	}
	rec := make([]string, 5)
	err = s.each(ctx, tenant, id, func(it pcatalog.DistributionItem) error {
		file := PNGName(it)
		if it.Text == "" {
			file = ""
		}
		rec[0], rec[1], rec[2], rec[3], rec[4] = strconv.FormatInt(it.N, 10), string(it.Customer), it.Code, it.Text, file
		return cw.Write(rec)
	})
	cw.Flush()
	if err := errors.Join(err, cw.Error()); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}
