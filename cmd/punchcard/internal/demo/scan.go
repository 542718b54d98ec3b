package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ZbarImg is the QR decoder the demo scans with: a real, independent
// implementation, so a code that only our own encoder can read would fail
// here as it would at a till.
const ZbarImg = "zbarimg"

// ErrNoScanner means zbarimg is not installed.
var ErrNoScanner = errors.New("zbarimg is not installed (Debian: apt-get install zbar-tools)")

// Scan decodes the QR code in the PNG at path with zbarimg and returns the
// text as a keyboard-wedge scanner would type it, including the trailing
// newline a scanner sends as Enter: the agent must cope with it.
func Scan(ctx context.Context, path string) (string, error) {
	bin, err := exec.LookPath(ZbarImg)
	if err != nil {
		return "", ErrNoScanner
	}
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", path)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("zbarimg %s: %w: %s", path, err, strings.TrimSpace(errb.String()))
	}
	text := out.String()
	if strings.TrimSpace(text) == "" {
		return "", fmt.Errorf("zbarimg found no QR code in %s", path)
	}
	if strings.Count(strings.TrimRight(text, "\r\n"), "\n") > 0 {
		return "", fmt.Errorf("zbarimg found more than one code in %s", path)
	}
	return text, nil
}
