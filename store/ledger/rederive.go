package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/token"
)

// ConflictEffectMismatch flags a till's fact whose discount or points the
// rules do not give: the hub re-ran the decision on the sale the fact
// carries, with the rules version the till used, and got another effect
// (or none, or the fact carries no sale to re-run). The fact is recorded
// all the same; the conflict names the till and the fact.
const ConflictEffectMismatch ConflictKind = "effect_mismatch"

// Rules is what re-deriving a till's decision needs of the catalog, in
// the decision pipeline's types (protocol/decide); store/catalog
// implements it. Re-derivation runs the same pipeline as the till and the
// hub's online API (decide.Decide), over a decide.Source that answers from
// these and from the figures the fact itself carries (factSource). Without
// it (Options.Rules nil) the ledger takes a till's effects as reported.
type Rules interface {
	// RulesAt returns the tenant's rules as of catalog version v; found is
	// false for a version the hub never had or no longer holds.
	RulesAt(ctx context.Context, tenant protocol.TenantID, v uint64) (rs *decide.Rules, found bool, err error)
	// PresentedCode is a plain code or gift card as the hub knows it;
	// found is false for a code the hub never had.
	PresentedCode(ctx context.Context, tenant protocol.TenantID, key protocol.CodeID) (c decide.Code, found bool, err error)
	// TokenText is the text of a token the hub issued, by serial; found
	// is false for one it never issued.
	TokenText(ctx context.Context, tenant protocol.TenantID, serial protocol.CodeID) (text string, found bool, err error)
	// KeysAt are the tenant's token verification keys at time at.
	KeysAt(ctx context.Context, tenant protocol.TenantID, at time.Time) (token.KeySet, error)
	// AgentWhere returns the store (and group) an agent sells in; found
	// is false for an unknown agent.
	AgentWhere(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID) (w decide.Where, found bool, err error)
}

// factKey names one fact.
type factKey struct {
	tenant protocol.TenantID
	agent  protocol.AgentID
	seq    uint64
}

// rederiver re-derives the facts of one ApplyBatches call, remembering
// what it looked up.
type rederiver struct {
	l      *Ledger
	ctx    context.Context
	cats   map[rulesKey]*decide.Rules // nil value: not held
	stores map[key2]*decide.Where     // nil value: unknown agent
	memo   map[memoKey]*saleMemo
	txns   map[txnKey][]txnFact
	codes  map[codeKey]codeMemo
}

// codeKey names a plain code or gift card looked up.
type codeKey struct {
	tenant protocol.TenantID
	code   protocol.CodeID
}

type codeMemo struct {
	c     decide.Code
	found bool
}

type rulesKey struct {
	tenant protocol.TenantID
	v      uint64
}

// rederive re-runs the decision of every till fact in bs (not refused as
// a batch) and returns, per fact whose effect the rules do not give, the
// conflict's detail. It reads (catalog and journal) before the write
// lock is taken, as lookupFacts does.
func (l *Ledger) rederive(ctx context.Context, bs []Batch, res []Result, inflight *Prepared) (map[factKey]string, error) {
	if l.rules == nil {
		return nil, nil
	}
	rd := &rederiver{l: l, ctx: ctx, cats: map[rulesKey]*decide.Rules{}, stores: map[key2]*decide.Where{}, memo: map[memoKey]*saleMemo{}, txns: map[txnKey][]txnFact{}, codes: map[codeKey]codeMemo{}}
	if err := rd.prefetchTxns(bs, res); err != nil {
		return nil, fmt.Errorf("ledger: re-derive: %w", err)
	}
	if inflight != nil {
		rd.addInflight(inflight)
	}
	var out map[factKey]string
	for i, b := range bs {
		if res[i].Err != nil {
			continue
		}
		for j := range b.Redemptions {
			r := &b.Redemptions[j]
			if r.ID.Agent == protocol.HubSender || r.Kind == protocol.KindRollback {
				continue
			}
			detail, err := rd.check(r)
			if err != nil {
				return nil, fmt.Errorf("ledger: re-derive %s: %w", r.ID, err)
			}
			if detail != "" {
				if out == nil {
					out = map[factKey]string{}
				}
				out[factKey{r.Tenant, r.ID.Agent, r.ID.Seq}] = detail
			}
		}
	}
	return out, nil
}

