package rules

// PercentOfForTest exposes percentOf to the external tests.
var PercentOfForTest = percentOf
