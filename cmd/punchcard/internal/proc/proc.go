// Package proc supervises the real processes that the demo and the fault
// tests orchestrate: a hub, store agents, an external broker. It starts a
// binary with its arguments and environment, writes its output to a log
// file, waits until an HTTP readiness URL answers, and stops it with SIGTERM
// then SIGKILL — or with SIGKILL on demand, to simulate a crash.
//
// Cleanup is the point of the package: every process a Supervisor started
// is stopped by StopAll (call it from defer or t.Cleanup), children run in
// their own process group so a Ctrl-C in the terminal reaches only the
// supervisor (which then stops them in order), and on Linux each child gets
// SIGKILL from the kernel if the supervisor itself dies, so nothing is left
// running on the machine after a crash or a failed test.
package proc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults for Spec fields left zero.
const (
	DefaultReadyTimeout = 30 * time.Second
	DefaultStopTimeout  = 5 * time.Second
	DefaultPollInterval = 50 * time.Millisecond
	// DefaultProgressEvery is how often WaitReady reports that it is still
	// waiting, so a person watching knows the program has not hung.
	DefaultProgressEvery = 2 * time.Second
	// logTailLines is how many lines of a failed process's log an error
	// quotes: enough to see the cause without flooding the terminal.
	logTailLines = 15
)

// Errors callers branch on.
var (
	// ErrExited is returned when the process ended before it became ready.
	ErrExited = errors.New("process exited")
	// ErrNotReady is returned when the readiness URL did not answer in time.
	ErrNotReady = errors.New("process not ready")
	// ErrStopped is returned by Start on a Supervisor after StopAll.
	ErrStopped = errors.New("supervisor stopped")
)

// Spec says how to run one process.
type Spec struct {
	Name string   // short label for logs and messages, e.g. "hub" or "agent berlin"
	Path string   // the binary
	Args []string // arguments, without the program name
	// Env is added to the supervisor's own environment (later entries win).
	Env []string
	Dir string // working directory; empty means the supervisor's
	// LogPath receives the process's stdout and stderr, appended across
	// restarts. Empty means <Supervisor.LogDir>/<Name>.log.
	LogPath string
	// ReadyURL is polled with GET until it answers 2xx. Empty means the
	// process counts as ready once started (or once ReadyAddr accepts).
	ReadyURL string
	// ReadyAddr, for a process without an HTTP endpoint (a broker), is a
	// TCP address polled until it accepts a connection. Ignored when
	// ReadyURL is set.
	ReadyAddr string
	// ReadyLog, when set, is waited for first: a line the process writes
	// in the current run that matches (ReadyAddr is then ignored);
	// Reported returns the match. With it a process binds port 0 and
	// reports the address it got, so no port is picked, released and
	// handed over for another process to take meanwhile. A ReadyURL is
	// then polled too, with "{addr}" replaced by the first submatch.
	ReadyLog *regexp.Regexp
	// ReadyTimeout bounds the wait for readiness (DefaultReadyTimeout).
	ReadyTimeout time.Duration
	// ReadyDeadline, when set, replaces ReadyTimeout: every wait for
	// readiness (the start and each restart) lasts until the process is
	// ready, exits, or this moment passes. Tests set it a little before
	// the test binary's own deadline (testutil.Patience), so that a slow
	// start on a loaded machine is waited for rather than failed after a
	// fixed figure, and a process that cannot start is reported when it
	// exits.
	ReadyDeadline time.Time
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL
	// (DefaultStopTimeout).
	StopTimeout time.Duration
}

func (s *Spec) ensureDefaults(logDir string) {
	if s.ReadyTimeout <= 0 {
		s.ReadyTimeout = DefaultReadyTimeout
	}
	if s.StopTimeout <= 0 {
		s.StopTimeout = DefaultStopTimeout
	}
	if s.LogPath == "" {
		s.LogPath = filepath.Join(logDir, safeName(s.Name)+".log")
	}
}

