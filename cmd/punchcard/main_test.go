package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain_(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{name: "ErrNoCommand", args: nil, wantCode: exitUsage, wantOut: "usage: punchcard"},
		{name: "ErrUnknownCommand", args: []string{"frobnicate"}, wantCode: exitUsage, wantOut: `unknown command "frobnicate"`},
		{name: "ErrBadFlag", args: []string{"demo", "-nope"}, wantCode: exitUsage, wantOut: "flag provided but not defined"},
		{name: "OKHelp", args: []string{"help"}, wantCode: exitOK, wantOut: "demo"},
		{name: "ErrBadBroker", args: []string{"demo", "-broker", "rabbitmq"}, wantCode: exitUsage, wantOut: `-broker "rabbitmq": want "embedded" or "mosquitto"`},
		{name: "OKDemoHelpNamesBroker", args: []string{"demo", "-h"}, wantCode: exitUsage, wantOut: "-broker"},
		{name: "ErrUnavailable", args: []string{"demo", "-bin", "EMPTY", "-out", "OUT"}, wantCode: exitUnavailable, wantOut: "not available yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string(nil), tt.args...)
			for i, a := range args {
				switch a {
				case "EMPTY":
					args[i] = t.TempDir()
				case "OUT":
					args[i] = filepath.Join(t.TempDir(), "out")
				}
			}
			var out, errb bytes.Buffer
			if got := Main(context.Background(), args, &out, &errb); got != tt.wantCode {
				t.Fatalf("exit = %d, want %d\nstdout:\n%s\nstderr:\n%s", got, tt.wantCode, out.String(), errb.String())
			}
			if all := out.String() + errb.String(); !strings.Contains(all, tt.wantOut) {
				t.Fatalf("output lacks %q:\n%s", tt.wantOut, all)
			}
		})
	}
}
