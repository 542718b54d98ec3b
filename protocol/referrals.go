package protocol

import (
	"fmt"
	"net/http"
)

// Referral programs (issue 12, Deliver 6). A referral program is a kind of
// campaign: a code campaign whose Referral is set (rules.Campaign.Referral).
// Its reward is what the referee (the new customer) gets, decided by the
// rules engine like any campaign's (the till's, the hub's and the
// re-derivation's answer alike); its eligibility carries the qualifying
// purchase (min_subtotal). Each referrer gets one plain code of the
// campaign (the referral code, owned by the referrer: CodeFacts.Referrer).
// The referrer's reward, points, is given by the ledger in the
// transaction that records the referee's purchase, exactly once.

// Referral is a referral campaign's program: what the referrer earns and
// how many referees a referrer may bring.
type Referral struct {
	// ReferrerPoints are the points the referrer earns per referee, as one
	// points lot (never expiring) in the ledger.
	ReferrerPoints int64 `json:"referrer_points" cbor:"1,keyasint"`
	// PointsCampaign is the points program the referrer's lot belongs to
	// (the lot's campaign); empty = none named.
	PointsCampaign CampaignID `json:"points_campaign,omitempty" cbor:"2,keyasint,omitempty"`
	// MaxReferees caps the referees one referrer is rewarded for in total;
	// 0 = unlimited.
	MaxReferees int64 `json:"max_referees,omitempty" cbor:"3,keyasint,omitempty"`
	// MaxPerPeriod caps the referees one referrer is rewarded for in the
	// last PeriodDays days (a rolling window); 0 = unlimited.
	MaxPerPeriod int64 `json:"max_per_period,omitempty" cbor:"4,keyasint,omitempty"`
	// PeriodDays is the window of MaxPerPeriod in days; 0 = DefaultReferralPeriodDays.
	PeriodDays int64 `json:"period_days,omitempty" cbor:"5,keyasint,omitempty"`
	// SameAttributes are customer attribute keys (an e-mail hash, a
	// payment card's fingerprint, a device ID) whose values must differ
	// between referee and referrer: a referee who shares one with the
	// referrer is refused as a self-referral.
	SameAttributes []string `json:"same_attributes,omitempty" cbor:"6,keyasint,omitempty"`
}

// MaxSameAttributes bounds Referral.SameAttributes.
const MaxSameAttributes = 8

// SharedAttribute is the first of keys whose value is set and equal in a
// and b (the referee's and the referrer's attributes); "" when none.
func SharedAttribute(keys []string, a, b map[string]string) string {
	for _, k := range keys {
		if v := a[k]; v != "" && v == b[k] {
			return k
		}
	}
	return ""
}

// DefaultReferralPeriodDays is Referral.PeriodDays when not set.
const DefaultReferralPeriodDays = 30

// MaxReferralPoints bounds Referral.ReferrerPoints.
const MaxReferralPoints = 1_000_000

// Period is the rolling window of MaxPerPeriod in days.
func (r Referral) Period() int64 {
	if r.PeriodDays <= 0 {
		return DefaultReferralPeriodDays
	}
	return r.PeriodDays
}

// Validate checks a program; field names are under "referral".
func (r Referral) Validate() error {
	switch {
	case r.ReferrerPoints < 0 || r.ReferrerPoints > MaxReferralPoints:
		return FieldError("referral.referrer_points", "referrer_points must be 0..%d", MaxReferralPoints)
	case r.MaxReferees < 0:
		return FieldError("referral.max_referees", "max_referees must not be negative (0 = unlimited)")
	case r.MaxPerPeriod < 0:
		return FieldError("referral.max_per_period", "max_per_period must not be negative (0 = unlimited)")
	case r.PeriodDays < 0 || r.PeriodDays > 3660:
		return FieldError("referral.period_days", "period_days must be 0..3660 (0 = %d)", DefaultReferralPeriodDays)
	}
	if len(r.SameAttributes) > MaxSameAttributes {
		return FieldError("referral.same_attributes", "at most %d attributes", MaxSameAttributes)
	}
	for i, k := range r.SameAttributes {
		if k == "" || len(k) > 64 {
			return FieldError(fmt.Sprintf("referral.same_attributes[%d]", i), "an attribute key has 1 to 64 characters")
		}
	}
	if r.PointsCampaign != "" {
		if err := ValidateID("referral.points_campaign", string(r.PointsCampaign)); err != nil {
			e := *PublicError(err)
			e.Field = "referral.points_campaign"
			return &e
		}
	}
	return nil
}

