package hub

import (
	"context"
	"errors"
	"log/slog"

	"github.com/punchcard/punchcard/hub/ingest"
	"github.com/punchcard/punchcard/hub/online"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/store/catalog"
)

// issuingLedger is the ledger as ingest sees it, with one step added
// before a drain is prepared: a gift card a till sold (protocol.KindIssue)
// gets its catalog code, of the fact's campaign with the fact's load as
// its balance, so that every till (through the snapshot) and the online
// channels know the card. Creating the code is idempotent (a code that
// exists is left alone, and the ledger flags a second sale,
// giftcard_reissued), and it happens before the fact is applied and
// acknowledged: a hub that stops in between creates it again when the
// till resends. A fact whose campaign is not a gift card campaign of the
// same currency creates nothing (re-derivation flags it).
type issuingLedger struct {
	ingest.Ledger
	cat      *catalog.Catalog
	announce func(protocol.TenantID, uint64)
	log      *slog.Logger
}

func (l issuingLedger) PrepareDrain(ctx context.Context, bs []ledger.Batch, inflight ledger.Prepared) (ledger.Prepared, error) {
	for _, b := range bs {
		for i, r := range b.Redemptions {
			if r.Kind != protocol.KindIssue || (i < len(b.Malformed) && b.Malformed[i] != nil) {
				continue
			}
			if err := l.issue(ctx, b.Tenant, b.Agent, r); err != nil {
				return nil, err
			}
		}
	}
	return l.Ledger.PrepareDrain(ctx, bs, inflight)
}

func (l issuingLedger) issue(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, r protocol.Redemption) error {
	if r.ValidateFrom(tenant, agent) != nil {
		return nil // quarantined by the ledger
	}
	if _, err := l.cat.Code(ctx, tenant, string(r.Code)); err == nil {
		return nil // already a card: created by an earlier try, or sold twice
	} else if protocol.ErrorCode(err) != protocol.CodeNotFound {
		return err
	}
	cp, err := l.cat.Campaign(ctx, tenant, r.Campaign)
	if protocol.ErrorCode(err) == protocol.CodeNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if cp.Rules.Reward.Kind != rules.RewardGiftCard || cp.Rules.Currency != r.Currency {
		return nil
	}
	if _, err := l.cat.ImportCodes(ctx, catalog.System, tenant, r.Campaign, []string{string(r.Code)}, online.CardSpec(cp.Rules.Reward.MultiUse, r.Load)); err != nil {
		if pe := (*protocol.Error)(nil); errors.As(err, &pe) {
			l.log.Warn("gift card sold at a till not added", "tenant", tenant, "agent", agent, "seq", r.ID.Seq, "err", err)
			return nil
		}
		return err
	}
	if v, err := l.cat.Version(ctx, tenant); err == nil && l.announce != nil {
		l.announce(tenant, v)
	}
	return nil
}
