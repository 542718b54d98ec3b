// Package chaos holds Punchcard's fault tests: real hub and agent
// processes on loopback, killed with SIGKILL, cut off by a proxy, their
// broker restarted, and then the guarantees checked from the outside — in
// the ledger file itself — not through the components' own reports:
//
//  1. no redemption a till was told succeeded is lost or counted twice;
//  2. no campaign budget is exceeded;
//  3. every violation offline operation made possible is a conflict;
//  6. the ledger's balances equal what its journal recomputes.
//
// The short suite runs in every `go test`. The long suite (many rounds,
// external Mosquitto restarts with and without persistence) runs with
// `make chaos` (PUNCHCARD_CHAOS=1, or the chaos build tag).
package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// Names used by every scenario.
const (
	Tenant   protocol.TenantID   = "chaos-brand"
	Campaign protocol.CampaignID = "promo"
	Code                         = "PROMO5"
	// OnceCampaign has one single-use code, OnceCode: the double spend two
	// offline tills can make, which the hub must record as a conflict.
	OnceCampaign protocol.CampaignID = "sorry"
	OnceCode                         = "ONCE-0001"
	Currency     protocol.Currency   = "EUR"
)

// Long reports whether the long suite was asked for.
func Long() bool { return longTag || os.Getenv("PUNCHCARD_CHAOS") != "" }

// Binaries are the hub and agent built once per test binary.
type Binaries struct {
	Dir string
	Err error // *cluster.Unavailable when a command does not exist yet
}

var (
	binOnce sync.Once
	bins    Binaries
)

// Build builds cmd/hub and cmd/agent once into a temporary directory and
// returns it; tests skip (naming the missing command) when a command does
// not exist yet and fail when it does not compile.
func Build(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			bins.Err = err
			return
		}
		dir, err := os.MkdirTemp("", "punchcard-chaos-bin-")
		if err != nil {
			bins.Err = err
			return
		}
		bins.Dir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bins.Err = cluster.BuildBinaries(ctx, root, dir, cluster.HubBinary, cluster.AgentBinary)
	})
	if cluster.IsUnavailable(bins.Err) {
		tb.Skipf("fault test not runnable yet: %v", bins.Err)
	}
	if bins.Err != nil {
		tb.Fatal(bins.Err)
	}
	return bins.Dir
}

