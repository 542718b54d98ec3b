package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/netcut"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/codes"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/qr"
	"github.com/punchcard/punchcard/store/agentdb"
)

// The cast. Tenant A is a coffee chain with two stores, tenant B a bakery
// with one.
const (
	tenantA protocol.TenantID = "kaffee-nord"
	tenantB protocol.TenantID = "backhaus-sued"

	storeBerlin  protocol.StoreID = "berlin-mitte"
	storeHamburg protocol.StoreID = "hamburg-altona"
	storeMunich  protocol.StoreID = "muenchen-au"

	agentBerlin  protocol.AgentID = "till-berlin-1"
	agentHamburg protocol.AgentID = "till-hamburg-1"
	agentMunich  protocol.AgentID = "till-muenchen-1"

	campWelcome  protocol.CampaignID = "welcome10"
	campBirthday protocol.CampaignID = "birthday"
	campNewcomer protocol.CampaignID = "newcomer"
	campGift     protocol.CampaignID = "giftcard"
	campPoints   protocol.CampaignID = "coffee-points"
	campSorry    protocol.CampaignID = "sorry"

	welcomeCode = "WELCOME10"
	// welcomeBudget is the WELCOME10 campaign's redemption budget: small,
	// so that the offline store runs into its share during the story.
	welcomeBudget = 8

	custAnna protocol.CustomerID = "anna"
	custBen  protocol.CustomerID = "ben"

	eur protocol.Currency = "EUR"
)

// story is the demo's state as it unfolds.
type story struct {
	opts Options
	out  string
	n    *Narrator
	c    *cluster.Cluster

	step         int
	stepFailures int
	failures     []string
	closed       bool

	// head office keys per tenant
	adminA, marketA, supportA cluster.HubAPI
	adminB                    cluster.HubAPI

	berlin, hamburg, munich *cluster.StoreAgent

	annaToken, benToken cluster.Token
	giftCard, sorryCode string
	pngs                map[string]string // what → file

	// acked is every redemption a till or the web shop was told succeeded.
	acked []cluster.Acked
	// points earned per customer, as the tills reported them
	points map[protocol.CustomerID]int64
	// welcome10 redemptions acknowledged
	welcomeUsed int
	giftSpent   int64
	txn         int
}

func (s *story) steps() []step {
	first := "Head office starts the hub (central server, embedded MQTT broker, SQLite ledger)"
	if s.opts.Broker == BrokerMosquitto {
		first = "Head office starts Mosquitto (MQTT broker, passwords and ACL) and the hub (central server, SQLite ledger)"
	}
	return []step{
		{first, s.startHub},
		{"Two brands sign up: Kaffee Nord (Berlin, Hamburg) and Backhaus Süd (München)", s.tenants},
		{"Marketing sets up the campaigns and the customers", s.campaigns},
		{"The tills start in three stores and take their first sync", s.tills},
		{"Customers get their rewards as QR codes (PNG files)", s.qrCodes},
		{"Anna shops at Berlin-Mitte: the cashier scans her vouchers", s.annaShops},
		{"Anna's Kaffee Nord voucher is scanned at Backhaus Süd in München", s.foreignTenant},
		{"Store Hamburg-Altona goes offline (network cut, till keeps running)", s.cutHamburg},
		{"Head office sends Ben a newcomer voucher — after Hamburg lost its connection", s.issueBen},
		{"Hamburg keeps selling offline", s.hamburgOffline},
		{"Meanwhile the support desk redeems the same sorry-code on the web shop", s.supportDesk},
		{"Hamburg's network comes back: the till catches up", s.reconnect},
		{"Head office reconciles: conflicts, points and budgets", s.reconcile},
		{"Closing time: every process stops and the ledger file is audited", s.closing},
	}
}

func (s *story) nextTxn(store string) string {
	s.txn++
	return fmt.Sprintf("%s-%04d", store, s.txn)
}

// ---------------------------------------------------------------------

func (s *story) startHub(ctx context.Context) error {
	c, err := cluster.Start(ctx, cluster.Options{
		BinDir:       s.opts.BinDir,
		Dir:          filepath.Join(s.out, "data"),
		LogDir:       filepath.Join(s.out, "logs"),
		Progress:     s.n.Progress,
		ReadyTimeout: s.opts.StepTimeout,
		Mosquitto:    s.opts.Broker == BrokerMosquitto,
	})
	if err != nil {
		return err
	}
	s.c = c
	if m := c.Mosquitto; m != nil {
		s.n.Say("Mosquitto runs on %s (pid %d) with the settings of docs/operations.md: %s", m.Addr, m.Proc.Pid(), filepath.Join(m.Dir, "mosquitto.conf"))
		anon := cluster.MQTTLogin(m.URL(), "", "")
		s.expect(anon != nil, "Mosquitto refuses an anonymous client (%v); each till will log in as <tenant>/<till> with its secret and reach only its own topics (ACL)", anon)
		s.expect(true, "hub is up: API %s, on Mosquitto as %s (pid %d)", c.Hub.URL, cluster.HubMQTTUser, c.Hub.Proc.Pid())
	} else {
		s.expect(true, "hub is up: API %s, MQTT broker %s (pid %d)", c.Hub.URL, c.Hub.MQTTAddr, c.Hub.Proc.Pid())
	}
	s.n.Say("Its log is %s.", c.Hub.Proc.LogPath())
	return nil
}