// check re-derives one fact: "" when the rules give what it reports.
func (rd *rederiver) check(r *protocol.Redemption) (string, error) {
	if r.Kind == protocol.KindBurn {
		return "a till records no points burn", nil
	}
	if r.Kind == protocol.KindCashOut { // the campaign pays out this much
		rs, err := rd.rulesAt(r.Tenant, r.Snapshot)
		if err != nil {
			return "", err
		}
		if _, err := decide.CheckCashOut(rs, r.Campaign, r.Spend); err != nil {
			return "gift card cash-out: " + err.Error(), nil
		}
		return "", nil
	}
	if r.Kind.Loads() { // a gift card sale or top-up: no sale to re-run
		rs, err := rd.rulesAt(r.Tenant, r.Snapshot)
		if err != nil {
			return "", err
		}
		if _, err := decide.CheckLoad(rs, r.Campaign, r.Currency, r.Load); err != nil {
			return "gift card " + r.Kind.String() + ": " + err.Error(), nil
		}
		return "", nil
	}
	if r.Sale == nil {
		return "the fact carries no sale to re-derive it from", nil
	}
	// The facts of one sale carry the same sale: decide it once.
	mk := memoKey{r.Tenant, r.ID.Agent, r.TxnID, r.Snapshot, r.Store, r.Currency, r.OrderID}
	m, ok := rd.memo[mk]
	if !ok || !reflect.DeepEqual(m.sale, r.Sale) {
		m = &saleMemo{sale: r.Sale}
		var err error
		if m.detail, err = rd.decide(r, &m.dec); err != nil {
			return "", err
		}
		rd.memo[mk] = m
	}
	if m.detail != "" {
		return m.detail, nil
	}
	return rd.compare(r, m.dec)
}

// memoKey is what a sale's decision depends on besides the sale itself.
type memoKey struct {
	tenant   protocol.TenantID
	agent    protocol.AgentID
	txn      string
	snapshot uint64
	store    protocol.StoreID
	currency protocol.Currency
	order    string
}

type saleMemo struct {
	sale   *protocol.Sale
	dec    rules.Decision
	detail string // the sale itself cannot be re-derived
}

// decide re-runs the decision r's sale carries into d through the one
// decision pipeline (decide.Decide), or returns why it cannot.
func (rd *rederiver) decide(r *protocol.Redemption, out *rules.Decision) (string, error) {
	s := r.Sale
	if err := s.Validate(r.Currency); err != nil {
		return "its sale is invalid: " + protocol.PublicError(err).Message, nil
	}
	rs, err := rd.rulesAt(r.Tenant, r.Snapshot)
	if err != nil || rs == nil {
		return fmt.Sprintf("rules version %d is not held by the hub (never published, or older than the rules history kept)", r.Snapshot), err
	}
	w, err := rd.where(r.Tenant, r.ID.Agent)
	if err != nil || w == nil {
		return "the agent is unknown to the catalog", err
	}
	if r.Store != w.Store.ID {
		return fmt.Sprintf("reported store %q, the agent sells in %q", r.Store, w.Store.ID), nil
	}
	at := time.UnixMilli(s.At)
	in := decide.Request{Tenant: r.Tenant, Where: *w, Order: protocol.Order{ID: r.OrderID, Currency: r.Currency, Lines: s.Lines, Shipping: s.Shipping},
		Customer: s.Customer, Now: at, Presented: make([]decide.Presented, len(s.Presented))}
	for i, p := range s.Presented {
		in.Presented[i] = decide.Presented{Code: string(p.Code), Amount: p.Amount}
		if p.Kind == protocol.PresentedPoints {
			in.Presented[i] = decide.Presented{Campaign: protocol.CampaignID(p.Code), Amount: p.Amount}
		}
		if p.Kind != protocol.PresentedToken {
			continue
		}
		// A fact names a token by its serial; the pipeline verifies its text.
		text, found, err := rd.l.rules.TokenText(rd.ctx, r.Tenant, p.Code)
		if err != nil {
			return "", err
		}
		if !found {
			return fmt.Sprintf("presented %s: token %s was not issued by the hub", p.Code, p.Code), nil
		}
		in.Presented[i] = decide.Presented{Token: text, Amount: p.Amount}
	}
	o, err := decide.Decide(rd.ctx, &factSource{rd: rd, tenant: r.Tenant, sale: s}, rs, in)
	if pe := protocolError(err); pe != nil {
		return "the rules refuse the sale: " + pe.Message, nil
	}
	if err != nil {
		return "", err
	}
	for i, it := range o.Items {
		if it.Refused != nil {
			return fmt.Sprintf("presented %s: %s", s.Presented[i].Code, it.Refused.Message), nil
		}
	}
	*out = o.Decision
	return "", nil
}

