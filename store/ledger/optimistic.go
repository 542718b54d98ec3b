package ledger

// Baskets without savepoints (the online writer's optimistic groups).
//
// Each basket of a group commit used to run in its own savepoint, opened
// before its first write to the database (points lots, the purchase
// history), so that a refused basket undid only itself. A savepoint makes
// SQLite copy every page the basket then changes, on its first change,
// to the statement journal: about 5 % of the writer's CPU per basket
// (BenchmarkRowsOnline, 4 alternated rounds), for a refusal that almost
// never comes after a write. A basket's facts are checked before each
// is applied, and the idempotency key and transaction ids before any,
// so what can refuse a basket that already wrote is a later fact of it
// (the points of its second redeemable run out, say) or its key recorded
// meanwhile by a concurrent request.
//
// So the writer records a group optimistically: no savepoints, each
// basket noting whether it wrote (state.savepoint sets wrote). A basket
// refused before it wrote is undone in memory as before. One refused
// after it wrote has nothing to undo it by: the writer rolls the whole
// transaction back and records the group again from the start with
// savepoints, exactly as before, so every basket gets the answer it would
// have had (the refused one refused again, the others recorded). Nothing
// of the first attempt is kept: not a row (rolled back), not a cell (a
// new state), not a seq (assigned anew from the watermark), not an
// answer (reset). After such a restart the next safeGroups groups run
// with savepoints, so that a stream of baskets refused mid-way (a client
// that keeps overspending points) costs at most one extra attempt per
// safeGroups groups, not one per basket. Baskets with a rollback always
// run in a savepoint (it is opened at once: they read the journal).
const safeGroups = 64

// optimistic reports whether the writer's next group runs without
// savepoints; only the writer goroutine calls it.
func (w *writer) optimistic() bool {
	if w.safeLeft > 0 {
		w.safeLeft--
		return false
	}
	return true
}

// restarted counts a group recorded again and runs the next safeGroups
// with savepoints.
func (w *writer) restarted() {
	w.restarts.Add(1)
	w.safeLeft = safeGroups
}

// WriterRestarts reports how many groups the online writer recorded a
// second time, with savepoints, because a basket was refused after it
// wrote (optimistic.go); for tests and benchmarks.
func (l *Ledger) WriterRestarts() int64 { return l.w.restarts.Load() }
