package api_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestReportsBadInput: the routes' bad-input table, each answer with its
// stable code and field.
func TestReportsBadInput(t *testing.T) {
	e := newEnv(t)
	ro, admin := e.keys[catalog.RoleReadOnly], e.keys[catalog.RoleAdmin]
	const base = "/v1/tenants/acme/reports/"
	for _, tc := range []struct {
		name, method, path, key string
		body                    any
		status                  int
		code                    protocol.Code
		field                   string
	}{
		{"ErrUnknownReport", "GET", base + "profit?from=2026-10-01&to=2026-10-31", ro, nil, 404, protocol.CodeReportUnknown, ""},
		{"ErrBadDate", "GET", base + "activity?from=2026-02-30&to=2026-10-31", ro, nil, 400, protocol.CodeInvalidInput, "from"},
		{"ErrNoTo", "GET", base + "activity?from=2026-10-01", ro, nil, 400, protocol.CodeInvalidInput, "to"},
		{"ErrFromAfterTo", "GET", base + "activity?from=2026-10-31&to=2026-10-01", ro, nil, 400, protocol.CodeInvalidInput, "to"},
		{"ErrRangeTooLong", "GET", base + "activity?from=2020-01-01&to=2026-10-01&by=day", ro, nil, 422, protocol.CodeReportRangeTooLong, ""},
		{"ErrBy", "GET", base + "activity?from=2026-10-01&to=2026-10-31&by=year", ro, nil, 400, protocol.CodeInvalidInput, "by"},
		{"ErrGroup", "GET", base + "activity?from=2026-10-01&to=2026-10-31&group=sku", ro, nil, 400, protocol.CodeInvalidInput, "group"},
		{"ErrFormat", "GET", base + "activity?from=2026-10-01&to=2026-10-31&format=xlsx", ro, nil, 400, protocol.CodeInvalidInput, "format"},
		{"ErrExportFormat", "GET", "/v1/tenants/acme/exports/redemptions?from=2026-10-01&to=2026-10-31&format=json", ro, nil, 400, protocol.CodeInvalidInput, "format"},
		{"ErrExportDate", "GET", "/v1/tenants/acme/exports/redemptions?from=01.10.2026&to=2026-10-31", ro, nil, 400, protocol.CodeInvalidInput, "from"},
		{"ErrExportTooLong", "GET", "/v1/tenants/acme/exports/redemptions?from=2000-01-01&to=2026-10-31", ro, nil, 422, protocol.CodeReportRangeTooLong, ""},
		{"ErrOtherTenant", "GET", base + "activity?from=2026-10-01&to=2026-10-31", e.other, nil, 403, protocol.CodeForbidden, ""},
		{"ErrAgentKey", "GET", base + "activity?from=2026-10-01&to=2026-10-31", e.agent, nil, 403, protocol.CodeForbidden, ""},
		{"ErrNoKey", "GET", base + "balances", "", nil, 401, protocol.CodeUnauthenticated, ""},
		{"ErrTimeZoneUnknown", "PUT", "/v1/tenants/acme/time-zone", admin, map[string]any{"time_zone": "Mars/Olympus"}, 400, protocol.CodeInvalidInput, "time_zone"},
		{"ErrTimeZoneLocal", "PUT", "/v1/tenants/acme/time-zone", admin, map[string]any{"time_zone": "Local"}, 400, protocol.CodeInvalidInput, "time_zone"},
		{"ErrTimeZoneReadOnly", "PUT", "/v1/tenants/acme/time-zone", ro, map[string]any{"time_zone": "UTC"}, 403, protocol.CodeForbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.wantErr(e.do(tc.method, tc.path, tc.key, tc.body), tc.status, tc.code, tc.field)
		})
	}
	t.Run("OKDefaults", func(t *testing.T) {
		var tz struct {
			TimeZone string `json:"time_zone"`
		}
		e.wantJSON(e.do("GET", "/v1/tenants/acme/time-zone", ro, nil), 200, &tz)
		if tz.TimeZone != "UTC" {
			t.Fatalf("a new tenant's time zone %q, want UTC", tz.TimeZone)
		}
		r := e.do("GET", base+"activity?from=2026-10-01&to=2026-10-31", ro, nil, "Accept", "text/csv")
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") || !bytes.HasPrefix(r.body, []byte("period,start,end,key")) {
			t.Fatalf("Accept: text/csv: %d %s %q", r.status, r.header.Get("Content-Type"), r.body)
		}
	})
}

// TestExportRedemptions: the export streams every fact of the range in
// the tenant's time zone, oldest first, as CSV; a read-only key gets
// masked codes.
func TestExportRedemptions(t *testing.T) {
	e := reportsLedger(t)
	ro, mk, admin := e.keys[catalog.RoleReadOnly], e.keys[catalog.RoleMarketer], e.keys[catalog.RoleAdmin]
	e.wantJSON(e.do("PUT", "/v1/tenants/acme/time-zone", admin, map[string]any{"time_zone": "Europe/Berlin"}), 200, nil)
	js := readJournal(t, e)
	want := 0
	for _, j := range js {
		if d := j.at.In(berlinLoc(t)).Format("2006-01-02"); d >= "2026-10-25" && d <= "2026-11-01" {
			want++
		}
	}
	for _, k := range []struct {
		name, key string
		masked    bool
	}{{"Marketer", mk, false}, {"ReadOnly", ro, true}} {
		t.Run(k.name, func(t *testing.T) {
			r := e.do("GET", "/v1/tenants/acme/exports/redemptions?from=2026-10-25&to=2026-11-01", k.key, nil)
			if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
				t.Fatalf("%d %s", r.status, r.body)
			}
			recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs)-1 != want || want == 0 {
				t.Fatalf("%d rows, want %d", len(recs)-1, want)
			}
			sawPoster := false
			for i, rec := range recs[1:] {
				if i > 0 && rec[0] < recs[i][0] {
					t.Fatalf("row %d at %s before row %d at %s", i+1, rec[0], i, recs[i][0])
				}
				if rec[7] == "POSTER" {
					sawPoster = true
				}
			}
			if sawPoster == k.masked {
				t.Fatalf("codes in full: %v, want masked %v", sawPoster, k.masked)
			}
		})
	}
}
