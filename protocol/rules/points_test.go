package rules_test

import (
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

func mustCatalog(t testing.TB, campaigns ...string) *rules.Catalog {
	t.Helper()
	var cs []rules.Campaign
	for _, s := range campaigns {
		c, err := rules.ParseCampaignJSON([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	cat, err := rules.NewCatalog(cs)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

const loyaltyJSON = `{"schema":1,"id":"loyalty","tenant":"acme","status":"active","currency":"EUR","trigger":"auto",
 "reward":{"kind":"points","points":{
  "earn":[{"id":"spend","on":"spend","per_amount":100,"milli_points":1000},
          {"id":"beans","on":"item","target":{"categories":["beans"]},"milli_points":5000,"max_points":20},
          {"id":"visit","on":"order","milli_points":10000},
          {"id":"newsletter","on":"event","event":"newsletter_signup","milli_points":50000,"period_cap":50,"period":"year"},
          {"id":"review","on":"event","event":"review","milli_points":20000,"period_cap":60,"period":"month"}],
  "tier_rates":[{"tier":"gold","multiplier_bp":20000}],
  "expiry":{"kind":"bucketed","bucket":"quarter","years":2}}}}`

func berlin(t testing.TB) rules.Store {
	t.Helper()
	s, err := rules.NewStore("berlin-1", "DE-BE", "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRefundTakesBackOrderPoints: a refund takes back the points its order
// earned — all of them for a full refund, per returned unit (rounded up)
// for a partial one, and several partial refunds add up to the whole.
func TestRefundTakesBackOrderPoints(t *testing.T) {
	cat := mustCatalog(t, loyaltyJSON)
	order := protocol.Order{Currency: "EUR", Lines: []protocol.Line{
		{SKU: "SHOE1", Category: "shoes", Quantity: 1, UnitPrice: 8000},
		{SKU: "BEANS", Category: "beans", Quantity: 3, UnitPrice: 1000},
	}}
	d := rules.Evaluate(cat, rules.Request{Tenant: "acme", Order: order, Customer: &protocol.Customer{ID: "c-1"},
		Store: berlin(t), Now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)})
	// spend 110 (80 + 30), beans 15, visit 10
	if got, want := d.PointsEarned, int64(135); got != want {
		t.Fatalf("earned %d, want %d: %+v", got, want, d.Earnings)
	}
	lq := func(line int, q int64) rules.LineQuantity { return rules.LineQuantity{Line: line, Quantity: q} }
	for _, tc := range []struct {
		name          string
		prior, refund []rules.LineQuantity
		want          int64
	}{
		{"FullRefund", nil, []rules.LineQuantity{lq(0, 1), lq(1, 3)}, 135},
		{"OneOfThreeBeansRoundsUp", nil, []rules.LineQuantity{lq(1, 1)}, 10 + 5}, // ceil(30/3), ceil(15/3)
		{"ShoeOnly", nil, []rules.LineQuantity{lq(0, 1)}, 80},
		{"SecondPartialRefund", []rules.LineQuantity{lq(1, 1)}, []rules.LineQuantity{lq(1, 1)}, 10 + 5},
		{"LastUnitTakesOrderPoints", []rules.LineQuantity{lq(1, 3)}, []rules.LineQuantity{lq(0, 1)}, 80 + 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rules.RefundPoints(order, d.Earnings, tc.prior, tc.refund)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("take back %d, want %d", got, tc.want)
			}
		})
	}
	t.Run("PartialRefundsSumToWhole", func(t *testing.T) {
		var sum int64
		var prior []rules.LineQuantity
		for _, r := range []rules.LineQuantity{lq(1, 1), lq(1, 1), lq(0, 1), lq(1, 1)} {
			got, err := rules.RefundPoints(order, d.Earnings, prior, []rules.LineQuantity{r})
			if err != nil {
				t.Fatal(err)
			}
			sum += got
			prior = append(prior, r)
		}
		if sum != d.PointsEarned {
			t.Errorf("partial refunds take back %d, earned %d", sum, d.PointsEarned)
		}
	})
	t.Run("ErrTooMany", func(t *testing.T) {
		_, err := rules.RefundPoints(order, d.Earnings, []rules.LineQuantity{lq(1, 2)}, []rules.LineQuantity{lq(1, 2)})
		if got, want := protocol.ErrorCode(err), protocol.CodeInvalidInput; got != want {
			t.Errorf("code = %s, want %s", got, want)
		}
	})
	t.Run("ErrUnknownLine", func(t *testing.T) {
		_, err := rules.RefundPoints(order, d.Earnings, nil, []rules.LineQuantity{lq(2, 1)})
		if got, want := protocol.ErrorCode(err), protocol.CodeInvalidInput; got != want {
			t.Errorf("code = %s, want %s", got, want)
		}
	})
}

func TestEarnForEvent(t *testing.T) {
	cat := mustCatalog(t, loyaltyJSON)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	key := func(r string) rules.EarnKey { return rules.EarnKey{Campaign: "loyalty", Rule: r} }
	for _, tc := range []struct {
		name   string
		event  string
		tier   string
		earned map[rules.EarnKey]int64
		want   int64
		capped bool
	}{
		{"Newsletter", "newsletter_signup", "", nil, 50, false},
		{"NewsletterGoldCapped", "newsletter_signup", "gold", nil, 50, true},
		{"ReviewGold", "review", "gold", nil, 40, false},
		{"ReviewPeriodCapLeft", "review", "", map[rules.EarnKey]int64{key("review"): 50}, 10, true},
		{"NewsletterTwiceNothing", "newsletter_signup", "", map[rules.EarnKey]int64{key("newsletter"): 50}, 0, false},
		{"UnknownEventNothing", "birthday", "", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, err := rules.EarnForEvent(cat, rules.EventRequest{Tenant: "acme", Customer: &protocol.Customer{ID: "c-1", Tier: tc.tier},
				Store: berlin(t), Now: now, Event: tc.event, Earned: tc.earned})
			if err != nil {
				t.Fatal(err)
			}
			var got int64
			for _, e := range es {
				got += e.Points
				if e.Capped != tc.capped {
					t.Errorf("capped = %v, want %v", e.Capped, tc.capped)
				}
				if want := time.Date(2029, 1, 1, 0, 0, 0, 0, berlin(t).Location); !e.ExpiresAt.Equal(want) {
					t.Errorf("expires %v, want %v", e.ExpiresAt, want)
				}
			}
			if got != tc.want {
				t.Errorf("points = %d, want %d", got, tc.want)
			}
		})
	}
	t.Run("ErrNoCustomer", func(t *testing.T) {
		_, err := rules.EarnForEvent(cat, rules.EventRequest{Tenant: "acme", Store: berlin(t), Now: now, Event: "review"})
		if got, want := protocol.ErrorCode(err), protocol.CodeCustomerRequired; got != want {
			t.Errorf("code = %s, want %s", got, want)
		}
	})
}

// TestExpiresAt covers fixed, rolling and bucketed expiry, on bucket and
// month boundaries in the store's zone (not UTC).
func TestExpiresAt(t *testing.T) {
	ber := berlin(t).Location
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	q2 := rules.Expiry{Kind: rules.ExpiryBucketed, Bucket: rules.PeriodQuarter, Years: 2}
	for _, tc := range []struct {
		name   string
		e      rules.Expiry
		earned time.Time
		loc    *time.Location
		want   time.Time
	}{
		{"None", rules.Expiry{}, time.Date(2026, 5, 1, 0, 0, 0, 0, ber), ber, time.Time{}},
		{"Fixed", rules.Expiry{Kind: rules.ExpiryFixed, At: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}, time.Date(2026, 5, 1, 0, 0, 0, 0, ber), ber, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"RollingMonthEndClamped", rules.Expiry{Kind: rules.ExpiryRolling, Months: 1}, time.Date(2026, 1, 31, 10, 0, 0, 0, ber), ber, time.Date(2026, 3, 1, 0, 0, 0, 0, ber)},
		{"RollingLeapYear", rules.Expiry{Kind: rules.ExpiryRolling, Months: 1}, time.Date(2028, 1, 31, 10, 0, 0, 0, ber), ber, time.Date(2028, 3, 1, 0, 0, 0, 0, ber)},
		{"RollingTwelveMonths", rules.Expiry{Kind: rules.ExpiryRolling, Months: 12}, time.Date(2026, 3, 15, 23, 59, 0, 0, ber), ber, time.Date(2027, 3, 16, 0, 0, 0, 0, ber)},
		{"BucketQuarterLastSecond", q2, time.Date(2026, 3, 31, 23, 59, 59, 0, ber), ber, time.Date(2028, 4, 1, 0, 0, 0, 0, ber)},
		{"BucketQuarterFirstSecond", q2, time.Date(2026, 4, 1, 0, 0, 0, 0, ber), ber, time.Date(2028, 7, 1, 0, 0, 0, 0, ber)},
		{"BucketQuarterStoreZoneNotUTC", q2, time.Date(2026, 3, 31, 22, 30, 0, 0, time.UTC), ber, time.Date(2028, 7, 1, 0, 0, 0, 0, ber)},
		{"BucketQuarterNewYorkStillQ1", q2, time.Date(2026, 4, 1, 2, 30, 0, 0, time.UTC), ny, time.Date(2028, 4, 1, 0, 0, 0, 0, ny)},
		{"BucketQuarterDecember", q2, time.Date(2026, 12, 31, 23, 59, 59, 0, ber), ber, time.Date(2029, 1, 1, 0, 0, 0, 0, ber)},
		{"BucketMonth", rules.Expiry{Kind: rules.ExpiryBucketed, Bucket: rules.PeriodMonth, Years: 1}, time.Date(2026, 1, 15, 0, 0, 0, 0, ber), ber, time.Date(2027, 2, 1, 0, 0, 0, 0, ber)},
		{"BucketYear", rules.Expiry{Kind: rules.ExpiryBucketed, Bucket: rules.PeriodYear, Years: 2}, time.Date(2026, 6, 1, 0, 0, 0, 0, ber), ber, time.Date(2029, 1, 1, 0, 0, 0, 0, ber)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rules.ExpiresAt(tc.e, tc.earned, tc.loc); !got.Equal(tc.want) {
				t.Errorf("expires %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPeriodStart(t *testing.T) {
	ber := berlin(t).Location
	sunday := time.Date(2026, 11, 29, 23, 30, 0, 0, ber)
	for _, tc := range []struct {
		p    rules.Period
		at   time.Time
		want time.Time
	}{
		{rules.PeriodDay, time.Date(2026, 3, 29, 12, 0, 0, 0, ber), time.Date(2026, 3, 29, 0, 0, 0, 0, ber)},
		{rules.PeriodDay, time.Date(2026, 3, 28, 23, 30, 0, 0, time.UTC), time.Date(2026, 3, 29, 0, 0, 0, 0, ber)},
		{rules.PeriodWeek, sunday, time.Date(2026, 11, 23, 0, 0, 0, 0, ber)},
		{rules.PeriodMonth, sunday, time.Date(2026, 11, 1, 0, 0, 0, 0, ber)},
		{rules.PeriodQuarter, sunday, time.Date(2026, 10, 1, 0, 0, 0, 0, ber)},
		{rules.PeriodYear, sunday, time.Date(2026, 1, 1, 0, 0, 0, 0, ber)},
	} {
		t.Run(string(tc.p), func(t *testing.T) {
			if got := rules.PeriodStart(tc.p, tc.at, ber); !got.Equal(tc.want) {
				t.Errorf("start %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPointsLotsBucketBoundary: points earned in Q1 2026 under "end of the
// quarter, two years later" are spendable until the last instant of
// 31 March 2028 and gone at 1 April 2028 00:00 in the store's zone; burning
// takes the soonest-expiring points first.
func TestPointsLotsBucketBoundary(t *testing.T) {
	ber := berlin(t).Location
	q2 := rules.Expiry{Kind: rules.ExpiryBucketed, Bucket: rules.PeriodQuarter, Years: 2}
	lots := []rules.PointsLot{
		{Points: 100, ExpiresAt: rules.ExpiresAt(q2, time.Date(2026, 4, 1, 0, 0, 0, 0, ber), ber)},    // Q2 2026
		{Points: 50, ExpiresAt: rules.ExpiresAt(q2, time.Date(2026, 3, 31, 23, 59, 59, 0, ber), ber)}, // Q1 2026
		{Points: 30}, // never expires
	}
	end := time.Date(2028, 4, 1, 0, 0, 0, 0, ber)
	for _, tc := range []struct {
		name string
		at   time.Time
		want int64
	}{
		{"LastInstantOfQuarter", end.Add(-time.Nanosecond), 180},
		{"FirstInstantOfNextQuarter", end, 130},
		{"SameInstantInUTC", end.UTC(), 130},
		{"AfterSecondBucket", time.Date(2028, 7, 1, 0, 0, 0, 0, ber), 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rules.SpendablePoints(lots, tc.at); got != tc.want {
				t.Errorf("spendable = %d, want %d", got, tc.want)
			}
		})
	}
	t.Run("BurnSoonestFirst", func(t *testing.T) {
		left, err := rules.BurnPoints(lots, 70, end.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		want := []rules.PointsLot{{Points: 80, ExpiresAt: lots[0].ExpiresAt}, {Points: 30}}
		if len(left) != len(want) || left[0] != want[0] || left[1] != want[1] {
			t.Errorf("left = %+v, want %+v", left, want)
		}
	})
	t.Run("ErrBurnExpired", func(t *testing.T) {
		_, err := rules.BurnPoints(lots, 150, end)
		if got, want := protocol.ErrorCode(err), protocol.CodeInsufficientPts; got != want {
			t.Errorf("code = %s, want %s", got, want)
		}
	})
}
