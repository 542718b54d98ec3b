package chaos_test

import (
	"context"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/chaos"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/netcut"
	"github.com/punchcard/punchcard/protocol/hlc"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestClockJump jumps a till's wall clock an hour ahead, then an hour
// behind, then back (the agent's PUNCHCARD_FAULT_CLOCK_FILE knob), while
// it sells online and offline. The hybrid logical clock must keep the
// till's stamps strictly increasing in seq order, the hub must flag the
// stamps that are too far ahead as future_time conflicts (and only those),
// and nothing acknowledged may be lost or doubled.
//
// Once the clock has been an hour ahead, the HLC carries that hour until
// the wall clock catches up — by design it never goes back — so the sales
// made after the jump back are stamped ahead too and are flagged as well.
func TestClockJump(t *testing.T) {
	e := chaos.Setup(t, 1, 0, "")
	ctx := context.Background()
	a := e.Agents[0]
	perLeg := 4
	if chaos.Long() {
		perLeg = 25
	}
	start := time.Now()
	phases := []struct {
		name   string
		offset time.Duration
	}{{"before", 0}, {"ahead", time.Hour}, {"behind", -time.Hour}, {"back", 0}}
	phaseOf := map[string]string{} // txn id -> phase
	sell := func(phase, where string) {
		for range perLeg {
			txn, o, err := e.Redeem(ctx, a)
			if o != chaos.Accepted {
				t.Fatalf("%s, %s: sale refused or failed: %v", phase, where, err)
			}
			phaseOf[txn] = phase
		}
	}
	for _, p := range phases {
		if err := a.SetClockOffset(p.offset); err != nil {
			t.Fatal(err)
		}
		// The agent re-reads the offset every 100 ms.
		time.Sleep(350 * time.Millisecond)
		sell(p.name, "online")
		a.Cut(netcut.Reset)
		waitOnline(t, ctx, a, false)
		sell(p.name, "offline")
		a.Heal()
		waitOnline(t, ctx, a, true)
	}
	e.Drain(ctx, time.Minute)
	au := e.Check(ctx)
	entries, err := au.Entries(ctx, chaos.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := au.Conflicts(ctx, chaos.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	flagged := map[int64]int{}
	for _, c := range cs {
		if c.Kind == string(ledger.ConflictFutureTime) && c.Agent == string(a.ID) {
			flagged[c.Seq]++
		}
	}
	var prev uint64
	seen := map[int64]bool{}
	perPhase := map[string][2]int{} // phase -> {sold, flagged}
	aheadLine := start.Add(30 * time.Minute)
	for _, en := range entries {
		if en.Agent != string(a.ID) {
			continue
		}
		if seen[en.Seq] {
			t.Errorf("%s/%d is in the journal twice", en.Agent, en.Seq)
		}
		seen[en.Seq] = true
		if en.HLC <= prev {
			t.Errorf("%s/%d: HLC %d (%s) is not above the previous seq's %d (%s)", en.Agent, en.Seq,
				en.HLC, hlc.Timestamp(en.HLC).Time().UTC(), prev, hlc.Timestamp(prev).Time().UTC())
		}
		prev = en.HLC
		phase, ok := phaseOf[en.TxnID]
		if !ok {
			t.Errorf("%s/%d (txn %s) was not sold by the test", en.Agent, en.Seq, en.TxnID)
			continue
		}
		at := hlc.Timestamp(en.HLC).Time()
		ahead := at.After(aheadLine)
		if flagged[en.Seq] > 1 {
			t.Errorf("%s/%d flagged future_time %d times", en.Agent, en.Seq, flagged[en.Seq])
		}
		if ahead != (flagged[en.Seq] == 1) {
			t.Errorf("%s/%d (%s): stamped %s, ahead of the hub = %v, but flagged future_time = %v",
				en.Agent, en.Seq, phase, at.UTC().Format(time.RFC3339), ahead, flagged[en.Seq] == 1)
		}
		switch phase {
		case "before":
			if ahead {
				t.Errorf("%s/%d sold before the jump is stamped %s", en.Agent, en.Seq, at.UTC())
			}
		case "ahead":
			if !ahead {
				t.Errorf("%s/%d sold an hour ahead is stamped %s: the clock knob had no effect", en.Agent, en.Seq, at.UTC())
			}
		}
		c := perPhase[phase]
		c[0]++
		if flagged[en.Seq] > 0 {
			c[1]++
		}
		perPhase[phase] = c
	}
	if len(seen) != len(phaseOf) {
		t.Errorf("%d sales acknowledged, %d in the journal", len(phaseOf), len(seen))
	}
	for _, p := range phases {
		t.Logf("clock %s (%+v): %d redemptions in the ledger, %d flagged future_time", p.name, p.offset, perPhase[p.name][0], perPhase[p.name][1])
	}
}
