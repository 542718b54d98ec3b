package ledger

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Statement accounting, for benchmarks: what the writers' statements
// cost, one line a statement (the online benchmark's
// PUNCHCARD_BENCH_STMTS, docs/operations.md). Off, it costs each
// statement one atomic load.

// StatementCount is one statement's executions and wall time while
// CountStatements was on. SQL is the statement with its white space
// folded; COMMIT is the online writer's commit of a group.
type StatementCount struct {
	SQL   string
	Count int64
	Time  time.Duration
}

type stmtStats struct {
	on atomic.Bool
	mu sync.Mutex
	m  map[string]*StatementCount
}

// CountStatements turns the accounting of the statements run through the
// writers' state (the online writer's and the drains') on or off; on, it
// starts over, and off keeps the counts for StatementCounts.
func (l *Ledger) CountStatements(on bool) {
	if on {
		l.stmts.mu.Lock()
		l.stmts.m = map[string]*StatementCount{}
		l.stmts.mu.Unlock()
	}
	l.stmts.on.Store(on)
}

// StatementCounts returns what was counted since CountStatements(true),
// the costliest first.
func (l *Ledger) StatementCounts() []StatementCount {
	l.stmts.mu.Lock()
	defer l.stmts.mu.Unlock()
	out := make([]StatementCount, 0, len(l.stmts.m))
	for _, c := range l.stmts.m {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b StatementCount) int {
		return cmp.Or(cmp.Compare(b.Time, a.Time), strings.Compare(a.SQL, b.SQL))
	})
	return out
}

// counting reports whether statements are counted: callers then take
// the time and note it.
func (st *stmtStats) counting() bool { return st.on.Load() }

// note adds one execution of q that began at t0.
func (st *stmtStats) note(q string, t0 time.Time) {
	d := time.Since(t0)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.m == nil {
		return
	}
	c := st.m[q]
	if c == nil {
		c = &StatementCount{SQL: strings.Join(strings.Fields(q), " ")}
		st.m[q] = c
	}
	c.Count++
	c.Time += d
}
