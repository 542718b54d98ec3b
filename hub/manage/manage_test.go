package manage_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// events records what the service reports.
type events struct {
	mu      sync.Mutex
	changes []uint64
	stops   []protocol.CampaignID
}

func (e *events) onChange(_ protocol.TenantID, v uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.changes = append(e.changes, v)
}

func (e *events) onStop(_ protocol.TenantID, c protocol.CampaignID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stops = append(e.stops, c)
}

// mustService opens the real stores on one SQLite file, as the hub does,
// and the service over them.
func mustService(tb testing.TB, withLedger bool) (*manage.Service, *events) {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(tb.TempDir(), "hub.db"), store.Options{Sync: store.SyncNormal})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	cat, err := catalog.New(ctx, db)
	if err != nil {
		tb.Fatal(err)
	}
	cat.Now = func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC) }
	ev := &events{}
	opts := manage.Options{OnChange: ev.onChange, OnStop: ev.onStop}
	if withLedger {
		led, err := ledger.New(ctx, db, ledger.Options{Facts: cat, Rules: cat})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { led.Close() })
		opts.Ledger = led
	}
	s, err := manage.New(cat, opts)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := s.CreateTenant(ctx, manage.System, manage.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}, ""); err != nil {
		tb.Fatal(err)
	}
	return s, ev
}

const campaignDoc = `{"schema":1,"id":"summer","tenant":"acme","status":"active","currency":"EUR","limits":{"max_redemptions":100},"reward":{"kind":"percent_off","percent_bp":1000}}`

// TestChangesReported: every change of a tenant's catalog is reported with
// its new version, whichever adapter made it; the kill switch also asks for
// a recall; reads report nothing.
func TestChangesReported(t *testing.T) {
	ctx := context.Background()
	s, ev := mustService(t, true)
	if _, _, err := s.RegisterAgent(ctx, manage.System, manage.Agent{Tenant: "acme", ID: "till-1", Store: snapshot.Store{ID: "s1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCampaign(ctx, manage.System, "acme", []byte(campaignDoc)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Campaign(ctx, "acme", "summer"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StopCampaign(ctx, manage.System, "acme", "summer"); err != nil {
		t.Fatal(err)
	}
	v, err := s.Version(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if got, want := len(ev.changes), 3; got != want {
		t.Fatalf("changes reported = %v, want %d", ev.changes, want)
	}
	if got := ev.changes[len(ev.changes)-1]; got != v {
		t.Errorf("last reported version = %d, want %d", got, v)
	}
	if got := ev.stops; len(got) != 1 || got[0] != "summer" {
		t.Errorf("stops = %v, want [summer]", got)
	}
}

// TestLedgerFigures: with the ledger a campaign carries its use and the
// ledger's lists answer; without it they answer unavailable.
func TestLedgerFigures(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		s, _ := mustService(t, true)
		if _, err := s.CreateCampaign(ctx, manage.System, "acme", []byte(campaignDoc)); err != nil {
			t.Fatal(err)
		}
		v, err := s.Campaign(ctx, "acme", "summer")
		if err != nil {
			t.Fatal(err)
		}
		if v.Used == nil || v.Used.Count != 0 {
			t.Errorf("Used = %+v, want a zero balance", v.Used)
		}
		if _, err := s.Conflicts(ctx, "acme", 0, 0); err != nil {
			t.Error(err)
		}
		if _, err := s.Conflicts(ctx, "nobody", 0, 0); !errors.Is(err, protocol.NewError(protocol.CodeNotFound)) {
			t.Errorf("conflicts of an unknown tenant: %v, want not_found", err)
		}
	})
	t.Run("ErrUnavailable", func(t *testing.T) {
		s, _ := mustService(t, false)
		if _, err := s.CreateCampaign(ctx, manage.System, "acme", []byte(campaignDoc)); err != nil {
			t.Fatal(err)
		}
		v, err := s.Campaign(ctx, "acme", "summer")
		if err != nil {
			t.Fatal(err)
		}
		if v.Used != nil {
			t.Errorf("Used = %+v without a ledger, want nil", v.Used)
		}
		if _, err := s.VerifyLedger(ctx); !errors.Is(err, protocol.NewError(protocol.CodeUnavailable)) {
			t.Errorf("VerifyLedger without a ledger: %v, want unavailable", err)
		}
	})
}

// TestPlatformKeyRefused: a tenant never makes a platform key.
func TestPlatformKeyRefused(t *testing.T) {
	s, _ := mustService(t, false)
	_, _, err := s.CreateKey(context.Background(), manage.System, "acme", manage.RolePlatform, "root")
	if got := protocol.ErrorCode(err); got != protocol.CodeInvalidInput {
		t.Fatalf("code = %q, want invalid_input", got)
	}
}

// TestTimeOnePrecision: a time answered on a write is the time a later read
// answers, to the microsecond, in UTC.
func TestTimeOnePrecision(t *testing.T) {
	ctx := context.Background()
	s, _ := mustService(t, false)
	cp, err := s.CreateCampaign(ctx, manage.System, "acme", []byte(campaignDoc))
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Campaign(ctx, "acme", "summer")
	if err != nil {
		t.Fatal(err)
	}
	if !cp.CreatedAt.Equal(v.Campaign.CreatedAt) || cp.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at on write %v, on read %v", cp.CreatedAt, v.Campaign.CreatedAt)
	}
	if cp.CreatedAt.Nanosecond()%1000 != 0 {
		t.Errorf("created_at %v is finer than a microsecond", cp.CreatedAt)
	}
}