func (s *story) tenants(ctx context.Context) error {
	a, err := s.c.Platform.CreateTenant(ctx, tenantA, "Kaffee Nord", eur)
	if err != nil {
		return fmt.Errorf("create tenant %s: %w", tenantA, err)
	}
	b, err := s.c.Platform.CreateTenant(ctx, tenantB, "Backhaus Süd", eur)
	if err != nil {
		return fmt.Errorf("create tenant %s: %w", tenantB, err)
	}
	if a.AdminSecret == "" || b.AdminSecret == "" {
		return errors.New("the hub created the tenants but returned no admin key")
	}
	s.adminA, s.adminB = s.c.Platform.As(a.AdminSecret), s.c.Platform.As(b.AdminSecret)
	mk, err := s.adminA.CreateKey(ctx, tenantA, "marketer", "marketing team")
	if err != nil {
		return fmt.Errorf("marketer key: %w", err)
	}
	sk, err := s.adminA.CreateKey(ctx, tenantA, "support", "support desk")
	if err != nil {
		return fmt.Errorf("support key: %w", err)
	}
	s.marketA, s.supportA = s.c.Platform.As(mk), s.c.Platform.As(sk)
	s.expect(true, "tenant %q (%s) with keys for its admin, marketing and support desk", a.ID, a.Name)
	s.expect(true, "tenant %q (%s) with its admin key", b.ID, b.Name)
	// Isolation at the API: Kaffee Nord's marketing cannot read Backhaus Süd.
	_, err = s.marketA.GetTenant(ctx, tenantB)
	s.expect(codeOf(err) == protocol.CodeForbidden || codeOf(err) == protocol.CodeNotFound,
		"Kaffee Nord's key is refused at Backhaus Süd's data (%s)", describe(err))
	return nil
}

func (s *story) campaigns(ctx context.Context) error {
	camps := []rules.Campaign{
		{
			ID: campWelcome, Name: "WELCOME10: 10% off, at most €5, budget of 8 redemptions",
			Reward: rules.Reward{Kind: rules.RewardPercentOff, PercentBP: 1000, MaxDiscount: 5_00},
			Limits: rules.Limits{MaxRedemptions: welcomeBudget},
		},
		{
			ID: campBirthday, Name: "Birthday: €5 off from €10, personal, single use",
			Reward:      rules.Reward{Kind: rules.RewardAmountOff, Amount: 5_00},
			Eligibility: rules.Eligibility{MinSubtotal: 10_00},
			Limits:      rules.Limits{PerCode: 1},
		},
		{
			ID: campNewcomer, Name: "Newcomer: €2 off, personal, single use",
			Reward: rules.Reward{Kind: rules.RewardAmountOff, Amount: 2_00},
			Limits: rules.Limits{PerCode: 1},
		},
		{
			ID: campGift, Name: "Gift card",
			Reward: rules.Reward{Kind: rules.RewardGiftCard, MultiUse: true},
		},
		{
			ID: campSorry, Name: "Sorry coupon: €3 off, single-use printed code",
			Reward: rules.Reward{Kind: rules.RewardAmountOff, Amount: 3_00},
		},
		{
			ID: campPoints, Name: "Coffee points: 1 point per euro, gold members ×2",
			Trigger: rules.TriggerAuto,
			Reward: rules.Reward{Kind: rules.RewardPoints, Points: &rules.PointsProgram{
				Earn:      []rules.EarnRule{{ID: "spend", On: rules.EarnSpend, PerAmount: 100, MilliPoints: 1000}},
				TierRates: []rules.TierRate{{Tier: "gold", MultiplierBP: 20000}},
			}},
		},
	}
	for _, cp := range camps {
		cp.Schema, cp.Tenant, cp.Currency, cp.Status = rules.SchemaVersion, tenantA, eur, rules.StatusActive
		if _, err := s.marketA.CreateCampaign(ctx, cp); err != nil {
			return fmt.Errorf("campaign %s: %w", cp.ID, err)
		}
		s.expect(true, "campaign %-13s %s", cp.ID, cp.Name)
	}
	if err := s.marketA.ImportCodes(ctx, tenantA, campWelcome, []string{welcomeCode}, cluster.CodeSpec{Uses: -1}); err != nil {
		return fmt.Errorf("import %s: %w", welcomeCode, err)
	}
	gift, err := s.marketA.GenerateCodes(ctx, tenantA, campGift, 1, "GIFT-####-####", cluster.CodeSpec{Uses: -1, Balance: 50_00})
	if err != nil {
		return fmt.Errorf("gift card: %w", err)
	}
	sorry, err := s.marketA.GenerateCodes(ctx, tenantA, campSorry, 1, "SORRY-####", cluster.CodeSpec{Uses: 1})
	if err != nil {
		return fmt.Errorf("sorry code: %w", err)
	}
	if len(gift) != 1 || len(sorry) != 1 {
		return fmt.Errorf("asked for one code each, got %d gift cards and %d sorry codes", len(gift), len(sorry))
	}
	s.giftCard, s.sorryCode = gift[0], sorry[0]
	s.expect(true, "codes: %s (reusable), gift card %s worth %s, single-use sorry code %s", welcomeCode, s.giftCard, money(50_00), s.sorryCode)
	for _, cu := range []cluster.Customer{
		{ID: custAnna, Name: "Anna", Email: "anna@example.com", Tier: "gold"},
		{ID: custBen, Name: "Ben", Email: "ben@example.com", Tier: "silver"},
	} {
		if err := s.supportA.CreateCustomer(ctx, tenantA, cu); err != nil {
			return fmt.Errorf("customer %s: %w", cu.ID, err)
		}
	}
	s.expect(true, "customers: Anna (gold member) and Ben (silver member)")
	return nil
}

