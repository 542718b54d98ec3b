package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Batch is one agent's batch of redemptions, as received.
type Batch struct {
	Tenant      protocol.TenantID
	Agent       protocol.AgentID
	Redemptions []protocol.Redemption
}

// Result is what applying one Batch gave: the Ack to send back, the
// conflicts found, and Err when the batch was refused as a whole (it named
// another tenant or agent, or held an invalid redemption) without being
// recorded.
type Result struct {
	Ack       protocol.Ack
	Conflicts []Conflict
	Err       error
}

// ApplyBatch records an agent's redemptions. Each (agent, seq) is applied
// once; a repeated one is a no-op. Seqs beyond a gap are recorded too and
// listed in Ack.Beyond; Gap(ack) gives the Resend to ask for. A batch that
// speaks for another tenant or agent, or holds an invalid redemption, is
// refused with CodeForbidden or CodeInvalidInput and nothing is recorded.
func (l *Ledger) ApplyBatch(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, rs []protocol.Redemption) (protocol.Ack, []Conflict, error) {
	res, err := l.ApplyBatches(ctx, []Batch{{Tenant: tenant, Agent: agent, Redemptions: rs}})
	if err != nil {
		return protocol.Ack{}, nil, err
	}
	return res[0].Ack, res[0].Conflicts, res[0].Err
}

// ApplyBatches applies several batches (of any agents) in one transaction,
// so that ingest can amortize a commit over many MQTT messages. Results are
// in the order of bs. A returned error means nothing was recorded.
func (l *Ledger) ApplyBatches(ctx context.Context, bs []Batch) ([]Result, error) {
	res := make([]Result, len(bs))
	for i, b := range bs {
		res[i].Err = validateBatch(b)
	}
	facts, err := l.lookupFacts(ctx, bs, res)
	if err != nil {
		return nil, err
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap("apply: begin", err)
	}
	defer tx.Rollback()
	s := l.newState(ctx, tx)
	defer s.close()
	now := l.now()
	for i, b := range bs {
		if res[i].Err != nil {
			continue
		}
		if err := s.prefetch(b.Tenant, b.Agent, b.Redemptions); err != nil {
			return nil, wrap("apply", err)
		}
		for _, r := range b.Redemptions {
			cs, _, err := l.applyOne(s, facts, r, now)
			if err != nil {
				return nil, wrap("apply", err)
			}
			res[i].Conflicts = append(res[i].Conflicts, cs...)
		}
	}
	if err := s.flush(); err != nil {
		return nil, wrap("apply", err)
	}
	acks := map[key2]protocol.Ack{} // once per agent, after all its batches
	for i, b := range bs {
		if res[i].Err != nil {
			continue
		}
		k := key2{string(b.Tenant), string(b.Agent)}
		ack, ok := acks[k]
		if !ok {
			if ack, err = advanceWatermark(ctx, tx, b.Tenant, b.Agent, now); err != nil {
				return nil, wrap("apply: watermark", err)
			}
			acks[k] = ack
		}
		res[i].Ack = ack
	}
	if err := tx.Commit(); err != nil {
		return nil, wrap("apply: commit", err)
	}
	return res, nil
}

func validateBatch(b Batch) error {
	if err := protocol.ValidateID("tenant", string(b.Tenant)); err != nil {
		return err
	}
	if err := protocol.ValidateID("agent", string(b.Agent)); err != nil {
		return err
	}
	if b.Agent == protocol.HubSender {
		return protocol.Errorf(protocol.CodeForbidden, "agent id %q is reserved for the hub", b.Agent)
	}
	for i, r := range b.Redemptions {
		if err := validateRedemption(r); err != nil {
			return fmt.Errorf("redemption %d: %w", i, err)
		}
		if r.Tenant != b.Tenant || r.ID.Agent != b.Agent {
			return protocol.Errorf(protocol.CodeForbidden, "redemption %s of tenant %q arrived from agent %q of tenant %q", r.ID, r.Tenant, b.Agent, b.Tenant)
		}
	}
	return nil
}

