package ledger

import "time"

// The online writer's take-in.
//
// A group takes the baskets queued when it begins; those that arrive
// while it is recorded wait for the next group. At 16 clients that makes
// groups of about 7 taking turns, each paying a whole commit (its WAL
// frames and, at serial commit, an fsync). A group can instead take in
// the baskets queued while it is recorded (writer.more) and commit them
// together. Which of the two serves more baskets a second depends on the
// machine, not on anything the writer can reason out:
//
//   - with a slow fsync, or the clients and the writer short of CPU, a
//     commit costs as much as many baskets, and taking in made larger
//     groups and more redeems a second (16 clients, 2 cores, load 3-9:
//     8.4-9.7 baskets a commit instead of 7, 1.3-1.8x);
//   - with a fast fsync and the CPU to spare, the writer is busy ~97 % of
//     the time as it is: a group that takes in every arrival leaves the
//     next one nothing queued, and the writer waits, idle, for the
//     clients' next requests (-17 %, writer busy 92 %).
//
// So the writer measures. It counts baskets and wall time (idle time
// included) over windows of takeInWindow groups, the take-in on or off
// for a whole window, keeps a moving rate of each, runs the better one,
// and tries the other one window in takeInExplore, so that a change of
// load is noticed. The take-in is run only when it measured more than
// takeInMargin faster: alternated runs at quieter moments measured it at
// 0.81-1.04x of the groups without. Windows of fewer than takeInWindow baskets (too few to
// need group commit) or longer than a second (the load paused) are not
// counted.
const (
	takeInWindow  = 16 // groups a window
	takeInExplore = 8  // one window in takeInExplore runs the other choice
	takeInMaxSpan = time.Second
	takeInMargin  = 0.05 // how much faster the take-in must measure to be run
)

// takeIn is the writer's take-in choice and its measurements; only the
// writer goroutine uses it.
type takeIn struct {
	on      bool // the open window's choice: writer.more takes in
	groups  int  // in the open window
	baskets int
	start   time.Time  // the open window's start: the end of the last one
	rate    [2]float64 // baskets a second, moving, of off and on; 0: none yet
	windows int        // windows counted
}

// tally counts a group of n baskets that ended at now, and at the end of
// a window sets the next window's choice.
func (t *takeIn) tally(n int, now time.Time) {
	if t.start.IsZero() {
		t.start = now
		return
	}
	t.groups++
	t.baskets += n
	if t.groups < takeInWindow {
		return
	}
	span := now.Sub(t.start)
	if span > 0 && span <= takeInMaxSpan && t.baskets >= takeInWindow {
		r := float64(t.baskets) / span.Seconds()
		i := choice(t.on)
		if t.rate[i] == 0 {
			t.rate[i] = r
		} else {
			t.rate[i] += (r - t.rate[i]) / 4
		}
		t.windows++
	}
	t.groups, t.baskets, t.start = 0, 0, now
	switch {
	case t.rate[0] == 0:
		t.on = false
	case t.rate[1] == 0:
		t.on = true
	case t.windows%takeInExplore == 0:
		t.on = !t.better() // the other one
	default:
		t.on = t.better()
	}
}

// better reports whether the take-in measured faster by more than
// takeInMargin: within it the writer keeps to the groups it made
// without, which were the faster on a quiet machine.
func (t *takeIn) better() bool {
	return t.rate[1] > t.rate[0]*(1+takeInMargin)
}

func choice(on bool) int {
	if on {
		return 1
	}
	return 0
}

// takeQueued appends to batch the baskets queued now, up to the group's
// size, without waiting: when a group begins, and when one taking in
// (writer.more returned a basket) takes those behind it too, so that the
// group loads their rows (prefetchGroup) with one query
// per kind for all of them, where each basket taken in alone read its
// customer's points, debt lot, per-customer count and transaction id one
// query each (at 16 clients about 0.4 of every basket was taken in).
// Only the writer goroutine calls it.
func (w *writer) takeQueued(batch []*job) []*job {
	for len(batch) < w.group {
		select {
		case j := <-w.q:
			batch = append(batch, j)
		default:
			return batch
		}
	}
	return batch
}