func (s *story) tills(ctx context.Context) error {
	type till struct {
		api   cluster.HubAPI
		t     protocol.TenantID
		id    protocol.AgentID
		store snapshot.Store
		dst   **cluster.StoreAgent
	}
	for _, tl := range []till{
		{s.adminA, tenantA, agentBerlin, snapshot.Store{ID: storeBerlin, Region: "berlin", TimeZone: "Europe/Berlin"}, &s.berlin},
		{s.adminA, tenantA, agentHamburg, snapshot.Store{ID: storeHamburg, Region: "hamburg", TimeZone: "Europe/Berlin"}, &s.hamburg},
		{s.adminB, tenantB, agentMunich, snapshot.Store{ID: storeMunich, Region: "bayern", TimeZone: "Europe/Berlin"}, &s.munich},
	} {
		reg, err := tl.api.RegisterAgent(ctx, tl.t, tl.id, tl.store, nil)
		if err != nil {
			return fmt.Errorf("register %s: %w", tl.id, err)
		}
		a, err := s.c.AddAgent(ctx, reg)
		if err != nil {
			return err
		}
		*tl.dst = a
		if s.c.Mosquitto != nil {
			s.n.Say("till %s's login %s/%s is in Mosquitto's password file, and Mosquitto accepts it", a.ID, a.Tenant, a.ID)
		}
		s.n.Say("till %s in store %s started (POS API %s, pid %d)", a.ID, a.Store, a.URL, a.Proc.Pid())
	}
	for _, a := range []*cluster.StoreAgent{s.berlin, s.hamburg, s.munich} {
		t, err := s.c.Platform.GetTenant(ctx, a.Tenant)
		if err != nil {
			return err
		}
		if err := s.n.Wait(ctx, "till "+string(a.ID)+" to sync catalog version "+fmt.Sprint(t.Version), s.opts.StepTimeout, s.synced(a, t.Version)); err != nil {
			return err
		}
		st, err := a.POS.Status(ctx)
		if err != nil {
			return err
		}
		s.expect(st.Online && !st.NeverSynced, "%s is online with rules version %d and %s", a.ID, st.SnapshotVersion, allowanceText(st.Allowances))
	}
	// A till holds a share of a budget only once it asked for one: at its
	// first sale of the campaign, while online.
	s.n.Say("the morning's first customers use WELCOME10 in Berlin and Hamburg; each till asks head office for its share of the budget")
	welcome := filepath.Join(s.out, "welcome10.png")
	if err := qr.NewEncoder().WriteFile(welcome, welcomeCode); err != nil {
		return err
	}
	s.pngs["welcome10"] = welcome
	for _, a := range []*cluster.StoreAgent{s.berlin, s.hamburg} {
		text, err := s.scan(ctx, "welcome10")
		if err != nil {
			return err
		}
		rc, err := a.POS.Redeem(ctx, agent.RedeemRequest{TxnID: s.nextTxn(string(a.Store)),
			Basket: agent.Basket{Order: smallOrder(0), Redeemables: []agent.Input{{Code: text}}}})
		if err != nil {
			return fmt.Errorf("first WELCOME10 sale at %s: %w", a.Store, err)
		}
		s.record(a, rc)
		st, err := a.POS.Status(ctx)
		if err != nil {
			return err
		}
		s.expect(!rc.Offline && allowanceLeft(st, campWelcome) > 0, "%s: %s off online; the till now holds %s",
			a.Store, money(factOf(rc, campWelcome).Discount), allowanceText(st.Allowances))
	}
	return nil
}

// allowanceLeft is the redemptions a till may still make of a campaign
// without the hub, -1 when it holds no allowance for it.
func allowanceLeft(st agent.Status, c protocol.CampaignID) int64 {
	for _, a := range st.Allowances {
		if a.Campaign == c {
			return a.Count
		}
	}
	return -1
}