// MaxCodeLen bounds a code or token serial in a redemption.
const MaxCodeLen = 128

func validateRedemption(r protocol.Redemption) error {
	if r.ID.Seq == 0 || r.ID.Seq > 1<<62 {
		return protocol.FieldError("id.seq", "seq must be between 1 and 2^62")
	}
	if r.Kind < protocol.KindRedeem || r.Kind > protocol.KindBurn {
		return protocol.FieldError("kind", "unknown redemption kind %d", r.Kind)
	}
	if r.Campaign != "" {
		if err := protocol.ValidateID("campaign", string(r.Campaign)); err != nil {
			return err
		}
	}
	if r.Customer != "" {
		if err := protocol.ValidateID("customer", string(r.Customer)); err != nil {
			return err
		}
	}
	if len(r.Code) > MaxCodeLen || len(r.Store) > protocol.MaxIDLen || len(r.TxnID) > MaxCodeLen || len(r.OrderID) > MaxCodeLen {
		return protocol.FieldError("code", "an identifier is too long")
	}
	const maxAmount = 1 << 50
	if r.Discount < 0 || r.Discount > maxAmount || r.Spend < 0 || r.Spend > maxAmount || r.OrderTot < 0 || r.OrderTot > maxAmount ||
		r.Points < -maxAmount || r.Points > maxAmount {
		return protocol.FieldError("discount", "an amount is out of range")
	}
	if r.HLC > 1<<63-1 {
		return protocol.FieldError("hlc", "hlc is out of range")
	}
	if r.Kind == protocol.KindRollback && (r.Ref == nil || r.Ref.Seq == 0 || r.Ref.Agent == "") {
		return protocol.FieldError("ref", "a rollback names the redemption it voids")
	}
	if r.Ref != nil && r.Ref.Seq > 1<<62 {
		return protocol.FieldError("ref.seq", "ref seq is out of range")
	}
	return nil
}

// factSet holds facts looked up before the write lock is taken.
type factSet struct {
	camps map[key2]CampaignFacts // missing: unknown campaign
	codes map[key2]CodeFacts
}

func (l *Ledger) lookupFacts(ctx context.Context, bs []Batch, res []Result) (factSet, error) {
	fs := factSet{camps: map[key2]CampaignFacts{}, codes: map[key2]CodeFacts{}}
	seenC, seenK := map[key2]bool{}, map[key2]bool{}
	for i, b := range bs {
		if res != nil && res[i].Err != nil {
			continue
		}
		for _, r := range b.Redemptions {
			if err := fs.add(ctx, l.facts, r, seenC, seenK); err != nil {
				return fs, err
			}
		}
	}
	return fs, nil
}

func (fs factSet) add(ctx context.Context, f Facts, r protocol.Redemption, seenC, seenK map[key2]bool) error {
	if r.Campaign != "" {
		k := key2{string(r.Tenant), string(r.Campaign)}
		if !seenC[k] {
			seenC[k] = true
			cf, ok, err := f.CampaignFacts(ctx, r.Tenant, r.Campaign)
			if err != nil {
				return fmt.Errorf("ledger: campaign facts %s: %w", r.Campaign, err)
			}
			if ok {
				fs.camps[k] = cf
			}
		}
	}
	if r.Code != "" {
		k := key2{string(r.Tenant), string(r.Code)}
		if !seenK[k] {
			seenK[k] = true
			cf, ok, err := f.CodeFacts(ctx, r.Tenant, r.Code)
			if err != nil {
				return fmt.Errorf("ledger: code facts %s: %w", r.Code, err)
			}
			if ok {
				fs.codes[k] = cf
			}
		}
	}
	return nil
}

