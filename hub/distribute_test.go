package hub_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/protocol"
	pcatalog "github.com/punchcard/punchcard/protocol/catalog"
	"github.com/punchcard/punchcard/protocol/segment"
	"github.com/punchcard/punchcard/protocol/token"
	"github.com/punchcard/punchcard/store/catalog"
)

// dcall makes an API request with the platform key and returns the status
// and body.
func dcall(t *testing.T, h *hub.Hub, method, path, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+h.HTTPAddr()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bootstrapKey)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// distHub runs a hub with tenant acme, an active campaign "mail" and
// customers c001…c0NN.
func distHub(t *testing.T, customers int) *hub.Hub {
	t.Helper()
	ctx := context.Background()
	h := MustRun(t)
	get(t, "http://"+h.HTTPAddr()+"/healthz") // Run serves
	if _, err := h.Catalog.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	doc := `{"schema":1,"id":"mail","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`
	if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= customers; i++ {
		if _, err := h.Catalog.CreateCustomer(ctx, catalog.System, "acme", catalog.Customer{ID: protocol.CustomerID(fmt.Sprintf("c%03d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func customerList(from, to int) []protocol.CustomerID {
	var out []protocol.CustomerID
	for i := from; i <= to; i++ {
		out = append(out, protocol.CustomerID(fmt.Sprintf("c%03d", i)))
	}
	return out
}

// publish PUTs a distribution and waits (polling its state) until it is
// done.
func publish(t *testing.T, h *hub.Hub, id, query, contentType string, body []byte) pcatalog.Distribution {
	t.Helper()
	path := "/v1/tenants/acme/distributions/" + id
	st, raw := dcall(t, h, "PUT", path+query, contentType, body)
	if st != http.StatusAccepted && st != http.StatusOK {
		t.Fatalf("PUT %s: %d %s", path, st, raw)
	}
	var d pcatalog.Distribution
	waitFor(t, "distribution "+id+" done", func() bool {
		st, raw := dcall(t, h, "GET", path, "", nil)
		if st != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, st, raw)
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		if d.State == pcatalog.DistributionFailed {
			t.Fatalf("distribution %s failed: %s", id, d.Error)
		}
		return d.State == pcatalog.DistributionDone
	})
	return d
}

func jsonBody(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v", err)
	}
	return rows
}

// zbarDecode decodes every PNG with the real zbarimg in one run and
// returns the texts in the order of files.
func zbarDecode(t *testing.T, files []string) []string {
	t.Helper()
	p, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Fatalf("zbarimg not found (%v): install zbar-tools to run the QR tests", err)
	}
	var out []string
	for _, f := range files { // one file a run: zbarimg's output names no file
		cmd := exec.Command(p, "--raw", "-q", "-Sdisable", "-Sqrcode.enable", f) // QR only: a linear-code reader once "found" digits in a QR's modules
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("zbarimg %s: %v: %s", f, err, stderr.String())
		}
		out = append(out, strings.TrimSuffix(string(b), "\n"))
	}
	return out
}

// unzipQR checks the ZIP export against the CSV export: index.csv equals
// the CSV export row for row plus the file column, and every PNG, decoded
// by zbarimg, is its row's text. It returns the index rows.
func unzipQR(t *testing.T, h *hub.Hub, id string) [][]string {
	t.Helper()
	st, zraw := dcall(t, h, "GET", "/v1/tenants/acme/distributions/"+id+"/qr.zip", "", nil)
	if st != http.StatusOK {
		t.Fatalf("qr.zip: %d %s", st, zraw)
	}
	st, craw := dcall(t, h, "GET", "/v1/tenants/acme/distributions/"+id+"/codes.csv", "", nil)
	if st != http.StatusOK {
		t.Fatalf("codes.csv: %d %s", st, craw)
	}
	zr, err := zip.NewReader(bytes.NewReader(zraw), int64(len(zraw)))
	if err != nil {
		t.Fatalf("the export is not a ZIP: %v", err)
	}
	dir := t.TempDir()
	var index [][]string
	pngs := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == "index.csv" {
			index = readCSV(t, b)
			continue
		}
		if !strings.HasPrefix(f.Name, "qr/") || !strings.HasSuffix(f.Name, ".png") || strings.Contains(f.Name[3:], "/") {
			t.Fatalf("unexpected file %q in the ZIP", f.Name)
		}
		p := filepath.Join(dir, filepath.Base(f.Name))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		pngs[f.Name] = p
	}
	rows := readCSV(t, craw)
	if len(index) != len(rows) || len(index) < 2 {
		t.Fatalf("index.csv has %d rows, codes.csv %d", len(index), len(rows))
	}
	if !slices.Equal(index[0], []string{"n", "customer", "code", "text", "file"}) || !slices.Equal(rows[0], []string{"n", "customer", "code", "text"}) {
		t.Fatalf("headers %v, %v", index[0], rows[0])
	}
	if len(pngs) != len(index)-1 {
		t.Fatalf("%d PNGs for %d index rows", len(pngs), len(index)-1)
	}
	var files []string
	for i, r := range index[1:] {
		if !slices.Equal(r[:4], rows[i+1]) {
			t.Fatalf("index row %d %v, CSV row %v", i+1, r, rows[i+1])
		}
		p, ok := pngs[r[4]]
		if !ok {
			t.Fatalf("index row %d names %q, not in the ZIP", i+1, r[4])
		}
		files = append(files, p)
	}
	for i, text := range zbarDecode(t, files) {
		if want := index[i+1][3]; text != want {
			t.Fatalf("zbarimg read %q from %s, index says %q", text, index[i+1][4], want)
		}
	}
	return index[1:]
}