// factSource is the decide.Source of re-deriving one fact: the catalog's
// codes and keys (Rules), and the figures the till decided with as the
// fact carries them: its allowances left (Sale.Budgets) and the
// customer's points it knew (Sale.Points). A code's uses, a gift card's
// spending and a customer's redemptions are not re-checked here: the
// ledger checks them against its own figures as of the fact, as the
// code_reused, giftcard_overdrawn and budget conflicts, and a fact that
// breaks one is flagged there, not twice. A revocation after the catalog
// version the till decided on is the hub's news, not the till's fault.
type factSource struct {
	rd     *rederiver
	tenant protocol.TenantID
	sale   *protocol.Sale
}

var _ decide.Source = (*factSource)(nil)

// Code implements decide.Source: a gift card's balance is left unbounded
// (giftcard_overdrawn checks it).
func (f *factSource) Code(_ context.Context, key protocol.CodeID) (decide.Code, bool, error) {
	rd := f.rd
	k := codeKey{f.tenant, key}
	m, ok := rd.codes[k]
	if !ok {
		var err error
		if m.c, m.found, err = rd.l.rules.PresentedCode(rd.ctx, f.tenant, key); err != nil {
			return decide.Code{}, false, err
		}
		m.c.Revoked, m.c.Balance = false, rules.MaxAmount
		rd.codes[k] = m
	}
	return m.c, m.found, nil
}

// Keys implements decide.Source: the keys as of the sale.
func (f *factSource) Keys(ctx context.Context) (token.KeySet, error) {
	return f.rd.l.rules.KeysAt(ctx, f.tenant, time.UnixMilli(f.sale.At))
}

// TokenRevoked implements decide.Source (see factSource).
func (f *factSource) TokenRevoked(context.Context, protocol.CodeID) (bool, error) { return false, nil }

// Uses implements decide.Source (see factSource).
func (f *factSource) Uses(context.Context, protocol.CodeID, decide.Code) (decide.Use, error) {
	return decide.Use{}, nil
}

// Customer implements decide.Source: the customer as the rules saw it,
// with the points the till knew.
func (f *factSource) Customer(_ context.Context, c protocol.Customer) (protocol.Customer, int64, error) {
	return c, f.sale.Points, nil
}

// CustomerUses implements decide.Source (see factSource).
func (f *factSource) CustomerUses(context.Context, protocol.CustomerID, protocol.CampaignID) (int64, error) {
	return 0, nil
}