// Cleanup removes the binaries; TestMain calls it.
func Cleanup() {
	if bins.Dir != "" {
		os.RemoveAll(bins.Dir)
	}
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// Env is a running installation with one brand, one budgeted campaign and
// some tills.
type Env struct {
	TB     testing.TB
	C      *cluster.Cluster
	Admin  cluster.HubAPI
	Agents []*cluster.StoreAgent
	Budget int64

	mu       sync.Mutex
	acked    []cluster.Acked
	txn      int
	replayed int
}

// Setup starts a hub (on brokerURL when set, else embedded), creates the
// brand and a campaign of budget redemptions (0 = unlimited) reachable by
// Code, and starts n agents, waiting for their first sync.
func Setup(tb testing.TB, n int, budget int64, brokerURL string) *Env {
	tb.Helper()
	return SetupWith(tb, n, budget, cluster.Options{BrokerURL: brokerURL})
}

// SetupWith is Setup with cluster options (BinDir, Dir and Progress are
// filled in).
func SetupWith(tb testing.TB, n int, budget int64, opts cluster.Options) *Env {
	tb.Helper()
	opts.BinDir = Build(tb)
	opts.Dir = tb.TempDir()
	opts.Progress = tb.Logf
	if opts.ReadyDeadline.IsZero() {
		// Starts and restarts are waited for until a minute before the test
		// binary's deadline, not for a fixed figure a loaded machine exceeds.
		opts.ReadyDeadline = time.Now().Add(testutil.Patience(tb))
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(2*time.Minute, testutil.Patience(tb)))
	defer cancel()
	c, err := cluster.Start(ctx, opts)
	if err != nil {
		tb.Fatal(err)
	}
	e := &Env{TB: tb, C: c, Budget: budget}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Logf("stopping processes: %v", err)
		}
		if tb.Failed() {
			for _, p := range c.Sup.Processes() {
				tb.Logf("--- %s log (%s) ---\n%s", p.Name(), p.LogPath(), tailOf(p.LogPath()))
			}
		}
	})
	t, err := c.Platform.CreateTenant(ctx, Tenant, "Chaos Brand", Currency)
	must(tb, err)
	e.Admin = c.Platform.As(t.AdminSecret)
	cp := rules.Campaign{Schema: rules.SchemaVersion, ID: Campaign, Tenant: Tenant, Currency: Currency, Status: rules.StatusActive,
		Reward: rules.Reward{Kind: rules.RewardAmountOff, Amount: 1_00},
		Limits: rules.Limits{MaxRedemptions: budget}}
	_, err = e.Admin.CreateCampaign(ctx, cp)
	must(tb, err)
	must(tb, e.Admin.ImportCodes(ctx, Tenant, Campaign, []string{Code}, cluster.CodeSpec{Uses: -1}))
	once := rules.Campaign{Schema: rules.SchemaVersion, ID: OnceCampaign, Tenant: Tenant, Currency: Currency, Status: rules.StatusActive,
		Reward: rules.Reward{Kind: rules.RewardAmountOff, Amount: 2_00}}
	_, err = e.Admin.CreateCampaign(ctx, once)
	must(tb, err)
	must(tb, e.Admin.ImportCodes(ctx, Tenant, OnceCampaign, []string{OnceCode}, cluster.CodeSpec{Uses: 1}))
	for i := range n {
		id := protocol.AgentID(fmt.Sprintf("till-%d", i+1))
		reg, err := e.Admin.RegisterAgent(ctx, Tenant, id, snapshot.Store{ID: protocol.StoreID(fmt.Sprintf("store-%d", i+1)), TimeZone: "Europe/Berlin"}, nil)
		must(tb, err)
		a, err := c.AddAgent(ctx, reg)
		must(tb, err)
		e.Agents = append(e.Agents, a)
	}
	tv, err := e.Admin.GetTenant(ctx, Tenant)
	must(tb, err)
	for _, a := range e.Agents {
		must(tb, a.WaitSynced(ctx, tv.Version, testutil.Patience(tb)))
	}
	return e
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func tailOf(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// Outcome of one attempted sale.
type Outcome int

// Outcomes.
const (
	Accepted Outcome = iota // the POS got a receipt
	Refused                 // the agent said no with a reason code (budget, allowance)
	Failed                  // no answer: the agent was down or the request broke
)

// Redeem sells one order with the campaign's code at agent a under a new
// transaction id and remembers what the POS was told. A Failed sale is
// retried by the caller with Retry, as a POS retries after a crash.
func (e *Env) Redeem(ctx context.Context, a *cluster.StoreAgent) (string, Outcome, error) {
	return e.RedeemCode(ctx, a, Code)
}

// RedeemCode is Redeem with another code.
func (e *Env) RedeemCode(ctx context.Context, a *cluster.StoreAgent, code string) (string, Outcome, error) {
	e.mu.Lock()
	e.txn++
	txn := fmt.Sprintf("%s-txn-%05d", a.ID, e.txn)
	e.mu.Unlock()
	o, err := e.retry(ctx, a, txn, code)
	return txn, o, err
}

// RedeemCodeSpend sells an order of amount paid with amount from the
// gift card code, under a new transaction id.
func (e *Env) RedeemCodeSpend(ctx context.Context, a *cluster.StoreAgent, code string, amount int64) (string, Outcome, error) {
	e.mu.Lock()
	e.txn++
	txn := fmt.Sprintf("%s-txn-%05d", a.ID, e.txn)
	e.mu.Unlock()
	o, err := e.sell(ctx, a, agent.RedeemRequest{TxnID: txn, Basket: agent.Basket{
		Order:       protocol.Order{Currency: Currency, Lines: []protocol.Line{{SKU: "tv", Quantity: 1, UnitPrice: amount}}},
		Redeemables: []agent.Input{{Code: code, Amount: amount}},
	}})
	return txn, o, err
}

// Retry sends the sale txn again (same id, same basket): the agent answers
// from its stored receipt if the first attempt committed.
func (e *Env) Retry(ctx context.Context, a *cluster.StoreAgent, txn string) (Outcome, error) {
	return e.retry(ctx, a, txn, Code)
}

func (e *Env) retry(ctx context.Context, a *cluster.StoreAgent, txn, code string) (Outcome, error) {
	return e.sell(ctx, a, agent.RedeemRequest{TxnID: txn, Basket: agent.Basket{
		Order:       protocol.Order{Currency: Currency, Lines: []protocol.Line{{SKU: "coffee", Quantity: 1, UnitPrice: 3_50}}},
		Redeemables: []agent.Input{{Code: code}},
	}})
}

func (e *Env) sell(ctx context.Context, a *cluster.StoreAgent, r agent.RedeemRequest) (Outcome, error) {
	rc, err := a.POS.Redeem(ctx, r)
	if err != nil {
		if cluster.Code(err) != "" {
			return Refused, err
		}
		return Failed, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if rc.Replayed {
		e.replayed++
	}
	for _, f := range rc.Facts {
		k := cluster.Acked{Agent: string(f.ID.Agent), Seq: int64(f.ID.Seq), Kind: f.Kind, TxnID: rc.TxnID, Discount: f.Discount, Spend: f.Spend, Points: f.Points}
		if !rc.Replayed || !e.has(k) {
			e.acked = append(e.acked, k)
		}
	}
	return Accepted, nil
}

func (e *Env) has(k cluster.Acked) bool {
	for _, a := range e.acked {
		if a == k {
			return true
		}
	}
	return false
}

// Replayed is how many answers came from a stored receipt: retries of a
// sale that had committed although its first answer was lost.
func (e *Env) Replayed() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.replayed
}

// Acked is every redemption a till was told succeeded.
func (e *Env) Acked() []cluster.Acked {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]cluster.Acked(nil), e.acked...)
}

