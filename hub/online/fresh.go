package online

import (
	"context"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/rules"
)

// A till's snapshot lags the hub: a gift card sold at another till a
// minute ago, a code generated or imported, a referral code made since
// the till's last snapshot. Online, the till names the presented things
// its snapshot does not resolve (decide.AuthorizeRequest.Unknown) and the
// hub answers the record of each it knows and applies
// (decide.AuthorizeResponse.Codes), so the till decides with its own
// pipeline and records its fact as usual instead of refusing code_unknown
// a code the hub would take (docs/design.md, "A code newer than the
// till's snapshot").

// checkUnknown refuses an Unknown that names no presented thing or one
// twice. Reason codes: invalid_input (field "unknown").
func checkUnknown(in decide.AuthorizeRequest) error {
	if len(in.Unknown) == 0 {
		return nil
	}
	if len(in.Unknown) > len(in.Redeemables) {
		return protocol.FieldError("unknown", "more unknown indexes than redeemables")
	}
	seen := make(map[int]bool, len(in.Unknown))
	for _, i := range in.Unknown {
		if i < 0 || i >= len(in.Redeemables) || seen[i] {
			return protocol.FieldError("unknown", "index %d names no redeemable, or names one twice", i)
		}
		seen[i] = true
	}
	return nil
}

// unknownCodes are the records of the codes the till named Unknown that
// the hub resolved to a plain code or gift card and applied: a record of
// one the hub refuses adds nothing (the till takes the hub's refusal,
// agent hubRefusals). It reads the catalog again only for those, so a
// till that knows its codes costs nothing more.
func unknownCodes(ctx context.Context, f *Facts, in decide.AuthorizeRequest, out *decide.Outcome) ([]decide.HubCode, error) {
	var codes []decide.HubCode
	for _, i := range in.Unknown {
		if i >= len(out.Items) {
			continue
		}
		it := out.Items[i]
		if it.Refused != nil || (it.Kind != rules.RedeemCode && it.Kind != rules.RedeemGiftCard) || !applied(out.Decision, i) {
			continue
		}
		c, ok, err := f.Code(ctx, it.Code)
		if err != nil {
			return nil, err
		}
		if ok {
			codes = append(codes, decide.HubCodeOf(i, c))
		}
	}
	return codes, nil
}

// applied reports whether the presented thing at index i applies.
func applied(d rules.Decision, i int) bool {
	for _, r := range d.Results {
		if r.Index == i {
			return r.Applied
		}
	}
	return false
}
