// Command punchcard is Punchcard's admin and demo tool. Its first command,
// demo, tells the whole story with real processes: a hub, three store tills
// of two brands, QR codes as PNG files, scans, an outage, offline
// redemptions, reconnection, reconciliation, a conflict and a budget that
// holds. See docs/demo.md.
//
//	punchcard demo [-bin bin] [-out demo-out] [-keep] [-broker embedded|mosquitto]
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

	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/demo"
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