// Drain waits until every agent is online with an empty outbox: for at
// least timeout, and as long as the test binary may run
// (testutil.Patience), so that a loaded machine slows it without failing
// it.
func (e *Env) Drain(ctx context.Context, timeout time.Duration) {
	e.TB.Helper()
	patience := max(timeout, testutil.Patience(e.TB))
	for _, a := range e.Agents {
		err := testutil.AwaitFor(patience, "agent "+string(a.ID)+" to be online with an empty outbox", func() (bool, string) {
			st, err := a.POS.Status(ctx)
			return err == nil && st.Online && st.OutboxDepth == 0, fmt.Sprintf("%+v %v", st, err)
		})
		if err != nil {
			e.TB.Fatal(err)
		}
	}
}

// Check stops every process and checks the guarantees in the ledger file.
// It returns the audit for further checks (closed by the test's cleanup).
func (e *Env) Check(ctx context.Context) *cluster.Audit {
	e.TB.Helper()
	if err := e.C.Close(); err != nil {
		e.TB.Logf("stop: %v", err)
	}
	au, err := cluster.OpenAudit(ctx, e.C.Hub.LedgerPath())
	must(e.TB, err)
	e.TB.Cleanup(func() { au.Close() })
	rep, err := au.Verify(ctx)
	must(e.TB, err)
	if !rep.OK() {
		e.TB.Errorf("guarantee 6: ledger does not verify: %s", cluster.Summary(rep))
	}
	entries, err := au.Entries(ctx, Tenant)
	must(e.TB, err)
	acked := e.Acked()
	for _, v := range cluster.CheckAcked(acked, entries) {
		e.TB.Errorf("guarantee 1: %s", v)
	}
	if e.Budget > 0 {
		b, err := au.Campaign(ctx, Tenant, Campaign)
		must(e.TB, err)
		if b.Count > e.Budget {
			e.TB.Errorf("guarantee 2: campaign used %d of a budget of %d", b.Count, e.Budget)
		}
	}
	e.TB.Logf("checked: %d acknowledged redemptions (%d of them replayed on a retry), %d journal facts, ledger %s", len(acked), e.Replayed(), len(entries), cluster.Summary(rep))
	return au
}