// Budget implements decide.Source: the allowance the till had left, as
// its sale carries it; unlimited when it carries none.
func (f *factSource) Budget(_ context.Context, id protocol.CampaignID) (rules.Budget, error) {
	for _, b := range f.sale.Budgets {
		if b.Campaign == id {
			return rules.Budget{Count: b.Count, Amount: b.Amount}, nil
		}
	}
	return rules.Budget{Count: -1, Amount: -1}, nil
}

// compare checks r's effect against the re-derived decision d.
func (rd *rederiver) compare(r *protocol.Redemption, d rules.Decision) (string, error) {
	var cust protocol.CustomerID
	if r.Sale.Customer != nil {
		cust = r.Sale.Customer.ID
	}
	if r.Customer != cust {
		return fmt.Sprintf("customer %q, the sale's is %q", r.Customer, cust), nil
	}
	if r.OrderTot != d.Subtotal {
		return fmt.Sprintf("order total %d, the sale's lines make %d", r.OrderTot, d.Subtotal), nil
	}
	prior, err := rd.prior(r)
	if err != nil {
		return "", err
	}
	switch r.Kind {
	case protocol.KindRedeem:
		res, ok := result(d, r.Campaign, r.Code)
		if !ok {
			return fmt.Sprintf("the rules give nothing for campaign %s%s on this sale", r.Campaign, codeSuffix(r.Code)), nil
		}
		if got := res.Discount + res.ShippingDiscount; r.Discount != got {
			return fmt.Sprintf("discount %d, the rules give %d", r.Discount, got), nil
		}
		if r.Points != -res.PointsBurned {
			return fmt.Sprintf("points %d, the rules give %d", r.Points, -res.PointsBurned), nil
		}
		if prior.n > 0 {
			return fmt.Sprintf("transaction %q already redeemed campaign %s%s", r.TxnID, r.Campaign, codeSuffix(r.Code)), nil
		}
	case protocol.KindEarn:
		var total int64
		var each []int64
		for _, e := range d.Earnings {
			if e.Campaign == r.Campaign {
				total += e.Points
				each = append(each, e.Points)
			}
		}
		if !slices.Contains(each, r.Points) {
			return fmt.Sprintf("points %d, the rules give %s", r.Points, pointsList(each)), nil
		}
		if prior.points+r.Points > total {
			return fmt.Sprintf("transaction %q earns %d points of %s in all, the rules give %d", r.TxnID, prior.points+r.Points, r.Campaign, total), nil
		}
		if d := laterExpiry(*r, d.Earnings); d != "" { // lots.go
			return d, nil
		}
	}
	return "", nil
}

func protocolError(err error) *protocol.Error {
	if pe, ok := err.(*protocol.Error); ok {
		return pe
	}
	return nil
}

// result is the applied result of campaign (and code: "" for an automatic
// campaign) in d.
func result(d rules.Decision, campaign protocol.CampaignID, code protocol.CodeID) (rules.Result, bool) {
	for _, res := range d.Results {
		// No code: an automatic campaign, or a points burn as payment.
		if res.Applied && res.Campaign == campaign && res.Code == code && (code != "" || res.Index < 0 || res.Kind == rules.RedeemPoints) {
			return res, true
		}
	}
	return rules.Result{}, false
}

func codeSuffix(code protocol.CodeID) string {
	if code == "" {
		return ""
	}
	return " (code " + string(code) + ")"
}

func pointsList(ps []int64) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.FormatInt(p, 10)
	}
	return strings.Join(s, " or ")
}

func (rd *rederiver) rulesAt(t protocol.TenantID, v uint64) (*decide.Rules, error) {
	k := rulesKey{t, v}
	if cat, ok := rd.cats[k]; ok {
		return cat, nil
	}
	cat, found, err := rd.l.rules.RulesAt(rd.ctx, t, v)
	if err != nil {
		return nil, err
	}
	if !found {
		cat = nil
	}
	rd.cats[k] = cat
	return cat, nil
}

