package chaos_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/chaos"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/demo"
	"github.com/punchcard/punchcard/internal/testutil"
)

// TestDemoStory runs the whole demo (what make demo runs) against freshly
// built binaries: the story must observe every outcome it expects.
func TestDemoStory(t *testing.T) {
	if _, err := exec.LookPath(demo.ZbarImg); err != nil {
		t.Skip(demo.ErrNoScanner)
	}
	opts := demo.DefaultOptions()
	opts.BinDir, opts.OutDir = chaos.Build(t), filepath.Join(t.TempDir(), "demo-out")
	opts.StepTimeout = testutil.Patience(t) // a loaded machine is slow, not wrong
	var out bytes.Buffer
	if err := demo.Run(context.Background(), opts, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if got := strings.Count(out.String(), "✗"); got != 0 {
		t.Fatalf("demo passed with %d unmet outcomes:\n%s", got, out.String())
	}
	t.Logf("demo output:\n%s", out.String())
}

// TestDemoInterrupted cancels the demo (as Ctrl-C does) while it runs and
// checks that it reports the interruption and leaves no process behind.
func TestDemoInterrupted(t *testing.T) {
	if _, err := exec.LookPath(demo.ZbarImg); err != nil {
		t.Skip(demo.ErrNoScanner)
	}
	bin := chaos.Build(t)
	opts := demo.DefaultOptions()
	opts.BinDir, opts.OutDir = bin, filepath.Join(t.TempDir(), "demo-out")
	opts.StepTimeout = testutil.Patience(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- demo.Run(ctx, opts, &out) }()
	// Interrupt once the tills run, mid-story.
	if err := testutil.Await(t, "the demo to reach step 5", func() (bool, string) {
		return strings.Contains(out.String(), "[5/14]"), ""
	}); err != nil {
		cancel()
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if n := len(processesUnder(t, bin)); n != 4 {
		t.Errorf("%d processes of the demo running before the interrupt, want 4 (hub and 3 tills)", n)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "Interrupted") {
		t.Errorf("no interruption message:\n%s", out.String())
	}
	if left := processesUnder(t, bin); len(left) > 0 {
		t.Fatalf("processes left running after the interrupt: %v", left)
	}
}

// processesUnder lists the live processes whose executable is in dir.
func processesUnder(t *testing.T, dir string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || !strings.HasPrefix(exe, dir+string(filepath.Separator)) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// syncBuffer is a bytes.Buffer safe to read while the demo writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