// ReferralFacts is what the hub knows of one referral when a referee
// presents a referral code: who owns the code and what the referee and
// the referrer did before. A till cannot know them (it decides a referral
// offline within its envelope, and the hub checks at ingest).
type ReferralFacts struct {
	// Referrer owns the code; empty when the code is not a referral code.
	Referrer CustomerID
	// RefereeOrders are the referee's purchases before this one (the
	// purchase history).
	RefereeOrders int64
	// RefereeReferred: the referee was already rewarded as someone's
	// referee.
	RefereeReferred bool
	// Shared is an attribute of Referral.SameAttributes the referee shares
	// with the referrer (SharedAttribute); "" when none.
	Shared string
	// ReferrerTotal and ReferrerPeriod are the referees the referrer was
	// rewarded for, in total and in the program's current window.
	ReferrerTotal, ReferrerPeriod int64
}

// CheckReferral is the referral guard, one for the hub's decision and its
// ingest of a till's fact: nil when referee may use the referral code of
// the program p, else the refusal. Reason codes: referral_needs_customer,
// code_unknown (no referrer), self_referral, referee_not_new,
// already_referred, referral_limit_reached.
func CheckReferral(p Referral, referee CustomerID, f ReferralFacts) *Error {
	switch {
	case referee == "":
		return NewError(CodeReferralCustomer)
	case f.Referrer == "":
		return Errorf(CodeUnknownCode, "this referral code belongs to no customer")
	case f.Referrer == referee:
		return NewError(CodeSelfReferral)
	case f.Shared != "":
		return Errorf(CodeSelfReferral, "the customer shares %s with the referrer: customers cannot use their own referral code", f.Shared)
	case f.RefereeOrders > 0:
		return NewError(CodeRefereeNotNew)
	case f.RefereeReferred:
		return NewError(CodeAlreadyReferred)
	case p.MaxReferees > 0 && f.ReferrerTotal >= p.MaxReferees:
		return Errorf(CodeReferralLimit, "this referrer has brought %d customers, the most the program rewards", f.ReferrerTotal)
	case p.MaxPerPeriod > 0 && f.ReferrerPeriod >= p.MaxPerPeriod:
		return Errorf(CodeReferralLimit, "this referrer has brought %d customers in the last %d days, the most the program rewards", f.ReferrerPeriod, p.Period())
	}
	return nil
}

// Referral reason codes.
const (
	CodeReferralCustomer Code = "referral_needs_customer"
	CodeSelfReferral     Code = "self_referral"
	CodeRefereeNotNew    Code = "referee_not_new"
	CodeAlreadyReferred  Code = "already_referred"
	CodeReferralLimit    Code = "referral_limit_reached"
	CodeNotReferral      Code = "not_a_referral_program"
)

func init() {
	codes[CodeReferralCustomer] = codeInfo{http.StatusUnprocessableEntity, "A referral code needs the customer who is buying."}
	codes[CodeSelfReferral] = codeInfo{http.StatusUnprocessableEntity, "Customers cannot use their own referral code."}
	codes[CodeRefereeNotNew] = codeInfo{http.StatusUnprocessableEntity, "Referral codes are for a customer's first purchase."}
	codes[CodeAlreadyReferred] = codeInfo{http.StatusUnprocessableEntity, "This customer has already used a referral code."}
	codes[CodeReferralLimit] = codeInfo{http.StatusUnprocessableEntity, "This referral code has reached its limit."}
	codes[CodeNotReferral] = codeInfo{http.StatusUnprocessableEntity, "This campaign is not a referral program."}
}