// TestDistributionTokensZIP publishes tokens to a list and reads every QR
// code of the ZIP export back with zbarimg: each equals its index row and
// verifies as a token of the campaign for its customer.
func TestDistributionTokensZIP(t *testing.T) {
	ctx := context.Background()
	h := distHub(t, 12)
	d := publish(t, h, "winter-mail", "", "application/json", jsonBody(t, pcatalog.DistributionRequest{Campaign: "mail", Kind: "token", Customers: customerList(1, 12)}))
	if d.Total != 12 || d.Done != 12 {
		t.Fatalf("distribution %+v", d)
	}
	keys := token.KeyMap{}
	infos, err := h.Catalog.SigningKeys(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range infos {
		keys.Add(token.PublicKey{Tenant: "acme", KeyID: k.KID, Key: ed25519.PublicKey(k.Public)})
	}
	for i, r := range unzipQR(t, h, "winter-mail") {
		cl, err := token.Verify(keys, "acme", r[3], time.Now())
		if err != nil {
			t.Fatalf("row %d: token does not verify: %v", i, err)
		}
		if want := fmt.Sprintf("c%03d", i+1); r[1] != want || string(cl.Customer) != want || string(cl.Serial) != r[2] || cl.Campaign != "mail" {
			t.Fatalf("row %d %v: claims %+v", i, r[:3], cl)
		}
	}
	if n, err := h.Catalog.DistributedCodes(ctx, "acme", "mail", time.Time{}, time.Time{}); err != nil || n != 12 {
		t.Fatalf("DistributedCodes = %d, %v; want 12", n, err)
	}
	if n, err := h.Catalog.DistributedCodes(ctx, "acme", "mail", time.Now().Add(time.Hour), time.Time{}); err != nil || n != 0 {
		t.Fatalf("DistributedCodes from an hour on = %d, %v; want 0", n, err)
	}
}

// TestDistributionCodesCSV publishes plain codes to a CSV list as a mail
// merge tool exports it (a BOM, extra columns) and checks the ZIP with
// zbarimg and that each code is a single-use code of the campaign.
func TestDistributionCodesCSV(t *testing.T) {
	ctx := context.Background()
	h := distHub(t, 0)
	list := "\ufeffEmail,Customer,Name\r\nann@example.com,ann,Ann\r\nbob@example.com,bob,Bob\r\n\r\ncy@example.com,cy,\"Cy, Jr.\"\r\n"
	d := publish(t, h, "print-2", "?campaign=mail&kind=code", "text/csv; charset=utf-8", []byte(list))
	if d.Total != 3 || d.Kind != "code" {
		t.Fatalf("distribution %+v", d)
	}
	rows := unzipQR(t, h, "print-2")
	codes, err := h.Catalog.Codes(ctx, "acme", "mail", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if want := []string{"ann", "bob", "cy"}[i]; r[1] != want || r[2] != r[3] {
			t.Fatalf("row %d: %v", i, r)
		}
		if !slices.ContainsFunc(codes, func(c catalog.Code) bool { return c.Printed == r[2] && c.Uses == 1 }) {
			t.Fatalf("code %q is not a single-use code of the campaign", r[2])
		}
	}
}

// TestDistributionRepublish: publishing the same list again gives the same
// codes (the CSV export is byte for byte the same); a longer list keeps
// the first customers' codes and adds the new ones; a segment's members
// are the list of a segment distribution.
func TestDistributionRepublish(t *testing.T) {
	ctx := context.Background()
	h := distHub(t, 8)
	req := pcatalog.DistributionRequest{Campaign: "mail", Kind: "code", Customers: customerList(1, 5)}
	publish(t, h, "spring", "", "application/json", jsonBody(t, req))
	csv1 := func() []byte {
		st, raw := dcall(t, h, "GET", "/v1/tenants/acme/distributions/spring/codes.csv", "", nil)
		if st != http.StatusOK {
			t.Fatalf("codes.csv: %d %s", st, raw)
		}
		return raw
	}
	first := csv1()
	d := publish(t, h, "spring", "", "application/json", jsonBody(t, req))
	if again := csv1(); !bytes.Equal(first, again) || d.Total != 5 {
		t.Fatalf("re-publish changed the codes:\n%s\n---\n%s", first, again)
	}
	// In another order, with three more: the five keep theirs.
	req.Customers = append(customerList(6, 8), customerList(1, 5)...)
	d = publish(t, h, "spring", "", "application/json", jsonBody(t, req))
	longer := csv1()
	if d.Total != 8 || !bytes.HasPrefix(longer, first) {
		t.Fatalf("%+v; the longer list does not start with the first:\n%s", d, longer)
	}
	if rows := readCSV(t, longer); len(rows) != 9 || rows[8][1] != "c008" {
		t.Fatalf("rows %v", rows)
	}

	// A segment: its members as the ledger last computed them.
	if _, err := h.Catalog.PutSegment(ctx, "acme", segment.Definition{ID: "vip", Rules: []segment.Rule{{Kind: segment.KindLapsed, Days: 90}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Ledger.SetSegments(ctx, "acme", []segment.Update{{Customer: "c002", Segments: []string{"vip"}}, {Customer: "c007", Segments: []string{"vip"}}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	d = publish(t, h, "vip-mail", "", "application/json", jsonBody(t, pcatalog.DistributionRequest{Campaign: "mail", Kind: "token", Segment: "vip"}))
	if d.Total != 2 || d.Segment != "vip" {
		t.Fatalf("segment distribution %+v", d)
	}
	rows := unzipQR(t, h, "vip-mail")
	if rows[0][1] != "c002" || rows[1][1] != "c007" {
		t.Fatalf("segment rows %v", rows)
	}
	// Erasing c002 blanks the token distributed to them (a bearer
	// credential naming them), as it does in the token list.
	if _, err := h.Catalog.EraseCustomer(ctx, catalog.System, "acme", "c002"); err != nil {
		t.Fatal(err)
	}
	st, raw := dcall(t, h, "GET", "/v1/tenants/acme/distributions/vip-mail/codes.csv", "", nil)
	if rows := readCSV(t, raw); st != 200 || rows[1][1] != "c002" || rows[1][3] != "" || rows[2][3] == "" {
		t.Fatalf("after the erasure: %d %v", st, rows)
	}
	st, raw = dcall(t, h, "GET", "/v1/tenants/acme/distributions/vip-mail/qr.zip", "", nil)
	if zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw))); st != 200 || err != nil || len(zr.File) != 2 {
		t.Fatalf("after the erasure the ZIP has %v files (%d, %v), want one PNG and the index", zr, st, err)
	}
}

// TestDistributionBadInput: each bad request is refused with its reason
// code and field, and changes nothing.
func TestDistributionBadInput(t *testing.T) {
	ctx := context.Background()
	h := distHub(t, 2)
	publish(t, h, "taken", "", "application/json", jsonBody(t, pcatalog.DistributionRequest{Campaign: "mail", Kind: "code", Customers: customerList(1, 2)}))
	stopped := `{"schema":1,"id":"old","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`
	if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, "acme", []byte(stopped)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Catalog.StopCampaign(ctx, catalog.System, "acme", "old"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, "acme", []byte(strings.ReplaceAll(stopped, `"old"`, `"mail2"`))); err != nil {
		t.Fatal(err)
	}
	const js = "application/json"
	for _, c := range []struct {
		name, id, query, ctype, body string
		status                       int
		code                         protocol.Code
		field                        string
	}{
		{"ErrKind", "d1", "", js, `{"campaign":"mail","kind":"sms","customers":["c001"]}`, 400, protocol.CodeInvalidInput, "kind"},
		{"ErrNoRecipients", "d1", "", js, `{"campaign":"mail","kind":"code"}`, 400, protocol.CodeInvalidInput, "customers"},
		{"ErrBoth", "d1", "", js, `{"campaign":"mail","kind":"code","customers":["c001"],"segment":"vip"}`, 400, protocol.CodeInvalidInput, "customers"},
		{"ErrTwice", "d1", "", js, `{"campaign":"mail","kind":"code","customers":["c001","c002","c001"]}`, 400, protocol.CodeInvalidInput, "customers[2]"},
		{"ErrCustomerID", "d1", "", js, `{"campaign":"mail","kind":"code","customers":["c 1"]}`, 400, protocol.CodeInvalidInput, "customers[0]"},
		{"ErrUnknownField", "d1", "", js, `{"campaign":"mail","kind":"code","customers":["c001"],"qr":true}`, 400, protocol.CodeInvalidInput, "qr"},
		{"ErrID", "bad%20id", "", js, `{"campaign":"mail","kind":"code","customers":["c001"]}`, 400, protocol.CodeInvalidInput, "id"},
		{"ErrCampaign", "d1", "", js, `{"campaign":"nope","kind":"code","customers":["c001"]}`, 404, protocol.CodeNotFound, "campaign"},
		{"ErrStopped", "d1", "", js, `{"campaign":"old","kind":"code","customers":["c001"]}`, 422, protocol.CodeCampaignStopped, "campaign"},
		{"ErrSegment", "d1", "", js, `{"campaign":"mail","kind":"code","segment":"nope"}`, 404, protocol.CodeNotFound, "segment"},
		{"ErrTokenCustomer", "d1", "", js, `{"campaign":"mail","kind":"token","customers":["c001","ghost"]}`, 404, protocol.CodeNotFound, "customers[1]"},
		{"ErrExpires", "d1", "", js, `{"campaign":"mail","kind":"token","customers":["c001"],"expires":"2001-01-01T00:00:00Z"}`, 400, protocol.CodeInvalidInput, "expires"},
		{"ErrOtherCampaign", "taken", "", js, `{"campaign":"mail2","kind":"code","customers":["c001"]}`, 409, protocol.CodeConflict, "campaign"},
		{"ErrOtherKind", "taken", "", js, `{"campaign":"mail","kind":"token","customers":["c001"]}`, 409, protocol.CodeConflict, "kind"},
		{"ErrCSVNoColumn", "d1", "?campaign=mail&kind=code", "text/csv", "email\nann@example.com\n", 400, protocol.CodeInvalidInput, "customers"},
		{"ErrCSVEmpty", "d1", "?campaign=mail&kind=code", "text/csv", "", 400, protocol.CodeInvalidInput, "customers"},
		{"ErrCSVQuote", "d1", "?campaign=mail&kind=code", "text/csv", "customer\n\"c001\n", 400, protocol.CodeInvalidInput, "customers[0]"},
		{"ErrCSVNoCampaign", "d1", "", "text/csv", "customer\nc001\n", 400, protocol.CodeInvalidInput, "campaign"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, raw := dcall(t, h, "PUT", "/v1/tenants/acme/distributions/"+c.id+c.query, c.ctype, []byte(c.body))
			var e protocol.Error
			json.Unmarshal(raw, &e)
			if st != c.status || e.Code != c.code || e.Field != c.field {
				t.Fatalf("got %d %s", st, raw)
			}
		})
	}
	if st, raw := dcall(t, h, "GET", "/v1/tenants/acme/distributions/d1", "", nil); st != 404 {
		t.Fatalf("a refused distribution exists: %d %s", st, raw)
	}
	for _, p := range []string{"/v1/tenants/acme/distributions/d1/codes.csv", "/v1/tenants/acme/distributions/d1/qr.zip"} {
		if st, raw := dcall(t, h, "GET", p, "", nil); st != 404 {
			t.Fatalf("GET %s: %d %s", p, st, raw)
		}
	}
	if st, raw := dcall(t, h, "GET", "/v1/tenants/acme/distributions/taken/codes.csv", "", nil); st != 200 || len(readCSV(t, raw)) != 3 {
		t.Fatalf("the refusals changed distribution taken: %d %s", st, raw)
	}
}