// signs decides the effect of r on the count balances and on points; see
// the sign and psign columns.
func signs(s *state, r protocol.Redemption) (sign, psign int64, err error) {
	switch r.Kind {
	case protocol.KindRedeem:
		return 1, 1, nil
	case protocol.KindEarn, protocol.KindBurn:
		return 0, 1, nil
	}
	// A rollback voids its Ref once; a repeated rollback changes nothing.
	if err := s.flushJournal(); err != nil {
		return 0, 0, err
	}
	var n int64
	err = s.tx.QueryRowContext(s.ctx, `SELECT COUNT(*) FROM ledger_journal WHERE tenant = ? AND ref_agent = ? AND ref_seq = ? AND psign != 0`,
		string(r.Tenant), string(r.Ref.Agent), int64(r.Ref.Seq)).Scan(&n)
	if err != nil {
		return 0, 0, err
	}
	if n > 0 {
		return 0, 0, nil
	}
	var entry string
	err = s.tx.QueryRowContext(s.ctx, `SELECT entry FROM ledger_journal WHERE tenant = ? AND agent = ? AND seq = ?`,
		string(r.Tenant), string(r.Ref.Agent), int64(r.Ref.Seq)).Scan(&entry)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// The original has not arrived yet (or came another way): the
		// rollback carries the original's fields, so it voids a redeem.
		return -1, -1, nil
	case err != nil:
		return 0, 0, err
	case entry == entryName(protocol.KindRedeem):
		return -1, -1, nil
	case entry == entryName(protocol.KindEarn) || entry == entryName(protocol.KindBurn):
		return 0, -1, nil
	}
	return 0, 0, nil // a rollback of a rollback changes nothing
}

func entryName(k protocol.RedemptionKind) string { return k.String() }

// journalColumns are the columns of a redemption row, in insert order.
const journalColumns = `tenant, entry, agent, seq, store, txn_id, campaign, code, customer, order_id, currency,
	discount, spend, points, order_total, hlc, offline, ref_agent, ref_seq, snapshot, sign, psign, received_at`

const journalArity = 23

// journalChunk is how many rows one multi-row INSERT carries: the
// per-statement cost of database/sql and the driver is paid once per chunk.
const journalChunk = 32

// insertJournalN is the INSERT of n rows.
func insertJournalN(n int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", journalArity), ", ") + ")"
	rows := strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
	return "INSERT INTO ledger_journal (" + journalColumns + ") VALUES " + rows + " ON CONFLICT DO NOTHING"
}

