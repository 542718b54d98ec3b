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
	"github.com/punchcard/punchcard/qr"
)

func TestScan(t *testing.T) {
	if _, err := exec.LookPath(demo.ZbarImg); err != nil {
		t.Skip(demo.ErrNoScanner)
	}
	dir := t.TempDir()
	tests := []struct {
		name string
		text string
	}{
		{name: "OKPlainCode", text: "WELCOME10"},
		{name: "OKGiftCard", text: "GIFT-1234-5678"},
		{name: "OKTokenAlphabet", text: "PC1" + strings.Repeat("0123456789ABCDEFGHJKLMNPQRSTUVWX", 4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".png")
			if err := qr.NewEncoder().WriteFile(path, tt.text); err != nil {
				t.Fatal(err)
			}
			got, err := demo.Scan(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimRight(got, "\r\n") != tt.text {
				t.Fatalf("scanned %q, want %q", got, tt.text)
			}
		})
	}
	t.Run("ErrNotAQRCode", func(t *testing.T) {
		path := filepath.Join(dir, "blank.png")
		// A valid PNG without a code: zbarimg exits non-zero.
		png, err := qr.NewEncoder().PNG("X")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png[:len(png)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := demo.Scan(context.Background(), path); err == nil {
			t.Fatal("scanning a broken PNG succeeded")
		}
	})
}

func TestRunUnavailable(t *testing.T) {
	out := filepath.Join(t.TempDir(), "demo-out")
	var w bytes.Buffer
	opts := demo.DefaultOptions()
	opts.BinDir, opts.OutDir, opts.StepTimeout = t.TempDir(), out, 5*time.Second
	err := demo.Run(context.Background(), opts, &w)
	if !cluster.IsUnavailable(err) {
		t.Fatalf("Run = %v, want *Unavailable", err)
	}
	for _, want := range []string{"[1/14]", "not available yet", "hub is not built", "not run: Hamburg keeps selling offline"} {
		if !strings.Contains(w.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, w.String())
		}
	}
	if _, err := os.Stat(filepath.Join(out, ".punchcard-demo")); err != nil {
		t.Fatalf("output directory not marked: %v", err)
	}
}

func TestRunRefusesForeignOutDir(t *testing.T) {
	out := t.TempDir()
	keep := filepath.Join(out, "thesis.tex")
	if err := os.WriteFile(keep, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := demo.DefaultOptions()
	opts.BinDir, opts.OutDir = t.TempDir(), out
	err := demo.Run(context.Background(), opts, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "not made by the demo") {
		t.Fatalf("Run = %v, want a refusal", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("the demo deleted a file it did not make: %v", err)
	}
}

func TestNarratorWait(t *testing.T) {
	var w bytes.Buffer
	n := demo.NewNarrator(&w, 3)
	n.ProgressEvery = 50 * time.Millisecond
	t.Run("OK", func(t *testing.T) {
		calls := 0
		err := n.Wait(context.Background(), "the till", time.Second, func(context.Context) (bool, string, error) {
			calls++
			return calls >= 4, "outbox 3", nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(w.String(), "waiting for the till") {
			t.Fatalf("no progress line:\n%s", w.String())
		}
	})
	t.Run("ErrTimeout", func(t *testing.T) {
		err := n.Wait(context.Background(), "the hub", 200*time.Millisecond, func(context.Context) (bool, string, error) {
			return false, "still offline", nil
		})
		if !errors.Is(err, demo.ErrWaitTimeout) || !strings.Contains(err.Error(), "still offline") {
			t.Fatalf("Wait = %v", err)
		}
	})
	t.Run("ErrCond", func(t *testing.T) {
		boom := errors.New("boom")
		err := n.Wait(context.Background(), "x", time.Second, func(context.Context) (bool, string, error) { return false, "", boom })
		if !errors.Is(err, boom) {
			t.Fatalf("Wait = %v", err)
		}
	})
}
