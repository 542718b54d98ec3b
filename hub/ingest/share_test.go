package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/punchcard/punchcard/hub/ingest"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestShareGroupMosquitto: two ingest clients (paho, MQTT 3.1.1) on one
// ledger subscribe as $share/hubs/... to a real Mosquitto, which delivers
// each agent message to one of them: both take part, every fact is
// applied once, every watermark is contiguous. Mosquitto 2 accepts shared
// subscriptions from 3.1.1 clients (the MQTT 5 $share syntax), so the
// hub's paho client needs no MQTT 5.
//
// The two ingests write one ledger file and so wait for each other's
// write lock. With the default busy timeout (5 s) a loaded machine made
// one of them give up ("database is locked", SQLITE_BUSY): the ingest
// drops such a batch unacknowledged, for the till to publish it again,
// which the real agent does and this test's bare MQTT clients do not, so
// the test waited forever for a watermark that could not move (it hung
// 23 minutes under -race at load 40). The ledger here waits for the lock
// as long as the test may run; the recovery by republishing is the
// agent's, tested in agent/uplink.
func TestShareGroupMosquitto(t *testing.T) {
	env := startMosquitto(t)
	ctx := context.Background()
	l, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "hub.db"), ledger.Options{Facts: &ledger.MemFacts{},
		Store: store.Options{BusyTimeoutMS: int(patience(t).Milliseconds())}})
	if err != nil {
		t.Fatal(err)
	}
	var ins []*ingest.Ingest
	logs := &logBuffer{} // what the ingests log at Warn and above, quoted if the wait fails
	for range 2 {
		in, err := ingest.New(l, ingest.Options{BrokerURL: env.url, SigningKey: hubKey, ClientID: uniqueID("hub"), Username: env.hubUser,
			Password: env.hubPass, ShareGroup: "hubs", Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	t.Cleanup(func() {
		for _, in := range ins {
			in.Close()
		}
		if rep, err := l.Verify(ctx); err != nil || !rep.OK() || rep.Entries != 4*300 {
			t.Errorf("ledger verify: %+v %v", rep, err)
		}
		l.Close()
	})
	const per = 300
	var wg sync.WaitGroup
	for _, id := range agents[:4] {
		a := startAgent(t, env, id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks := make([]paho.Token, 0, per)
			for s := uint64(1); s <= per; s++ {
				payload, _ := protocol.EncodeMessage(protocol.MsgBatch, tenant, id, fmt.Sprint(s), 0, protocol.Batch{Redemptions: redemptions(id, s)})
				toks = append(toks, a.c.Publish(protocol.UpTopic(tenant, id), 1, false, payload))
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(patience(t)) || tok.Error() != nil {
					// Lost, not retried: the wait below could never end.
					t.Errorf("%s: publish: %v", id, tok.Error())
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	testutil.Eventually(t, "every redemption applied", func() (bool, string) {
		ok := true
		var state []string
		for _, id := range agents[:4] {
			s, _ := l.Agent(ctx, tenant, id)
			ok = ok && s.Watermark == per
			state = append(state, fmt.Sprintf("%s watermark %d", id, s.Watermark))
		}
		for i, in := range ins {
			state = append(state, fmt.Sprintf("ingest %d %+v", i, in.Stats()))
		}
		return ok, strings.Join(state, "; ") + "; log:\n" + logs.String()
	})
	var total int64
	for i, in := range ins {
		s := in.Stats()
		t.Logf("ingest %d: %+v", i, s)
		if s.Messages == 0 {
			t.Errorf("ingest %d received nothing: the broker did not share the subscription", i)
		}
		total += s.Messages
	}
	if total < 4*per {
		t.Fatalf("messages received %d, want at least %d", total, 4*per)
	}
}
