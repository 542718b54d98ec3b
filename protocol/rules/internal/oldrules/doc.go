// Package oldrules is a frozen copy of package rules as it was before the
// evaluator was precompiled for speed (commit 89812fb): the reference the
// new engine is compared with, decision for decision, over thousands of
// random catalogs and baskets (TestSameAsOldEngine), and the same-run
// baseline of BenchmarkEvaluateVsOld. It is never used by the product;
// do not change it.
package oldrules

import (
	_ "time/tzdata" // as package rules
)
