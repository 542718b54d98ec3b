package protocol

// Period caps on earning (issue 12, item 3). A points program's earning
// rule may cap what one customer earns per calendar period ("10 points a
// day"). The cap holds across orders because every earn of a capped rule
// names the rule and the period it counts in (Redemption.Cap): the hub's
// ledger keeps each customer's total per rule and period, and a decision
// (hub, online till, offline till) asks for it through the decision
// pipeline's Source. The period's start is computed once, where the earn
// is decided, in the time zone of the store of the sale.

// EarnCap names the period-capped earning rule an earn counts against,
// or, on a redeem (Rule ""), the campaign's limit of redemptions per
// customer and period (limits.per_customer_period).
type EarnCap struct {
	Rule   string `json:"rule" cbor:"1,keyasint"`
	Period string `json:"period" cbor:"2,keyasint"` // day, week, month, quarter or year
	// Start is the period's first instant, Unix seconds (the store's
	// calendar: rules.PeriodStart).
	Start int64 `json:"start" cbor:"3,keyasint"`
	// Limit is the rule's cap per customer and period, in points: the
	// hub's online writer clamps an earn to it, and an offline till's earn
	// beyond it is recorded with a conflict (earn_cap_exceeded).
	Limit int64 `json:"limit" cbor:"4,keyasint"`
}

// PeriodKey names one customer's total of one capped rule in one period.
type PeriodKey struct {
	Campaign CampaignID `json:"campaign" cbor:"1,keyasint"`
	Rule     string     `json:"rule" cbor:"2,keyasint"`
	Period   string     `json:"period" cbor:"3,keyasint"`
	Start    int64      `json:"start" cbor:"4,keyasint"`
}

// SaleEarned is what a till counted as already earned by the customer in
// a capped rule's current period when it decided (Sale.Earned), so that
// the hub re-derives the same capped points.
type SaleEarned struct {
	Campaign CampaignID `json:"campaign" cbor:"1,keyasint"`
	Rule     string     `json:"rule" cbor:"2,keyasint"`
	Points   int64      `json:"points" cbor:"3,keyasint"`
}

// MaxEarnCaps bounds Sale.Earned.
const MaxEarnCaps = 64

func (c *EarnCap) validate(redeem bool) error {
	if redeem && c.Rule != "" {
		return FieldError("cap.rule", "a redeem's period cap names no rule")
	}
	if !redeem && (c.Rule == "" || len(c.Rule) > MaxIDLen) {
		return FieldError("cap.rule", "rule must be 1 to %d bytes", MaxIDLen)
	}
	switch c.Period {
	case "day", "week", "month", "quarter", "year":
	default:
		return FieldError("cap.period", "unknown period %q", c.Period)
	}
	if c.Start <= 0 || c.Start > 1<<40 {
		return FieldError("cap.start", "period start is out of range")
	}
	if c.Limit <= 0 || c.Limit > MaxAmount {
		return FieldError("cap.limit", "cap must be between 1 and 2^50")
	}
	return nil
}

func validateSaleEarned(es []SaleEarned) error {
	if len(es) > MaxEarnCaps {
		return FieldError("sale.earned", "a sale has at most %d earned figures", MaxEarnCaps)
	}
	for i, e := range es {
		if e.Points < 0 || e.Points > MaxAmount {
			return FieldError("sale.earned["+itoa(i)+"].points", "points must be between 0 and 2^50")
		}
		if len(e.Rule) > MaxIDLen {
			return FieldError("sale.earned["+itoa(i)+"].rule", "rule must be 1 to %d bytes", MaxIDLen)
		}
	}
	return nil
}
