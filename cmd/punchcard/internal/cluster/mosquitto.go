package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/proc"
	"github.com/punchcard/punchcard/protocol"
)

// MosquittoPaths are where the Debian package installs the broker; PATH is
// searched first.
var MosquittoPaths = []string{"/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"}

// FindMosquitto returns the mosquitto binary, or an *Unavailable.
func FindMosquitto() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range MosquittoPaths {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", &Unavailable{What: "mosquitto is not installed (Debian: apt-get install mosquitto)"}
}

// Mosquitto is an external broker run by the supervisor: for the tests that
// restart the broker under the hub and the agents, and for the demo's
// -broker mosquitto.
type Mosquitto struct {
	Proc *proc.Process
	// Addr is the unix socket the broker listens on (no port: Mosquitto
	// cannot bind port 0 and report it, and a port picked and released
	// could be taken by another process before Mosquitto binds it). A
	// netcut.Proxy forwards to it like to a host:port.
	Addr string
	// Persistent says whether the broker keeps sessions and queued messages
	// on disk across restarts (persistence true).
	Persistent bool
	Dir        string

	// auth is nil when anonymous clients are allowed.
	auth *mosquittoAuth
}

// mosquittoAuth is what a broker with allow_anonymous false knows: the
// users and their passwords (kept in plain text here only, the password
// file holds their hashes).
type mosquittoAuth struct {
	passwdBin string
	file      string // the password file the broker reads
	mu        sync.Mutex
	users     map[string]string
}

// URL is the broker address as an MQTT client option wants it:
// "unix:///…/mosquitto.sock" (the hub, cmd/agent and paho accept it).
func (m *Mosquitto) URL() string { return "unix://" + m.Addr }

// Dial opens a connection to the broker's socket, for a test that speaks
// raw MQTT.
func (m *Mosquitto) Dial() (net.Conn, error) { return net.Dial("unix", m.Addr) }

// socketPath is where the broker under dir listens: dir/mosquitto.sock,
// or, when that path is too long for a unix socket (107 bytes), a short
// temporary directory's.
func socketPath(dir string) (string, error) {
	p := filepath.Join(dir, "mosquitto.sock")
	if len(p) <= 100 {
		return p, nil
	}
	short, err := os.MkdirTemp("", "pcmq")
	if err != nil {
		return "", err
	}
	return filepath.Join(short, "mosquitto.sock"), nil
}

// StartMosquitto runs mosquitto on a unix socket with its config,
// data and log under dir. Anonymous clients are allowed: the broker is on
// loopback for a test, and identity is checked by the hub on every message.
func StartMosquitto(ctx context.Context, sup *proc.Supervisor, dir string, persistent bool) (*Mosquitto, error) {
	return startMosquitto(ctx, sup, MosquittoOptions{Dir: dir, Persistent: persistent, crashSafe: persistent})
}

// StartMosquittoWith is StartMosquitto with options (HubUser is ignored:
// anonymous clients are allowed).
func StartMosquittoWith(ctx context.Context, sup *proc.Supervisor, opts MosquittoOptions) (*Mosquitto, error) {
	opts.HubUser, opts.HubPassword = "", ""
	opts.crashSafe = opts.Persistent
	return startMosquitto(ctx, sup, opts)
}

// MosquittoOptions configure StartSecureMosquitto.
type MosquittoOptions struct {
	Dir        string // config, password file, ACL, persistence
	LogPath    string // default Dir/mosquitto.log
	Persistent bool
	// HubUser and HubPassword are the hub's login; with HubUser set the
	// broker refuses anonymous clients and applies the ACL of
	// docs/operations.md: the hub reaches punchcard/#, each agent only its
	// own punchcard/v1/<tenant>/<agent>/ subtree.
	HubUser, HubPassword string
	// DefaultQueues leaves Mosquitto's default queue limits
	// (max_queued_messages 1000): a QoS 1 burst to a client beyond them is
	// dropped, the fault the tests recover from. Anonymous brokers only.
	DefaultQueues bool
	// ReadyDeadline, when set, is how long its start and restarts are
	// waited for (proc.Spec.ReadyDeadline); else proc's default timeout.
	ReadyDeadline time.Time
	// crashSafe writes the database on every change (the tests SIGKILL
	// the broker); otherwise Mosquitto saves it on exit and every 30 min.
	crashSafe bool
}

