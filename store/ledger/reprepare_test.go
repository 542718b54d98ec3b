package ledger

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/store"
)

// TestNoRepreparedStatements: no hot statement compares a column with a
// bare parameter where a partial index of the schema compares the same
// column, with the same operator, with a constant. SQLite checks such a
// parameter's bound value against the index's constant while it plans,
// and then re-prepares the statement every time the parameter is bound
// anew: the lots query's "expires_at > ?" against ledger_points_lots_due's
// "expires_at > 0" re-prepared the lots query on every points burn (5% of
// the hub's CPU at 16 online clients). "? + 0" is not a bare parameter.
func TestNoRepreparedStatements(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "l.db"), store.Options{Migrations: Migrations()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'`)
	if err != nil {
		t.Fatal(err)
	}
	type term struct{ index, col, op string }
	var terms []term
	// A term of a partial index's WHERE: a column, an operator, a constant.
	termRE := regexp.MustCompile(`(\w+)\s*(=|==|!=|<>|>=|<=|>|<)\s*('[^']*'|-?\d+)`)
	for rows.Next() {
		var name, q string
		if err := rows.Scan(&name, &q); err != nil {
			t.Fatal(err)
		}
		where := q[strings.LastIndex(strings.ToUpper(q), " WHERE ")+7:]
		for _, m := range termRE.FindAllStringSubmatch(where, -1) {
			terms = append(terms, term{name, m[1], m[2]})
		}
	}
	rows.Close()
	if len(terms) == 0 {
		t.Fatal("no partial index terms found: the check checks nothing")
	}
	for _, q := range hotStatements() {
		for _, tm := range terms {
			// The column, the same operator, a bare parameter (not
			// followed by an operator that makes it an expression).
			bare := regexp.MustCompile(`\b` + tm.col + `\s*` + regexp.QuoteMeta(tm.op) + `\s*\?\d*(\s*$|\s*\)|\s+(AND|OR|ORDER|GROUP|LIMIT|ON)\b)`)
			if bare.MatchString(q) {
				t.Errorf("%s %s ? against partial index %s: SQLite re-prepares it on every binding; write ? + 0\n%s", tm.col, tm.op, tm.index, q)
			}
		}
	}
}
