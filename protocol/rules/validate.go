package rules

import (
	"strconv"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// MaxAmount bounds any amount or threshold: ten billion major units. It is
// an int64, not an untyped constant, so that no 32-bit int ever holds it.
const MaxAmount int64 = 1_000_000_000_000

// Bounds on campaign data. They keep evaluation cost linear and small and
// keep every intermediate product inside int64.
const (
	MaxPoints     = 1_000_000_000_000
	MaxMilliRate  = 1_000_000_000 // milli-points per step
	MaxMultiplier = 100_000       // ×10 in basis points
	MaxListLen    = 1000          // SKUs, categories, stores, ...
	MaxSmallList  = 32            // tiers, hours, bundle items, earning rules, ...
	MaxNameLen    = 200
	MaxStringLen  = 64 // SKUs, categories, segments, tiers, attribute keys and values
)

var dayNames = [...]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

func dayIndex(s string) (time.Weekday, bool) {
	for i, d := range dayNames {
		if d == s {
			return time.Weekday(i), true
		}
	}
	return 0, false
}

// Validate checks a campaign and returns the first problem as a
// CodeInvalidInput *protocol.Error whose Field is the JSON path
// ("reward.percent_bp", "eligibility.hours[1].from"), or
// CodeUnsupportedVersion for a newer schema.
func (c *Campaign) Validate() error {
	if c.Schema == 0 {
		return protocol.FieldError("schema", "schema is required (use %d)", SchemaVersion)
	}
	if c.Schema > SchemaVersion || c.Schema < 0 {
		e := *ErrUnsupportedSchema
		e.Field = "schema"
		return &e
	}
	if err := protocol.ValidateID("id", string(c.ID)); err != nil {
		return field("id", err)
	}
	if err := protocol.ValidateID("tenant", string(c.Tenant)); err != nil {
		return field("tenant", err)
	}
	if len(c.Name) > MaxNameLen {
		return protocol.FieldError("name", "name is longer than %d characters", MaxNameLen)
	}
	switch c.Status {
	case StatusDraft, StatusActive, StatusStopped:
	case "":
		return protocol.FieldError("status", "status is required: draft, active or stopped")
	default:
		return protocol.FieldError("status", "unknown status %q: use draft, active or stopped", c.Status)
	}
	switch c.Trigger {
	case "", TriggerCode, TriggerAuto:
	default:
		return protocol.FieldError("trigger", "unknown trigger %q: use code or auto", c.Trigger)
	}
	if err := c.Currency.Validate(); err != nil {
		return field("currency", err)
	}
	if err := wholeSeconds("starts_at", c.StartsAt); err != nil {
		return err
	}
	if err := wholeSeconds("ends_at", c.EndsAt); err != nil {
		return err
	}
	if !c.StartsAt.IsZero() && !c.EndsAt.IsZero() && !c.EndsAt.After(c.StartsAt) {
		return protocol.FieldError("ends_at", "ends_at must be after starts_at")
	}
	if err := c.Reward.validate("reward", c); err != nil {
		return err
	}
	if err := c.Eligibility.validate("eligibility"); err != nil {
		return err
	}
	if err := c.Stacking.validate("stacking", c); err != nil {
		return err
	}
	if err := c.Limits.validate("limits", c); err != nil {
		return err
	}
	if err := amount("points_cost", c.PointsCost, MaxPoints); err != nil {
		return err
	}
	if c.PointsCost > 0 && (c.Reward.Kind == RewardGiftCard || c.Reward.Kind == RewardPoints) {
		return protocol.FieldError("points_cost", "points_cost is for discount rewards, not %s", c.Reward.Kind)
	}
	if c.Trigger == TriggerAuto && c.PointsCost > 0 {
		return protocol.FieldError("points_cost", "an automatic campaign cannot cost points")
	}
	if c.Referral != nil {
		return c.validateReferral()
	}
	return nil
}

// validateReferral checks a referral program (protocol/referrals.go): a
// code campaign whose reward is a discount (or points) for the referee.
func (c *Campaign) validateReferral() error {
	if c.Trigger == TriggerAuto {
		return protocol.FieldError("referral", "a referral program is presented as a code: trigger must be code")
	}
	if c.Reward.Kind == RewardGiftCard {
		return protocol.FieldError("referral", "a referral program cannot be a gift card")
	}
	if c.PointsCost > 0 {
		return protocol.FieldError("referral", "a referral program cannot cost points")
	}
	return c.Referral.Validate()
}

func field(path string, err error) error {
	e := protocol.PublicError(err)
	out := *e
	out.Field = path
	return &out
}

func wholeSeconds(path string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	if t.Nanosecond() != 0 {
		return protocol.FieldError(path, "%s must be whole seconds", path)
	}
	if t.Year() < 2000 || t.Year() > 9999 {
		return protocol.FieldError(path, "%s must be between the years 2000 and 9999", path)
	}
	return nil
}

func amount(path string, v, limit int64) error {
	if v < 0 || v > limit {
		return protocol.FieldError(path, "must be between 0 and %d", limit)
	}
	return nil
}

func positive(path string, v, limit int64) error {
	if v <= 0 || v > limit {
		return protocol.FieldError(path, "must be between 1 and %d", limit)
	}
	return nil
}

func idx(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func validStrings(path string, list []string, maxLen int) error {
	if len(list) > maxLen {
		return protocol.FieldError(path, "at most %d entries", maxLen)
	}
	for i, s := range list {
		if s == "" {
			return protocol.FieldError(idx(path, i), "must not be empty")
		}
		if len(s) > MaxStringLen {
			return protocol.FieldError(idx(path, i), "longer than %d characters", MaxStringLen)
		}
		for j := 0; j < i; j++ {
			if list[j] == s {
				return protocol.FieldError(idx(path, i), "%q is listed twice", s)
			}
		}
	}
	return nil
}

// rewardFields names the optional reward fields and reports which are set,
// so that validation can refuse a field the kind does not use.
func (r *Reward) setFields() [17]struct {
	name string
	set  bool
} {
	return [17]struct {
		name string
		set  bool
	}{
		{"percent_bp", r.PercentBP != 0},
		{"amount", r.Amount != 0},
		{"max_discount", r.MaxDiscount != 0},
		{"target", r.Target != nil},
		{"get_target", r.GetTarget != nil},
		{"buy", r.Buy != 0},
		{"get", r.Get != 0},
		{"get_percent_bp", r.GetPercentBP != 0},
		{"pick", r.Pick != ""},
		{"max_applications", r.MaxApplications != 0},
		{"max_quantity", r.MaxQuantity != 0},
		{"tiers", r.Tiers != nil},
		{"bundle", r.Bundle != nil},
		{"multi_use", r.MultiUse},
		{"points", r.Points != nil},
		{"pay_exclude", r.PayExclude != nil},
		{"cash_out_max", r.CashOutMax != 0},
	}
}

// allowedFields lists, per kind, the optional fields it uses.
var allowedFields = map[RewardKind][]string{
	RewardPercentOff:    {"percent_bp", "max_discount", "target"},
	RewardAmountOff:     {"amount", "target"},
	RewardFixedPrice:    {"amount", "target", "pick", "max_quantity", "max_discount"},
	RewardFreeItem:      {"target", "get", "get_percent_bp", "pick", "max_discount"},
	RewardBuyXGetY:      {"target", "get_target", "buy", "get", "get_percent_bp", "pick", "max_applications", "max_discount"},
	RewardSpendTiers:    {"target", "tiers", "max_discount"},
	RewardQuantityTiers: {"target", "tiers", "max_discount"},
	RewardBundle:        {"bundle", "amount", "pick", "max_applications"},
	RewardFreeShipping:  {"max_discount"},
	RewardGiftCard:      {"multi_use", "pay_exclude", "cash_out_max"},
	RewardPoints:        {"points"},
}

func (r *Reward) validate(p string, c *Campaign) error {
	allowed, ok := allowedFields[r.Kind]
	if !ok {
		if r.Kind == "" {
			return protocol.FieldError(p+".kind", "kind is required")
		}
		return protocol.FieldError(p+".kind", "unknown reward kind %q", r.Kind)
	}
	for _, f := range r.setFields() {
		if !f.set {
			continue
		}
		used := false
		for _, a := range allowed {
			if a == f.name {
				used = true
				break
			}
		}
		if !used {
			return protocol.FieldError(p+"."+f.name, "%s is not used by a %s reward", f.name, r.Kind)
		}
	}
	if err := amount(p+".max_discount", r.MaxDiscount, MaxAmount); err != nil {
		return err
	}
	switch r.Pick {
	case "", PickCheapest, PickMostExpensive:
	default:
		return protocol.FieldError(p+".pick", "unknown pick %q: use cheapest or most_expensive", r.Pick)
	}
	if r.Target != nil {
		if err := r.Target.validate(p + ".target"); err != nil {
			return err
		}
	}
	if r.GetTarget != nil {
		if err := r.GetTarget.validate(p + ".get_target"); err != nil {
			return err
		}
	}
	if err := amount(p+".max_applications", r.MaxApplications, protocol.MaxQuantity); err != nil {
		return err
	}
	if err := amount(p+".max_quantity", r.MaxQuantity, protocol.MaxQuantity); err != nil {
		return err
	}
	if r.GetPercentBP != 0 {
		if err := positive(p+".get_percent_bp", r.GetPercentBP, 10000); err != nil {
			return err
		}
	}
	switch r.Kind {
	case RewardPercentOff:
		return positive(p+".percent_bp", r.PercentBP, 10000)
	case RewardAmountOff:
		return positive(p+".amount", r.Amount, MaxAmount)
	case RewardFixedPrice:
		return amount(p+".amount", r.Amount, MaxAmount) // 0 = free
	case RewardFreeItem:
		if r.Target == nil {
			return protocol.FieldError(p+".target", "a free item needs a target")
		}
		return amount(p+".get", r.Get, protocol.MaxQuantity)
	case RewardBuyXGetY:
		if err := positive(p+".buy", r.Buy, protocol.MaxQuantity); err != nil {
			return err
		}
		return positive(p+".get", r.Get, protocol.MaxQuantity)
	case RewardSpendTiers, RewardQuantityTiers:
		return r.validateTiers(p)
	case RewardBundle:
		if len(r.Bundle) == 0 {
			return protocol.FieldError(p+".bundle", "a bundle needs at least one item")
		}
		if len(r.Bundle) > MaxSmallList {
			return protocol.FieldError(p+".bundle", "at most %d items", MaxSmallList)
		}
		for i := range r.Bundle {
			b := &r.Bundle[i]
			bp := idx(p+".bundle", i)
			if err := b.Target.validate(bp + ".target"); err != nil {
				return err
			}
			if b.Target.empty() {
				return protocol.FieldError(bp+".target", "a bundle item needs skus or categories")
			}
			if err := positive(bp+".quantity", b.Quantity, 1000); err != nil {
				return err
			}
		}
		return amount(p+".amount", r.Amount, MaxAmount)
	case RewardGiftCard:
		if c.Trigger == TriggerAuto {
			return protocol.FieldError("trigger", "a gift card cannot be automatic")
		}
		if r.CashOutMax < 0 || r.CashOutMax > MaxAmount {
			return protocol.FieldError(p+".cash_out_max", "the cash-out limit is between 0 and %d minor units", int64(MaxAmount))
		}
		if r.PayExclude != nil {
			return r.PayExclude.validate(p + ".pay_exclude")
		}
	case RewardPoints:
		if r.Points == nil {
			return protocol.FieldError(p+".points", "a points reward needs its program")
		}
		if c.Trigger == TriggerCode {
			return protocol.FieldError("trigger", "a points program earns automatically: leave trigger empty or auto")
		}
		return r.Points.validate(p + ".points")
	}
	return nil
}

func (r *Reward) validateTiers(p string) error {
	if len(r.Tiers) == 0 {
		return protocol.FieldError(p+".tiers", "at least one tier is needed")
	}
	if len(r.Tiers) > MaxSmallList {
		return protocol.FieldError(p+".tiers", "at most %d tiers", MaxSmallList)
	}
	limit := int64(MaxAmount)
	if r.Kind == RewardQuantityTiers {
		limit = protocol.MaxQuantity
	}
	for i, t := range r.Tiers {
		tp := idx(p+".tiers", i)
		if err := positive(tp+".min", t.Min, limit); err != nil {
			return err
		}
		if i > 0 && t.Min <= r.Tiers[i-1].Min {
			return protocol.FieldError(tp+".min", "tiers must be in increasing order of min")
		}
		switch {
		case t.PercentBP != 0 && t.Amount != 0:
			return protocol.FieldError(tp+".amount", "a tier gives either percent_bp or amount, not both")
		case t.PercentBP != 0:
			if err := positive(tp+".percent_bp", t.PercentBP, 10000); err != nil {
				return err
			}
		case t.Amount != 0:
			if err := positive(tp+".amount", t.Amount, MaxAmount); err != nil {
				return err
			}
		default:
			return protocol.FieldError(tp+".percent_bp", "a tier needs percent_bp or amount")
		}
	}
	return nil
}

func (t *Target) empty() bool { return len(t.SKUs) == 0 && len(t.Categories) == 0 }

func (t *Target) validate(p string) error {
	if err := validStrings(p+".skus", t.SKUs, MaxListLen); err != nil {
		return err
	}
	if err := validStrings(p+".categories", t.Categories, MaxListLen); err != nil {
		return err
	}
	if err := validStrings(p+".exclude_skus", t.ExcludeSKUs, MaxListLen); err != nil {
		return err
	}
	for i, s := range t.ExcludeSKUs {
		for _, in := range t.SKUs {
			if in == s {
				return protocol.FieldError(idx(p+".exclude_skus", i), "%q is both included and excluded", s)
			}
		}
	}
	return nil
}

func (e *Eligibility) validate(p string) error {
	if len(e.Stores) > MaxListLen {
		return protocol.FieldError(p+".stores", "at most %d entries", MaxListLen)
	}
	for i, s := range e.Stores {
		if err := protocol.ValidateID("store", string(s)); err != nil {
			return field(idx(p+".stores", i), err)
		}
	}
	if err := validStrings(p+".regions", e.Regions, MaxListLen); err != nil {
		return err
	}
	if err := validStrings(p+".segments", e.Segments, MaxListLen); err != nil {
		return err
	}
	if err := validStrings(p+".tiers", e.Tiers, MaxListLen); err != nil {
		return err
	}
	if len(e.Attributes) > MaxSmallList {
		return protocol.FieldError(p+".attributes", "at most %d entries", MaxSmallList)
	}
	for i, a := range e.Attributes {
		ap := idx(p+".attributes", i)
		if a.Key == "" || len(a.Key) > MaxStringLen {
			return protocol.FieldError(ap+".key", "key must be 1 to %d characters", MaxStringLen)
		}
		if len(a.Values) == 0 {
			return protocol.FieldError(ap+".values", "at least one value is needed")
		}
		if err := validStrings(ap+".values", a.Values, MaxListLen); err != nil {
			return err
		}
	}
	if err := amount(p+".min_subtotal", e.MinSubtotal, MaxAmount); err != nil {
		return err
	}
	if len(e.Requires) > MaxSmallList {
		return protocol.FieldError(p+".requires", "at most %d entries", MaxSmallList)
	}
	for i, r := range e.Requires {
		rp := idx(p+".requires", i)
		if err := r.Target.validate(rp + ".target"); err != nil {
			return err
		}
		if err := amount(rp+".min_quantity", r.MinQuantity, protocol.MaxQuantity); err != nil {
			return err
		}
		if err := amount(rp+".min_amount", r.MinAmount, MaxAmount); err != nil {
			return err
		}
		if r.MinQuantity == 0 && r.MinAmount == 0 && r.Target.empty() {
			return protocol.FieldError(rp, "a requirement needs a target, min_quantity or min_amount")
		}
	}
	if err := validDays(p+".days", e.Days); err != nil {
		return err
	}
	return validHours(p+".hours", e.Hours)
}

func validDays(p string, days []string) error {
	if len(days) > 7 {
		return protocol.FieldError(p, "at most 7 days")
	}
	for i, d := range days {
		if _, ok := dayIndex(d); !ok {
			return protocol.FieldError(idx(p, i), "unknown day %q: use mon, tue, wed, thu, fri, sat or sun", d)
		}
		for j := 0; j < i; j++ {
			if days[j] == d {
				return protocol.FieldError(idx(p, i), "%q is listed twice", d)
			}
		}
	}
	return nil
}

func validHours(p string, hours []HourWindow) error {
	if len(hours) > MaxSmallList {
		return protocol.FieldError(p, "at most %d windows", MaxSmallList)
	}
	for i, h := range hours {
		hp := idx(p, i)
		from, ok := parseClock(h.From, false)
		if !ok {
			return protocol.FieldError(hp+".from", "%q is not a time of day like 09:30", h.From)
		}
		to, ok := parseClock(h.To, true)
		if !ok {
			return protocol.FieldError(hp+".to", "%q is not a time of day like 17:00 (24:00 allowed)", h.To)
		}
		if from == to || (from == 0 && to == 24*60) {
			return protocol.FieldError(hp+".to", "a window from %s to %s covers the whole day or nothing: leave hours out", h.From, h.To)
		}
	}
	return nil
}

// parseClock reads "HH:MM" as minutes after midnight; "24:00" only when
// end is true.
func parseClock(s string, end bool) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if m > 59 || h > 24 || (h == 24 && (m != 0 || !end)) {
		return 0, false
	}
	return h*60 + m, true
}

func (s *Stacking) validate(p string, c *Campaign) error {
	if s.Category != "" {
		if err := validStrings(p+".category", []string{s.Category}, 1); err != nil {
			return protocol.FieldError(p+".category", "category must be 1 to %d characters", MaxStringLen)
		}
	}
	switch s.Mode {
	case "", StackNormal, StackExclusive, StackJoint:
	default:
		return protocol.FieldError(p+".mode", "unknown mode %q: use normal, exclusive or joint", s.Mode)
	}
	if err := validStrings(p+".allow", s.Allow, MaxSmallList); err != nil {
		return err
	}
	if err := validStrings(p+".forbid", s.Forbid, MaxSmallList); err != nil {
		return err
	}
	if s.Mode == StackJoint && len(s.Allow) > 0 {
		return protocol.FieldError(p+".allow", "a joint campaign combines with everything: allow is not used")
	}
	for i, f := range s.Forbid {
		for _, a := range s.Allow {
			if a == f {
				return protocol.FieldError(idx(p+".forbid", i), "%q is both allowed and forbidden", f)
			}
		}
	}
	switch s.Base {
	case "", BaseDiscounted, BaseInitial:
	default:
		return protocol.FieldError(p+".base", "unknown base %q: use discounted or initial", s.Base)
	}
	if s.Priority < -1000 || s.Priority > 1000 {
		return protocol.FieldError(p+".priority", "priority must be between -1000 and 1000")
	}
	if (c.Reward.Kind == RewardPoints) && (s.Mode != "" || s.Category != "" || len(s.Allow) > 0 || len(s.Forbid) > 0 || s.Base != "" || s.Priority != 0) {
		return protocol.FieldError(p, "points programs do not stack: burning points is a payment")
	}
	if c.Reward.Kind == RewardGiftCard && (s.Mode != "" || s.Category != "" || len(s.Allow) > 0 || len(s.Forbid) > 0 || s.Base != "") {
		return protocol.FieldError(p, "a gift card is a payment and combines with everything: only priority is used")
	}
	return nil
}

func (l *Limits) validate(p string, c *Campaign) error {
	if err := amount(p+".max_redemptions", l.MaxRedemptions, 1<<40); err != nil {
		return err
	}
	if err := amount(p+".max_discount", l.MaxDiscount, MaxAmount); err != nil {
		return err
	}
	if err := amount(p+".per_customer", l.PerCustomer, 1<<40); err != nil {
		return err
	}
	if err := amount(p+".per_code", l.PerCode, 1<<40); err != nil {
		return err
	}
	if err := amount(p+".max_order_value", l.MaxOrderValue, MaxAmount); err != nil {
		return err
	}
	if err := amount(p+".per_customer_period", l.PerCustomerPeriod, 1<<40); err != nil {
		return err
	}
	switch {
	case l.PerCustomerPeriod > 0 && l.CustomerPeriod == "":
		return protocol.FieldError(p+".customer_period", "per_customer_period needs a customer_period: day, week, month, quarter or year")
	case l.PerCustomerPeriod == 0 && l.CustomerPeriod != "":
		return protocol.FieldError(p+".per_customer_period", "customer_period needs per_customer_period")
	case l.CustomerPeriod != "" && !validPeriod(l.CustomerPeriod):
		return protocol.FieldError(p+".customer_period", "unknown period %q: use day, week, month, quarter or year", l.CustomerPeriod)
	}
	if c.Reward.Kind == RewardGiftCard && l.MaxDiscount != 0 {
		return protocol.FieldError(p+".max_discount", "a gift card gives no discount: its balance is the limit")
	}
	if c.Trigger == TriggerAuto && l.PerCode != 0 {
		return protocol.FieldError(p+".per_code", "an automatic campaign has no code")
	}
	if c.Reward.Kind == RewardPoints && *l != (Limits{}) {
		return protocol.FieldError(p, "limits of a points program go on its earning rules (max_points, period_cap)")
	}
	return nil
}

func (pp *PointsProgram) validate(p string) error {
	if len(pp.Earn) > MaxSmallList {
		return protocol.FieldError(p+".earn", "at most %d earning rules", MaxSmallList)
	}
	for i := range pp.Earn {
		if err := pp.Earn[i].validate(idx(p+".earn", i)); err != nil {
			return err
		}
		for j := 0; j < i; j++ {
			if pp.Earn[j].ID == pp.Earn[i].ID {
				return protocol.FieldError(idx(p+".earn", i)+".id", "id %q is used twice", pp.Earn[i].ID)
			}
		}
	}
	if len(pp.TierRates) > MaxSmallList {
		return protocol.FieldError(p+".tier_rates", "at most %d entries", MaxSmallList)
	}
	for i, t := range pp.TierRates {
		tp := idx(p+".tier_rates", i)
		if t.Tier == "" || len(t.Tier) > MaxStringLen {
			return protocol.FieldError(tp+".tier", "tier must be 1 to %d characters", MaxStringLen)
		}
		for j := 0; j < i; j++ {
			if pp.TierRates[j].Tier == t.Tier {
				return protocol.FieldError(tp+".tier", "tier %q is listed twice", t.Tier)
			}
		}
		if err := positive(tp+".multiplier_bp", t.MultiplierBP, MaxMultiplier); err != nil {
			return err
		}
	}
	if len(pp.Multipliers) > MaxSmallList {
		return protocol.FieldError(p+".multipliers", "at most %d entries", MaxSmallList)
	}
	for i, m := range pp.Multipliers {
		mp := idx(p+".multipliers", i)
		if len(m.Days) == 0 && len(m.Hours) == 0 {
			return protocol.FieldError(mp, "a multiplier needs days or hours")
		}
		if err := validDays(mp+".days", m.Days); err != nil {
			return err
		}
		if err := validHours(mp+".hours", m.Hours); err != nil {
			return err
		}
		if err := positive(mp+".multiplier_bp", m.MultiplierBP, MaxMultiplier); err != nil {
			return err
		}
	}
	if (pp.BurnPoints == 0) != (pp.BurnValue == 0) {
		return protocol.FieldError(p+".burn_value", "burn_points and burn_value go together")
	}
	if err := amount(p+".burn_points", pp.BurnPoints, MaxPoints); err != nil {
		return err
	}
	if err := amount(p+".burn_value", pp.BurnValue, MaxAmount); err != nil {
		return err
	}
	return pp.Expiry.validate(p + ".expiry")
}

func (r *EarnRule) validate(p string) error {
	if r.ID == "" || len(r.ID) > MaxStringLen {
		return protocol.FieldError(p+".id", "id must be 1 to %d characters", MaxStringLen)
	}
	if err := positive(p+".milli_points", r.MilliPoints, MaxMilliRate); err != nil {
		return err
	}
	if r.Target != nil {
		if err := r.Target.validate(p + ".target"); err != nil {
			return err
		}
	}
	no := func(name string, set bool) error {
		if set {
			return protocol.FieldError(p+"."+name, "%s is not used by an earning rule on %s", name, r.On)
		}
		return nil
	}
	var err error
	switch r.On {
	case EarnSpend:
		err = positive(p+".per_amount", r.PerAmount, MaxAmount)
		if err == nil {
			err = no("event", r.Event != "")
		}
		if err == nil {
			err = no("min_subtotal", r.MinSubtotal != 0)
		}
	case EarnItem:
		err = no("per_amount", r.PerAmount != 0)
		if err == nil {
			err = no("event", r.Event != "")
		}
		if err == nil {
			err = no("min_subtotal", r.MinSubtotal != 0)
		}
	case EarnOrder:
		err = no("per_amount", r.PerAmount != 0)
		if err == nil {
			err = no("event", r.Event != "")
		}
		if err == nil {
			err = no("target", r.Target != nil)
		}
		if err == nil {
			err = amount(p+".min_subtotal", r.MinSubtotal, MaxAmount)
		}
	case EarnEvent:
		if r.Event == "" || len(r.Event) > MaxStringLen {
			return protocol.FieldError(p+".event", "event must be 1 to %d characters", MaxStringLen)
		}
		err = no("per_amount", r.PerAmount != 0)
		if err == nil {
			err = no("target", r.Target != nil)
		}
		if err == nil {
			err = no("min_subtotal", r.MinSubtotal != 0)
		}
	case "":
		return protocol.FieldError(p+".on", "on is required: spend, item, order or event")
	default:
		return protocol.FieldError(p+".on", "unknown trigger %q: use spend, item, order or event", r.On)
	}
	if err != nil {
		return err
	}
	if err := amount(p+".max_points", r.MaxPoints, MaxPoints); err != nil {
		return err
	}
	if err := amount(p+".period_cap", r.PeriodCap, MaxPoints); err != nil {
		return err
	}
	switch {
	case r.PeriodCap > 0 && r.Period == "":
		return protocol.FieldError(p+".period", "a period_cap needs a period: day, week, month, quarter or year")
	case r.PeriodCap == 0 && r.Period != "":
		return protocol.FieldError(p+".period", "period is only used with period_cap")
	case r.Period != "" && !validPeriod(r.Period):
		return protocol.FieldError(p+".period", "unknown period %q: use day, week, month, quarter or year", r.Period)
	}
	return nil
}

func validPeriod(p Period) bool {
	switch p {
	case PeriodDay, PeriodWeek, PeriodMonth, PeriodQuarter, PeriodYear:
		return true
	}
	return false
}

func (e *Expiry) validate(p string) error {
	switch e.Kind {
	case "", ExpiryNone:
		if !e.At.IsZero() || e.Months != 0 || e.Bucket != "" || e.Years != 0 {
			return protocol.FieldError(p+".kind", "set kind to fixed, rolling or bucketed to use the other expiry fields")
		}
	case ExpiryFixed:
		if e.At.IsZero() {
			return protocol.FieldError(p+".at", "a fixed expiry needs at")
		}
		if e.Months != 0 || e.Bucket != "" || e.Years != 0 {
			return protocol.FieldError(p, "a fixed expiry uses only at")
		}
		return wholeSeconds(p+".at", e.At)
	case ExpiryRolling:
		if e.Months < 1 || e.Months > 1200 {
			return protocol.FieldError(p+".months", "months must be between 1 and 1200")
		}
		if !e.At.IsZero() || e.Bucket != "" || e.Years != 0 {
			return protocol.FieldError(p, "a rolling expiry uses only months")
		}
	case ExpiryBucketed:
		switch e.Bucket {
		case PeriodMonth, PeriodQuarter, PeriodYear:
		default:
			return protocol.FieldError(p+".bucket", "bucket must be month, quarter or year")
		}
		if e.Years < 0 || e.Years > 100 {
			return protocol.FieldError(p+".years", "years must be between 0 and 100")
		}
		if !e.At.IsZero() || e.Months != 0 {
			return protocol.FieldError(p, "a bucketed expiry uses only bucket and years")
		}
	default:
		return protocol.FieldError(p+".kind", "unknown expiry %q: use none, fixed, rolling or bucketed", e.Kind)
	}
	return nil
}