func safeName(n string) string {
	if n == "" {
		return "process"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '-'
	}, n)
}

// Supervisor owns a set of processes and stops them all in StopAll.
type Supervisor struct {
	// LogDir holds the log files of specs without a LogPath.
	LogDir string
	// Progress, when set, receives one line while WaitReady waits and when a
	// process is stopped or killed. Nil means silent.
	Progress func(format string, args ...any)
	// ProgressEvery is how often a waiting WaitReady reports
	// (DefaultProgressEvery).
	ProgressEvery time.Duration

	mu      sync.Mutex
	procs   []*Process
	stopped bool
}

// New returns a Supervisor that writes logs under logDir (created if
// missing).
func New(logDir string) (*Supervisor, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	return &Supervisor{LogDir: logDir, ProgressEvery: DefaultProgressEvery}, nil
}

func (s *Supervisor) progress(format string, args ...any) {
	if s.Progress != nil {
		s.Progress(format, args...)
	}
}

// Start runs the process described by spec and returns once it is started
// (not ready: call WaitReady, or use StartReady).
func (s *Supervisor) Start(spec Spec) (*Process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, ErrStopped
	}
	spec.ensureDefaults(s.LogDir)
	p := &Process{spec: spec, sup: s}
	if err := p.start(); err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	return p, nil
}

// StartReady is Start followed by WaitReady. On a readiness failure the
// process is killed and the error quotes the end of its log.
func (s *Supervisor) StartReady(ctx context.Context, spec Spec) (*Process, error) {
	p, err := s.Start(spec)
	if err != nil {
		return nil, err
	}
	if err := p.WaitReady(ctx); err != nil {
		_ = p.Kill()
		return nil, err
	}
	return p, nil
}

// StopAll stops every process in reverse start order (so agents go before
// the hub they talk to), each with SIGTERM then SIGKILL after its
// StopTimeout. It returns the processes that did not exit cleanly as one
// error, and refuses further Starts. Safe to call more than once.
func (s *Supervisor) StopAll() error {
	s.mu.Lock()
	s.stopped = true
	procs := append([]*Process(nil), s.procs...)
	s.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Processes returns the processes started so far, in start order.
func (s *Supervisor) Processes() []*Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Process(nil), s.procs...)
}

// Process is one supervised process. It can be stopped, killed and started
// again with the same spec (Restart), which is how a crash and a recovery
// are simulated.
type Process struct {
	spec Spec
	sup  *Supervisor

	mu      sync.Mutex
	cmd     *exec.Cmd
	logf    *os.File
	done    chan struct{} // closed when the current run has exited
	waitErr error         // the current run's exit status, after done
	runs    int
	logFrom int64    // offset of the current run's output in the log
	matched []string // the ReadyLog match of the current run
}

// Name is the spec's label.
func (p *Process) Name() string { return p.spec.Name }

// LogPath is the file the process writes its output to.
func (p *Process) LogPath() string { return p.spec.LogPath }

// Spec returns a copy of the spec the process runs with.
func (p *Process) Spec() Spec {
	s := p.spec
	s.Args = append([]string(nil), s.Args...)
	s.Env = append([]string(nil), s.Env...)
	return s
}