func (rd *rederiver) where(t protocol.TenantID, a protocol.AgentID) (*decide.Where, error) {
	k := key2{string(t), string(a)}
	if w, ok := rd.stores[k]; ok {
		return w, nil
	}
	w, found, err := rd.l.rules.AgentWhere(rd.ctx, t, a)
	if err != nil {
		return nil, err
	}
	var p *decide.Where
	if found {
		p = &w
	}
	rd.stores[k] = p
	return p, nil
}

// priorFacts are the other facts of the same kind, transaction, campaign
// and code as a fact: recorded in the journal, or earlier in this call.
type priorFacts struct {
	n      int64
	points int64
}

func (rd *rederiver) prior(r *protocol.Redemption) (priorFacts, error) {
	tk := txnKey{r.Tenant, r.ID.Agent, r.TxnID}
	rows, ok := rd.txns[tk]
	if !ok {
		var err error
		if rows, err = rd.journalFacts(tk); err != nil {
			return priorFacts{}, err
		}
	}
	var p priorFacts
	for _, f := range rows {
		if f.seq != r.ID.Seq && f.kind == r.Kind && f.campaign == r.Campaign && f.code == r.Code {
			p.n++
			p.points += f.points
		}
	}
	// Later facts of this call see this one (once, should it repeat).
	if !slices.ContainsFunc(rows, func(f txnFact) bool { return f.seq == r.ID.Seq }) {
		rows = append(rows, txnFact{seq: r.ID.Seq, kind: r.Kind, campaign: r.Campaign, code: r.Code, points: r.Points})
	}
	rd.txns[tk] = rows
	return p, nil
}

type txnKey struct {
	tenant protocol.TenantID
	agent  protocol.AgentID
	txn    string
}

// txnFact is one redeem or earn fact of a till's transaction.
type txnFact struct {
	seq      uint64
	kind     protocol.RedemptionKind
	campaign protocol.CampaignID
	code     protocol.CodeID
	points   int64
}

// prefetchTxns reads the recorded facts of every till transaction the
// facts of bs name, balanceChunk transactions per query (qTxnFactsIn),
// rather than one query per transaction in prior: a catch-up of 1-2 facts
// per sale otherwise pays a query for nearly every fact.
func (rd *rederiver) prefetchTxns(bs []Batch, res []Result) error {
	type agentKey struct {
		tenant protocol.TenantID
		agent  protocol.AgentID
	}
	byAgent := map[agentKey][]string{}
	var order []agentKey
	for i, b := range bs {
		if res[i].Err != nil {
			continue
		}
		for j := range b.Redemptions {
			r := &b.Redemptions[j]
			if r.ID.Agent == protocol.HubSender || (r.Kind != protocol.KindRedeem && r.Kind != protocol.KindEarn) || r.Sale == nil {
				continue
			}
			tk := txnKey{r.Tenant, r.ID.Agent, r.TxnID}
			if _, ok := rd.txns[tk]; ok {
				continue
			}
			rd.txns[tk] = nil
			ak := agentKey{r.Tenant, r.ID.Agent}
			if _, ok := byAgent[ak]; !ok {
				order = append(order, ak)
			}
			byAgent[ak] = append(byAgent[ak], r.TxnID)
		}
	}
	args := make([]any, 2+balanceChunk)
	for _, ak := range order {
		ids := byAgent[ak]
		args[0], args[1] = string(ak.tenant), string(ak.agent)
		for len(ids) > 0 {
			n := min(len(ids), balanceChunk)
			q, c := inChunk(qTxnFactsIn, n) // inchunks.go
			for i := range c {
				args[2+i] = ids[min(i, n-1)]
			}
			ids = ids[n:]
			if err := rd.scanTxnFacts(rd.l.prepared[q], args[:2+c], ak.tenant, ak.agent); err != nil {
				return err
			}
		}
	}
	return nil
}

