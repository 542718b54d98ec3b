package rules

import "fmt"

// StandaloneVerdictsForTest checks, for every campaign of req's tenant
// that is not a payment, that verdict (where it can tell) says what effect
// says on the initial order, quiet and not: the code and the message. It
// returns the first difference, "" when none, and how many campaigns
// verdict decided.
func StandaloneVerdictsForTest(cat *Catalog, req Request) (string, int) {
	b := scratchPool.Get().(*scratch)
	defer b.release()
	b.req = req
	ev := evaluator{cat: cat, req: &b.req, buf: b, list: cat.list}
	ev.d.Results = b.results[:0]
	if err := ev.prepare(); err != nil {
		return "", 0
	}
	decided := 0
	for _, cc := range cat.list {
		if cc.c.Tenant != req.Tenant || cc.phase == phasePayment {
			continue
		}
		for _, quiet := range []bool{false, true} {
			ev.quiet = quiet
			code, msg, ok := ev.verdict(cc)
			if !ok {
				continue
			}
			decided++
			ev.quiet = quiet
			_, _, wcode, wmsg := ev.effect(cc, ev.initial, ev.req.Order.Shipping, true)
			if code != wcode || msg != wmsg {
				return fmt.Sprintf("campaign %s (%s, quiet %v): verdict %q %q, effect %q %q", cc.c.ID, cc.c.Reward.Kind, quiet, code, msg, wcode, wmsg), decided
			}
		}
	}
	return "", decided
}
