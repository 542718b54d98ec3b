package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
)

// idemDB is a database with the idempotency records' table as the
// catalog's migration creates it.
func idemDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "i.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE catalog_idempotency (tenant TEXT NOT NULL, key TEXT NOT NULL, request BLOB NOT NULL,
		status INTEGER NOT NULL, body BLOB NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (tenant, key)) STRICT`); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestIdemBodies checks that every answer comes back from its record
// byte for byte, whichever form it is stored in, and that a long JSON
// answer (an online redeem's, ~2 KiB) is stored compressed, in less than
// half its length.
func TestIdemBodies(t *testing.T) {
	ctx := context.Background()
	db := idemDB(t)
	answer := `{"decision":{"order":{"total":10000},"applied":[` + strings.Repeat(`{"campaign":"promo","discount":250,"lines":["shirt","socks"]},`, 30) + `{}]}}`
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rand.IntN(255) + 1) // no NUL
	}
	for _, tc := range []struct {
		name       string
		body       []byte
		compressed bool // stored compressed, in less than half its length
	}{
		{"Empty", []byte{}, false},
		{"Short", []byte(`{"code":"budget_exhausted"}`), false},
		{"Long", []byte(answer), true},
		{"Incompressible", random, false},
		{"ShortNUL", []byte("\x00\x01not JSON"), false},
		{"LongNUL", append([]byte{0}, answer...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			added, err := store.RememberIdem(ctx, db, "t", tc.name, []byte("req"), 201, tc.body, time.Now())
			if err != nil || !added {
				t.Fatal(added, err)
			}
			st, body, found, err := store.RecallIdem(ctx, db, "t", tc.name, []byte("req"))
			if err != nil || !found || st != 201 {
				t.Fatal(st, found, err)
			}
			if !bytes.Equal(body, tc.body) {
				t.Errorf("recalled %d bytes %.40q, want %d bytes %.40q", len(body), body, len(tc.body), tc.body)
			}
			var stored []byte
			if err := db.QueryRow(`SELECT body FROM catalog_idempotency WHERE key = ?`, tc.name).Scan(&stored); err != nil {
				t.Fatal(err)
			}
			if got := len(stored) > 0 && stored[0] == 0 && 2*len(stored) < len(tc.body); got != tc.compressed {
				t.Errorf("stored in %d bytes (%.8q) for %d: compressed %v, want %v", len(stored), stored, len(tc.body), got, tc.compressed)
			}
			if len(stored) > 0 && stored[0] == 0 && !bytes.HasPrefix(stored, []byte("\x00\x01")) {
				t.Errorf("stored with header %q", stored[:2])
			}
		})
	}
}

// TestIdemRecordsBefore checks that the records written before answers
// were stored compressed (the body as it is) are recalled as they were, and
// that a record of a format this code does not know is an error, not an
// answer.
func TestIdemRecordsBefore(t *testing.T) {
	ctx := context.Background()
	db := idemDB(t)
	long := `{"redemptions":[` + strings.Repeat(`{"id":{"agent":"hub","seq":1},"kind":1},`, 40) + `{}]}`
	for _, tc := range []struct {
		name, stored string
		want         string
		ok           bool
	}{
		{"Short", `{"a":1}`, `{"a":1}`, true},
		{"Long", long, long, true},
		{"Empty", ``, ``, true},
		{"UnknownFormat", "\x00\x09abc", ``, false},
		{"BadBlock", "\x00\x01\xff\xff\xff", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := db.Exec(`INSERT INTO catalog_idempotency (tenant, key, request, status, body, created_at) VALUES ('t', ?, X'00', 200, CAST(? AS BLOB), 0)`, tc.name, []byte(tc.stored)); err != nil {
				t.Fatal(err)
			}
			_, body, found, err := store.RecallIdem(ctx, db, "t", tc.name, []byte{0})
			if tc.ok && (err != nil || !found || string(body) != tc.want) {
				t.Errorf("recalled %q, %v, %v; want %q", body, found, err, tc.want)
			}
			if !tc.ok && err == nil {
				t.Errorf("recalled %q, %v: no error", body, found)
			}
		})
	}
	// The hash still decides before the body is read.
	if _, _, _, err := store.RecallIdem(ctx, db, "t", "UnknownFormat", []byte("other")); protocol.ErrorCode(err) != protocol.CodeIdempotencyReuse {
		t.Errorf("another request: %v, want %s", err, protocol.CodeIdempotencyReuse)
	}
}

// TestPruneIdem checks that the retention job deletes the records due,
// oldest first, at most limit a call, stops at the first record not yet
// due in the order written, and leaves the others answering.
func TestPruneIdem(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		ages   []int // hours after t0 each record was written, in the order written
		before int   // the cutoff, hours after t0
		limit  int
		want   []int64 // deleted by each call until one deletes none
		kept   []int   // indexes of ages still answering
	}{
		{"NoneDue", []int{5, 6, 7}, 5, 10, []int64{0}, []int{0, 1, 2}},
		{"AllDue", []int{1, 2, 3}, 10, 10, []int64{3, 0}, nil},
		{"Prefix", []int{1, 2, 3, 8, 9}, 5, 10, []int64{3, 0}, []int{3, 4}},
		{"ByLimit", []int{1, 2, 3, 4, 5}, 10, 2, []int64{2, 2, 1, 0}, nil},
		// A record stamped ahead (a clock that jumped) holds the later
		// ones until it is due.
		{"ClockAhead", []int{1, 9, 2, 3}, 5, 10, []int64{1, 0}, []int{1, 2, 3}},
		{"Empty", nil, 5, 10, []int64{0}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := idemDB(t)
			for i, h := range tc.ages {
				if _, err := store.RememberIdem(ctx, db, "t", strconv.Itoa(i), []byte("req"), 200, []byte("{}"), t0.Add(time.Duration(h)*time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			var got []int64
			for {
				n, err := store.PruneIdem(ctx, db, t0.Add(time.Duration(tc.before)*time.Hour), tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, n)
				if n == 0 || len(got) > len(tc.ages)+1 {
					break
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("deleted per call %v, want %v", got, tc.want)
			}
			for i := range tc.ages {
				_, _, found, err := store.RecallIdem(ctx, db, "t", strconv.Itoa(i), []byte("req"))
				if err != nil {
					t.Fatal(err)
				}
				if want := slices.Contains(tc.kept, i); found != want {
					t.Errorf("record %d (written at +%dh) found %v, want %v", i, tc.ages[i], found, want)
				}
			}
		})
	}
}
