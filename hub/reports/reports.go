// Package reports is the hub's reports service (issue 13, Deliver 3): per
// tenant, in the tenant's time zone, by day, week or month and by
// campaign, store or till, figures summed from the ledger's journal, so
// that they reconcile to Verify's balances to the cent; and a streamed
// export of the facts. It names storage only through its own interfaces
// (TestImportGraph).
package reports

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pcatalog "github.com/punchcard/punchcard/protocol/catalog"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
)

// Ledger is what the reports read of the ledger (store/ledger.Ledger).
type Ledger interface {
	// Activity sums facts per bucket, group and currency; invalid_input
	// for an unknown group or bad buckets.
	Activity(ctx context.Context, tenant protocol.TenantID, q pledger.ActivityQuery) ([]pledger.ActivityRow, error)
	ConflictsByKind(ctx context.Context, tenant protocol.TenantID, bs []pledger.Bucket) ([]pledger.ConflictRow, error)
	Balances(ctx context.Context, tenant protocol.TenantID, now time.Time) (pledger.Balances, error)
	// ExportFacts calls fn for every fact in [from, to), oldest first,
	// a page at a time.
	ExportFacts(ctx context.Context, tenant protocol.TenantID, from, to time.Time, fn func(*pledger.ExportRow) error) error
}

// Catalog is what the reports read of the catalog (store/catalog.Catalog).
type Catalog interface {
	// TenantTimeZone is the tenant's IANA zone ("UTC" when unset);
	// not_found for an unknown tenant.
	TenantTimeZone(ctx context.Context, tenant protocol.TenantID) (string, error)
	// SetTenantTimeZone: invalid_input on time_zone for an unknown zone.
	SetTenantTimeZone(ctx context.Context, actor pcatalog.Actor, tenant protocol.TenantID, tz string) (string, error)
	Campaigns(ctx context.Context, tenant protocol.TenantID, since uint64) ([]pcatalog.Campaign, error)
}

// Service answers the report routes.
type Service struct {
	led Ledger
	cat Catalog
	now func() time.Time
}

// New makes the service; now defaults to time.Now.
func New(led Ledger, cat Catalog, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{led: led, cat: cat, now: now}
}

// Location is the tenant's time zone and its name.
func (s *Service) Location(ctx context.Context, tenant protocol.TenantID) (*time.Location, string, error) {
	tz, err := s.cat.TenantTimeZone(ctx, tenant)
	if err != nil {
		return nil, "", err
	}
	loc, err := time.LoadLocation(tz)
	if err != nil { // a zone this hub's database lost: say so rather than report in UTC
		return nil, "", errors.Join(protocol.Errorf(protocol.CodeInternal, "time zone %q is not known to this hub", tz), err)
	}
	return loc, tz, nil
}

// TimeZone is the tenant's time zone name.
func (s *Service) TimeZone(ctx context.Context, tenant protocol.TenantID) (string, error) {
	return s.cat.TenantTimeZone(ctx, tenant)
}

// SetTimeZone sets the tenant's time zone.
func (s *Service) SetTimeZone(ctx context.Context, actor pcatalog.Actor, tenant protocol.TenantID, tz string) (string, error) {
	return s.cat.SetTenantTimeZone(ctx, actor, tenant, tz)
}

// Result is one report. Activity, Conflicts or Balances is set, after
// Report. Rows are sparse: a period without facts has no row.
type Result struct {
	Report    string        `json:"report"`
	Tenant    string        `json:"tenant"`
	TimeZone  string        `json:"time_zone"`
	From      string        `json:"from,omitempty"` // first local day
	To        string        `json:"to,omitempty"`   // last local day, included
	By        string        `json:"by,omitempty"`
	Group     string        `json:"group,omitempty"`
	At        time.Time     `json:"at"` // when the report was made
	Activity  []ActivityRow `json:"activity,omitempty"`
	Conflicts []ConflictRow `json:"conflicts,omitempty"`
	Balances  *Balances     `json:"balances,omitempty"`
	// Distribution is the distribution report's rows (distribution.go).
	Distribution []DistributionRow `json:"distribution,omitempty"`
	// AOV is the aov report's rows (aov.go).
	AOV []AOVRow `json:"aov,omitempty"`
}

