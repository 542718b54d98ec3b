package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/agent/uplink/mqtttest"
	"github.com/punchcard/punchcard/hub/broker"
	"github.com/punchcard/punchcard/hub/ingest"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

func TestParseFlags(t *testing.T) {
	hubKey := protocol.FormatHubKey(mqtttest.HubPublicKey)
	env := map[string]string{"PUNCHCARD_TENANT": "acme", "PUNCHCARD_AGENT": "till-1", "PUNCHCARD_LISTEN": "127.0.0.1:9999"}
	getenv := func(k string) string { return env[k] }
	t.Run("OK", func(t *testing.T) {
		m := NewMain()
		if err := m.ParseFlags([]string{"-agent", "till-2"}, getenv); err != nil {
			t.Fatal(err)
		}
		if m.Config.Tenant != "acme" || m.Config.Agent != "till-2" || m.Config.Listen != "127.0.0.1:9999" || m.Config.DataDir != DefaultDataDir {
			t.Fatalf("config = %+v", m.Config)
		}
	})
	t.Run("OKSecretFile", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "secret")
		os.WriteFile(f, []byte("s3cret\n"), 0o600)
		m := NewMain()
		if err := m.ParseFlags([]string{"-hub-url", "http://h", "-mqtt-url", "tcp://h:1883", "-secret-file", f, "-hub-key", hubKey}, getenv); err != nil {
			t.Fatal(err)
		}
		if m.Config.Secret != "s3cret" {
			t.Fatalf("secret = %q", m.Config.Secret)
		}
	})
	t.Run("OKHubKeyFile", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "hub.key")
		os.WriteFile(f, []byte(hubKey+"\n"), 0o644)
		m := NewMain()
		if err := m.ParseFlags([]string{"-hub-url", "http://h", "-mqtt-url", "tcp://h:1883", "-secret", "s", "-hub-key-file", f}, getenv); err != nil {
			t.Fatal(err)
		}
		if m.Config.HubKey != hubKey {
			t.Fatalf("hub key = %q", m.Config.HubKey)
		}
	})
	t.Run("ErrNoHubKey", func(t *testing.T) {
		// An agent never syncs without the hub's key pinned.
		err := NewMain().ParseFlags([]string{"-hub-url", "http://h", "-mqtt-url", "tcp://h:1883", "-secret", "s"}, getenv)
		if err == nil || !strings.Contains(err.Error(), "hub's public key is required") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrBadHubKey", func(t *testing.T) {
		if err := NewMain().ParseFlags([]string{"-hub-url", "http://h", "-mqtt-url", "tcp://h:1883", "-secret", "s", "-hub-key", "nope"}, getenv); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("ErrMissingTenant", func(t *testing.T) {
		if err := NewMain().ParseFlags(nil, func(string) string { return "" }); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("ErrHalfHub", func(t *testing.T) {
		if err := NewMain().ParseFlags([]string{"-hub-url", "http://h"}, getenv); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("ErrNoSecret", func(t *testing.T) {
		if err := NewMain().ParseFlags([]string{"-hub-url", "http://h", "-mqtt-url", "tcp://h:1"}, getenv); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestRunNeverSynced(t *testing.T) {
	m := NewMain()
	m.Stdout = io.Discard
	m.Config = Config{Tenant: "acme", Agent: "till-1", DataDir: t.TempDir(), Listen: "127.0.0.1:0", LogLevel: "error"}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	token, err := agent.ReadPOSToken(filepath.Join(m.Config.DataDir, agent.DefaultPOSTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{base: "http://" + m.Addr(), token: token}
	resp, err := p.do(http.MethodGet, "/v1/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st agent.Status
	json.NewDecoder(resp.Body).Decode(&st)
	if !st.NeverSynced || st.Message == "" {
		t.Fatalf("status = %+v", st)
	}
}

// buildAgent compiles this command into dir.
func buildAgent(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "agent")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

type proc struct {
	cmd    *exec.Cmd
	base   string
	token  string        // the POS API token, from the data dir
	stderr *lockedBuffer // the agent's log
}

// lockedBuffer is the agent's stderr, written by exec's copier while the
// test reads it.
type lockedBuffer struct {
	mu gosync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// do sends a POS API request as the POS does: with the token and, with a
// body, as JSON.
func (p *proc) do(method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(method, p.base+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	agenttest.AuthorizePOS(req, p.token)
	return http.DefaultClient.Do(req)
}

func startProc(t testing.TB, bin, dataDir, brokerURL, hubURL string) *proc {
	t.Helper()
	return startProcAs(t, bin, dataDir, brokerURL, hubURL, mqtttest.AgentSecret, protocol.FormatHubKey(mqtttest.HubPublicKey))
}

func startProcAs(t testing.TB, bin, dataDir, brokerURL, hubURL, secret, hubKey string) *proc {
	t.Helper()
	return startProcArgs(t, bin, dataDir, brokerURL, hubURL, secret, hubKey)
}

// startProcArgs is startProcAs with extra flags.
func startProcArgs(t testing.TB, bin, dataDir, brokerURL, hubURL, secret, hubKey string, extra ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-tenant", string(agenttest.Tenant), "-agent", string(agenttest.Agent), "-data-dir", dataDir,
		"-listen", "127.0.0.1:0", "-hub-url", hubURL, "-mqtt-url", brokerURL, "-log-level", "warn"}, extra...)...)
	cmd.Env = append(os.Environ(), "PUNCHCARD_SECRET="+secret, "PUNCHCARD_HUB_KEY="+hubKey)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("agent did not start: %v\n%s", err, stderr.String())
	}
	url := strings.TrimSpace(line[strings.Index(line, "http://"):])
	token, err := agent.ReadPOSToken(filepath.Join(dataDir, agent.DefaultPOSTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return &proc{cmd: cmd, base: url, token: token, stderr: stderr}
}

func (p *proc) status(t testing.TB) agent.Status {
	t.Helper()
	resp, err := p.do(http.MethodGet, "/v1/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st agent.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// redeemCode posts one redemption. ok is false when the agent gave no answer
// (killed mid-request); then the POS does not know and retries.
func (p *proc) redeemCode(txn, code string) (seq uint64, ok bool, err error) {
	b, _ := json.Marshal(agent.RedeemRequest{TxnID: txn, Basket: agent.Basket{Order: agenttest.Order("o-"+txn, 100_00),
		Redeemables: []agent.Input{{Code: code}}}})
	resp, err := p.do(http.MethodPost, "/v1/redeem", bytes.NewReader(b))
	if err != nil {
		return 0, false, nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false, nil
	}
	if resp.StatusCode != 200 {
		return 0, false, fmt.Errorf("redeem %s: %d %s", txn, resp.StatusCode, body)
	}
	var rc agent.Receipt
	if err := json.Unmarshal(body, &rc); err != nil || len(rc.Facts) != 1 {
		return 0, false, fmt.Errorf("redeem %s: bad receipt %s", txn, body)
	}
	return rc.Facts[0].ID.Seq, true, nil
}

func waitFor(t testing.TB, what string, f func() bool) {
	t.Helper()
	testutil.Until(t, what, f)
}

// noFacts is a ledger.Facts that knows no campaign or code: the ledger
// then records every redemption without limit checks, which is all this
// test is about.
type noFacts struct{}

func (noFacts) CampaignFacts(context.Context, protocol.TenantID, protocol.CampaignID) (ledger.CampaignFacts, bool, error) {
	return ledger.CampaignFacts{}, false, nil
}
func (noFacts) CodeFacts(context.Context, protocol.TenantID, protocol.CodeID) (ledger.CodeFacts, bool, error) {
	return ledger.CodeFacts{}, false, nil
}

// TestKillAgent runs the agent as a process, streams redemptions at it
// from several POS goroutines, SIGKILLs it mid-stream several times and
// restarts it, then proves that every redemption the POS got a success for
// is in the hub's ledger exactly once, with the seq the POS was told. The
// hub side is the real one: hub/ingest applying into store/ledger, through
// the embedded broker and through Mosquitto.
func TestKillAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills processes")
	}
	bin := buildAgent(t)
	t.Run("Embedded", func(t *testing.T) {
		killAgent(t, bin, mqtttest.Embedded(t, "127.0.0.1:0").URL())
	})
	t.Run("Mosquitto", func(t *testing.T) {
		killAgent(t, bin, mqtttest.Mosquitto(t))
	})
}

func killAgent(t *testing.T, bin, brokerURL string) {
	ctx := context.Background()
	led, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{Facts: noFacts{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	in, err := ingest.New(led, ingest.Options{BrokerURL: brokerURL, SigningKey: mqtttest.HubKey, Username: broker.DefaultHubUsername, Password: mqtttest.HubSecret,
		ClientID: fmt.Sprintf("punchcard-hub-%d", rand.Int64())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	hub := mqtttest.StartHTTP(t, agenttest.Tenant)
	hub.SetSnapshot(t, agenttest.Small(1, -1))
	start := func(dataDir string) *proc { return startProc(t, bin, dataDir, brokerURL, hub.URL) }
	acked, kills := streamWithKills(t, start, agenttest.CodeSummer, 5)
	verifyLedger(t, led.DB(), acked, kills)
}

// streamWithKills starts the agent (start), streams redemptions of code at
// it from several POS lanes, SIGKILLs it mid-stream rounds times, restarts
// it, retries what had no answer, and waits until the outbox is drained.
// It returns every txn the POS got a success for, with its seq.
func streamWithKills(t *testing.T, start func(dataDir string) *proc, code string, rounds int) (map[string]uint64, int) {
	dataDir := t.TempDir()
	const lanes = 4 // concurrent tills' worth of POS requests
	acked := map[string]uint64{}
	pending := make([]string, lanes) // txn in flight per lane when the agent died
	next := 0
	for round := 0; round < rounds; round++ {
		p := start(dataDir)
		// Ready to sell: the snapshot (over HTTP) and the hub's watermark
		// (the Ack to its first heartbeat, over MQTT) both arrived. The
		// snapshot alone raced the Ack: a redeem in between was refused
		// never_synced (TestKillAgent/Mosquitto, -race at load ~20).
		waitFor(t, "snapshot and the hub's watermark", func() bool {
			st := p.status(t)
			return st.SnapshotVersion > 0 && !st.NeverSynced
		})
		type res struct {
			lane int
			txn  string
			seq  uint64
			ok   bool
			err  error
		}
		results := make(chan res, 1024)
		stop := make(chan struct{})
		for lane := range lanes {
			first := pending[lane]
			go func() {
				txn := first
				for {
					select {
					case <-stop:
						results <- res{lane: lane, txn: txn}
						return
					default:
					}
					if txn == "" {
						txn = fmt.Sprintf("L%d-R%d-%d", lane, round, rand.Int64())
					}
					seq, ok, err := p.redeemCode(txn, code)
					if err != nil && strings.Contains(err.Error(), string(protocol.CodeAllowanceExhausted)) {
						// The till's share ran out faster than it synced;
						// the cashier tries again a moment later.
						time.Sleep(50 * time.Millisecond)
						continue
					}
					results <- res{lane: lane, txn: txn, seq: seq, ok: ok, err: err}
					if err != nil {
						return
					}
					if ok {
						txn = ""
					} else {
						return // the agent is gone; retry this txn after the restart
					}
				}
			}()
		}
		killAfter := 40 + rand.IntN(80)
		got := 0
		done := 0
		for done < lanes {
			r := <-results
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.ok {
				if prev, dup := acked[r.txn]; dup && prev != r.seq {
					t.Fatalf("%s answered seq %d, then %d", r.txn, prev, r.seq)
				}
				acked[r.txn] = r.seq
				pending[r.lane] = ""
				if got++; got == killAfter {
					p.cmd.Process.Signal(syscall.SIGKILL)
					close(stop)
				}
				continue
			}
			pending[r.lane] = r.txn // no answer: unknown, retried next round
			done++
		}
		p.cmd.Wait()
		next++
	}
	// A last run drains the outbox; the in-flight txns are retried first.
	p := start(dataDir)
	waitFor(t, "snapshot, the hub heard", func() bool { st := p.status(t); return st.SnapshotVersion > 0 && !st.NeverSynced })
	for _, txn := range pending {
		if txn == "" {
			continue
		}
		var seq uint64
		var ok bool
		var err error
		for range 100 {
			seq, ok, err = p.redeemCode(txn, code)
			if err == nil || !strings.Contains(err.Error(), string(protocol.CodeAllowanceExhausted)) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil || !ok {
			t.Fatalf("retry %s: %v", txn, err)
		}
		acked[txn] = seq
	}
	waitFor(t, "outbox drained", func() bool { return p.status(t).OutboxDepth == 0 })

	return acked, next
}

// verifyLedger checks the hub's ledger journal: every acknowledged txn is
// there exactly once with the seq the POS was told, nothing else is, and
// the agent's watermark has no gap.
func verifyLedger(t *testing.T, db *sql.DB, acked map[string]uint64, kills int) {
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, `SELECT seq, txn_id FROM ledger_journal WHERE tenant = ? AND agent = ? AND entry = 'redeem'`,
		string(agenttest.Tenant), string(agenttest.Agent))
	if err != nil {
		t.Fatal(err)
	}
	byTxn := map[string]uint64{}
	n := 0
	for rows.Next() {
		var seq uint64
		var txn string
		if err := rows.Scan(&seq, &txn); err != nil {
			t.Fatal(err)
		}
		if prev, dup := byTxn[txn]; dup {
			t.Fatalf("%s is in the ledger twice: seq %d and %d", txn, prev, seq)
		}
		byTxn[txn] = seq
		n++
	}
	rows.Close()
	for txn, seq := range acked {
		if got, ok := byTxn[txn]; !ok || got != seq {
			t.Fatalf("%s: POS told seq %d, ledger has %d (present %v)", txn, seq, got, ok)
		}
	}
	if len(byTxn) != len(acked) {
		t.Fatalf("ledger has %d redemptions, the POS got %d successes", len(byTxn), len(acked))
	}
	var wm uint64
	if err := db.QueryRowContext(ctx, `SELECT watermark FROM ledger_agents WHERE tenant = ? AND agent = ?`, string(agenttest.Tenant), string(agenttest.Agent)).Scan(&wm); err != nil {
		t.Fatal(err)
	}
	var facts int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ledger_journal WHERE tenant = ? AND agent = ? AND seq IS NOT NULL`, string(agenttest.Tenant), string(agenttest.Agent)).Scan(&facts); err != nil {
		t.Fatal(err)
	}
	if wm != uint64(facts) || n > facts {
		t.Fatalf("gap: ledger watermark %d, %d facts, %d redemptions", wm, facts, n)
	}
	t.Logf("%d redemptions over %d kills, all in the ledger exactly once", len(acked), kills)
}

func TestRunPOSToken(t *testing.T) {
	// run starts the agent; closing it twice is fine (the test closes one
	// before starting another on the same data dir).
	closers := map[*Main]func(){}
	run := func(t *testing.T, c Config) (*Main, error) {
		m := NewMain()
		m.Stdout = io.Discard
		c.Tenant, c.Agent, c.LogLevel = "acme", "till-1", "error"
		if c.DataDir == "" {
			c.DataDir = t.TempDir()
		}
		if c.Listen == "" {
			c.Listen = "127.0.0.1:0"
		}
		m.Config = c
		err := m.Run(context.Background())
		if err == nil {
			var once gosync.Once
			closers[m] = func() { once.Do(func() { m.Close() }) }
			t.Cleanup(closers[m])
		} else {
			m.Close()
		}
		return m, err
	}
	statusCode := func(t *testing.T, p *proc) int {
		resp, err := p.do(http.MethodGet, "/v1/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("OK", func(t *testing.T) {
		m, err := run(t, Config{})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(m.Config.DataDir, agent.DefaultPOSTokenFile)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != agent.POSTokenFileMode {
			t.Fatalf("token file mode %#o", got)
		}
		token, err := agent.ReadPOSToken(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := statusCode(t, &proc{base: "http://" + m.Addr(), token: token}); got != 200 {
			t.Fatalf("with the token: %d", got)
		}
		if got := statusCode(t, &proc{base: "http://" + m.Addr(), token: "guess"}); got != 401 {
			t.Fatalf("with a wrong token: %d", got)
		}
		// A restart keeps the token the POS was given.
		closers[m]()
		m2, err := run(t, Config{DataDir: m.Config.DataDir})
		if err != nil {
			t.Fatal(err)
		}
		if got := statusCode(t, &proc{base: "http://" + m2.Addr(), token: token}); got != 200 {
			t.Fatalf("after a restart: %d", got)
		}
	})
	t.Run("OKTokenFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "pos", "token")
		os.Mkdir(filepath.Dir(path), 0o750)
		m, err := run(t, Config{POSTokenFile: path})
		if err != nil {
			t.Fatal(err)
		}
		token, err := agent.ReadPOSToken(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := statusCode(t, &proc{base: "http://" + m.Addr(), token: token}); got != 200 {
			t.Fatalf("with the token: %d", got)
		}
	})
	t.Run("OKTokenOffOnLoopback", func(t *testing.T) {
		m, err := run(t, Config{POSTokenOff: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := statusCode(t, &proc{base: "http://" + m.Addr()}); got != 200 {
			t.Fatalf("token off: %d", got)
		}
		if _, err := os.Stat(filepath.Join(m.Config.DataDir, agent.DefaultPOSTokenFile)); err == nil {
			t.Fatal("token file created with the token off")
		}
	})
	t.Run("ErrTokenOffBeyondLoopback", func(t *testing.T) {
		for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "192.0.2.1:0", "till.example:0"} {
			if _, err := run(t, Config{POSTokenOff: true, Listen: addr}); err == nil || !strings.Contains(err.Error(), "beyond loopback") {
				t.Fatalf("-listen %s with the token off: %v", addr, err)
			}
		}
	})
	t.Run("OKFlags", func(t *testing.T) {
		env := map[string]string{"PUNCHCARD_TENANT": "acme", "PUNCHCARD_AGENT": "till-1", "PUNCHCARD_POS_TOKEN_FILE": "/run/pos/token",
			"PUNCHCARD_POS_ALLOWED_HOSTS": "till-3.lan, till-3", "PUNCHCARD_POS_TOKEN_OFF": "true"}
		m := NewMain()
		if err := m.ParseFlags(nil, func(k string) string { return env[k] }); err != nil {
			t.Fatal(err)
		}
		if c := m.Config; c.POSTokenFile != "/run/pos/token" || !c.POSTokenOff || strings.Join(c.POSHosts, "|") != "till-3.lan|till-3" {
			t.Fatalf("config = %+v", c)
		}
		m = NewMain()
		if err := m.ParseFlags([]string{"-pos-token-off=false"}, func(k string) string { return env[k] }); err != nil || m.Config.POSTokenOff {
			t.Fatalf("flag does not win: %v %+v", err, m.Config)
		}
	})
}
