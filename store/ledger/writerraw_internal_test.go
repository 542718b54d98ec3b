package ledger

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// TestWriterRawSame: the online writer's groups write the same rows
// whether their hot statements run as driver statements on its
// connection (groupState, the default) or through database/sql: one
// group of baskets, some refused after others wrote (their savepoints
// rolled back around the raw statements: TestGroupBalances' group), on
// two ledgers with one clock, every table compared row by row. And the
// raw run did use its driver statements.
func TestWriterRawSame(t *testing.T) {
	const tn = protocol.TenantID("acme")
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	dumps := map[bool]string{}
	for _, raw := range []bool{false, true} {
		ctx := context.Background()
		l, red, redeem := groupLedgerAt(t, tn, 1, func() time.Time { return at })
		l.SetWriterRaw(raw)
		balancesGroup(t, l, red, redeem)
		if used := l.w.raw != nil && len(l.w.raw.stmts) > 0; used != raw {
			t.Errorf("raw %v: the writer's driver statements used: %v", raw, used)
		}
		if rep, err := l.Verify(ctx); err != nil || !rep.OK() {
			t.Fatalf("raw %v: verify: %v %+v", raw, err, rep.Diffs)
		}
		dumps[raw] = dumpTables(t, l)
	}
	if dumps[false] != dumps[true] {
		t.Errorf("the rows differ:\n--- database/sql\n%s\n--- raw\n%s", dumps[false], dumps[true])
	}
}

// dumpTables is every row of every table of l's database, table by
// table, the rows of each sorted; but for what differs from run to run
// by design: the events' random salt and the migrations' times.
func dumpTables(t *testing.T, l *Ledger) string {
	t.Helper()
	ctx := context.Background()
	var tables []string
	rows, err := l.db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	var sb strings.Builder
	for _, tb := range tables {
		rs, err := l.db.QueryContext(ctx, `SELECT * FROM "`+tb+`"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rs.Columns()
		var lines []string
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			if i := slices.Index(cols, "salt"); i >= 0 {
				vals[i] = "-"
			}
			lines = append(lines, fmt.Sprint(vals...))
		}
		rs.Close()
		slices.Sort(lines)
		fmt.Fprintf(&sb, "%s %v: %d rows\n%s\n", tb, cols, len(lines), strings.Join(lines, "\n"))
	}
	return sb.String()
}
