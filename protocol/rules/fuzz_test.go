package rules_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// seedCampaigns adds every campaign of the case files and of the invalid
// fixtures.
func seedCampaigns(f *testing.F) [][]byte {
	var out [][]byte
	for _, file := range caseFiles(f) {
		_, cs, _ := loadCaseFile(f, file)
		for _, c := range cs {
			b, err := json.Marshal(c)
			if err != nil {
				f.Fatal(err)
			}
			out = append(out, b)
		}
	}
	for _, c := range loadInvalid(f) {
		out = append(out, c.Campaign)
	}
	return out
}

// FuzzParseCampaignJSON: campaigns come from marketers through the hub's
// API. Never a panic; an accepted campaign is valid and survives JSON and
// CBOR round trips unchanged.
func FuzzParseCampaignJSON(f *testing.F) {
	for _, b := range seedCampaigns(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := rules.ParseCampaignJSON(data)
		if err != nil {
			if protocol.ErrorCode(err) == protocol.CodeInternal {
				t.Fatalf("internal error for outside input: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted but invalid: %v", err)
		}
		j1, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := rules.ParseCampaignJSON(j1)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", j1, err)
		}
		j2, _ := json.Marshal(c2)
		if !bytes.Equal(j1, j2) {
			t.Fatalf("JSON round trip changed:\n%s\n%s", j1, j2)
		}
		b1, err := rules.MarshalCampaignCBOR(c)
		if err != nil {
			t.Fatal(err)
		}
		c3, err := rules.ParseCampaignCBOR(b1)
		if err != nil {
			t.Fatalf("CBOR of an accepted campaign refused: %v", err)
		}
		b2, _ := rules.MarshalCampaignCBOR(c3)
		if !bytes.Equal(b1, b2) {
			t.Fatal("CBOR round trip changed")
		}
		if _, err := rules.NewCatalog([]rules.Campaign{c}); err != nil {
			t.Fatalf("valid campaign refused by NewCatalog: %v", err)
		}
	})
}

// FuzzParseCampaignCBOR: campaigns reach agents in snapshots.
func FuzzParseCampaignCBOR(f *testing.F) {
	for _, b := range seedCampaigns(f) {
		c, err := rules.ParseCampaignJSON(b)
		if err != nil {
			continue
		}
		cb, err := rules.MarshalCampaignCBOR(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(cb)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := rules.ParseCampaignCBOR(data)
		if err != nil {
			if protocol.ErrorCode(err) == protocol.CodeInternal {
				t.Fatalf("internal error for outside input: %v", err)
			}
			return
		}
		b1, err := rules.MarshalCampaignCBOR(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := rules.ParseCampaignCBOR(b1)
		if err != nil {
			t.Fatalf("re-encoded campaign refused: %v", err)
		}
		b2, _ := rules.MarshalCampaignCBOR(c2)
		if !bytes.Equal(b1, b2) {
			t.Fatal("CBOR round trip changed")
		}
	})
}

// FuzzEvaluate feeds arbitrary requests (as the POS sends them, JSON) to
// the catalogs of the case files: never a panic, and every invariant holds.
func FuzzEvaluate(f *testing.F) {
	var cats []*rules.Catalog
	for i, file := range caseFiles(f) {
		cat, _, cases := loadCaseFile(f, file)
		cats = append(cats, cat)
		for _, c := range cases {
			b, err := json.Marshal(c.Request)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), b)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		var req rules.Request
		if err := json.Unmarshal(data, &req); err != nil {
			return
		}
		cat := cats[int(which)%len(cats)]
		d := rules.Evaluate(cat, req)
		checkInvariants(t, cat, req, d)
		again := rules.Evaluate(cat, req)
		a, _ := json.Marshal(d)
		b, _ := json.Marshal(again)
		if !bytes.Equal(a, b) {
			t.Fatal("same input, different output")
		}
	})
}

// FuzzEvaluateRandom explores random catalogs and baskets from a seed: the
// invariants hold and the order of redeemables does not matter.
func FuzzEvaluateRandom(f *testing.F) {
	store, err := rules.NewStore("berlin-1", "DE-BE", "Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	for seed := range uint64(8) {
		f.Add(seed, uint8(seed+1), uint8(seed))
	}
	f.Fuzz(func(t *testing.T, seed uint64, lines, reds uint8) {
		g := newGen(seed)
		cs := g.campaigns("acme", 30)
		cat, err := rules.NewCatalog(cs)
		if err != nil {
			t.Fatal(err)
		}
		req := g.request(cs, 1+int(lines)%20, int(reds)%(rules.MaxRedeemables+2), store)
		d := rules.Evaluate(cat, req)
		checkInvariants(t, cat, req, d)
		rev := req
		rev.Redeemables = make([]rules.Redeemable, len(req.Redeemables))
		for i, r := range req.Redeemables {
			rev.Redeemables[len(rev.Redeemables)-1-i] = r
		}
		rd := rules.Evaluate(cat, rev)
		if d.Discount != rd.Discount || d.ShippingDiscount != rd.ShippingDiscount || d.Paid != rd.Paid || d.PointsEarned != rd.PointsEarned {
			t.Fatalf("reversing the redeemables changed the totals")
		}
	})
}
