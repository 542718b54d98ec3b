// Package mqtttest runs the far side of the agent's sync in tests: real
// MQTT brokers on loopback (the hub's embedded mochi broker and a Mosquitto
// process) and a minimal hub that applies batches by (agent, seq) exactly
// once, acknowledges with a contiguous watermark, serves snapshots with
// ETags and grants allowances. It is a test fixture of agent/uplink (and so
// may import paho); the real hub's ingest is tested in hub/.
package mqtttest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/punchcard/punchcard/hub/broker"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// Credentials used by every fixture.
const (
	AgentSecret = "agent-secret"
	HubSecret   = "hub-secret"
)

// HubKey is the fixture hub's signing key: it signs every down message, and
// agents under test pin HubPublicKey. Fixed, so runs are reproducible.
var HubKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5c}, ed25519.SeedSize))

// HubPublicKey is what an agent under test pins (uplink.Options.HubKey).
var HubPublicKey = HubKey.Public().(ed25519.PublicKey)

type auth struct{}

func (auth) AuthenticateAgent(_ context.Context, _ protocol.TenantID, _ protocol.AgentID, secret string) error {
	if secret != AgentSecret {
		return protocol.NewError(protocol.CodeUnauthenticated)
	}
	return nil
}

// Embedded starts the hub's embedded broker on addr ("127.0.0.1:0" for any
// port) and returns it; it is closed when tb ends.
func Embedded(tb testing.TB, addr string) *broker.Broker {
	tb.Helper()
	b, err := broker.New(broker.Options{Addr: addr, Auth: auth{}, HubSecret: HubSecret})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago. Another process can take it meanwhile: never hand it to a process
// that should bind it (see StartMosquitto), and prefer DeadAddr for an
// address where nothing must answer.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// DeadAddr returns a loopback address where nothing answers: a listener
// this test holds until it ends, which closes every connection at once.
// A till pointed at it is offline (its dial succeeds, the broker or hub
// hangs up), and no other process can take the port meanwhile, as it could
// one picked and released (FreeAddr).
func DeadAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	tb.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}

// MosquittoPath is where the tests look for Mosquitto.
var MosquittoPath = "/usr/sbin/mosquitto"

// Mosquitto starts a Mosquitto process listening on a unix socket and
// returns its URL ("unix:///…/mosquitto.sock"); it is killed when tb ends.
// The test is skipped when Mosquitto is not installed.
func Mosquitto(tb testing.TB) string {
	tb.Helper()
	if _, err := os.Stat(MosquittoPath); err != nil {
		tb.Skip("mosquitto not installed")
	}
	return "unix://" + StartMosquitto(tb, "allow_anonymous true\npersistence false\nmax_queued_messages 100000\n")
}

// SocketDir makes a short temporary directory for a unix socket (a
// socket's path is limited to 107 bytes, and tb.TempDir's names grow with
// the test's), removed when tb ends.
func SocketDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "pcmq")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// StartMosquitto runs Mosquitto with the configuration conf (without a
// listener and log settings) listening on a unix socket, and returns the
// socket's path once Mosquitto's own log says it is running; it is killed
// when tb ends. A unix socket in a directory of the test's own needs no
// port: none is picked, released and handed to Mosquitto for another
// process to take meanwhile (Mosquitto cannot bind port 0 and report it).
// There is no time limit but the test binary's: the condition is waited
// for, and Mosquitto exiting instead fails the test with its log.
func StartMosquitto(tb testing.TB, conf string) string {
	tb.Helper()
	dir := SocketDir(tb)
	sock := filepath.Join(dir, "mosquitto.sock")
	path := filepath.Join(dir, "mosquitto.conf")
	text := fmt.Sprintf("listener 0 %s\n", sock) + conf + "log_dest stderr\nlog_type error\nlog_type information\n"
	if u, err := user.Current(); err == nil && !strings.Contains(conf, "\nuser ") && !strings.HasPrefix(conf, "user ") {
		// Started as root, Mosquitto would switch to the user "mosquitto",
		// which cannot make a socket in this directory; stay who we are.
		text += "user " + u.Username + "\n"
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	log := &mosquittoLog{ready: make(chan struct{})}
	cmd := exec.Command(MosquittoPath, "-c", path)
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	select {
	case <-log.ready:
		tb.Cleanup(func() { cmd.Process.Kill(); <-exited })
		return sock
	case <-exited:
		tb.Fatalf("mosquitto exited before it ran:\n%s", log.String())
		return ""
	}
}

// mosquittoLog collects Mosquitto's log and closes ready when it says it
// is running.
type mosquittoLog struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	once  sync.Once
}

