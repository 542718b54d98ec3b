package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestKeysAfterAChange: after a change of the tenant the keys the cache
// kept are read again, one at a time and then all at once (keybulk.go),
// and each answers as the database says: a live key authenticates, a
// revoked one and an agent's rotated secret do not, a new one does.
func TestKeysAfterAChange(t *testing.T) {
	ctx := context.Background()
	c, _ := MustOpen(t)
	secrets := map[protocol.AgentID]string{}
	for i := range catalog.BulkKeysAfter + 8 {
		id := protocol.AgentID(fmt.Sprintf("till-%d", i))
		_, s, err := c.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: id, Store: snapshot.Store{ID: "s1"}})
		if err != nil {
			t.Fatal(err)
		}
		secrets[id] = s
	}
	k, ks, err := c.CreateKey(ctx, admin, "acme", catalog.RoleSupport, "desk")
	if err != nil {
		t.Fatal(err)
	}
	auth := func(name, secret string, ok bool) {
		t.Helper()
		got, err := c.Authenticate(ctx, secret)
		if ok && (err != nil || got.Tenant != "acme") {
			t.Fatalf("%s: %+v %v, want the key", name, got, err)
		}
		if !ok && !errors.Is(err, catalog.ErrBadKey) {
			t.Fatalf("%s: %+v %v, want ErrBadKey", name, got, err)
		}
	}
	for id, s := range secrets {
		auth(string(id), s, true)
	}
	auth("desk", ks, true)
	// Changes: the desk key revoked, till-3's secret rotated, a campaign.
	if err := c.RevokeKey(ctx, admin, "acme", k.ID); err != nil {
		t.Fatal(err)
	}
	rotated, err := c.RotateAgentSecret(ctx, catalog.System, "acme", "till-3")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON("summer", "active", percent10)); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		for id, s := range secrets {
			if id != "till-3" {
				auth(fmt.Sprint(id, " round ", round), s, true)
			}
		}
		auth(fmt.Sprint("revoked desk key round ", round), ks, false)
		auth(fmt.Sprint("till-3's old secret round ", round), secrets["till-3"], false)
		auth(fmt.Sprint("till-3's new secret round ", round), rotated, true)
	}
}
