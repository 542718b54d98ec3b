package ledger

import (
	"slices"
	"strings"
)

// The drain's IN queries (queryIn, prefetchTxns) are written for
// balanceChunk keys, and a shorter list used to be padded to balanceChunk
// by repeating its last key. A drain names a few keys per query (its
// tills, customers and codes: ~6 at the fleet's 10,000 tills), so most
// of each query's arguments were padding, and every argument costs
// database/sql a driver.NamedValue and the driver a C copy of the string:
// binding was a fifth of what the hub allocated at fleet load. Each IN
// query therefore also exists for inChunks keys (the same statement with
// fewer placeholders, prepared alike: inStatements), and a list takes the
// smallest that holds it.

// inChunks are the key counts an IN query is prepared for, ascending; the
// last is balanceChunk.
var inChunks = []int{1, 2, 4, 8, 16, balanceChunk}

// inVariants maps an IN query written for balanceChunk keys to its
// variant for each of inChunks (by index). Built once at start; read-only.
var inVariants = func() map[string][]string {
	m := map[string][]string{}
	for _, q := range []string{qAllowancesIn, qCustomersIn, qWatermarksIn, qDebtsIn, qCodesIn, qCustCampsIn, qTxnFactsIn, qByTxnIn} {
		full := "(" + inList + ")"
		if strings.Count(q, full) != 1 {
			continue // not one list to shorten: q serves every list (TestInChunks)
		}
		vs := make([]string, len(inChunks))
		for i, n := range inChunks {
			vs[i] = strings.Replace(q, full, "("+strings.TrimSuffix(strings.Repeat("?, ", n), ", ")+")", 1)
		}
		m[q] = vs
	}
	return m
}()

// inChunk returns the variant of q (an IN query for balanceChunk keys)
// for a list of n keys (1 <= n <= balanceChunk) and the number of keys
// it takes (n or more: the list is padded to it by repeating its last
// key). A q without variants is returned as it is, for balanceChunk.
func inChunk(q string, n int) (string, int) {
	vs, ok := inVariants[q]
	if !ok {
		return q, balanceChunk
	}
	for i, c := range inChunks {
		if n <= c {
			return vs[i], c
		}
	}
	return q, balanceChunk
}

// inStatements are the IN queries' variants (hotStatements): each is
// prepared on the pool like the query it shortens.
func inStatements() []string {
	var qs []string
	for _, vs := range inVariants {
		for i, v := range vs {
			if inChunks[i] != balanceChunk {
				qs = append(qs, v)
			}
		}
	}
	slices.Sort(qs)
	return qs
}
