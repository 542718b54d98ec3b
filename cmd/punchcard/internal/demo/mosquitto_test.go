package demo_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/demo"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/proc"
	"github.com/punchcard/punchcard/internal/testutil"
)

// buildBinaries builds cmd/hub and cmd/agent into a temporary directory.
func buildBinaries(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not inside the punchcard module")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := cluster.BuildBinaries(ctx, filepath.Dir(gomod), dir, cluster.HubBinary, cluster.AgentBinary); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRunMosquitto runs the whole story (punchcard demo -broker mosquitto)
// with Debian's Mosquitto as the broker, configured as docs/operations.md
// says: passwords, ACL, no anonymous clients. It fails, not skips, when
// Mosquitto or zbarimg is missing: CI installs both (.ci/run).
func TestRunMosquitto(t *testing.T) {
	if _, err := cluster.FindMosquitto(); err != nil {
		t.Fatalf("%v — install it to run this test (Debian: apt-get install mosquitto; .ci/run does)", err)
	}
	if _, err := cluster.FindMosquittoPasswd(); err != nil {
		t.Fatalf("%v — install it to run this test", err)
	}
	if _, err := exec.LookPath(demo.ZbarImg); err != nil {
		t.Fatalf("%v — install it to run this test (Debian: apt-get install zbar-tools; .ci/run does)", demo.ErrNoScanner)
	}
	opts := demo.DefaultOptions()
	opts.BinDir, opts.OutDir = buildBinaries(t), filepath.Join(t.TempDir(), "demo-out")
	opts.Broker = demo.BrokerMosquitto
	opts.StepTimeout = testutil.Patience(t) // a loaded machine is slow, not wrong
	var out bytes.Buffer
	if err := demo.Run(context.Background(), opts, &out); err != nil {
		t.Fatalf("demo -broker mosquitto: %v\n%s", err, out.String())
	}
	story := out.String()
	if got := strings.Count(story, "✗"); got != 0 {
		t.Fatalf("demo passed with %d unmet outcomes:\n%s", got, story)
	}
	for _, want := range []string{"[14/14]", "Mosquitto refuses an anonymous client", "tills, hub and Mosquitto stopped cleanly", "every expected outcome was observed"} {
		if !strings.Contains(story, want) {
			t.Errorf("output lacks %q:\n%s", want, story)
		}
	}
	// The hub and every till really went through Mosquitto, each under its
	// own login, and the broker was stopped with the rest.
	log, err := os.ReadFile(filepath.Join(opts.OutDir, "logs", "mosquitto.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{cluster.HubMQTTUser, "kaffee-nord/till-berlin-1", "kaffee-nord/till-hamburg-1", "backhaus-sued/till-muenchen-1"} {
		if !strings.Contains(string(log), "u'"+user+"'") {
			t.Errorf("mosquitto.log shows no client logged in as %s", user)
		}
	}
	// Hamburg's till reconnected after the network cut (step 12).
	if n := strings.Count(string(log), "as kaffee-nord/till-hamburg-1 "); n < 2 {
		t.Errorf("mosquitto.log shows %d connections of Hamburg's till, want ≥ 2 (before the cut and after)", n)
	}
	if !strings.Contains(string(log), "==== mosquitto: exited: exit status 0") {
		t.Errorf("mosquitto did not exit cleanly:\n%s", proc.Tail(filepath.Join(opts.OutDir, "logs", "mosquitto.log"), 20))
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", story)
	}
}

// TestRunMosquittoMissing: without Mosquitto the demo says what to install
// and runs nothing (exit status 2 from the command).
func TestRunMosquittoMissing(t *testing.T) {
	saved := cluster.MosquittoPaths
	t.Cleanup(func() { cluster.MosquittoPaths = saved })
	cluster.MosquittoPaths = nil
	t.Setenv("PATH", t.TempDir())
	opts := demo.DefaultOptions()
	opts.BinDir, opts.OutDir, opts.Broker = t.TempDir(), filepath.Join(t.TempDir(), "demo-out"), demo.BrokerMosquitto
	var out bytes.Buffer
	err := demo.Run(context.Background(), opts, &out)
	if !cluster.IsUnavailable(err) || !strings.Contains(err.Error(), "apt-get install mosquitto") {
		t.Fatalf("Run = %v, want *Unavailable naming the mosquitto package\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "not run: Hamburg keeps selling offline") {
		t.Fatalf("output does not list the steps not run:\n%s", out.String())
	}
}

func TestRunErrBroker(t *testing.T) {
	opts := demo.DefaultOptions()
	opts.OutDir, opts.Broker = filepath.Join(t.TempDir(), "demo-out"), "rabbitmq"
	if err := demo.Run(context.Background(), opts, &bytes.Buffer{}); !errors.Is(err, demo.ErrBroker) {
		t.Fatalf("Run = %v, want ErrBroker", err)
	}
}
