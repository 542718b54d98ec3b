package testutil_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/internal/testutil"
)

func TestPatienceFollowsTheBinarysDeadline(t *testing.T) {
	p := testutil.Patience(t)
	if d, ok := t.Deadline(); ok {
		if want := time.Until(d) - time.Minute; want > time.Second && (p < want-time.Second || p > want+time.Second) {
			t.Fatalf("patience %s, want about %s", p, want)
		}
	} else if p != 10*time.Minute {
		t.Fatalf("patience without a deadline %s, want 10m", p)
	}
}

func TestAwaitForSaysWhatAndLastState(t *testing.T) {
	n := 0
	err := testutil.AwaitFor(50*time.Millisecond, "the answer", func() (bool, string) {
		n++
		return false, "still 41"
	})
	var te *testutil.TimeoutError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "waiting for the answer (last seen: still 41)") || n < 2 {
		t.Fatalf("err %v after %d polls", err, n)
	}
	n = 0
	if err := testutil.AwaitFor(time.Hour, "three polls", func() (bool, string) { n++; return n == 3, "" }); err != nil || n != 3 {
		t.Fatalf("err %v after %d polls, want nil after 3", err, n)
	}
}

func TestReceiveAndClosed(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if v := testutil.Receive(t, "seven", ch); v != 7 {
		t.Fatalf("got %d", v)
	}
	done := make(chan struct{})
	go close(done)
	testutil.Closed(t, "done", done)
	testutil.Until(t, "true", func() bool { return true })
}