// synced is a Wait condition: the agent is online with at least version.
func (s *story) synced(a *cluster.StoreAgent, version uint64) func(context.Context) (bool, string, error) {
	return func(ctx context.Context) (bool, string, error) {
		st, err := a.POS.Status(ctx)
		if err != nil {
			if cluster.IsUnavailable(err) {
				return false, "", err
			}
			return false, err.Error(), nil
		}
		return st.Online && !st.NeverSynced && st.SnapshotVersion >= version,
			fmt.Sprintf("online=%v, rules version %d", st.Online, st.SnapshotVersion), nil
	}
}

func allowanceText(als []agentdb.AllowanceLeft) string {
	if len(als) == 0 {
		return "no budget allowances"
	}
	var parts []string
	for _, a := range als {
		amount := money(a.Amount)
		if a.Amount < 0 {
			amount = "no amount cap"
		}
		parts = append(parts, fmt.Sprintf("%s: %d redemptions (%s)", a.Campaign, a.Count, amount))
	}
	return "allowances " + strings.Join(parts, ", ")
}

func (s *story) qrCodes(ctx context.Context) error {
	tok, err := s.supportA.IssueToken(ctx, tenantA, cluster.TokenRequest{Campaign: campBirthday, Customer: custAnna})
	if err != nil {
		return fmt.Errorf("issue Anna's birthday token: %w", err)
	}
	s.annaToken = tok
	s.n.Say("Anna's birthday voucher: token %s (%d characters, serial %s)", short(tok.Text), len(tok.Text), tok.Serial)
	if err := s.fetchQR(ctx, "anna-birthday", tok); err != nil {
		return err
	}
	// Printed codes: the marketing team prints them; the demo draws them
	// with the project's QR encoder.
	enc := qr.NewEncoder()
	for name, text := range map[string]string{"gift-card": s.giftCard, "sorry-coupon": s.sorryCode} {
		path := filepath.Join(s.out, name+".png")
		if err := enc.WriteFile(path, text); err != nil {
			return err
		}
		s.pngs[name] = path
	}
	names := make([]string, 0, len(s.pngs))
	for n := range s.pngs {
		names = append(names, filepath.Base(s.pngs[n]))
	}
	slices.Sort(names)
	s.expect(true, "written to %s/: %s", s.out, strings.Join(names, ", "))
	return nil
}

// fetchQR gets a token's QR code PNG from the hub, as the e-mail to the
// customer would carry it.
func (s *story) fetchQR(ctx context.Context, name string, tok cluster.Token) error {
	png, err := s.supportA.TokenQR(ctx, tenantA, tok.Serial)
	if err != nil {
		return fmt.Errorf("QR code of %s: %w", tok.Serial, err)
	}
	path := filepath.Join(s.out, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return err
	}
	s.pngs[name] = path
	return nil
}

// scan reads a PNG with zbarimg as the till's scanner would.
func (s *story) scan(ctx context.Context, name string) (string, error) {
	text, err := Scan(ctx, s.pngs[name])
	if err != nil {
		return "", err
	}
	s.n.Say("scanned %s → %q", filepath.Base(s.pngs[name]), short(text))
	return text, nil
}

var annaOrder = protocol.Order{Currency: eur, Lines: []protocol.Line{
	{SKU: "latte-grande", Category: "coffee", Quantity: 2, UnitPrice: 4_90},
	{SKU: "beans-1kg", Category: "beans", Quantity: 1, UnitPrice: 24_90},
	{SKU: "croissant", Category: "bakery", Quantity: 2, UnitPrice: 2_40},
}}

