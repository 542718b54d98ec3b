// Command punchcard is Punchcard's admin and demo tool. Its first command,
// demo, tells the whole story with real processes: a hub, three store tills
// of two brands, QR codes as PNG files, scans, an outage, offline
// redemptions, reconnection, reconciliation, a conflict and a budget that
// holds. See docs/demo.md.
//
//	punchcard demo [-bin bin] [-out demo-out] [-keep] [-broker embedded|mosquitto]
//	punchcard fleet [-hub-bin bin/hub] [-tills 10000] [-rate 0.1] [-duration 1m] [-fetch agent|version|none]
//
// fleet is the fleet benchmark (docs/operations.md, Benchmarks): simulated
// tills, each with its own MQTT connection and credentials, against a hub
// binary it starts on a temp data directory.
//
// Exit status: 0 when every expected outcome was observed, 1 when one was
// not, 2 when a component the story needs is not available yet, 64 on a
// usage error, 130 when interrupted (Ctrl-C). Every process the demo
// started is stopped in every case.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/demo"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/fleet"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUnavailable = 2
	exitUsage       = 64
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Main runs the command line args and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "demo":
		opts, err := ParseDemoFlags(args[1:], stderr)
		if err != nil {
			return exitUsage
		}
		return Run(ctx, opts, stdout, stderr)
	case "fleet":
		opts, err := ParseFleetFlags(args[1:], stderr)
		if err != nil {
			return exitUsage
		}
		return RunFleet(ctx, opts, stdout, stderr)
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "punchcard: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage: punchcard <command> [flags]

commands:
  demo   run the end-to-end story with real processes (see docs/demo.md)
  fleet  the fleet benchmark: simulated tills against a hub binary (docs/operations.md)
  help   show this text

Run "punchcard demo -h" for the demo's flags.`)
}

// ParseDemoFlags reads the demo's flags.
func ParseDemoFlags(args []string, stderr io.Writer) (demo.Options, error) {
	opts := demo.DefaultOptions()
	fs := flag.NewFlagSet("punchcard demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opts.BinDir, "bin", opts.BinDir, "directory with the hub and agent binaries (make build puts them in bin/)")
	fs.StringVar(&opts.OutDir, "out", opts.OutDir, "directory for QR code PNGs, data and process logs (emptied first)")
	fs.BoolVar(&opts.Keep, "keep", opts.Keep, "keep the processes running at the end until Ctrl-C, to explore them")
	fs.DurationVar(&opts.StepTimeout, "step-timeout", opts.StepTimeout, "how long one step may wait for the system")
	fs.StringVar(&opts.Broker, "broker", opts.Broker, `MQTT broker: "embedded" (the hub's own) or "mosquitto" (the demo starts /usr/sbin/mosquitto with passwords and ACL, as docs/operations.md configures it)`)
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if opts.Broker != demo.BrokerEmbedded && opts.Broker != demo.BrokerMosquitto {
		fmt.Fprintf(stderr, "punchcard demo: -broker %q: want %q or %q\n", opts.Broker, demo.BrokerEmbedded, demo.BrokerMosquitto)
		return opts, errors.New("usage")
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "punchcard demo: unexpected argument %q\n", fs.Arg(0))
		return opts, errors.New("usage")
	}
	return opts, nil
}

// ParseFleetFlags reads the fleet benchmark's flags.
func ParseFleetFlags(args []string, stderr io.Writer) (fleet.BenchOptions, error) {
	o := fleet.BenchOptions{HubBin: "bin/hub", Tills: 10_000, Rate: 0.1, Warmup: 20 * time.Second, Duration: time.Minute, Settle: 2 * time.Minute}
	fs := flag.NewFlagSet("punchcard fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.HubBin, "hub-bin", o.HubBin, "the hub binary to start (make build puts it in bin/)")
	fs.StringVar(&o.Dir, "data", "", "empty or new directory for the hub's data and hub.log (default: a temp dir, removed after)")
	fs.IntVar(&o.Tills, "tills", o.Tills, "simulated tills, each with its own MQTT connection and credentials")
	fs.IntVar(&o.Stores, "stores", 0, "stores the tills are spread over (default tills/10)")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "redemptions per till per second")
	fs.Int64Var(&o.Budget, "budget", fleet.AutoBudget, "the automatic campaign's max_redemptions (under 500000 every till is granted the minimum first and tops up after its 4th sale)")
	fs.DurationVar(&o.Warmup, "warmup", o.Warmup, "load before latencies count")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "measured load; the campaign changes in its middle")
	fs.DurationVar(&o.Settle, "settle", o.Settle, "longest wait for every till to get the new rules")
	fetch := fs.String("fetch", string(fleet.FetchAgent), "when tills fetch snapshots: agent (as agent/uplink), version (newer versions only) or none")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.Fetch = fleet.FetchMode(*fetch)
	switch o.Fetch {
	case fleet.FetchAgent, fleet.FetchVersion, fleet.FetchNone:
	default:
		fmt.Fprintf(stderr, "punchcard fleet: -fetch %q: want agent, version or none\n", *fetch)
		return o, errors.New("usage")
	}
	if fs.NArg() > 0 || o.Tills < 1 {
		fmt.Fprintln(stderr, "punchcard fleet: unexpected arguments or -tills < 1")
		return o, errors.New("usage")
	}
	return o, nil
}

// RunFleet runs the fleet benchmark and prints its report.
func RunFleet(ctx context.Context, o fleet.BenchOptions, stdout, stderr io.Writer) int {
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "punchcard-fleet-")
		if err != nil {
			fmt.Fprintf(stderr, "punchcard fleet: %v\n", err)
			return exitFailed
		}
		defer os.RemoveAll(dir)
		o.Dir = dir
	}
	o.Log = stderr
	r, err := fleet.Bench(ctx, o)
	fmt.Fprintln(stdout, r)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "punchcard fleet: interrupted")
		return exitInterrupted
	default:
		fmt.Fprintf(stderr, "punchcard fleet: %v\n", err)
		return exitFailed
	}
}

// Run runs the demo and maps its outcome to an exit status.
func Run(ctx context.Context, opts demo.Options, stdout, stderr io.Writer) int {
	err := demo.Run(ctx, opts, stdout)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "punchcard demo: interrupted")
		return exitInterrupted
	case cluster.IsUnavailable(err):
		fmt.Fprintf(stderr, "punchcard demo: %v\n", err)
		return exitUnavailable
	default:
		fmt.Fprintf(stderr, "punchcard demo: %v\n", err)
		return exitFailed
	}
}