// addInflight adds to the transactions prefetched the facts of inflight,
// being applied meanwhile: they count as recorded (a fact of the same seq
// read from the journal already is one of them).
func (rd *rederiver) addInflight(p *Prepared) {
	for i, b := range p.bs {
		if p.res[i].Err != nil {
			continue
		}
		for _, r := range b.Redemptions {
			if r.ID.Agent == protocol.HubSender || (r.Kind != protocol.KindRedeem && r.Kind != protocol.KindEarn) {
				continue
			}
			tk := txnKey{r.Tenant, r.ID.Agent, r.TxnID}
			rows, ok := rd.txns[tk]
			if !ok || slices.ContainsFunc(rows, func(f txnFact) bool { return f.seq == r.ID.Seq }) {
				continue
			}
			rd.txns[tk] = append(rows, txnFact{seq: r.ID.Seq, kind: r.Kind, campaign: r.Campaign, code: r.Code, points: r.Points})
		}
	}
}

func (rd *rederiver) scanTxnFacts(st *sql.Stmt, args []any, t protocol.TenantID, a protocol.AgentID) error {
	rows, err := st.QueryContext(rd.ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var txn string
		f, ok, err := scanTxnFact(rows, &txn)
		if err != nil {
			return err
		}
		if ok {
			tk := txnKey{t, a, txn}
			rd.txns[tk] = append(rd.txns[tk], f)
		}
	}
	return rows.Err()
}

// scanTxnFact reads one row of qTxnFacts (txn nil) or qTxnFactsIn; ok is
// false for an entry that is neither a redeem nor an earn.
func scanTxnFact(rows *sql.Rows, txn *string) (f txnFact, ok bool, err error) {
	var entry, campaign, code string
	var seq int64
	dest := []any{&seq, &entry, &campaign, &code, &f.points}
	if txn != nil {
		dest = append(dest, txn)
	}
	if err := rows.Scan(dest...); err != nil {
		return f, false, err
	}
	f.seq, f.campaign, f.code = uint64(seq), protocol.CampaignID(campaign), protocol.CodeID(code)
	switch entry {
	case entryName(protocol.KindRedeem):
		f.kind = protocol.KindRedeem
	case entryName(protocol.KindEarn):
		f.kind = protocol.KindEarn
	default:
		return f, false, nil
	}
	return f, true, nil
}

// journalFacts are the recorded redeem and earn facts of a transaction.
func (rd *rederiver) journalFacts(k txnKey) ([]txnFact, error) {
	rows, err := rd.l.prepared[qTxnFacts].QueryContext(rd.ctx, string(k.tenant), string(k.agent), k.txn)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []txnFact
	for rows.Next() {
		f, ok, err := scanTxnFact(rows, nil)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, f)
		}
	}
	return out, rows.Err()
}

// qTxnFacts lists a till transaction's facts (index ledger_journal_txn).
const qTxnFacts = `SELECT seq, entry, campaign, code, points FROM ledger_journal WHERE tenant = ? AND agent = ? AND txn_id = ?`

// qTxnFactsIn is qTxnFacts for balanceChunk transactions at once (a
// shorter list padded by repeating its last), with each row's txn_id.
var qTxnFactsIn = `SELECT seq, entry, campaign, code, points, txn_id FROM ledger_journal WHERE tenant = ? AND agent = ? AND txn_id IN (` +
	strings.TrimSuffix(strings.Repeat("?, ", balanceChunk), ", ") + `)`

// Earned implements decide.Source: what the till counted as already
// earned in each capped rule's period, as its sale carries it (0 when it
// carries none). Whether the customer's real total broke the cap is the
// ledger's check (earn_cap_exceeded), not re-derivation's.
func (f *factSource) Earned(_ context.Context, _ protocol.CustomerID, keys []protocol.PeriodKey) ([]int64, error) {
	out := make([]int64, len(keys))
	for i, k := range keys {
		for _, e := range f.sale.Earned {
			if e.Campaign == k.Campaign && e.Rule == k.Rule {
				out[i] = e.Points
			}
		}
	}
	return out, nil
}