// mosquittoACL is docs/operations.md's ACL; %u is "<tenant>/<agent>". An
// agent may write only its own up topic, and Mosquitto puts a Will through
// the same write check, so an agent's Will can reach no other topic.
const mosquittoACL = `user %s
topic readwrite punchcard/#

pattern write punchcard/v1/%%u/up
pattern read punchcard/v1/%%u/down
pattern read punchcard/v1/%%u/snapshot
`

// StartSecureMosquitto runs mosquitto as docs/operations.md configures it
// for production — no anonymous clients, a password file made with
// mosquitto_passwd, the ACL, queue limits lifted — on a free loopback
// port. Agents' logins are added with AddUser as they are registered, the
// operator's job with an external broker. It listens on a unix socket
// (Mosquitto.Addr) where production would listen on a port.
func StartSecureMosquitto(ctx context.Context, sup *proc.Supervisor, opts MosquittoOptions) (*Mosquitto, error) {
	if opts.HubUser == "" || opts.HubPassword == "" {
		return nil, errors.New("mosquitto: the hub's user and password are required")
	}
	return startMosquitto(ctx, sup, opts)
}

func startMosquitto(ctx context.Context, sup *proc.Supervisor, opts MosquittoOptions) (*Mosquitto, error) {
	bin, err := FindMosquitto()
	if err != nil {
		return nil, err
	}
	dir := opts.Dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m := &Mosquitto{Persistent: opts.Persistent, Dir: dir}
	if opts.HubUser != "" {
		pw, err := FindMosquittoPasswd()
		if err != nil {
			return nil, err
		}
		m.auth = &mosquittoAuth{passwdBin: pw, file: filepath.Join(dir, "punchcard.passwd"),
			users: map[string]string{opts.HubUser: opts.HubPassword}}
		if err := m.auth.write(ctx); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "punchcard.acl"), fmt.Appendf(nil, mosquittoACL, opts.HubUser), 0o600); err != nil {
			return nil, err
		}
	}
	// A unix socket of its own, not a port: Mosquitto cannot bind port 0
	// and report it, and a port picked and released could be taken by
	// another process before Mosquitto binds it.
	if m.Addr, err = socketPath(dir); err != nil {
		return nil, err
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "listener 0 %s\n", m.Addr)
	// Started as root, mosquitto would switch to the user "mosquitto",
	// which cannot make its socket or read the files made here; stay
	// who we are.
	if u, err := user.Current(); err == nil {
		fmt.Fprintf(&conf, "user %s\n", u.Username)
	}
	if m.auth != nil {
		conf.WriteString("allow_anonymous false\n")
		fmt.Fprintf(&conf, "password_file %s\n", m.auth.file)
		fmt.Fprintf(&conf, "acl_file %s\n", filepath.Join(dir, "punchcard.acl"))
		// docs/operations.md: queue a QoS 1 burst to the hub, do not drop it.
		conf.WriteString("max_queued_messages 1000000\nmax_queued_bytes 0\nmax_inflight_messages 0\n")
		// docs/operations.md: bound what waits for a till that stays
		// offline (Mosquitto cannot expire MQTT 3.1.1 messages).
		conf.WriteString("persistent_client_expiration 1d\n")
		// docs/operations.md: the client ID is the username, so no agent
		// can take over another's session (acme/till-1 as acme/till-10).
		conf.WriteString("use_username_as_clientid true\n")
	} else {
		conf.WriteString("allow_anonymous true\n")
		if !opts.DefaultQueues {
			conf.WriteString("max_queued_messages 100000\n")
		}
	}
	// docs/operations.md: refuse a packet over protocol.MaxPacketBytes
	// (an envelope of protocol.MaxMessageBytes with topic and headers).
	fmt.Fprintf(&conf, "max_packet_size %d\n", protocol.MaxPacketBytes)
	// stderr: Mosquitto buffers its stdout into a file, and the "running"
	// line is how startMosquitto knows it listens.
	conf.WriteString("log_dest stderr\n")
	conf.WriteString("log_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	if opts.Persistent {
		conf.WriteString("persistence true\n")
		fmt.Fprintf(&conf, "persistence_location %s/\n", dir)
		if opts.crashSafe {
			// Write the database on every change, so a SIGKILL loses
			// nothing the broker acknowledged: the tests kill it.
			conf.WriteString("autosave_interval 1\nautosave_on_changes true\n")
		}
	} else {
		conf.WriteString("persistence false\n")
	}
	cfgPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(cfgPath, []byte(conf.String()), 0o644); err != nil {
		return nil, err
	}
	logPath := opts.LogPath
	if logPath == "" {
		logPath = filepath.Join(dir, "mosquitto.log")
	}
	m.Proc, err = sup.StartReady(ctx, proc.Spec{
		Name:    "mosquitto",
		Path:    bin,
		Args:    []string{"-c", cfgPath},
		LogPath: logPath,
		// Its own log says it listens ("Opening unix listen socket
		// on path …", then "running").
		ReadyLog:      mosquittoRunning,
		ReadyDeadline: opts.ReadyDeadline,
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// mosquittoRunning is Mosquitto's log line once it listens.
var mosquittoRunning = regexp.MustCompile(`mosquitto version \S+ running`)

// FindMosquittoPasswd returns the mosquitto_passwd binary (same package as
// the broker), or an *Unavailable.
func FindMosquittoPasswd() (string, error) {
	if p, err := exec.LookPath("mosquitto_passwd"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/mosquitto_passwd", "/usr/sbin/mosquitto_passwd", "/usr/local/bin/mosquitto_passwd"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", &Unavailable{What: "mosquitto_passwd is not installed (Debian: apt-get install mosquitto)"}
}

// write makes the password file: the users in plain text to a temporary
// file, hashed in place by mosquitto_passwd -U (so no password appears on
// a command line), then renamed over the file the broker reads.
func (a *mosquittoAuth) write(ctx context.Context) error {
	var b strings.Builder
	names := make([]string, 0, len(a.users))
	for u := range a.users {
		names = append(names, u)
	}
	sort.Strings(names)
	for _, u := range names {
		if strings.ContainsAny(u, ":\n") || strings.Contains(a.users[u], "\n") {
			return fmt.Errorf("mosquitto: user %q cannot be written to a password file", u)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, a.users[u])
	}
	tmp := a.file + ".new"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, a.passwdBin, "-U", tmp).CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("mosquitto_passwd -U: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return os.Rename(tmp, a.file)
}

// AddUser adds (or changes) a login — an agent's "<tenant>/<agent>" and
// its secret — to the password file, makes the broker reload it (SIGHUP)
// and waits until the broker accepts the login, so that a process started
// next connects at its first try.
func (m *Mosquitto) AddUser(ctx context.Context, username, password string, timeout time.Duration) error {
	if m.auth == nil {
		return errors.New("mosquitto: this broker admits anonymous clients; it has no users")
	}
	m.auth.mu.Lock()
	m.auth.users[username] = password
	err := m.auth.write(ctx)
	m.auth.mu.Unlock()
	if err != nil {
		return err
	}
	if err := m.Proc.Signal(syscall.SIGHUP); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		err := MQTTLogin(m.URL(), username, password)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mosquitto does not accept %q %s after reloading its password file: %w", username, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// MQTTLogin connects to the broker at url as username and disconnects; it
// returns the broker's refusal, if any. Its client id is random; a broker
// with use_username_as_clientid (StartSecureMosquitto) replaces it with the
// username, so it is called before that agent first connects.
func MQTTLogin(url, username, password string) error {
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID("punchcard-probe-" + hex.EncodeToString(id)).
		SetUsername(username).SetPassword(password).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(2 * time.Second)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(3 * time.Second) {
		return errors.New("no CONNACK within 3s")
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.Disconnect(0)
	return nil
}

// Restart stops the broker (SIGKILL when crash is true, else SIGTERM) and
// starts it again on the same port, waiting until it accepts connections.
func (m *Mosquitto) Restart(ctx context.Context, crash bool) error {
	if crash {
		if err := m.Proc.Kill(); err != nil {
			return err
		}
	} else if err := m.Proc.Stop(); err != nil {
		return err
	}
	if err := m.Proc.Restart(); err != nil {
		return err
	}
	return m.Proc.WaitReady(ctx)
}