// start launches one run. Callers hold whatever lock keeps runs serial.
func (p *Process) start() error {
	if err := os.MkdirAll(filepath.Dir(p.spec.LogPath), 0o755); err != nil {
		return fmt.Errorf("%s: log dir: %w", p.spec.Name, err)
	}
	logf, err := os.OpenFile(p.spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", p.spec.Name, err)
	}
	fmt.Fprintf(logf, "==== %s: start %s %s (%s)\n", p.spec.Name, p.spec.Path, strings.Join(p.spec.Args, " "), time.Now().UTC().Format(time.RFC3339Nano))
	from, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	cmd.Dir = p.spec.Dir
	cmd.Env = append(os.Environ(), p.spec.Env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: start %s: %w", p.spec.Name, p.spec.Path, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.logf, p.done, p.waitErr = cmd, logf, done, nil
	p.logFrom, p.matched = from, nil
	p.runs++
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "==== %s: exited: %v (%s)\n", p.spec.Name, exitText(err), time.Now().UTC().Format(time.RFC3339Nano))
		logf.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Pid is the operating system's id of the current run, or 0 if never
// started.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// SetArgs replaces the arguments of the runs Restart starts, for example
// to pin the port the first run reported (Spec.ReadyLog).
func (p *Process) SetArgs(args ...string) {
	p.sup.mu.Lock()
	defer p.sup.mu.Unlock()
	p.spec.Args = append([]string(nil), args...)
}

// Reported is the ReadyLog match (whole line match, then submatches) of
// the current run once WaitReady saw it; nil before.
func (p *Process) Reported() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.matched
}

// logMatch looks for ReadyLog in the current run's output.
func (p *Process) logMatch() (bool, string) {
	m := p.FindLog(p.spec.ReadyLog)
	if m == nil {
		return false, "no line matching " + p.spec.ReadyLog.String() + " yet"
	}
	p.mu.Lock()
	p.matched = m
	p.mu.Unlock()
	return true, ""
}

// FindLog returns the first match of re in a line of the current run's
// output (whole match, then submatches), nil when none.
func (p *Process) FindLog(re *regexp.Regexp) []string {
	p.mu.Lock()
	from := p.logFrom
	p.mu.Unlock()
	f, err := os.Open(p.spec.LogPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			return m
		}
	}
	return nil
}

// Runs is how many times the process has been started.
func (p *Process) Runs() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runs
}

// Done is closed when the current run has exited.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Running reports whether the current run has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.Done():
		return false
	default:
		return true
	}
}

// ExitErr is the current run's exit status (nil for exit 0) once Done is
// closed, and nil before.
func (p *Process) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// WaitReady polls the spec's ReadyURL until it answers 2xx, the process
// exits (ErrExited), ReadyTimeout (or ReadyDeadline) or ctx's deadline
// passes (ErrNotReady, saying how long it waited and what it last saw), or
// ctx is cancelled. While it
// waits it reports progress through the Supervisor. Errors quote the end of
// the process's log.
func (p *Process) WaitReady(ctx context.Context) error {
	if p.spec.ReadyURL == "" && p.spec.ReadyAddr == "" && p.spec.ReadyLog == nil {
		return nil
	}
	client := &http.Client{Timeout: 2 * time.Second}
	target := p.spec.ReadyURL
	check := func(ctx context.Context) (bool, string) { return probe(ctx, client, p.spec.ReadyURL) }
	switch {
	case p.spec.ReadyLog != nil:
		target = "its log"
		check = func(ctx context.Context) (bool, string) {
			if p.Reported() == nil {
				if ok, why := p.logMatch(); !ok {
					return false, why
				}
			}
			if p.spec.ReadyURL == "" {
				return true, ""
			}
			return probe(ctx, client, strings.ReplaceAll(p.spec.ReadyURL, "{addr}", p.Reported()[1]))
		}
	case p.spec.ReadyURL == "":
		target = "tcp://" + p.spec.ReadyAddr
		check = func(ctx context.Context) (bool, string) { return dialProbe(ctx, p.spec.ReadyAddr) }
	}
	start := time.Now()
	var cancel context.CancelFunc
	if p.spec.ReadyDeadline.IsZero() {
		ctx, cancel = context.WithTimeout(ctx, p.spec.ReadyTimeout)
	} else {
		ctx, cancel = context.WithDeadline(ctx, p.spec.ReadyDeadline)
	}
	defer cancel()
	every := p.sup.ProgressEvery
	if every <= 0 {
		every = DefaultProgressEvery
	}
	nextReport := start.Add(every)
	done := p.Done()
	tick := time.NewTicker(DefaultPollInterval)
	defer tick.Stop()
	var last string
	for {
		if ok, why := check(ctx); ok {
			return nil
		} else {
			last = why
		}
		select {
		case <-done:
			return fmt.Errorf("%s %w before it was ready (%s)%s", p.spec.Name, ErrExited, exitText(p.ExitErr()), p.tailForError())
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s %w after %s at %s (last: %s)%s", p.spec.Name, ErrNotReady, time.Since(start).Round(time.Millisecond), target, last, p.tailForError())
			}
			return ctx.Err()
		case now := <-tick.C:
			if now.After(nextReport) {
				p.sup.progress("still waiting for %s at %s (%s so far; %s)", p.spec.Name, target, time.Since(start).Round(time.Second), last)
				nextReport = now.Add(every)
			}
		}
	}
}

