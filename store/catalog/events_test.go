package catalog_test

import (
	"context"
	"encoding/json"
	"testing"
)

// TestEvents: campaign changes and the kill switch write their events in
// their transaction (the audit trigger); a stop that changes nothing
// writes none; customer changes write none.
func TestEvents(t *testing.T) {
	ctx := context.Background()
	c, _ := MustOpen(t)
	if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("summer", "draft", percent10)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartCampaign(ctx, admin, "acme", "summer"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second stop changes nothing
		if _, err := c.StopCampaign(ctx, admin, "acme", "summer"); err != nil {
			t.Fatal(err)
		}
	}
	es, err := c.EventsAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range es {
		types = append(types, e.Type)
	}
	if got, want := len(es), 3; got != want || types[0] != "campaign.create" || types[1] != "campaign.start" || types[2] != "campaign.stop" {
		t.Fatalf("events %v, want campaign.create, campaign.start, campaign.stop", types)
	}
	var b struct {
		Target string `json:"target"`
		After  struct {
			Status string `json:"status"`
		} `json:"after"`
	}
	if err := json.Unmarshal(es[2].Body, &b); err != nil || b.Target != "campaign/summer" || b.After.Status != "stopped" || es[2].Tenant != "acme" {
		t.Fatalf("stop body %s: %+v %v", es[2].Body, b, err)
	}
}