// ActivityRow is one period's figures for one group key and currency.
// Money is in minor units. AOVWithReward is OrderValue / Redemptions
// (rounded down; 0 without redemptions): the average order value of the
// orders a reward was applied to.
type ActivityRow struct {
	Period        string            `json:"period"` // the period's first local day
	Start         time.Time         `json:"start"`
	End           time.Time         `json:"end"`
	Key           string            `json:"key"` // campaign, store or till ("" for facts without one)
	Currency      protocol.Currency `json:"currency"`
	Redemptions   int64             `json:"redemptions"`
	Rollbacks     int64             `json:"rollbacks"`
	Discount      int64             `json:"discount"`
	OrderValue    int64             `json:"order_value"`
	AOVWithReward int64             `json:"aov_with_reward"`
	Offline       int64             `json:"offline"`
	PointsNet     int64             `json:"points_net"`
	PointsExpired int64             `json:"points_expired"`
}

// ConflictRow is the number of conflicts of one kind in one period.
type ConflictRow struct {
	Period string    `json:"period"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Kind   string    `json:"kind"`
	Count  int64     `json:"count"`
}

// Balances are the tenant's liabilities now.
type Balances struct {
	GiftCards         []Amount      `json:"gift_card_liability"`
	PointsOutstanding int64         `json:"points_outstanding"`
	PointsExpiring30  int64         `json:"points_expiring_30d"`
	PointsExpiring90  int64         `json:"points_expiring_90d"`
	Budgets           []CampaignUse `json:"budgets"`
}

// Amount is a sum in one currency.
type Amount struct {
	Currency protocol.Currency `json:"currency"`
	Amount   int64             `json:"amount"`
}

// CampaignUse is a campaign's budget: its limits from the catalog (0: no
// limit), what the ledger recorded as used and what tills hold in escrow,
// and what is left (limit - used - escrowed; only with a limit).
type CampaignUse struct {
	Campaign       protocol.CampaignID `json:"campaign"`
	Currency       protocol.Currency   `json:"currency"`
	MaxRedemptions int64               `json:"max_redemptions"`
	MaxDiscount    int64               `json:"max_discount"`
	UsedCount      int64               `json:"used_count"`
	UsedDiscount   int64               `json:"used_discount"`
	EscrowedCount  int64               `json:"escrowed_count"`
	EscrowedAmount int64               `json:"escrowed_amount"`
	LeftCount      *int64              `json:"left_count,omitempty"`
	LeftDiscount   *int64              `json:"left_discount,omitempty"`
}

// Report parses a request (ParseQuery) in the tenant's time zone and
// runs it.
func (s *Service) Report(ctx context.Context, tenant protocol.TenantID, name, from, to, by, group string) (Result, error) {
	loc, tz, err := s.Location(ctx, tenant)
	if err != nil {
		return Result{}, err
	}
	q, err := ParseQuery(name, from, to, by, group, loc)
	if err != nil {
		return Result{}, err
	}
	res := Result{Report: q.Report, Tenant: string(tenant), TimeZone: tz, At: s.now().UTC()}
	if q.Report != ReportBalances {
		res.From, res.To, res.By, res.Group = q.From.Format(DateLayout), addDays(q.To, -1).Format(DateLayout), q.By, q.Group
	}
	if q.Report == ReportDistribution {
		res.By = "" // one row per campaign and distribution over the whole range
	}
	switch q.Report {
	case ReportActivity:
		rows, err := s.led.Activity(ctx, tenant, pledger.ActivityQuery{Buckets: q.Buckets, Group: q.Group})
		if err != nil {
			return Result{}, err
		}
		res.Activity = make([]ActivityRow, 0, len(rows))
		for _, r := range rows {
			if r.Bucket < 0 || r.Bucket >= len(q.Buckets) {
				return Result{}, fmt.Errorf("reports: the ledger answered period %d of %d", r.Bucket, len(q.Buckets))
			}
			b := q.Buckets[r.Bucket]
			a := ActivityRow{Period: q.Labels[r.Bucket], Start: b.Start, End: b.End, Key: r.Key, Currency: r.Currency,
				Redemptions: r.Redemptions, Rollbacks: r.Rollbacks, Discount: r.Discount, OrderValue: r.OrderValue,
				Offline: r.Offline, PointsNet: r.PointsNet, PointsExpired: r.PointsExpired}
			if r.Redemptions > 0 {
				a.AOVWithReward = r.OrderValue / r.Redemptions
			}
			res.Activity = append(res.Activity, a)
		}
	case ReportConflicts:
		rows, err := s.led.ConflictsByKind(ctx, tenant, q.Buckets)
		if err != nil {
			return Result{}, err
		}
		res.Conflicts = make([]ConflictRow, 0, len(rows))
		for _, r := range rows {
			if r.Bucket < 0 || r.Bucket >= len(q.Buckets) {
				return Result{}, fmt.Errorf("reports: the ledger answered period %d of %d", r.Bucket, len(q.Buckets))
			}
			b := q.Buckets[r.Bucket]
			res.Conflicts = append(res.Conflicts, ConflictRow{Period: q.Labels[r.Bucket], Start: b.Start, End: b.End, Kind: r.Kind, Count: r.Count})
		}
	case ReportDistribution:
		if res.Distribution, err = s.distribution(ctx, tenant, q); err != nil {
			return Result{}, err
		}
	case ReportAOV:
		if res.AOV, err = s.aov(ctx, tenant, q); err != nil {
			return Result{}, err
		}
	case ReportBalances:
		b, err := s.balances(ctx, tenant)
		if err != nil {
			return Result{}, err
		}
		res.Balances = &b
	}
	return res, nil
}

func (s *Service) balances(ctx context.Context, tenant protocol.TenantID) (Balances, error) {
	lb, err := s.led.Balances(ctx, tenant, s.now())
	if err != nil {
		return Balances{}, err
	}
	cs, err := s.cat.Campaigns(ctx, tenant, 0)
	if err != nil {
		return Balances{}, err
	}
	out := Balances{GiftCards: []Amount{}, PointsOutstanding: lb.PointsOutstanding, PointsExpiring30: lb.PointsExpiring30,
		PointsExpiring90: lb.PointsExpiring90, Budgets: []CampaignUse{}}
	for cur, v := range lb.GiftCardLiability {
		out.GiftCards = append(out.GiftCards, Amount{cur, v})
	}
	sort.Slice(out.GiftCards, func(i, j int) bool { return out.GiftCards[i].Currency < out.GiftCards[j].Currency })
	seen := map[protocol.CampaignID]bool{}
	for _, c := range cs {
		id := c.Rules.ID
		seen[id] = true
		u := lb.Campaigns[id]
		cu := CampaignUse{Campaign: id, Currency: c.Rules.Currency, MaxRedemptions: c.Rules.Limits.MaxRedemptions,
			MaxDiscount: c.Rules.Limits.MaxDiscount, UsedCount: u.Count, UsedDiscount: u.Discount,
			EscrowedCount: u.EscrowedCount, EscrowedAmount: u.EscrowedAmount}
		if cu.MaxRedemptions > 0 {
			left := cu.MaxRedemptions - cu.UsedCount - cu.EscrowedCount
			cu.LeftCount = &left
		}
		if cu.MaxDiscount > 0 {
			left := cu.MaxDiscount - cu.UsedDiscount - cu.EscrowedAmount
			cu.LeftDiscount = &left
		}
		out.Budgets = append(out.Budgets, cu)
	}
	for id, u := range lb.Campaigns { // facts of a campaign the catalog no longer has
		if !seen[id] {
			out.Budgets = append(out.Budgets, CampaignUse{Campaign: id, UsedCount: u.Count, UsedDiscount: u.Discount,
				EscrowedCount: u.EscrowedCount, EscrowedAmount: u.EscrowedAmount})
		}
	}
	sort.Slice(out.Budgets, func(i, j int) bool { return out.Budgets[i].Campaign < out.Budgets[j].Campaign })
	return out, nil
}

// MaxExportDays bounds one export's range.
const MaxExportDays = 3660

// ExportRange checks an export's range in the tenant's time zone before
// the export starts (an error after the first row cannot change the
// status any more).
func (s *Service) ExportRange(ctx context.Context, tenant protocol.TenantID, from, to string) (Query, error) {
	loc, _, err := s.Location(ctx, tenant)
	if err != nil {
		return Query{}, err
	}
	f, err := parseDate("from", from, loc)
	if err != nil {
		return Query{}, err
	}
	t, err := parseDate("to", to, loc)
	if err != nil {
		return Query{}, err
	}
	if t.Before(f) {
		return Query{}, protocol.FieldError("to", "to (%s) is before from (%s)", to, from)
	}
	if t.Sub(f) > MaxExportDays*24*time.Hour {
		return Query{}, protocol.Errorf(protocol.CodeReportRangeTooLong, "an export covers at most %d days", MaxExportDays)
	}
	return Query{Report: "export", From: f, To: addDays(t, 1), Loc: loc}, nil
}

// ExportStream runs an export whose range ExportRange checked.
func (s *Service) ExportStream(ctx context.Context, tenant protocol.TenantID, q Query, fn func(*pledger.ExportRow) error) error {
	return s.led.ExportFacts(ctx, tenant, q.From, q.To, fn)
}
