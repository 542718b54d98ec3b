package protocol

import "net/http"

// Reason codes of the hub's reports (issue 13): a report name the hub does
// not know, and a range with more periods than a report answers.
const (
	CodeReportUnknown      Code = "report_unknown"
	CodeReportRangeTooLong Code = "report_range_too_long"
)

func init() {
	codes[CodeReportUnknown] = codeInfo{http.StatusNotFound, "There is no report of this name."}
	codes[CodeReportRangeTooLong] = codeInfo{http.StatusUnprocessableEntity, "The range has too many periods for one report; ask for a shorter range or longer periods."}
}
