// Package demo tells Punchcard's story with real processes: a hub, three
// store tills of two brands, QR codes written as PNG files and read back by
// a real decoder, an outage that cuts one store's network while its till
// keeps selling, reconnection, reconciliation, a conflict, loyalty points
// and a budget that holds. docs/demo.md explains how to read its output.
//
// The demo never pretends: every outcome it reports was observed through
// the hub's or an agent's API, or in the ledger file itself, and a step
// whose component does not exist yet is reported as not available.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/protocol"
)

// Options configure Run.
type Options struct {
	BinDir string // hub and agent binaries (make build: bin/)
	OutDir string // QR PNGs, data, logs; emptied first
	// Keep leaves the processes running at the end until ctx ends (Ctrl-C).
	Keep bool
	// StepTimeout bounds each wait for the system (sync, reconnection).
	StepTimeout time.Duration
	// Broker is BrokerEmbedded (the hub's own MQTT broker) or
	// BrokerMosquitto (a Mosquitto the demo starts, with passwords and ACL,
	// as docs/operations.md configures it).
	Broker string
}

// The brokers the story runs on.
const (
	BrokerEmbedded  = "embedded"
	BrokerMosquitto = "mosquitto"
)

// DefaultOptions are the flags' defaults.
func DefaultOptions() Options {
	return Options{BinDir: "bin", OutDir: "demo-out", StepTimeout: 60 * time.Second, Broker: BrokerEmbedded}
}

// ErrBroker is returned for a Broker the demo does not know.
var ErrBroker = errors.New(`unknown broker: want "embedded" or "mosquitto"`)

// marker marks an output directory as the demo's, so that emptying it can
// never delete someone's files.
const marker = ".punchcard-demo"

// ErrFailed is returned when an expected outcome was not observed.
var ErrFailed = errors.New("the demo did not observe every expected outcome")

// Run tells the story, writing it to w. It returns nil only when every
// expected outcome was observed, a *cluster.Unavailable when a component
// is missing, and an error wrapping ErrFailed otherwise. Every process it
// started is stopped before it returns.
func Run(ctx context.Context, opts Options, w io.Writer) (err error) {
	switch opts.Broker {
	case "":
		opts.Broker = BrokerEmbedded
	case BrokerEmbedded, BrokerMosquitto:
	default:
		return fmt.Errorf("%w: %q", ErrBroker, opts.Broker)
	}
	if err := prepareOut(opts.OutDir); err != nil {
		return err
	}
	s := &story{opts: opts, out: opts.OutDir, points: map[protocol.CustomerID]int64{}, pngs: map[string]string{}}
	steps := s.steps()
	s.n = NewNarrator(w, len(steps))
	fmt.Fprintf(w, "Punchcard demo — coupons, gift cards and points that keep working when a store's internet does not.\n")
	fmt.Fprintf(w, "Everything below runs as real processes on this machine (127.0.0.1). Files go to %s/.\n", opts.OutDir)
	defer func() {
		if s.c != nil && !s.closed {
			if cerr := s.c.Close(); cerr != nil {
				fmt.Fprintf(w, "\nstopping processes: %v\n", cerr)
			}
		}
	}()
	for i, st := range steps {
		if i == len(steps)-1 && s.opts.Keep && s.c != nil {
			s.keep(ctx, w)
			ctx = context.WithoutCancel(ctx) // the last step stops and audits
		}
		if ctx.Err() != nil {
			fmt.Fprintf(w, "\nInterrupted: stopping every process the demo started.\n")
			return ctx.Err()
		}
		s.step = i + 1
		s.n.Step(i+1, st.title)
		s.stepFailures = 0
		err := st.run(ctx)
		if ctx.Err() != nil {
			fmt.Fprintf(w, "\nInterrupted at step %d: stopping every process the demo started.\n", i+1)
			return ctx.Err()
		}
		if err == nil && s.stepFailures > 0 {
			err = fmt.Errorf("%w: %d outcome(s) of step %d differ from the story", ErrFailed, s.stepFailures, i+1)
		}
		if err != nil {
			return s.finish(w, i, steps, err)
		}
	}
	return s.finish(w, len(steps), steps, nil)
}