func (s *story) annaShops(ctx context.Context) error {
	bday, err := s.scan(ctx, "anna-birthday")
	if err != nil {
		return err
	}
	welcome, err := s.scan(ctx, "welcome10")
	if err != nil {
		return err
	}
	s.expect(strings.TrimSpace(bday) == s.annaToken.Text, "the scanner read exactly the token the hub issued")
	anna := &protocol.Customer{ID: custAnna, Tier: "gold"}
	basket := agent.Basket{Order: annaOrder, Customer: anna, Redeemables: []agent.Input{{Code: bday}, {Code: welcome}}}
	q, err := s.berlin.POS.Validate(ctx, basket)
	if err != nil {
		return fmt.Errorf("validate at Berlin: %w", err)
	}
	s.n.Say("basket %s; the till quotes %s off, %s to pay, %d points", money(q.Subtotal), money(q.Discount), money(q.Due), q.Points)
	for _, r := range q.Results {
		if !r.Applied {
			s.n.Say("the till's quote leaves %s out: %s — %s", r.Code, r.Reason, r.Message)
		}
	}
	// One rules engine: the hub, asked about the same basket with the
	// birthday voucher (no budget involved, so no escrow differs), must
	// give the till's answer to the cent, points included.
	tq, err := s.berlin.POS.Validate(ctx, agent.Basket{Order: annaOrder, Customer: anna, Redeemables: []agent.Input{{Code: bday}}})
	if err != nil {
		return fmt.Errorf("validate at Berlin: %w", err)
	}
	hub, err := s.supportA.Validate(ctx, tenantA, cluster.OnlineRequest{
		Store: cluster.OnlineStore{ID: storeBerlin, Region: "berlin", TimeZone: "Europe/Berlin"}, Order: annaOrder, Customer: custAnna,
		Redeemables: []cluster.Presented{{Token: strings.TrimSpace(bday)}}})
	if err != nil {
		return fmt.Errorf("hub validate: %w", err)
	}
	s.expect(hub.Decision.Discount == tq.Discount && hub.Decision.PointsEarned == tq.Points && hub.Decision.Due == tq.Due,
		"asked about the birthday voucher alone, hub and till agree to the cent: %s off, %s due, %d points (till: %s, %s, %d)",
		money(hub.Decision.Discount), money(hub.Decision.Due), hub.Decision.PointsEarned, money(tq.Discount), money(tq.Due), tq.Points)
	rc, err := s.berlin.POS.Redeem(ctx, agent.RedeemRequest{TxnID: s.nextTxn("berlin"), Basket: basket})
	if err != nil {
		return fmt.Errorf("redeem at Berlin: %w", err)
	}
	s.record(s.berlin, rc)
	var got []string
	var redeemed, off int64
	for _, f := range rc.Facts {
		if f.Kind != protocol.KindRedeem.String() {
			continue
		}
		redeemed++
		off += f.Discount
		got = append(got, fmt.Sprintf("%s %s", f.Campaign, money(f.Discount)))
	}
	s.expect(redeemed == 2 && !rc.Offline, "redeemed online at the till: %s (receipt %s)", strings.Join(got, " + "), rc.TxnID)
	s.expect(factOf(rc, campBirthday).Discount == 5_00, "birthday voucher gave exactly %s", money(5_00))
	welcomeOff := factOf(rc, campWelcome).Discount
	s.expect(welcomeOff > 0 && welcomeOff <= 5_00 && welcomeOff <= annaOrder.Subtotal()/10,
		"WELCOME10 gave %s: 10%% and never more than the €5 cap", money(welcomeOff))

	// Loyalty points for what she paid: the redeem recorded them with the
	// sale, on the discounted basket, exactly as the quote said.
	paid := annaOrder.Subtotal() - off
	want := pointsOn(paid, 20000)
	s.points[custAnna] += rc.Points
	s.expect(rc.Points == want && rc.Points == q.Points,
		"Anna earns %d points with the sale: 1 per euro of the %s she paid, ×2 for gold (quoted %d, expected %d)", rc.Points, money(paid), q.Points, want)
	// A POS that also calls earn for the same sale gets the same points
	// back, not a second helping.
	er, err := s.berlin.POS.Earn(ctx, agent.EarnRequest{TxnID: rc.TxnID, Order: annaOrder, Customer: anna})
	if err != nil {
		return fmt.Errorf("earn at Berlin: %w", err)
	}
	s.expect(er.Replayed && er.Points == rc.Points,
		"the POS's extra earn call for the same sale returns those %d points again and records nothing", er.Points)

	// The single-use birthday voucher cannot be used twice.
	_, err = s.berlin.POS.Redeem(ctx, agent.RedeemRequest{TxnID: s.nextTxn("berlin"),
		Basket: agent.Basket{Order: annaOrder, Customer: anna, Redeemables: []agent.Input{{Code: bday}}}})
	s.expect(codeOf(err) == protocol.CodeCodeUsed, "scanning the birthday voucher again is refused: %s", describe(err))
	return nil
}

func (s *story) foreignTenant(ctx context.Context) error {
	bday, err := s.scan(ctx, "anna-birthday")
	if err != nil {
		return err
	}
	_, err = s.munich.POS.Redeem(ctx, agent.RedeemRequest{TxnID: s.nextTxn("muenchen"),
		Basket: agent.Basket{Order: annaOrder, Redeemables: []agent.Input{{Code: bday}}}})
	c := codeOf(err)
	s.expect(c == protocol.CodeWrongTenant,
		"Backhaus Süd's till refuses it as another brand's, offline and without asking anyone: %s", describe(err))
	return nil
}