func (m *mosquittoLog) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buf.Len() < 1<<16 {
		m.buf.Write(p)
	}
	if bytes.Contains(m.buf.Bytes(), []byte(" running")) {
		m.once.Do(func() { close(m.ready) })
	}
	return len(p), nil
}

func (m *mosquittoLog) String() string { m.mu.Lock(); defer m.mu.Unlock(); return m.buf.String() }

// Hub is a minimal hub: MQTT ingest with exactly-once apply and acks, and
// the agent HTTP endpoints (snapshot, allowances).
type Hub struct {
	Tenant protocol.TenantID
	URL    string // HTTP base URL
	mq     mqtt.Client
	srv    *httptest.Server

	// AckEnabled makes the hub acknowledge batches (default true).
	AckEnabled atomic.Bool
	// Spread is the SnapshotAnnounce.Spread (ms) of SetSnapshot's
	// announcements (default 0: fetch at once).
	Spread atomic.Uint32
	// Counters.
	Batches       atomic.Int64
	Received      atomic.Int64 // redemptions received, duplicates included
	States        atomic.Int64 // AgentState heartbeats
	SnapshotGets  atomic.Int64
	NotModified   atomic.Int64
	GrantRequests atomic.Int64
	Returns       atomic.Int64 // allowance returns received

	mu       sync.Mutex
	applied  map[protocol.AgentID]map[uint64]protocol.Redemption
	wm       map[protocol.AgentID]uint64
	snapBody []byte
	snapETag string
	snapVer  uint64
}

// StartHTTP serves only the hub's agent HTTP endpoints, for tests that run
// the real hub ingest on MQTT.
func StartHTTP(tb testing.TB, tenant protocol.TenantID) *Hub {
	tb.Helper()
	h := &Hub{Tenant: tenant, applied: map[protocol.AgentID]map[uint64]protocol.Redemption{}, wm: map[protocol.AgentID]uint64{}}
	h.srv = httptest.NewServer(h.handler())
	tb.Cleanup(h.srv.Close)
	h.URL = h.srv.URL
	return h
}

// StartHub connects a hub to the broker at brokerURL and serves its HTTP
// API on loopback.
func StartHub(tb testing.TB, tenant protocol.TenantID, brokerURL string) *Hub {
	tb.Helper()
	h := &Hub{Tenant: tenant, applied: map[protocol.AgentID]map[uint64]protocol.Redemption{}, wm: map[protocol.AgentID]uint64{}}
	h.AckEnabled.Store(true)
	h.srv = httptest.NewServer(h.handler())
	tb.Cleanup(h.srv.Close)
	h.URL = h.srv.URL
	o := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("punchcard-hub-test").
		SetUsername(broker.DefaultHubUsername).SetPassword(HubSecret).SetCleanSession(true).SetOrderMatters(false).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetOnConnectHandler(func(c mqtt.Client) {
			c.Subscribe(protocol.UpFilter(""), 1, h.onUp).WaitTimeout(5 * time.Second)
		})
	h.mq = mqtt.NewClient(o)
	if t := h.mq.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		tb.Fatalf("hub connect: %v", t.Error())
	}
	// OnConnect subscribes; wait until it has.
	time.Sleep(100 * time.Millisecond)
	tb.Cleanup(func() { h.mq.Disconnect(100) })
	return h
}

func (h *Hub) onUp(_ mqtt.Client, m mqtt.Message) {
	tenant, agent, ok := protocol.ParseUpTopic(m.Topic())
	if !ok || tenant != h.Tenant {
		return
	}
	env, err := protocol.DecodeEnvelope(m.Payload())
	if err != nil || env.Sender != agent || env.Tenant != tenant {
		return
	}
	switch env.Type {
	case protocol.MsgAgentState:
		// Like hub/ingest: every heartbeat is answered with the watermark.
		h.States.Add(1)
		if h.AckEnabled.Load() {
			h.Ack(agent)
		}
		return
	case protocol.MsgBatch:
	default:
		return
	}
	var b protocol.Batch
	if err := protocol.DecodeBody(env, &b); err != nil {
		return
	}
	h.Batches.Add(1)
	h.Received.Add(int64(len(b.Redemptions)))
	h.mu.Lock()
	got := h.applied[agent]
	if got == nil {
		got = map[uint64]protocol.Redemption{}
		h.applied[agent] = got
	}
	for _, r := range b.Redemptions {
		if r.ID.Agent != agent {
			continue
		}
		if _, dup := got[r.ID.Seq]; !dup {
			got[r.ID.Seq] = r
		}
	}
	wm := h.wm[agent]
	for {
		if _, ok := got[wm+1]; !ok {
			break
		}
		wm++
	}
	h.wm[agent] = wm
	var beyond []uint64
	for s := range got {
		if s > wm {
			beyond = append(beyond, s)
		}
	}
	h.mu.Unlock()
	sort.Slice(beyond, func(i, j int) bool { return beyond[i] < beyond[j] })
	if len(beyond) > 1000 {
		beyond = beyond[:1000]
	}
	if h.AckEnabled.Load() {
		h.publish(agent, protocol.MsgAck, protocol.Ack{Watermark: wm, Beyond: beyond}, false)
	}
}