// keep leaves the installation running for exploring until ctx ends.
func (s *story) keep(ctx context.Context, w io.Writer) {
	fmt.Fprintf(w, "\nThe processes keep running (-keep) until Ctrl-C; then the last step stops them and audits the ledger.\n")
	fmt.Fprintf(w, "  hub API       %s   (platform key: %s)\n", s.c.Hub.URL, s.c.Hub.PlatformKey)
	if m := s.c.Mosquitto; m != nil {
		fmt.Fprintf(w, "  Mosquitto     %s   (config %s, log %s)\n", m.URL(), filepath.Join(m.Dir, "mosquitto.conf"), m.Proc.LogPath())
	}
	for _, a := range s.c.Agents {
		fmt.Fprintf(w, "  till %-16s %s   (POS API, e.g. curl -H \"Authorization: Bearer $(cat %s)\" %s/v1/status)\n", a.ID, a.URL,
			filepath.Join(a.DataDir, agent.DefaultPOSTokenFile), a.URL)
	}
	<-ctx.Done()
}

// finish prints the summary: which steps ran, what failed, and where the
// logs are.
func (s *story) finish(w io.Writer, done int, steps []step, err error) error {
	switch {
	case err == nil:
		fmt.Fprintf(w, "\nAll %d steps done; every expected outcome was observed.\n", len(steps))
	case cluster.IsUnavailable(err):
		var u *cluster.Unavailable
		errors.As(err, &u)
		s.n.Bad("This step is not available yet: %s", u.What)
		fmt.Fprintf(w, "\nThe story stops at step %d/%d, %q: a component it needs does not exist yet.\n", done+1, len(steps), steps[done].title)
		for _, st := range steps[done+1:] {
			fmt.Fprintf(w, "  not run: %s\n", st.title)
		}
	default:
		if !errors.Is(err, ErrFailed) || s.stepFailures == 0 {
			s.n.Bad("%v", err)
		}
		fmt.Fprintf(w, "\nThe story failed at step %d/%d, %q.\n", done+1, len(steps), steps[done].title)
		for _, st := range steps[done+1:] {
			fmt.Fprintf(w, "  not run: %s\n", st.title)
		}
	}
	if s.c != nil {
		fmt.Fprintf(w, "Process logs: %s\n", filepath.Join(s.out, "logs"))
	}
	if err != nil && !cluster.IsUnavailable(err) && !errors.Is(err, ErrFailed) {
		return fmt.Errorf("%w: %v", ErrFailed, err)
	}
	return err
}

// prepareOut empties dir if it is the demo's (or creates it).
func prepareOut(dir string) error {
	if dir == "" || dir == "/" {
		return fmt.Errorf("refusing output directory %q", dir)
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
			return fmt.Errorf("%s exists and was not made by the demo (no %s file); choose another -out", dir, marker)
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, marker), []byte("output of punchcard demo; emptied on every run\n"), 0o644)
}

type step struct {
	title string
	run   func(ctx context.Context) error
}

// expect reports one expected outcome and counts it when not observed.
func (s *story) expect(ok bool, format string, args ...any) bool {
	if ok {
		s.n.OK(format, args...)
	} else {
		s.n.Bad(format, args...)
		s.stepFailures++
		s.failures = append(s.failures, fmt.Sprintf("step %d: %s", s.step, fmt.Sprintf(format, args...)))
	}
	return ok
}

// money formats minor units of EUR for a store manager.
func money(minor int64) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s€%d.%02d", sign, minor/100, minor%100)
}

// short abbreviates a token text for the terminal.
func short(text string) string {
	t := strings.TrimSpace(text)
	if len(t) <= 24 {
		return t
	}
	return t[:14] + "…" + t[len(t)-6:]
}

func codeOf(err error) protocol.Code { return cluster.Code(err) }