// applyOne records r and updates the balances in s. It returns false for a
// redemption already recorded. The journal row is buffered in s and
// written by s.flushJournal, before any query that must see it.
func (l *Ledger) applyOne(s *state, facts factSet, r protocol.Redemption, now time.Time) ([]Conflict, bool, error) {
	dup, err := s.recorded(r.Tenant, r.ID)
	if err != nil || dup {
		return nil, false, err
	}
	sign, psign, err := signs(s, r)
	if err != nil {
		return nil, false, err
	}
	var refAgent, refSeq any
	if r.Ref != nil {
		refAgent, refSeq = string(r.Ref.Agent), int64(r.Ref.Seq)
	}
	s.queueJournal(string(r.Tenant), entryName(r.Kind), string(r.ID.Agent), int64(r.ID.Seq), string(r.Store), r.TxnID,
		string(r.Campaign), string(r.Code), string(r.Customer), r.OrderID, string(r.Currency),
		r.Discount, r.Spend, r.Points, r.OrderTot, int64(r.HLC), r.Offline, refAgent, refSeq, int64(r.Snapshot), sign, psign, micros(now))

	var cs []Conflict
	conflict := func(kind ConflictKind, other *protocol.RedemptionID, format string, args ...any) {
		cs = append(cs, Conflict{Tenant: r.Tenant, Kind: kind, Campaign: r.Campaign, Code: r.Code, Customer: r.Customer,
			Redemption: r.ID, Other: other, Detail: fmt.Sprintf(format, args...), At: now})
	}
	cf, campKnown := facts.camps[key2{string(r.Tenant), string(r.Campaign)}]
	kf, codeKnown := facts.codes[key2{string(r.Tenant), string(r.Code)}]

	if r.HLC != 0 && l.hlcTime(r.HLC).After(now.Add(MaxClockSkew)) {
		conflict(ConflictFutureTime, nil, "redemption time %s is ahead of the hub's %s", l.hlcTime(r.HLC).UTC().Format(timeFormat), now.UTC().Format(timeFormat))
	}
	if sign > 0 && campKnown && !cf.StoppedAt.IsZero() {
		if at := l.hlcTime(r.HLC); !at.Before(cf.StoppedAt) {
			conflict(ConflictAfterKillSwitch, nil, "redeemed at %s, campaign stopped at %s", at.UTC().Format(timeFormat), cf.StoppedAt.UTC().Format(timeFormat))
		}
	}
	if r.Campaign != "" && sign != 0 {
		c, err := s.campaign(r.Tenant, r.Campaign)
		if err != nil {
			return nil, false, err
		}
		c.v.count += sign
		c.v.discount += sign * r.Discount
		c.v.orderValue += sign * r.OrderTot
		if r.ID.Agent != protocol.HubSender {
			a, err := s.allowance(r.Tenant, r.ID.Agent, r.Campaign)
			if err != nil {
				return nil, false, err
			}
			if sign > 0 && campKnown && cf.Limited() {
				switch {
				case cf.MaxCount > 0 && a.v.outstandingCount() < 1:
					conflict(ConflictAllowanceOverrun, nil, "agent had %d redemptions of allowance left", max(0, a.v.outstandingCount()))
				case cf.MaxDiscount > 0 && a.v.outstandingAmount() < r.Discount:
					conflict(ConflictAllowanceOverrun, nil, "discount %d beyond the agent's remaining allowance of %d", r.Discount, max(0, a.v.outstandingAmount()))
				}
			}
			a.v.usedCount += sign
			a.v.usedAmount += sign * r.Discount
		}
	}
	if r.Code != "" && sign != 0 {
		c, err := s.code(r.Tenant, r.Code)
		if err != nil {
			return nil, false, err
		}
		c.v += sign
		if sign > 0 && codeKnown && kf.MaxUses > 0 && c.v > kf.MaxUses && !kf.GiftCard {
			other, err := l.otherSide(s, r, `code = ? AND entry = 'redeem'`, string(r.Code))
			if err != nil {
				return nil, false, err
			}
			conflict(ConflictCodeReused, other, "code allows %d uses, this is use %d", kf.MaxUses, c.v)
		}
		if r.Spend != 0 {
			g, err := s.card(r.Tenant, r.Code)
			if err != nil {
				return nil, false, err
			}
			g.v += sign * r.Spend
			if sign > 0 && codeKnown && kf.GiftCard && g.v > kf.InitialBalance {
				other, err := l.otherSide(s, r, `code = ? AND spend > 0 AND sign > 0`, string(r.Code))
				if err != nil {
					return nil, false, err
				}
				conflict(ConflictGiftCardOverdraw, other, "gift card of %d spent to %d", kf.InitialBalance, g.v)
			}
		}
	}
	if r.Customer != "" && r.Campaign != "" && sign != 0 {
		c, err := s.customerCampaign(r.Tenant, r.Customer, r.Campaign)
		if err != nil {
			return nil, false, err
		}
		c.v += sign
		if sign > 0 && campKnown && cf.PerCustomer > 0 && c.v > cf.PerCustomer {
			other, err := l.otherSide(s, r, `customer = ? AND campaign = ? AND sign > 0`, string(r.Customer), string(r.Campaign))
			if err != nil {
				return nil, false, err
			}
			conflict(ConflictCustomerLimit, other, "customer limit is %d, this is redemption %d", cf.PerCustomer, c.v)
		}
	}
	if r.Customer != "" && r.Points != 0 && psign != 0 {
		c, err := s.customer(r.Tenant, r.Customer)
		if err != nil {
			return nil, false, err
		}
		c.v += psign * r.Points
		if psign > 0 && r.Points < 0 && c.v < 0 {
			conflict(ConflictPointsOverdrawn, nil, "points balance went to %d", c.v)
		}
	}
	for i := range cs {
		if cs[i].ID, err = insertConflict(s, cs[i]); err != nil {
			return nil, false, err
		}
	}
	return cs, true, nil
}

