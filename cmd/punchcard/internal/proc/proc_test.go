package proc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/proc"
	"github.com/punchcard/punchcard/internal/testutil"
)

// The test binary doubles as the supervised program: with PROC_HELPER set it
// behaves as the mode says instead of running the tests. That way the tests
// drive a real child process without building anything.
const helperEnv = "PROC_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

// helper modes:
//
//	serve        listen on HELPER_ADDR, answer /ready 200, exit 0 on SIGTERM
//	stubborn     like serve but ignores SIGTERM
//	crash        print a message and exit 3 at once
//	silent       never listen, sleep until killed
//	slow         listen only after HELPER_DELAY
//	notready     listen but answer /ready 503
//	parent       supervise a "serve" child, print its pid, wait to be killed
func helper(mode string) int {
	fmt.Println("helper starting in mode", mode, "env", os.Getenv("HELPER_GREETING"))
	if mode == "parent" {
		return parent()
	}
	sigs := make(chan os.Signal, 1)
	switch mode {
	case "crash":
		fmt.Fprintln(os.Stderr, "fatal: cannot open database: disk on fire")
		return 3
	case "silent":
		time.Sleep(time.Hour)
		return 0
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
	default:
		signal.Notify(sigs, syscall.SIGTERM)
	}
	if d, err := time.ParseDuration(os.Getenv("HELPER_DELAY")); err == nil {
		time.Sleep(d)
	}
	ln, err := net.Listen("tcp", os.Getenv("HELPER_ADDR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 4
	}
	status := http.StatusOK
	if mode == "notready" {
		status = http.StatusServiceUnavailable
	}
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
		}))
	}()
	fmt.Println("helper ready on", ln.Addr())
	<-sigs
	fmt.Println("helper got SIGTERM, bye")
	return 0
}

// parent is a supervisor in a process of its own, for the test that kills
// it: its child must not outlive it.
func parent() int {
	s, err := proc.New(os.Getenv("HELPER_LOGDIR"))
	if err != nil {
		fmt.Println("parent:", err)
		return 5
	}
	exe, _ := os.Executable()
	c, err := s.StartReady(context.Background(), proc.Spec{Name: "grandchild", Path: exe, Args: []string{"-test.run=^$"},
		Env: []string{helperEnv + "=serve", "HELPER_ADDR=127.0.0.1:0"}, ReadyLog: helperReady, ReadyURL: "http://{addr}/ready",
		// No fixed figure: the test waits for this outcome on its own patience.
		ReadyTimeout: time.Hour})
	if err != nil {
		fmt.Println("parent:", err)
		return 6
	}
	fmt.Printf("child pid %d\n", c.Pid())
	time.Sleep(time.Hour)
	return 0
}

func mustSupervisor(tb testing.TB) *proc.Supervisor {
	tb.Helper()
	s, err := proc.New(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	s.ProgressEvery = 100 * time.Millisecond
	var mu sync.Mutex
	s.Progress = func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		tb.Logf("progress: "+format, args...)
	}
	tb.Cleanup(func() { _ = s.StopAll() })
	return s
}

// helperReady is the line a helper writes once it listens; the helper
// binds port 0 and reports the port it got, so no port is picked, released
// and handed to it (another process could take it meanwhile).
var helperReady = regexp.MustCompile(`helper ready on (\S+)`)

func helperSpec(tb testing.TB, name, mode string, extraEnv ...string) proc.Spec {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	return proc.Spec{
		Name:     name,
		Path:     exe,
		Args:     []string{"-test.run=^$"},
		Env:      append([]string{helperEnv + "=" + mode, "HELPER_ADDR=127.0.0.1:0", "HELPER_GREETING=hello-from-env"}, extraEnv...),
		ReadyLog: helperReady,
		ReadyURL: "http://{addr}/ready",
		// Ready when it is, however loaded the machine: until a minute
		// before the test binary's deadline, not a fixed figure.
		ReadyDeadline: time.Now().Add(testutil.Patience(tb)),
		StopTimeout:   2 * time.Second,
	}
}

