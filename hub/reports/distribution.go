package reports

import (
	"context"
	"math"
	"sort"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// The distribution report (issue 13, Deliver 3: "redemption rate of
// distributed codes"): per campaign and per distribution, the codes and
// tokens distributions gave out in the range (by when each was made) and
// how many of those the ledger records as used now. The catalog and the
// ledger are separate databases: the catalog's codes are read a page at a
// time and looked up in the ledger by primary key, so memory stays flat
// and the cost is linear in the codes distributed in the range.

// DistributionCodes is what the distribution report reads of the
// catalog (store/catalog.Catalog).
type DistributionCodes interface {
	// EachDistributedCode calls fn with pages of the codes of campaign
	// that distributions gave out in [from, to), each with its
	// distribution.
	EachDistributedCode(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID, from, to time.Time,
		fn func(distributions []string, codes []protocol.CodeID) error) error
}

// CodesUsed is what the distribution report reads of the ledger
// (store/ledger.Ledger).
type CodesUsed interface {
	// CodesUsed calls used(i) for each codes[i] used at least once (net
	// of voided uses).
	CodesUsed(ctx context.Context, tenant protocol.TenantID, codes []protocol.CodeID, used func(i int)) error
}

// DistributionRow is one campaign's (Distribution "") or one
// distribution's figures: Distributed codes made in the range, Redeemed
// of them used at least once by now (net of rollbacks), Rate =
// Redeemed / Distributed (0 without codes), rounded to 4 decimals.
type DistributionRow struct {
	Campaign     protocol.CampaignID `json:"campaign"`
	Distribution string              `json:"distribution"`
	Distributed  int64               `json:"distributed"`
	Redeemed     int64               `json:"redeemed"`
	Rate         float64             `json:"rate"`
}

func (r *DistributionRow) setRate() {
	if r.Distributed > 0 {
		r.Rate = math.Round(float64(r.Redeemed)/float64(r.Distributed)*10000) / 10000
	}
}

// distribution runs the report over every campaign of the tenant: a
// campaign row for each campaign with codes distributed in q's range,
// followed by a row per distribution of it, by campaign and distribution.
func (s *Service) distribution(ctx context.Context, tenant protocol.TenantID, q Query) ([]DistributionRow, error) {
	dc, ok := s.cat.(DistributionCodes)
	if !ok {
		return nil, protocol.Errorf(protocol.CodeUnavailable, "this hub keeps no distributions")
	}
	cu, ok := s.led.(CodesUsed)
	if !ok {
		return nil, protocol.Errorf(protocol.CodeUnavailable, "this hub's ledger cannot count used codes")
	}
	cs, err := s.cat.Campaigns(ctx, tenant, 0)
	if err != nil {
		return nil, err
	}
	out := []DistributionRow{}
	for _, c := range cs {
		id := c.Rules.ID
		total := DistributionRow{Campaign: id}
		per := map[string]*DistributionRow{}
		err := dc.EachDistributedCode(ctx, tenant, id, q.From, q.To, func(ds []string, codes []protocol.CodeID) error {
			for _, d := range ds {
				r := per[d]
				if r == nil {
					r = &DistributionRow{Campaign: id, Distribution: d}
					per[d] = r
				}
				r.Distributed++
			}
			total.Distributed += int64(len(codes))
			return cu.CodesUsed(ctx, tenant, codes, func(i int) {
				per[ds[i]].Redeemed++
				total.Redeemed++
			})
		})
		if err != nil {
			return nil, err
		}
		if total.Distributed == 0 {
			continue
		}
		total.setRate()
		out = append(out, total)
		start := len(out)
		for _, r := range per {
			r.setRate()
			out = append(out, *r)
		}
		sort.Slice(out[start:], func(i, j int) bool { return out[start+i].Distribution < out[start+j].Distribution })
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Campaign < out[j].Campaign })
	return out, nil
}
