package webhooks_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/webhooks"
	"github.com/punchcard/punchcard/protocol"
)

// TestRelayWakesRiverFetch: with River's fetch poll at an hour, events
// relayed after River's first fetch are delivered all the same, round
// after round (each round needs a fetch after its insert), and the
// backlog empties: deliveries do not depend on River's poll, which is
// now a 1 s fallback by default. The relay's wake (TestWakeListener)
// makes the fetch immediate; without it River's listener finds the
// insert's notification row within its own 50 ms table poll, so this
// test alone passes on the code before the wake too.
func TestRelayWakesRiverFetch(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *webhooks.Options) { o.PollInterval = time.Hour })
	rcv := newReceiver(t, 0)
	ep, err := e.s.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: rcv.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	rcv.setSecrets(ep.Secret)
	for round := range 3 {
		ids := e.facts(t, 1+2*round, 2)
		waitFor(t, fmt.Sprint("round ", round, " delivered with River's poll at an hour"), func() bool { return rcv.has(ids) })
	}
	waitFor(t, "an empty backlog", func() bool { n, err := e.s.Backlog(ctx); return err == nil && n == 0 })
}