func TestStartReady(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		env     []string
		timeout time.Duration
		// deadlineOverTimeout: ReadyTimeout this short, ReadyDeadline kept.
		deadlineOverTimeout time.Duration
		wantErr             error
		wantLog             string // must appear in the error (log tail) or the log
	}{
		{name: "OK", mode: "serve", wantLog: "hello-from-env"},
		{name: "OKSlowStart", mode: "slow", env: []string{"HELPER_DELAY=400ms"}, wantLog: "helper ready"},
		// ReadyDeadline replaces ReadyTimeout: a start slower than the
		// timeout is waited for.
		{name: "OKSlowerThanReadyTimeout", mode: "slow", env: []string{"HELPER_DELAY=400ms"}, deadlineOverTimeout: 50 * time.Millisecond, wantLog: "helper ready"},
		{name: "ErrExitedBeforeReady", mode: "crash", wantErr: proc.ErrExited, wantLog: "disk on fire"},
		{name: "ErrNotReadyNoListener", mode: "silent", timeout: 500 * time.Millisecond, wantErr: proc.ErrNotReady, wantLog: "mode silent"},
		{name: "ErrNotReady503", mode: "notready", timeout: 500 * time.Millisecond, wantErr: proc.ErrNotReady, wantLog: "503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSupervisor(t)
			spec := helperSpec(t, "helper-"+tt.mode, tt.mode, tt.env...)
			if tt.timeout > 0 {
				spec.ReadyTimeout, spec.ReadyDeadline = tt.timeout, time.Time{}
			}
			if tt.deadlineOverTimeout > 0 {
				spec.ReadyTimeout = tt.deadlineOverTimeout
			}
			p, err := s.StartReady(context.Background(), spec)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("StartReady err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantLog) {
					t.Fatalf("error does not quote the log (%q):\n%v", tt.wantLog, err)
				}
				// A process that failed readiness is not left running.
				for _, q := range s.Processes() {
					if q.Running() {
						t.Fatalf("%s still running after failed StartReady", q.Name())
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("StartReady: %v", err)
			}
			if !p.Running() {
				t.Fatal("process not running after ready")
			}
			if err := p.Stop(); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if p.Running() {
				t.Fatal("still running after Stop")
			}
			log, err := os.ReadFile(p.LogPath())
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{tt.wantLog, "helper got SIGTERM", "exited: exit status 0"} {
				if !strings.Contains(string(log), want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
		})
	}
}

func TestStop(t *testing.T) {
	t.Run("OKGraceful", func(t *testing.T) {
		s := mustSupervisor(t)
		p, err := s.StartReady(context.Background(), helperSpec(t, "graceful", "serve"))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Stop(); err != nil {
			t.Fatalf("Stop = %v, want nil", err)
		}
		if err := p.ExitErr(); err != nil {
			t.Fatalf("exit = %v, want status 0", err)
		}
	})
	t.Run("ErrIgnoresSIGTERM", func(t *testing.T) {
		s := mustSupervisor(t)
		spec := helperSpec(t, "stubborn", "stubborn")
		spec.StopTimeout = 300 * time.Millisecond
		p, err := s.StartReady(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		err = p.Stop()
		if err == nil || !strings.Contains(err.Error(), "ignored SIGTERM") {
			t.Fatalf("Stop = %v, want escalation error", err)
		}
		if !proc.Killed(p.ExitErr()) {
			t.Fatalf("exit = %v, want SIGKILL", p.ExitErr())
		}
	})
	t.Run("OKAlreadyExited", func(t *testing.T) {
		s := mustSupervisor(t)
		spec := helperSpec(t, "crash", "crash")
		spec.ReadyURL = ""
		p, err := s.Start(spec)
		if err != nil {
			t.Fatal(err)
		}
		<-p.Done()
		if err := p.Stop(); err != nil {
			t.Fatalf("Stop of an exited process = %v", err)
		}
	})
}

func TestKillAndRestart(t *testing.T) {
	s := mustSupervisor(t)
	spec := helperSpec(t, "victim", "serve")
	p, err := s.StartReady(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	pid := p.Pid()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if !proc.Killed(p.ExitErr()) {
		t.Fatalf("exit = %v, want SIGKILL", p.ExitErr())
	}
	// The kernel no longer knows the pid (reaped, not a zombie).
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("kill(%d, 0) = %v, want ESRCH", pid, err)
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := p.Runs(), 2; got != want {
		t.Fatalf("runs = %d, want %d", got, want)
	}
	if p.Pid() == pid {
		t.Fatal("restart reused the old pid")
	}
	log, _ := os.ReadFile(p.LogPath())
	if got := strings.Count(string(log), "==== victim: start"); got != 2 {
		t.Fatalf("log has %d start markers, want 2 (appended across restarts):\n%s", got, log)
	}
	if !strings.Contains(string(log), "signal: killed") {
		t.Fatalf("log does not record the kill:\n%s", log)
	}
}

func TestStopAll(t *testing.T) {
	s := mustSupervisor(t)
	var ps []*proc.Process
	for i, mode := range []string{"serve", "serve", "stubborn"} {
		spec := helperSpec(t, fmt.Sprintf("p%d", i), mode)
		spec.StopTimeout = 300 * time.Millisecond
		p, err := s.StartReady(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	err := s.StopAll()
	if err == nil || !strings.Contains(err.Error(), "p2 ignored SIGTERM") {
		t.Fatalf("StopAll = %v, want the stubborn one reported", err)
	}
	for _, p := range ps {
		if p.Running() {
			t.Fatalf("%s still running after StopAll", p.Name())
		}
	}
	if _, err := s.Start(helperSpec(t, "late", "serve")); !errors.Is(err, proc.ErrStopped) {
		t.Fatalf("Start after StopAll = %v, want ErrStopped", err)
	}
	if err := s.StopAll(); err != nil {
		t.Fatalf("second StopAll = %v", err)
	}
}

func TestWaitReadyContextCancel(t *testing.T) {
	s := mustSupervisor(t)
	p, err := s.Start(helperSpec(t, "silent", "silent"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.WaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, proc.ErrNotReady) {
		t.Fatalf("WaitReady = %v, want a deadline error", err)
	}
}

func TestStartErrNoBinary(t *testing.T) {
	s := mustSupervisor(t)
	_, err := s.Start(proc.Spec{Name: "ghost", Path: filepath.Join(t.TempDir(), "no-such-binary")})
	if err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("Start = %v, want an error naming the process", err)
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var b strings.Builder
	for i := range 30 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := proc.Tail(path, 3), "line 27\nline 28\nline 29"; got != want {
		t.Fatalf("Tail = %q, want %q", got, want)
	}
	if got := proc.Tail(filepath.Join(t.TempDir(), "missing"), 3); got != "" {
		t.Fatalf("Tail of missing file = %q", got)
	}
}

// TestChildDiesWithSupervisor kills a supervising process with SIGKILL (no
// chance to clean up) and checks that the kernel takes its child down too.
func TestChildDiesWithSupervisor(t *testing.T) {
	s := mustSupervisor(t)
	spec := helperSpec(t, "parent", "parent", "HELPER_LOGDIR="+t.TempDir())
	spec.ReadyURL = ""
	p, err := s.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	var child int
	testutil.Eventually(t, "the parent to report its child", func() (bool, string) {
		for _, line := range strings.Split(proc.Tail(p.LogPath(), 20), "\n") {
			fmt.Sscanf(line, "child pid %d", &child)
		}
		if child == 0 && !p.Running() {
			t.Fatalf("the parent exited without reporting its child:\n%s", proc.Tail(p.LogPath(), 20))
		}
		return child != 0, proc.Tail(p.LogPath(), 20)
	})
	if err := syscall.Kill(child, 0); err != nil {
		t.Fatalf("child %d not running: %v", child, err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := testutil.Await(t, "the child to die with its killed supervisor", func() (bool, string) { return !alive(child), "" }); err != nil {
		_ = syscall.Kill(child, syscall.SIGKILL)
		t.Fatalf("child %d outlived its killed supervisor: %v", child, err)
	}
}

// alive reports whether pid runs: a zombie (dead, not yet reaped by
// whichever process inherited it) does not count.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// pid (comm) state ...: the state follows the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

func TestSignal(t *testing.T) {
	s := mustSupervisor(t)
	p, err := s.StartReady(context.Background(), helperSpec(t, "listener", "serve"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.Done():
		case <-time.After(testutil.Patience(t)):
			t.Fatal("the helper did not exit on the signal")
		}
		log, _ := os.ReadFile(p.LogPath())
		if !strings.Contains(string(log), "helper got SIGTERM") {
			t.Fatalf("the helper did not receive the signal:\n%s", log)
		}
	})
	t.Run("ErrNotRunning", func(t *testing.T) {
		if err := p.Signal(syscall.SIGHUP); err == nil || !strings.Contains(err.Error(), "not running") {
			t.Fatalf("Signal after exit = %v, want a not-running error", err)
		}
	})
}