// probe does one GET and says whether it was a 2xx, or else why not.
func probe(ctx context.Context, c *http.Client, url string) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return false, op.Err.Error()
		}
		return false, err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return true, ""
	}
	return false, resp.Status
}

// dialProbe says whether addr accepts a TCP connection, or else why not.
func dialProbe(ctx context.Context, addr string) (bool, string) {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return false, op.Err.Error()
		}
		return false, err.Error()
	}
	c.Close()
	return true, ""
}

func (p *Process) tailForError() string {
	t := Tail(p.spec.LogPath, logTailLines)
	if t == "" {
		return ""
	}
	return "\n--- last lines of " + p.spec.LogPath + " ---\n" + t
}

// Stop sends SIGTERM, waits up to StopTimeout, then sends SIGKILL. It
// returns nil when the process was already gone or exited after SIGTERM with
// status 0 (or by the signal itself), and an error when it had to be killed
// or exited with a failure status.
func (p *Process) Stop() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		err := p.ExitErr()
		if err == nil || isSignal(err, syscall.SIGTERM) {
			return nil
		}
		return fmt.Errorf("%s exited badly on SIGTERM: %w", p.spec.Name, err)
	case <-time.After(p.spec.StopTimeout):
	}
	p.sup.progress("%s did not stop within %s, sending SIGKILL", p.spec.Name, p.spec.StopTimeout)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	return fmt.Errorf("%s ignored SIGTERM for %s and was killed", p.spec.Name, p.spec.StopTimeout)
}

// Signal sends sig to the current run, e.g. SIGHUP to make a broker reload
// its password file. It fails when the process is not running.
func (p *Process) Signal(sig os.Signal) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%s: not started", p.spec.Name)
	}
	select {
	case <-done:
		return fmt.Errorf("%s: not running: %s", p.spec.Name, exitText(p.ExitErr()))
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: signal %v: %w", p.spec.Name, sig, err)
	}
	return nil
}

// Kill sends SIGKILL — a crash, with no chance to flush or say goodbye —
// and waits until the process is gone.
func (p *Process) Kill() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: kill: %w", p.spec.Name, err)
	}
	<-done
	return nil
}

// Restart starts the process again with the same spec after the current run
// has exited (it stops it first if not). It does not wait for readiness.
func (p *Process) Restart() error {
	if p.Running() {
		if err := p.Stop(); err != nil {
			p.sup.progress("%v", err)
		}
	}
	p.sup.mu.Lock()
	defer p.sup.mu.Unlock()
	if p.sup.stopped {
		return ErrStopped
	}
	return p.start()
}

func isSignal(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// Killed reports whether the run ended by SIGKILL.
func Killed(err error) bool { return isSignal(err, syscall.SIGKILL) }

// Tail returns the last n lines of the file at path, or "" when it cannot be
// read.
func Tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	// Logs of a demo run are small; read at most the last 256 KiB.
	const max = 256 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1 and releases it,
// for programs that need a port number on their command line. Another
// process could take it in between; WaitReady then fails clearly.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