func (h *Hub) publish(agent protocol.AgentID, t protocol.MsgType, body any, retained bool) {
	topic := protocol.DownTopic(h.Tenant, agent)
	if t == protocol.MsgSnapshotAnnounce {
		topic = protocol.SnapshotTopic(h.Tenant, agent)
	}
	b, err := protocol.SignDown(HubKey, t, h.Tenant, agent, strconv.FormatInt(time.Now().UnixNano(), 36), time.Now().UnixMicro(), body)
	if err != nil {
		panic(err)
	}
	h.mq.Publish(topic, 1, retained, b).WaitTimeout(5 * time.Second)
}

// Ack republishes the current acknowledgement for agent.
func (h *Hub) Ack(agent protocol.AgentID) {
	h.mu.Lock()
	wm := h.wm[agent]
	h.mu.Unlock()
	h.publish(agent, protocol.MsgAck, protocol.Ack{Watermark: wm}, false)
}

// Resend asks agent to publish seqs from..to again.
func (h *Hub) Resend(agent protocol.AgentID, from, to uint64) {
	h.publish(agent, protocol.MsgResend, protocol.Resend{From: from, To: to}, false)
}

// Recall asks agent to give back its allowance for campaign.
func (h *Hub) Recall(agent protocol.AgentID, campaign protocol.CampaignID) {
	h.publish(agent, protocol.MsgAllowanceRecall, protocol.AllowanceRecall{Campaign: campaign}, false)
}

// SetSnapshot makes s the snapshot served to agents and announces it on
// the agent's retained snapshot topic.
func (h *Hub) SetSnapshot(tb testing.TB, s *snapshot.Snapshot) {
	tb.Helper()
	b, err := snapshot.Encode(s)
	if err != nil {
		tb.Fatal(err)
	}
	h.mu.Lock()
	h.snapBody, h.snapETag, h.snapVer = b, snapshot.ETag(b), s.Version
	h.mu.Unlock()
	if h.mq == nil {
		return // HTTP only: the agent pulls on connect
	}
	h.publish(s.Agent, protocol.MsgSnapshotAnnounce, protocol.SnapshotAnnounce{Version: s.Version, ETag: snapshot.ETag(b), Spread: h.Spread.Load()}, true)
}

// Applied returns what the hub applied for agent, by seq.
func (h *Hub) Applied(agent protocol.AgentID) map[uint64]protocol.Redemption {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[uint64]protocol.Redemption, len(h.applied[agent]))
	for k, v := range h.applied[agent] {
		out[k] = v
	}
	return out
}

// Watermark is the contiguous applied seq for agent.
func (h *Hub) Watermark(agent protocol.AgentID) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.wm[agent]
}

func (h *Hub) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/agent/snapshot", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+AgentSecret {
			http.Error(w, `{"code":"unauthenticated","message":"no"}`, http.StatusUnauthorized)
			return
		}
		h.SnapshotGets.Add(1)
		h.mu.Lock()
		body, etag := h.snapBody, h.snapETag
		h.mu.Unlock()
		if body == nil {
			http.Error(w, `{"code":"not_found","message":"no snapshot"}`, http.StatusNotFound)
			return
		}
		if r.Header.Get("If-None-Match") == etag {
			h.NotModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Content-Type", "application/cbor")
		w.Write(body)
	})
	mux.HandleFunc("POST /v1/agent/allowances", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Campaign protocol.CampaignID `json:"campaign"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		n := h.GrantRequests.Add(1)
		json.NewEncoder(w).Encode(protocol.Allowance{Tenant: h.Tenant, Campaign: req.Campaign, Grant: uint64(1000 + n), Count: 10, Amount: -1})
	})
	mux.HandleFunc("POST /v1/agent/allowances/return", func(w http.ResponseWriter, r *http.Request) {
		var a protocol.Allowance
		json.NewDecoder(r.Body).Decode(&a)
		h.Returns.Add(1)
		json.NewEncoder(w).Encode(a)
	})
	return mux
}
