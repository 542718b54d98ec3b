package rules

import (
	"slices"

	"github.com/punchcard/punchcard/protocol"
)

// PayExclude is what a gift card may not pay for (issue 12, product
// restrictions): order lines of these SKUs or categories, such as other
// gift cards or tobacco. A gift card with exclusions pays at most what is
// due less the excluded lines' value before discounts: never more than
// the rule allows, though a discount on an excluded line is not given
// back to the card.
type PayExclude struct {
	SKUs       []string `json:"skus,omitempty" cbor:"1,keyasint,omitempty"`
	Categories []string `json:"categories,omitempty" cbor:"2,keyasint,omitempty"`
}

func (x *PayExclude) validate(p string) error {
	if len(x.SKUs) == 0 && len(x.Categories) == 0 {
		return protocol.FieldError(p, "an exclusion needs skus or categories")
	}
	if err := validStrings(p+".skus", x.SKUs, MaxListLen); err != nil {
		return err
	}
	return validStrings(p+".categories", x.Categories, MaxListLen)
}

// excludedValue is the value before discounts of the order's lines x
// excludes.
func excludedValue(o protocol.Order, x *PayExclude) int64 {
	var sum int64
	for _, l := range o.Lines {
		if slices.Contains(x.SKUs, l.SKU) || (l.Category != "" && slices.Contains(x.Categories, l.Category)) {
			if t, ok := l.Total(); ok {
				sum += t
			}
		}
	}
	return sum
}

// payLimit is what a gift card of c may pay of due on this order.
func (ev *evaluator) payLimit(c *Campaign, due int64) int64 {
	if c.Reward.PayExclude == nil {
		return due
	}
	return max(due-excludedValue(ev.req.Order, c.Reward.PayExclude), 0)
}