func (s *story) cutHamburg(ctx context.Context) error {
	before, err := s.hamburg.POS.Status(ctx)
	if err != nil {
		return err
	}
	s.hamburg.Cut(netcut.Reset)
	s.n.Say("the link between till %s and head office is cut (its process keeps running)", s.hamburg.ID)
	err = s.n.Wait(ctx, "the till to notice it is offline", s.opts.StepTimeout, func(ctx context.Context) (bool, string, error) {
		st, err := s.hamburg.POS.Status(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		return !st.Online, "online=" + fmt.Sprint(st.Online), nil
	})
	if err != nil {
		return err
	}
	st, err := s.hamburg.POS.Status(ctx)
	if err != nil {
		return err
	}
	s.expect(!st.Online && st.SnapshotVersion == before.SnapshotVersion,
		"the till reports offline; it keeps deciding from rules version %d and %s", st.SnapshotVersion, allowanceText(st.Allowances))
	s.expect(s.berlin.Proc.Running() && s.hamburg.Proc.Running(), "both tills' processes are still running")
	return nil
}

func (s *story) issueBen(ctx context.Context) error {
	tok, err := s.supportA.IssueToken(ctx, tenantA, cluster.TokenRequest{Campaign: campNewcomer, Customer: custBen})
	if err != nil {
		return fmt.Errorf("issue Ben's token: %w", err)
	}
	s.benToken = tok
	if err := s.fetchQR(ctx, "ben-newcomer", tok); err != nil {
		return err
	}
	s.expect(true, "token %s for Ben, e-mailed as %s", tok.Serial, filepath.Base(s.pngs["ben-newcomer"]))
	st, err := s.hamburg.POS.Status(ctx)
	if err != nil {
		return err
	}
	t, err := s.adminA.GetTenant(ctx, tenantA)
	if err != nil {
		return err
	}
	s.expect(st.SnapshotVersion < t.Version, "Hamburg has not heard of it: its rules are version %d, head office is at %d", st.SnapshotVersion, t.Version)
	return nil
}

var benOrder = protocol.Order{Currency: eur, Lines: []protocol.Line{
	{SKU: "cappuccino", Category: "coffee", Quantity: 1, UnitPrice: 3_80},
	{SKU: "cheesecake", Category: "bakery", Quantity: 1, UnitPrice: 4_50},
}}

func smallOrder(i int) protocol.Order {
	return protocol.Order{Currency: eur, Lines: []protocol.Line{
		{SKU: "filter-coffee", Category: "coffee", Quantity: 1, UnitPrice: 2_90},
		{SKU: "muffin", Category: "bakery", Quantity: int64(1 + i%2), UnitPrice: 3_10},
	}}
}

func (s *story) hamburgOffline(ctx context.Context) error {
	ben := &protocol.Customer{ID: custBen, Tier: "silver"}
	// Ben's voucher was issued after the cut: its signature is all the
	// till needs.
	text, err := s.scan(ctx, "ben-newcomer")
	if err != nil {
		return err
	}
	rc, err := s.hamburg.POS.Redeem(ctx, agent.RedeemRequest{TxnID: s.nextTxn("hamburg"),
		Basket: agent.Basket{Order: benOrder, Customer: ben, Redeemables: []agent.Input{{Code: text}}}})
	if err != nil {
		s.expect(false, "Ben's voucher, issued after the cut, is accepted offline: %s", describe(err))
	} else {
		s.record(s.hamburg, rc)
		s.expect(rc.Offline && factOf(rc, campNewcomer).Discount == 2_00,
			"Ben's voucher, issued after the cut, is accepted offline: %s off (the till checked the hub's signature)", money(factOf(rc, campNewcomer).Discount))
	}
	if err == nil {
		// Ben's points came with the sale, on what he paid.
		paid := benOrder.Subtotal() - factOf(rc, campNewcomer).Discount
		s.points[custBen] += rc.Points
		want := pointsOn(paid, 10000)
		s.expect(rc.Points == want && rc.Offline,
			"Ben earns %d points offline with the sale (1 per euro of the %s he paid, no multiplier for silver; expected %d)", rc.Points, money(paid), want)
	}

	// The gift card: a balance could be spent at two offline tills, so the
	// till allows it only within its offline risk envelope.
	gift, err := s.scan(ctx, "gift-card")
	if err != nil {
		return err
	}
	rc, err = s.hamburg.POS.Redeem(ctx, agent.RedeemRequest{TxnID: s.nextTxn("hamburg"),
		Basket: agent.Basket{Order: benOrder, Redeemables: []agent.Input{{Code: gift, Amount: 5_00}}}})
	if err != nil {
		s.expect(false, "gift card pays %s offline: %s", money(5_00), describe(err))
	} else {
		s.record(s.hamburg, rc)
		f := factOf(rc, campGift)
		s.giftSpent += f.Spend
		s.expect(rc.Offline && f.Spend == 5_00, "gift card pays %s offline, within the till's offline risk envelope", money(f.Spend))
	}

	// The printed sorry coupon, single use, handed in at the counter.
	sorry, err := s.scan(ctx, "sorry-coupon")
	if err != nil {
		return err
	}
	rc, err = s.hamburg.POS.Redeem(ctx, agent.RedeemRequest{TxnID: s.nextTxn("hamburg"),
		Basket: agent.Basket{Order: benOrder, Redeemables: []agent.Input{{Code: sorry}}}})
	if err != nil {
		s.expect(false, "sorry coupon %s accepted offline: %s", s.sorryCode, describe(err))
	} else {
		s.record(s.hamburg, rc)
		s.expect(rc.Offline && factOf(rc, campSorry).Discount == 3_00,
			"sorry coupon %s accepted offline (%s off): a small single-use code fits the till's loss allowance", s.sorryCode, money(factOf(rc, campSorry).Discount))
	}

	// WELCOME10 until the till's share of the budget is used up.
	st, err := s.hamburg.POS.Status(ctx)
	if err != nil {
		return err
	}
	left := int64(-1)
	for _, a := range st.Allowances {
		if a.Campaign == campWelcome {
			left = a.Count
		}
	}
	if left < 0 {
		s.expect(false, "the till holds an allowance for %s", campWelcome)
		return nil
	}
	s.n.Say("the till holds %d WELCOME10 redemptions of the budget of %d; customers keep coming…", left, welcomeBudget)
	welcome, err := s.scan(ctx, "welcome10")
	if err != nil {
		return err
	}
	var ok int64
	var refusal error
	for i := int64(0); i <= left+1 && refusal == nil; i++ {
		rc, err := s.hamburg.POS.Redeem(ctx, agent.RedeemRequest{TxnID: s.nextTxn("hamburg"),
			Basket: agent.Basket{Order: smallOrder(int(i)), Redeemables: []agent.Input{{Code: welcome}}}})
		if err != nil {
			refusal = err
			break
		}
		s.record(s.hamburg, rc)
		ok++
		s.n.Say("customer %d: WELCOME10 gives %s off offline", i+1, money(factOf(rc, campWelcome).Discount))
	}
	s.expect(ok == left, "%d offline WELCOME10 redemptions accepted: exactly the till's share", ok)
	c := codeOf(refusal)
	s.expect(c == protocol.CodeAllowanceExhausted || c == protocol.CodeBudgetExhausted,
		"the next one is refused (%s): the till never spends more than its share, so the budget holds", describe(refusal))
	return nil
}

func (s *story) supportDesk(ctx context.Context) error {
	key := "webshop-order-7731"
	res, err := s.supportA.Redeem(ctx, tenantA, key, cluster.OnlineRequest{
		Store:       cluster.OnlineStore{ID: "webshop", TimeZone: "Europe/Berlin"},
		Order:       benOrder,
		Customer:    custBen,
		Redeemables: []cluster.Presented{{Code: s.sorryCode}},
	})
	if err != nil {
		s.expect(false, "the web shop accepts %s: %s", s.sorryCode, describe(err))
		return nil
	}
	for _, r := range res.Redemptions {
		s.acked = append(s.acked, cluster.Acked{Agent: string(r.ID.Agent), Seq: int64(r.ID.Seq), Kind: r.Kind.String(), TxnID: r.TxnID,
			Discount: r.Discount, Spend: r.Spend, Points: r.Points})
	}
	// The sale's points ride on the redeem (Ben is named): one redeem,
	// and an earn when his order earns any.
	redeems := 0
	for _, r := range res.Redemptions {
		switch r.Kind {
		case protocol.KindRedeem:
			redeems++
		case protocol.KindEarn:
			s.points[custBen] += r.Points
		}
	}
	s.expect(redeems == 1 && res.Decision.Discount == 3_00,
		"the web shop accepts %s (%s off): the hub cannot know Hamburg already took it", s.sorryCode, money(res.Decision.Discount))
	return nil
}

func (s *story) reconnect(ctx context.Context) error {
	st, err := s.hamburg.POS.Status(ctx)
	if err != nil {
		return err
	}
	s.n.Say("the till has %d redemptions waiting in its outbox", st.OutboxDepth)
	s.hamburg.Heal()
	err = s.n.Wait(ctx, "Hamburg to reconnect and the hub to acknowledge its outbox", s.opts.StepTimeout, func(ctx context.Context) (bool, string, error) {
		st, err := s.hamburg.POS.Status(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		return st.Online && st.OutboxDepth == 0, fmt.Sprintf("online=%v, outbox %d", st.Online, st.OutboxDepth), nil
	})
	if err != nil {
		return err
	}
	t, err := s.adminA.GetTenant(ctx, tenantA)
	if err != nil {
		return err
	}
	if err := s.n.Wait(ctx, "Hamburg to pull the new rules", s.opts.StepTimeout, s.synced(s.hamburg, t.Version)); err != nil {
		return err
	}
	st, err = s.hamburg.POS.Status(ctx)
	if err != nil {
		return err
	}
	s.expect(st.Online && st.OutboxDepth == 0, "Hamburg is back: outbox empty (every offline redemption acknowledged by the hub), rules version %d", st.SnapshotVersion)
	return nil
}

func (s *story) reconcile(ctx context.Context) error {
	var conflicts []cluster.Conflict
	err := s.n.Wait(ctx, "the hub to flag the double use of "+s.sorryCode, s.opts.StepTimeout, func(ctx context.Context) (bool, string, error) {
		cs, err := s.adminA.Conflicts(ctx, tenantA)
		if err != nil {
			return false, "", err
		}
		conflicts = cs
		return len(cs) > 0, fmt.Sprintf("%d conflicts", len(cs)), nil
	})
	if err != nil {
		return err
	}
	var reused bool
	for _, c := range conflicts {
		this, other := side(c["redemption"]), side(c["other"])
		s.n.Say("conflict: %v on %v (%v): %s collides with %s — %v", c["kind"], c["code"], c["campaign"], this, other, c["detail"])
		if c["kind"] == "code_reused" && fmt.Sprint(c["code"]) == codes.Normalize(s.sorryCode) &&
			strings.HasPrefix(this, string(agentHamburg)+"/") && strings.HasPrefix(other, string(protocol.HubSender)+"/") {
			reused = true
		}
	}
	s.expect(reused, "the sorry coupon, used in Hamburg (offline) after the web shop took it, is recorded as a code_reused conflict naming both — both redemptions kept, nothing dropped")

	for _, cu := range []protocol.CustomerID{custAnna, custBen} {
		h, err := s.adminA.Customer(ctx, tenantA, cu)
		if err != nil {
			return err
		}
		got := int64(-1)
		if h.Points != nil {
			got = *h.Points
		}
		s.expect(got == s.points[cu], "%s has %d points at head office, as the tills and the web shop reported (%d)", cu, got, s.points[cu])
	}

	cp, err := s.adminA.Campaign(ctx, tenantA, campWelcome)
	if err != nil {
		return err
	}
	if cp.Used == nil {
		s.expect(false, "the hub reports WELCOME10's use")
	} else {
		s.expect(cp.Used.Count == int64(s.welcomeUsed) && cp.Used.Count <= welcomeBudget,
			"WELCOME10 used %d of its budget of %d (%s given); %d still escrowed in tills' allowances — the budget held",
			cp.Used.Count, welcomeBudget, money(cp.Used.Discount), cp.Used.ReservedCount)
		s.expect(cp.Used.Count+cp.Used.ReservedCount <= welcomeBudget, "used + escrowed = %d ≤ %d", cp.Used.Count+cp.Used.ReservedCount, welcomeBudget)
	}
	code, err := s.adminA.Code(ctx, tenantA, s.giftCard)
	if err != nil {
		return err
	}
	if code.Remaining == nil {
		s.expect(false, "the hub reports the gift card's balance")
	} else {
		s.expect(*code.Remaining == 50_00-s.giftSpent, "gift card %s has %s left (%s spent offline in Hamburg)", s.giftCard, money(*code.Remaining), money(s.giftSpent))
	}
	v, err := s.c.Platform.VerifyLedger(ctx)
	if err != nil {
		return err
	}
	s.expect(v.OK, "the ledger's balances equal what its journal recomputes (%d entries, %d balances checked)", v.Entries, v.Rows)
	return nil
}

func (s *story) closing(ctx context.Context) error {
	err := s.c.Close()
	s.closed = true
	who := "hub and tills"
	if s.c.Mosquitto != nil {
		who = "tills, hub and Mosquitto"
	}
	s.expect(err == nil, "%s stopped cleanly on SIGTERM%s", who, errText(err))
	for _, p := range s.c.Sup.Processes() {
		if p.Running() {
			s.expect(false, "%s is still running", p.Name())
		}
	}
	au, err := cluster.OpenAudit(ctx, s.c.Hub.LedgerPath())
	if err != nil {
		return fmt.Errorf("open the ledger file: %w", err)
	}
	defer au.Close()
	rep, err := au.Verify(ctx)
	if err != nil {
		return err
	}
	s.expect(rep.OK(), "ledger file %s verifies: %s", s.c.Hub.LedgerPath(), cluster.Summary(rep))
	entries, err := au.Entries(ctx, tenantA)
	if err != nil {
		return err
	}
	bad := cluster.CheckAcked(s.acked, entries)
	s.expect(len(bad) == 0, "all %d facts (redemptions, points) the tills and the web shop confirmed are in the ledger exactly once, and nothing else%s", len(s.acked), listText(bad))
	return nil
}

// side names one redemption of a conflict ({"agent","seq"} in JSON).
func side(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return "?"
	}
	return fmt.Sprintf("%v/%v", m["agent"], m["seq"])
}

// pointsOn is what the coffee-points campaign promises for an amount
// paid: 1 point per euro, pro rata to the cent, times the tier's multiplier
// (basis points), rounded down.
func pointsOn(paid, multiplierBP int64) int64 {
	return paid * multiplierBP / 1_000_000
}

// record remembers what a till confirmed.
func (s *story) record(a *cluster.StoreAgent, rc agent.Receipt) {
	for _, f := range rc.Facts {
		s.acked = append(s.acked, cluster.Acked{Agent: string(f.ID.Agent), Seq: int64(f.ID.Seq), Kind: f.Kind, TxnID: rc.TxnID,
			Discount: f.Discount, Spend: f.Spend, Points: f.Points})
		if f.Kind == protocol.KindRedeem.String() && f.Campaign == campWelcome {
			s.welcomeUsed++
		}
	}
}

func factOf(rc agent.Receipt, c protocol.CampaignID) agent.Fact {
	for _, f := range rc.Facts {
		if f.Campaign == c {
			return f
		}
	}
	return agent.Fact{}
}

// describe prints an API outcome for the story: the reason code and its
// message, or "accepted".
func describe(err error) string {
	if err == nil {
		return "accepted (expected a refusal)"
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s — %q", pe.Code, pe.Message)
	}
	return err.Error()
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return ": " + err.Error()
}

func listText(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return ":\n" + strings.Join(lines, "\n")
}
