package cluster

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// Audit reads a hub's ledger file directly, after the hub has stopped, to
// check the guarantees from the outside: not through the hub's API, whose
// own bugs could hide a lost or doubled redemption.
type Audit struct {
	l *ledger.Ledger
}

// OpenAudit opens the ledger database at path. The hub must not be running
// (opening applies pending migrations, which writes).
func OpenAudit(ctx context.Context, path string) (*Audit, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("ledger file: %w", err)
	}
	l, err := ledger.Open(ctx, path, ledger.Options{Facts: &ledger.MemFacts{}})
	if err != nil {
		return nil, err
	}
	return &Audit{l: l}, nil
}

// Close releases the file.
func (a *Audit) Close() error { return a.l.Close() }

// Verify recomputes every balance from the journal (guarantee 6).
func (a *Audit) Verify(ctx context.Context) (ledger.Report, error) { return a.l.Verify(ctx) }

// Entry is one redemption fact in the journal.
type Entry struct {
	Agent    string
	Seq      int64
	Entry    string // redeem, rollback, earn, burn
	Store    string
	TxnID    string
	Campaign string
	Code     string
	Discount int64
	Spend    int64
	Points   int64
	Offline  bool
	Sign     int64
	HLC      uint64 // the agent's hybrid logical clock stamp (protocol/hlc)
}

// Entries returns every redemption fact of a tenant (allowance movements
// left out), ordered by agent and seq.
func (a *Audit) Entries(ctx context.Context, tenant protocol.TenantID) ([]Entry, error) {
	rows, err := a.l.DB().QueryContext(ctx, `SELECT agent, seq, entry, store, txn_id, campaign, code, discount, spend, points, offline, sign, hlc
		FROM ledger_journal WHERE tenant = ? AND seq IS NOT NULL ORDER BY agent, seq`, string(tenant))
	if err != nil {
		return nil, fmt.Errorf("audit entries: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var off, hlc int64
		if err := rows.Scan(&e.Agent, &e.Seq, &e.Entry, &e.Store, &e.TxnID, &e.Campaign, &e.Code, &e.Discount, &e.Spend, &e.Points, &off, &e.Sign, &hlc); err != nil {
			return nil, fmt.Errorf("audit entries: %w", err)
		}
		e.Offline = off != 0
		e.HLC = uint64(hlc)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Conflicts returns the recorded conflicts of a tenant as "kind code
// agent/seq" strings, oldest first.
func (a *Audit) Conflicts(ctx context.Context, tenant protocol.TenantID) ([]AuditConflict, error) {
	rows, err := a.l.DB().QueryContext(ctx, `SELECT kind, campaign, code, customer, agent, seq, COALESCE(other_agent, ''), COALESCE(other_seq, 0), detail
		FROM ledger_conflicts WHERE tenant = ? ORDER BY id`, string(tenant))
	if err != nil {
		return nil, fmt.Errorf("audit conflicts: %w", err)
	}
	defer rows.Close()
	var out []AuditConflict
	for rows.Next() {
		var c AuditConflict
		if err := rows.Scan(&c.Kind, &c.Campaign, &c.Code, &c.Customer, &c.Agent, &c.Seq, &c.OtherAgent, &c.OtherSeq, &c.Detail); err != nil {
			return nil, fmt.Errorf("audit conflicts: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// AuditConflict is one row of the conflict table.
type AuditConflict struct {
	Kind, Campaign, Code, Customer, Agent string
	Seq                                   int64
	OtherAgent                            string
	OtherSeq                              int64
	Detail                                string
}

// Campaign returns a campaign's balance.
func (a *Audit) Campaign(ctx context.Context, tenant protocol.TenantID, c protocol.CampaignID) (ledger.CampaignBalance, error) {
	return a.l.Campaign(ctx, tenant, c)
}

// Acked is one redemption the POS (or an online channel) was told
// succeeded: the fact as its receipt listed it.
type Acked struct {
	Agent    string
	Seq      int64
	Kind     string // redeem, earn, burn, rollback; "" means redeem
	TxnID    string
	Discount int64
	Spend    int64
	Points   int64
}

// CheckAcked compares what the tills were told with the journal
// (guarantee 1): every acknowledged fact (redeem, earn, ...) must be in the
// journal as the same fact (agent, seq, kind, transaction, amounts), and
// the journal must hold no other fact for those transactions (a double
// count) nor any fact the tills were never told about. It returns one line
// per violation; none means the guarantee held.
func CheckAcked(acked []Acked, entries []Entry) []string {
	type id struct {
		agent string
		seq   int64
	}
	type txn struct{ agent, txn string }
	journal := map[id]Entry{}
	for _, e := range entries {
		journal[id{e.Agent, e.Seq}] = e
	}
	var bad []string
	told := map[id]bool{}
	toldTxn := map[txn]bool{}
	for _, a := range acked {
		k := id{a.Agent, a.Seq}
		kind := a.Kind
		if kind == "" {
			kind = protocol.KindRedeem.String()
		}
		if told[k] {
			bad = append(bad, fmt.Sprintf("RECEIPT: %s/%d was reported twice to the POS", a.Agent, a.Seq))
			continue
		}
		told[k], toldTxn[txn{a.Agent, a.TxnID}] = true, true
		e, ok := journal[k]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("LOST: %s/%d (%s, txn %s) was acknowledged to the POS but is not in the ledger", a.Agent, a.Seq, kind, a.TxnID))
		case e.Entry != kind || e.TxnID != a.TxnID || e.Discount != a.Discount || e.Spend != a.Spend || e.Points != a.Points:
			bad = append(bad, fmt.Sprintf("CHANGED: %s/%d: POS was told %s txn %s discount %d spend %d points %d, ledger has %s txn %s discount %d spend %d points %d",
				a.Agent, a.Seq, kind, a.TxnID, a.Discount, a.Spend, a.Points, e.Entry, e.TxnID, e.Discount, e.Spend, e.Points))
		}
	}
	var extra []string
	for k, e := range journal {
		if told[k] {
			continue
		}
		if toldTxn[txn{e.Agent, e.TxnID}] {
			extra = append(extra, fmt.Sprintf("DOUBLE: %s/%d repeats txn %s, which the POS was told about under another seq", e.Agent, e.Seq, e.TxnID))
		} else {
			extra = append(extra, fmt.Sprintf("UNKNOWN: %s/%d (txn %s) is in the ledger but the POS never got a success for it", e.Agent, e.Seq, e.TxnID))
		}
	}
	sort.Strings(extra)
	return append(bad, extra...)
}

// Summary is a one-line description of a report, for logs.
func Summary(rep ledger.Report) string {
	if rep.OK() {
		return fmt.Sprintf("clean: %d journal entries, %d balance rows recomputed", rep.Entries, rep.Rows)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d differences:", len(rep.Diffs))
	for _, d := range rep.Diffs {
		b.WriteString("\n  " + d.String())
	}
	return b.String()
}
