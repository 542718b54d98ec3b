package rules_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

var update = flag.Bool("update", false, "rewrite the decision golden files in testdata/rules/golden")

const casesDir = "../../testdata/rules"

// caseFile is one file of table cases: campaigns shared by its cases, and
// per case a request and the expected decision, written by hand.
type caseFile struct {
	Campaigns []json.RawMessage `json:"campaigns"`
	Cases     []goldenCase      `json:"cases"`
}

type goldenCase struct {
	Name    string        `json:"name"`
	Request rules.Request `json:"request"`
	// Earned feeds Request.Earned (a map with struct keys, not JSON).
	Earned []struct {
		Campaign protocol.CampaignID `json:"campaign"`
		Rule     string              `json:"rule"`
		Points   int64               `json:"points"`
	} `json:"earned"`
	Want wantDecision `json:"want"`
}

// wantDecision lists only what a case checks; absent fields are not
// compared.
type wantDecision struct {
	Error            *protocol.Code `json:"error"`
	Subtotal         *int64         `json:"subtotal"`
	Discount         *int64         `json:"discount"`
	ShippingDiscount *int64         `json:"shipping_discount"`
	Total            *int64         `json:"total"`
	Paid             *int64         `json:"paid"`
	Due              *int64         `json:"due"`
	LineTotals       []int64        `json:"line_totals"`
	PointsEarned     *int64         `json:"points_earned"`
	PointsBurned     *int64         `json:"points_burned"`
	Results          []wantResult   `json:"results"`
	Earnings         []wantEarning  `json:"earnings"`
}

type wantResult struct {
	Campaign         *protocol.CampaignID `json:"campaign"`
	Applied          *bool                `json:"applied"`
	Reason           *protocol.Code       `json:"reason"`
	Step             *int                 `json:"step"`
	Discount         *int64               `json:"discount"`
	ShippingDiscount *int64               `json:"shipping_discount"`
	Spend            *int64               `json:"spend"`
	PointsBurned     *int64               `json:"points_burned"`
	Lines            []rules.LineDiscount `json:"lines"`
}

type wantEarning struct {
	Rule      string             `json:"rule"`
	Points    int64              `json:"points"`
	Capped    *bool              `json:"capped"`
	ExpiresAt *time.Time         `json:"expires_at"`
	Lines     []rules.LinePoints `json:"lines"`
}

func loadCaseFile(t testing.TB, path string) (*rules.Catalog, []rules.Campaign, []goldenCase) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cf caseFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var cs []rules.Campaign
	for i, raw := range cf.Campaigns {
		c, err := rules.ParseCampaignJSON(raw)
		if err != nil {
			t.Fatalf("%s: campaign %d: %v", path, i, err)
		}
		cs = append(cs, c)
	}
	cat, err := rules.NewCatalog(cs)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for i := range cf.Cases {
		c := &cf.Cases[i]
		if len(c.Earned) > 0 {
			c.Request.Earned = map[rules.EarnKey]int64{}
			for _, e := range c.Earned {
				c.Request.Earned[rules.EarnKey{Campaign: e.Campaign, Rule: e.Rule}] = e.Points
			}
		}
	}
	return cat, cs, cf.Cases
}

func caseFiles(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join(casesDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no case files in %s: %v", casesDir, err)
	}
	return files
}