// otherSide finds the most recent earlier redemption matching cond, the
// other side of a conflict.
func (l *Ledger) otherSide(s *state, r protocol.Redemption, cond string, args ...any) (*protocol.RedemptionID, error) {
	if err := s.flushJournal(); err != nil {
		return nil, err
	}
	q := `SELECT agent, seq FROM ledger_journal WHERE tenant = ? AND ` + cond + ` AND seq IS NOT NULL AND NOT (agent = ? AND seq = ?) ORDER BY id DESC LIMIT 1`
	all := append([]any{string(r.Tenant)}, args...)
	all = append(all, string(r.ID.Agent), int64(r.ID.Seq))
	var agent string
	var seq int64
	err := s.tx.QueryRowContext(s.ctx, q, all...).Scan(&agent, &seq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &protocol.RedemptionID{Agent: protocol.AgentID(agent), Seq: uint64(seq)}, nil
}

func insertConflict(s *state, c Conflict) (int64, error) {
	var oa, os any
	if c.Other != nil {
		oa, os = string(c.Other.Agent), int64(c.Other.Seq)
	}
	res, err := s.tx.ExecContext(s.ctx, `INSERT INTO ledger_conflicts (tenant, kind, campaign, code, customer, agent, seq, other_agent, other_seq, detail, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, string(c.Tenant), string(c.Kind), string(c.Campaign), string(c.Code), string(c.Customer),
		string(c.Redemption.Agent), int64(c.Redemption.Seq), oa, os, c.Detail, micros(c.At))
	if err != nil {
		return 0, fmt.Errorf("conflict: %w", err)
	}
	return res.LastInsertId()
}

// advanceWatermark moves the agent's contiguous watermark over every seq
// now recorded and returns the Ack: the watermark and the seqs recorded
// beyond it (at most MaxAckBeyond).
func advanceWatermark(ctx context.Context, tx *sql.Tx, t protocol.TenantID, a protocol.AgentID, now time.Time) (protocol.Ack, error) {
	var wm int64
	err := tx.QueryRowContext(ctx, `SELECT watermark FROM ledger_agents WHERE tenant = ? AND agent = ?`, string(t), string(a)).Scan(&wm)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return protocol.Ack{}, err
	}
	orig := wm
	var beyond []uint64
	for {
		rows, err := tx.QueryContext(ctx, `SELECT seq FROM ledger_journal WHERE tenant = ? AND agent = ? AND seq > ? ORDER BY seq LIMIT 4096`, string(t), string(a), wm)
		if err != nil {
			return protocol.Ack{}, err
		}
		n, contiguous := 0, true
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				rows.Close()
				return protocol.Ack{}, err
			}
			n++
			if contiguous && seq == wm+1 {
				wm = seq
				continue
			}
			contiguous = false
			if len(beyond) < MaxAckBeyond {
				beyond = append(beyond, uint64(seq))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return protocol.Ack{}, err
		}
		if !contiguous || n < 4096 {
			break
		}
	}
	if wm != orig {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_agents (tenant, agent, watermark, seen_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (tenant, agent) DO UPDATE SET watermark = excluded.watermark, seen_at = excluded.seen_at`,
			string(t), string(a), wm, micros(now)); err != nil {
			return protocol.Ack{}, err
		}
	}
	sort.Slice(beyond, func(i, j int) bool { return beyond[i] < beyond[j] })
	return protocol.Ack{Watermark: uint64(wm), Beyond: beyond}, nil
}
