package ledger_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkPointsOutstanding: the balances report's points outstanding
// (Balances) read from the tenant's total against the sum over its
// customers' balances (the query before ledger_026), in one process, for
// PUNCHCARD_BENCH_CUSTOMERS customers (default 100,000) with a balance, a
// store, 10 purchases, 10 purchase days and 3 campaign counts each (the
// rows of ledger_customer_rows a customer's sum walked through; written
// by SQL, as the cost of the read is the subject).
func BenchmarkPointsOutstanding(b *testing.B) {
	customers := 100_000
	if n, err := strconv.Atoi(os.Getenv("PUNCHCARD_BENCH_CUSTOMERS")); err == nil && n > 0 {
		customers = n
	}
	ctx := context.Background()
	l, _ := MustOpen(b)
	if _, err := l.DB().Exec(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?),
		k(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM k WHERE j < 10)
		INSERT INTO ledger_customer_rows (tenant, customer, kind, k1, k2, n1, n2, n3, s1)
		SELECT ?, printf('cust-%07d', i), 0, '', '', i % 500, NULL, 0, NULL FROM c
		UNION ALL SELECT ?, printf('cust-%07d', i), 2, 's1', '', 1, 2, 10, NULL FROM c
		UNION ALL SELECT ?, printf('cust-%07d', i), 1, 'camp-' || j, '', 1, NULL, 0, 'till-1' FROM c, k WHERE j <= 3
		UNION ALL SELECT ?, printf('cust-%07d', i), 3, '', 20000 + j, 1500, NULL, 1, NULL FROM c, k
		UNION ALL SELECT ?, printf('cust-%07d', i), 4, 's1', 'txn-' || j, j, 1500, j, 'EUR' FROM c, k`,
		customers, tenant, tenant, tenant, tenant, tenant); err != nil {
		b.Fatal(err)
	}
	// The rows written by SQL are no ledger's: no Verify at cleanup.
	b.Cleanup(func() { l.DB().Exec(`DELETE FROM ledger_customer_rows WHERE customer LIKE 'cust-%'`) })
	var total, sum time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		bal, err := l.Balances(ctx, tenant, t0)
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		t1 := time.Now()
		var s int64
		if err := l.DB().QueryRow(`SELECT COALESCE(SUM(points), 0) FROM ledger_customers WHERE tenant = ?`, tenant).Scan(&s); err != nil {
			b.Fatal(err)
		}
		sum += time.Since(t1)
		if bal.PointsOutstanding != s || s == 0 {
			b.Fatalf("points outstanding %d, customers' sum %d", bal.PointsOutstanding, s)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "balances-ms/op")
	b.ReportMetric(float64(sum.Microseconds())/1000/float64(b.N), "sum-ms/op")
}