// TestGolden runs every case of testdata/rules/*.json: hand-written
// expectations, plus the whole decision compared with a golden file so that
// any drift between versions (and so between agent and hub) shows.
func TestGolden(t *testing.T) {
	for _, file := range caseFiles(t) {
		base := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(base, func(t *testing.T) {
			cat, _, cases := loadCaseFile(t, file)
			all := map[string]rules.Decision{}
			for _, c := range cases {
				t.Run(c.Name, func(t *testing.T) {
					d := rules.Evaluate(cat, c.Request)
					checkDecision(t, d, c.Want)
					checkInvariants(t, cat, c.Request, d)
					all[c.Name] = d
				})
			}
			got, err := json.MarshalIndent(all, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join(casesDir, "golden", base+".decisions.json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update once)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("decisions differ from %s; review the change and run go test -update", path)
			}
		})
	}
}

func checkDecision(t *testing.T, d rules.Decision, w wantDecision) {
	t.Helper()
	if w.Error != nil {
		if d.Error == nil || d.Error.Code != *w.Error {
			t.Errorf("error = %v, want %s", d.Error, *w.Error)
		}
	} else if d.Error != nil {
		t.Errorf("unexpected error %v", d.Error)
	}
	eq := func(name string, got int64, want *int64) {
		t.Helper()
		if want != nil && got != *want {
			t.Errorf("%s = %d, want %d", name, got, *want)
		}
	}
	eq("subtotal", d.Subtotal, w.Subtotal)
	eq("discount", d.Discount, w.Discount)
	eq("shipping_discount", d.ShippingDiscount, w.ShippingDiscount)
	eq("total", d.Total, w.Total)
	eq("paid", d.Paid, w.Paid)
	eq("due", d.Due, w.Due)
	eq("points_earned", d.PointsEarned, w.PointsEarned)
	eq("points_burned", d.PointsBurned, w.PointsBurned)
	if w.LineTotals != nil && !reflect.DeepEqual(d.LineTotals, w.LineTotals) {
		t.Errorf("line_totals = %v, want %v", d.LineTotals, w.LineTotals)
	}
	if w.Results != nil {
		if len(d.Results) != len(w.Results) {
			t.Errorf("%d results, want %d: %+v", len(d.Results), len(w.Results), d.Results)
		}
		for i := range min(len(d.Results), len(w.Results)) {
			g, x := d.Results[i], w.Results[i]
			if x.Campaign != nil && g.Campaign != *x.Campaign {
				t.Errorf("results[%d].campaign = %s, want %s", i, g.Campaign, *x.Campaign)
			}
			if x.Applied != nil && g.Applied != *x.Applied {
				t.Errorf("results[%d].applied = %v (%s: %s), want %v", i, g.Applied, g.Reason, g.Message, *x.Applied)
			}
			if x.Reason != nil && g.Reason != *x.Reason {
				t.Errorf("results[%d].reason = %q (%s), want %q", i, g.Reason, g.Message, *x.Reason)
			}
			if x.Step != nil && g.Step != *x.Step {
				t.Errorf("results[%d].step = %d, want %d", i, g.Step, *x.Step)
			}
			eq("results["+itoa(i)+"].discount", g.Discount, x.Discount)
			eq("results["+itoa(i)+"].shipping_discount", g.ShippingDiscount, x.ShippingDiscount)
			eq("results["+itoa(i)+"].spend", g.Spend, x.Spend)
			eq("results["+itoa(i)+"].points_burned", g.PointsBurned, x.PointsBurned)
			if x.Lines != nil && !reflect.DeepEqual(g.Lines, x.Lines) {
				t.Errorf("results[%d].lines = %+v, want %+v", i, g.Lines, x.Lines)
			}
		}
	}
	if w.Earnings != nil {
		if len(d.Earnings) != len(w.Earnings) {
			t.Errorf("%d earnings, want %d: %+v", len(d.Earnings), len(w.Earnings), d.Earnings)
		}
		for i := range min(len(d.Earnings), len(w.Earnings)) {
			g, x := d.Earnings[i], w.Earnings[i]
			if g.Rule != x.Rule || g.Points != x.Points {
				t.Errorf("earnings[%d] = %s %d, want %s %d", i, g.Rule, g.Points, x.Rule, x.Points)
			}
			if x.Capped != nil && g.Capped != *x.Capped {
				t.Errorf("earnings[%d].capped = %v, want %v", i, g.Capped, *x.Capped)
			}
			if x.ExpiresAt != nil && !g.ExpiresAt.Equal(*x.ExpiresAt) {
				t.Errorf("earnings[%d].expires_at = %v, want %v", i, g.ExpiresAt, *x.ExpiresAt)
			}
			if x.Lines != nil && !reflect.DeepEqual(g.Lines, x.Lines) {
				t.Errorf("earnings[%d].lines = %+v, want %+v", i, g.Lines, x.Lines)
			}
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
