// Package webhooks delivers the hub's events (docs/events.md) to the
// tenants' HTTP endpoints, signed the Standard Webhooks way, at least once.
//
// The queue is River (github.com/riverqueue/river) on its SQLite driver,
// in a database file of its own (webhooks.db beside hub.db), so River's
// polling writes never wait for or hold the ledger's write lock. A relay
// moves the events of the hub's event logs (the ledger's and the
// catalog's) into River jobs, one per event and matching endpoint: it
// reads a log after its cursor, then inserts the jobs and moves the cursor
// in one transaction of webhooks.db, so that no event is lost or moved
// twice, whatever crashes when. River retries a failed delivery with
// exponential backoff and jitter (RetryPolicy) for at least RetryWindow
// and cleans finished jobs up; the deliveries a killed hub left running
// are handed back when the hub starts again. An endpoint gets the events
// written from its creation on; one that keeps failing is disabled, with
// an event.
package webhooks

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Defaults.
const (
	DefaultRelayInterval = 50 * time.Millisecond
	// DefaultWakeRelayInterval is the relay's poll with a Wake: the
	// fallback for events written by another process on the same file.
	DefaultWakeRelayInterval = time.Second
	// DefaultPollInterval is River's fetch poll: the fallback, since the
	// relay wakes River's fetch after each insert (riverwake.go); it
	// bounds how late a retry that came due starts.
	DefaultPollInterval = time.Second
	// DefaultNoWakePollInterval is River's fetch poll with NoRiverWake.
	DefaultNoWakePollInterval = 50 * time.Millisecond
	// DefaultFetchCooldown is the least time between two of River's
	// fetches (River's FetchCooldown): wakes closer together fold into
	// one fetch at its end.
	DefaultFetchCooldown = 5 * time.Millisecond
	DefaultTimeout       = 15 * time.Second
	DefaultRetryBase     = 2 * time.Second
	DefaultRetryCap      = 2 * time.Hour
	DefaultRetryWindow   = 72 * time.Hour
	DefaultRetention     = 30 * 24 * time.Hour
	DefaultWorkers       = 32
	// DefaultRelayBatch is the most events one relay transaction moves.
	DefaultRelayBatch = 500
	// MaxReplay bounds the events one replay queues.
	MaxReplay = 10000
	// MaxEndpoints bounds a tenant's endpoints.
	MaxEndpoints = 20
)

// EventTypeDisabled is the event written when an endpoint is disabled.
const EventTypeDisabled = "webhook.endpoint_disabled"

// Source is one event log (the ledger's, the catalog's).
type Source interface {
	EventsAfter(ctx context.Context, after int64, limit int) ([]protocol.Event, error)
}

// HeadSource is a Source that tells the seq of its last event: at a poll
// that finds no enabled endpoint, the relay moves its cursor there
// without reading the events, which could match nothing (relay.go). The
// ledger's log and the catalog's are.
type HeadSource interface {
	Source
	EventsHead(ctx context.Context) (int64, error)
}

// ReplaySource finds events for a replay; the ledger's log and the
// catalog's are.
type ReplaySource interface {
	EventByID(ctx context.Context, tenant protocol.TenantID, id string) (protocol.Event, bool, error)
	EventsBetween(ctx context.Context, tenant protocol.TenantID, from, to time.Time, after int64, limit int) ([]protocol.Event, error)
}

// Options for Open.
type Options struct {
	// Sources are the event logs the relay reads, by a name that keys its
	// cursor ("ledger", "catalog"). Required.
	Sources map[string]Source
	// Replay finds the events of a replay, by name of Sources: a replay
	// covers all of them. Optional.
	Replay map[string]ReplaySource
	// OnDisabled writes the webhook.endpoint_disabled event (in the
	// ledger's log). Optional.
	OnDisabled func(ctx context.Context, tenant protocol.TenantID, typ string, body any) error
	// Client sends the deliveries; default: a client with Timeout that
	// follows no redirect and, without AllowPrivate, dials public
	// addresses only, with no proxy (guard.go). A Client given here is
	// used as it is.
	Client *http.Client
	// AllowPrivate lets endpoints name loopback, private, link-local and
	// other internal addresses (ForbiddenAddr): for tests, demos and
	// receivers on the hub's own network (hub flag
	// -webhook-allow-private). Without it such URLs are refused
	// (webhook_url_forbidden) and each delivery checks the address it
	// dials.
	AllowPrivate bool
	// Resolver resolves an endpoint's host name when it is created or
	// changed; default net.DefaultResolver.
	Resolver *net.Resolver
	// Timeout bounds one delivery, answer included. Default DefaultTimeout.
	Timeout time.Duration
	// RelayInterval is how often the relay polls the logs; default
	// DefaultRelayInterval, or DefaultWakeRelayInterval with a Wake.
	// PollInterval is River's fetch poll; default DefaultPollInterval, or
	// DefaultNoWakePollInterval with NoRiverWake.
	RelayInterval time.Duration
	// Wake, when set, makes the relay read the logs at once when it
	// receives: the sources' writers in this process signal it after a
	// commit that wrote events (ledger.Options.OnEvents,
	// catalog.Catalog.OnEvents), with a non-blocking send on a channel of
	// capacity 1. The poll stays for other processes' writes.
	Wake         <-chan struct{}
	PollInterval time.Duration
	// CursorSave is how long the relay keeps a cursor moved by rounds
	// that inserted no job in memory before it writes it (relay.go);
	// default CursorSaveInterval.
	CursorSave time.Duration
	// NoRiverWake leaves new deliveries to River's fetch poll alone
	// instead of waking the fetch after each relay round (riverwake.go):
	// the benchmarks' baseline.
	NoRiverWake bool
	// RetryBase and RetryCap shape the backoff: attempt n waits
	// min(RetryBase·2^(n-1), RetryCap), jittered by ±25 %. RetryWindow is
	// how long a delivery is retried at least (MaxAttempts is computed
	// from it) and how long an endpoint may fail without a success before
	// it is disabled. Defaults DefaultRetryBase, DefaultRetryCap,
	// DefaultRetryWindow.
	RetryBase, RetryCap, RetryWindow time.Duration
	// RescueAfter is when River takes a running job for lost and runs
	// it again (a delivery stuck in a live hub; a killed hub's are handed
	// back at Start); default Timeout + 1 min.
	RescueAfter time.Duration
	// Retention is how long delivery records and finished jobs are
	// kept; default DefaultRetention.
	Retention time.Duration
	Workers   int // concurrent deliveries; default DefaultWorkers
	Logger    *slog.Logger
	Now       func() time.Time
	// Sync is webhooks.db's SQLite synchronous; default store.SyncNormal.
	// NORMAL in WAL mode keeps every transaction atomic and loses at most
	// the last ones on a power cut (not on a crash of the process): the
	// relay's cursor and its jobs go back together and the relay reads
	// those events from the ledger (FULL) again; a lost completion is a
	// delivery sent twice. What can be lost is a replay or an endpoint
	// change acknowledged just before the cut. FULL fsyncs every
	// completion and delivery record: more than doubled p99 latency at
	// 100 events/s on this machine.
	Sync store.Sync
}

func (o *Options) ensureDefaults() {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Client == nil {
		o.Client = newClient(o.Timeout, o.AllowPrivate)
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.RelayInterval <= 0 {
		o.RelayInterval = DefaultRelayInterval
		if o.Wake != nil {
			o.RelayInterval = DefaultWakeRelayInterval
		}
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
		if o.NoRiverWake {
			o.PollInterval = DefaultNoWakePollInterval
		}
	}
	if o.CursorSave <= 0 {
		o.CursorSave = CursorSaveInterval
	}
	if o.RetryBase <= 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.RetryCap <= 0 {
		o.RetryCap = DefaultRetryCap
	}
	if o.RetryWindow <= 0 {
		o.RetryWindow = DefaultRetryWindow
	}
	if o.RescueAfter <= 0 {
		o.RescueAfter = o.Timeout + time.Minute
	}
	o.RescueAfter = max(o.RescueAfter, o.jobTimeout()+time.Second) // River refuses less
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Sync == "" {
		o.Sync = store.SyncNormal
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// MaxAttempts is the attempts a delivery gets: enough that the shortest
// jittered waits between them add up to at least window.
func MaxAttempts(base, cap, window time.Duration) int {
	var sum time.Duration
	n := 1
	for sum < window {
		sum += backoff(base, cap, n) * 3 / 4
		n++
	}
	return n
}

// backoff is the wait after the n-th failed attempt, before jitter.
func backoff(base, cap time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < cap; i++ {
		d *= 2
	}
	return min(d, cap)
}

// retryPolicy is RetryBase·2^(n-1) capped at RetryCap, ±25 % jitter.
type retryPolicy struct {
	base, cap time.Duration
	now       func() time.Time
}

var _ river.ClientRetryPolicy = retryPolicy{}

func (p retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	d := backoff(p.base, p.cap, max(1, len(job.Errors)))
	d = d*3/4 + time.Duration(rand.Int64N(int64(d/2)+1))
	return p.now().UTC().Add(d)
}

// Service is the webhook delivery service.
type Service struct {
	db     *sql.DB
	river  *river.Client[*sql.Tx]
	drv    *wakeDriver
	opts   Options
	log    *slog.Logger
	maxAtt int

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup

	relay relayState // relay.go
}

// Open opens (creating and migrating) the webhook database at path; Start
// starts the relay and the deliveries.
func Open(ctx context.Context, path string, opts Options) (*Service, error) {
	opts.ensureDefaults()
	if len(opts.Sources) == 0 {
		return nil, errors.New("webhooks: Options.Sources is required")
	}
	sub, _ := fs.Sub(migrations, "migrations")
	// One connection, as River's SQLite driver advises: its concurrent
	// maintenance would otherwise meet SQLITE_BUSY.
	db, err := store.Open(ctx, path, store.Options{Sync: opts.Sync, MaxOpenConns: 1, Migrations: sub})
	if err != nil {
		return nil, err
	}
	s := &Service{db: db, opts: opts, log: opts.Logger,
		maxAtt: MaxAttempts(opts.RetryBase, opts.RetryCap, opts.RetryWindow)}
	s.relay.init()
	drv := newWakeDriver(db)
	s.drv = drv
	m, err := rivermigrate.New(drv, &rivermigrate.Config{Logger: discard})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("webhooks: river migrate: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		db.Close()
		return nil, fmt.Errorf("webhooks: river migrate: %w", err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &deliverWorker{s: s})
	s.river, err = river.NewClient(drv, &river.Config{
		Queues:                      map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: opts.Workers}},
		Workers:                     workers,
		MaxAttempts:                 s.maxAtt,
		RetryPolicy:                 retryPolicy{base: opts.RetryBase, cap: opts.RetryCap, now: opts.Now},
		FetchPollInterval:           opts.PollInterval,
		FetchCooldown:               min(opts.PollInterval, DefaultFetchCooldown),
		JobTimeout:                  opts.jobTimeout(),
		RescueStuckJobsAfter:        opts.RescueAfter,
		CompletedJobRetentionPeriod: 24 * time.Hour,
		CancelledJobRetentionPeriod: opts.Retention,
		DiscardedJobRetentionPeriod: opts.Retention,
		Logger:                      riverLogger(opts.Logger),
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("webhooks: river: %w", err)
	}
	return s, nil
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// riverLogger passes River's warnings and errors on, not its chatter.
func riverLogger(l *slog.Logger) *slog.Logger {
	return slog.New(levelHandler{l.Handler(), slog.LevelWarn})
}

type levelHandler struct {
	slog.Handler
	min slog.Level
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

// Start starts River and the relay; Close stops them.
func (s *Service) Start(ctx context.Context) error {
	if err := s.handBack(ctx); err != nil {
		return err
	}
	if err := s.river.Start(ctx); err != nil {
		return fmt.Errorf("webhooks: river start: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	s.wg.Add(1)
	go s.relayLoop(rctx)
	return nil
}

// handBack makes the deliveries a previous process left running (it was
// killed) available again at once, before River starts: this hub is
// webhooks.db's only user, so no running job belongs to a live process.
// River's own rescue would wait for leadership (a killed leader's lease
// runs out first) and RescueAfter. A delivery handed back may reach the
// receiver twice, as at-least-once allows.
func (s *Service) handBack(ctx context.Context) error {
	res, err := s.db.ExecContext(ctx, `UPDATE river_job SET state = 'available', scheduled_at = datetime('now', 'subsec') WHERE state = 'running'`)
	if err != nil {
		return fmt.Errorf("webhooks: hand back running deliveries: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		s.log.Warn("webhooks: deliveries left running by a stopped process handed back", slog.Int64("jobs", n))
	}
	return nil
}

// Close stops the relay and River (cancelling running deliveries, which
// are retried later) and closes the database.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
	var errs []error
	// The cursors the relay moved in memory only (relay.go).
	if err := s.saveCursors(context.WithoutCancel(ctx), true); err != nil {
		errs = append(errs, err)
	}
	// Deliveries in flight are cancelled, not waited for: each is retried
	// (at least once, the receiver may have got it).
	if err := s.river.StopAndCancel(ctx); err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, err)
	}
	errs = append(errs, s.db.Close())
	return errors.Join(errs...)
}

// MaxAttempts is the attempts each delivery gets.
func (s *Service) MaxAttempts() int { return s.maxAtt }

// --- delivery ----------------------------------------------------------------

// deliverArgs is a delivery job: the event travels in the job, so a
// delivery needs neither the ledger nor the event's retention.
type deliverArgs struct {
	Endpoint string            `json:"endpoint"`
	EventID  string            `json:"event_id"`
	Tenant   protocol.TenantID `json:"tenant"`
	Type     string            `json:"type"`
	At       time.Time         `json:"at"`
	V        int               `json:"v"`
	Body     json.RawMessage   `json:"body"`
}

func (deliverArgs) Kind() string { return "webhook_deliver" }

func jobOf(endpoint string, e protocol.Event) deliverArgs {
	return deliverArgs{Endpoint: endpoint, EventID: e.ID, Tenant: e.Tenant, Type: e.Type, At: e.At, V: e.V, Body: e.Body}
}

// Payload is the JSON body of every delivery (docs/events.md).
type Payload struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Timestamp time.Time         `json:"timestamp"`
	Tenant    protocol.TenantID `json:"tenant"`
	Version   int               `json:"version"`
	Data      json.RawMessage   `json:"data"`
}

type deliverWorker struct {
	river.WorkerDefaults[deliverArgs]
	s *Service
}

func (w *deliverWorker) Timeout(*river.Job[deliverArgs]) time.Duration {
	return w.s.opts.jobTimeout()
}

// jobTimeout bounds a delivery job: the request's timeout and a little
// for the delivery log.
func (o *Options) jobTimeout() time.Duration { return o.Timeout + time.Second }

func (w *deliverWorker) Work(ctx context.Context, job *river.Job[deliverArgs]) error {
	s, a := w.s, job.Args
	ep, err := s.endpoint(ctx, s.db, a.Tenant, a.Endpoint)
	if errors.Is(err, errNoEndpoint) {
		return river.JobCancel(err) // deleted since
	}
	if err != nil {
		return err
	}
	if !ep.enabled {
		return river.JobCancel(errors.New("endpoint disabled"))
	}
	body, err := json.Marshal(Payload{ID: a.EventID, Type: a.Type, Timestamp: a.At, Tenant: a.Tenant, Version: a.V, Data: a.Body})
	if err != nil {
		return river.JobCancel(err)
	}
	now := s.opts.Now()
	sig, err := Sign(ep.secrets(now), a.EventID, now.Unix(), body)
	if err != nil {
		return river.JobCancel(err)
	}
	status, derr := s.post(ctx, ep.url, a.EventID, now.Unix(), sig, body)
	took := s.opts.Now().Sub(now)
	ok := derr == nil
	msg := ""
	if derr != nil {
		msg = derr.Error()
		if len(msg) > 500 {
			msg = msg[:500]
		}
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO webhook_deliveries (endpoint, event_id, event_type, attempt, status, ok, error, ms, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ep.id, a.EventID, a.Type, job.Attempt, status, ok, msg, took.Milliseconds(), now.UnixMicro()); err != nil {
		s.log.Error("webhooks: delivery log", slog.Any("err", err))
	}
	if ok {
		if ep.failingSince != 0 {
			if _, err := s.db.ExecContext(ctx, `UPDATE webhook_endpoints SET failing_since = 0 WHERE id = ?`, ep.id); err != nil {
				s.log.Error("webhooks: endpoint", slog.Any("err", err))
			}
		}
		return nil
	}
	since := ep.failingSince
	if since == 0 {
		since = now.UnixMicro()
		if _, err := s.db.ExecContext(ctx, `UPDATE webhook_endpoints SET failing_since = ? WHERE id = ? AND failing_since = 0`, since, ep.id); err != nil {
			s.log.Error("webhooks: endpoint", slog.Any("err", err))
		}
	}
	if job.Attempt >= job.MaxAttempts || now.Sub(time.UnixMicro(since)) >= s.opts.RetryWindow {
		reason := fmt.Sprintf("failing since %s: %s", time.UnixMicro(since).UTC().Format(time.RFC3339), msg)
		if err := s.disable(ctx, ep, reason); err != nil {
			return err
		}
		return river.JobCancel(derr)
	}
	return derr
}

// post sends one delivery; any answer but 2xx is a failure.
func (s *Service) post(ctx context.Context, u, id string, ts int64, sig string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "punchcard-webhooks/1")
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, fmt.Sprint(ts))
	req.Header.Set(HeaderSignature, sig)
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// disable turns an endpoint off after persistent failure and writes the
// webhook.endpoint_disabled event.
func (s *Service) disable(ctx context.Context, ep endpointRow, reason string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ? AND enabled = 1`,
		reason, s.opts.Now().UnixMicro(), ep.id)
	if err != nil {
		return fmt.Errorf("webhooks: disable: %w", err)
	}
	s.relay.endpoints.Store(endpointsUnknown) // perhaps none left
	if n, _ := res.RowsAffected(); n == 0 || s.opts.OnDisabled == nil {
		return nil
	}
	s.log.Warn("webhooks: endpoint disabled", slog.String("endpoint", ep.id), slog.String("reason", reason))
	return s.opts.OnDisabled(ctx, protocol.TenantID(ep.tenant), EventTypeDisabled, map[string]string{"endpoint": ep.id, "url": ep.url, "reason": reason})
}

// --- endpoints ---------------------------------------------------------------

var errNoEndpoint = protocol.NewError(protocol.CodeNotFound)

type endpointRow struct {
	id, tenant, url, desc string
	types                 []string
	secret, oldSecret     string
	oldUntil              int64
	enabled               bool
	reason                string
	failingSince          int64
	created, updated      int64
}

// matches reports whether the endpoint wants events of type typ.
func (e endpointRow) matches(typ string) bool {
	if len(e.types) == 0 {
		return true
	}
	for _, t := range e.types {
		if t == typ || (strings.HasSuffix(t, ".*") && strings.HasPrefix(typ, t[:len(t)-1])) || t == "*" {
			return true
		}
	}
	return false
}

// secrets are the secrets that sign now: the current one, and the
// previous one until its grace ends.
func (e endpointRow) secrets(now time.Time) []string {
	if e.oldSecret != "" && now.UnixMicro() < e.oldUntil {
		return []string{e.secret, e.oldSecret}
	}
	return []string{e.secret}
}

func (e endpointRow) public() protocol.WebhookEndpoint {
	out := protocol.WebhookEndpoint{ID: e.id, URL: e.url, Description: e.desc, Types: e.types, Enabled: e.enabled, DisabledReason: e.reason,
		CreatedAt: time.UnixMicro(e.created).UTC(), UpdatedAt: time.UnixMicro(e.updated).UTC()}
	if out.Types == nil {
		out.Types = []string{}
	}
	if e.failingSince != 0 {
		t := time.UnixMicro(e.failingSince).UTC()
		out.FailingSince = &t
	}
	return out
}

const endpointCols = `id, tenant, url, description, types, secret, old_secret, old_until, enabled, disabled_reason, failing_since, created_at, updated_at`

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func scanEndpoints(rows *sql.Rows) ([]endpointRow, error) {
	defer rows.Close()
	var out []endpointRow
	for rows.Next() {
		var e endpointRow
		var types string
		if err := rows.Scan(&e.id, &e.tenant, &e.url, &e.desc, &types, &e.secret, &e.oldSecret, &e.oldUntil, &e.enabled, &e.reason, &e.failingSince, &e.created, &e.updated); err != nil {
			return nil, fmt.Errorf("webhooks: endpoints: %w", err)
		}
		if err := json.Unmarshal([]byte(types), &e.types); err != nil {
			return nil, fmt.Errorf("webhooks: endpoint types: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func enabledEndpoints(ctx context.Context, q queryer, tenant protocol.TenantID) ([]endpointRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE tenant = ? AND enabled = 1 ORDER BY id`, string(tenant))
	if err != nil {
		return nil, fmt.Errorf("webhooks: endpoints: %w", err)
	}
	return scanEndpoints(rows)
}

func (s *Service) endpoint(ctx context.Context, q queryer, tenant protocol.TenantID, id string) (endpointRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE id = ? AND tenant = ?`, id, string(tenant))
	if err != nil {
		return endpointRow{}, fmt.Errorf("webhooks: endpoint: %w", err)
	}
	es, err := scanEndpoints(rows)
	if err != nil {
		return endpointRow{}, err
	}
	if len(es) == 0 {
		return endpointRow{}, errNoEndpoint
	}
	return es[0], nil
}

// validate checks an endpoint's input and, without AllowPrivate, that its
// URL is not an internal address (checkURL). Reason codes: invalid_input,
// webhook_url_forbidden.
func (s *Service) validate(ctx context.Context, in protocol.WebhookEndpointInput) ([]string, error) {
	types, err := validate(in)
	if err != nil || s.opts.AllowPrivate {
		return types, err
	}
	return types, checkURL(ctx, s.opts.Resolver, in.URL)
}

// validate checks an endpoint's input. Reason codes: invalid_input.
func validate(in protocol.WebhookEndpointInput) ([]string, error) {
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(in.URL) > 2000 {
		return nil, protocol.FieldError("url", "url must be an absolute http or https URL without credentials, of at most 2000 characters")
	}
	if len(in.Description) > 500 {
		return nil, protocol.FieldError("description", "description must be at most 500 characters")
	}
	if len(in.Types) > 100 {
		return nil, protocol.FieldError("types", "at most 100 types")
	}
	types := []string{}
	for _, t := range in.Types {
		if t == "" || len(t) > 100 || strings.ContainsAny(t, " \t\r\n\"") || (strings.Contains(t, "*") && t != "*" && !strings.HasSuffix(t, ".*")) || strings.Count(t, "*") > 1 {
			return nil, protocol.FieldError("types", "type %q: an event type, a prefix ending in \".*\", or \"*\"", t)
		}
		types = append(types, t)
	}
	return types, nil
}

// CreateEndpoint adds an endpoint; the answer holds its secret, the only
// time it is shown but for RotateSecret. Reason codes: invalid_input,
// webhook_url_forbidden, conflict (too many endpoints).
func (s *Service) CreateEndpoint(ctx context.Context, tenant protocol.TenantID, in protocol.WebhookEndpointInput) (protocol.WebhookEndpoint, error) {
	types, err := s.validate(ctx, in)
	if err != nil {
		return protocol.WebhookEndpoint{}, err
	}
	tb, _ := json.Marshal(types)
	id := "ep_" + randomID()
	secret := NewSecret()
	now := s.opts.Now().UnixMicro()
	if err := s.endpointChange(ctx, true, func() error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("webhooks: create: %w", err)
		}
		defer tx.Rollback()
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_endpoints WHERE tenant = ?`, string(tenant)).Scan(&n); err != nil {
			return fmt.Errorf("webhooks: create: %w", err)
		}
		if n >= MaxEndpoints {
			return protocol.Errorf(protocol.CodeConflict, "a tenant has at most %d webhook endpoints", MaxEndpoints)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_endpoints (id, tenant, url, description, types, secret, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			id, string(tenant), in.URL, in.Description, string(tb), secret, now, now); err != nil {
			return fmt.Errorf("webhooks: create: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("webhooks: create: %w", err)
		}
		return nil
	}); err != nil {
		return protocol.WebhookEndpoint{}, err
	}
	e := endpointRow{id: id, tenant: string(tenant), url: in.URL, desc: in.Description, types: types, secret: secret, enabled: true, created: now, updated: now}
	out := e.public()
	out.Secret = secret
	return out, nil
}

// UpdateEndpoint changes an endpoint's URL, description and types.
// Reason codes: invalid_input, webhook_url_forbidden, not_found.
func (s *Service) UpdateEndpoint(ctx context.Context, tenant protocol.TenantID, id string, in protocol.WebhookEndpointInput) (protocol.WebhookEndpoint, error) {
	types, err := s.validate(ctx, in)
	if err != nil {
		return protocol.WebhookEndpoint{}, err
	}
	tb, _ := json.Marshal(types)
	var res sql.Result
	err = s.endpointChange(ctx, true, func() (err error) {
		res, err = s.db.ExecContext(ctx, `UPDATE webhook_endpoints SET url = ?, description = ?, types = ?, updated_at = ? WHERE id = ? AND tenant = ?`,
			in.URL, in.Description, string(tb), s.opts.Now().UnixMicro(), id, string(tenant))
		return err
	})
	if err != nil {
		return protocol.WebhookEndpoint{}, fmt.Errorf("webhooks: update: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return protocol.WebhookEndpoint{}, errNoEndpoint
	}
	return s.Endpoint(ctx, tenant, id)
}

// Endpoint is one endpoint of tenant. Reason codes: not_found.
func (s *Service) Endpoint(ctx context.Context, tenant protocol.TenantID, id string) (protocol.WebhookEndpoint, error) {
	e, err := s.endpoint(ctx, s.db, tenant, id)
	if err != nil {
		return protocol.WebhookEndpoint{}, err
	}
	return e.public(), nil
}

// Endpoints lists tenant's endpoints.
func (s *Service) Endpoints(ctx context.Context, tenant protocol.TenantID) ([]protocol.WebhookEndpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE tenant = ? ORDER BY id`, string(tenant))
	if err != nil {
		return nil, fmt.Errorf("webhooks: endpoints: %w", err)
	}
	es, err := scanEndpoints(rows)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.WebhookEndpoint, 0, len(es))
	for _, e := range es {
		out = append(out, e.public())
	}
	return out, nil
}

// DeleteEndpoint removes an endpoint; its queued deliveries are cancelled
// when they come up. Reason codes: not_found.
func (s *Service) DeleteEndpoint(ctx context.Context, tenant protocol.TenantID, id string) error {
	var res sql.Result
	err := s.endpointChange(ctx, false, func() (err error) {
		res, err = s.db.ExecContext(ctx, `DELETE FROM webhook_endpoints WHERE id = ? AND tenant = ?`, id, string(tenant))
		return err
	})
	if err != nil {
		return fmt.Errorf("webhooks: delete: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNoEndpoint
	}
	return nil
}

// SecretGrace is how long the previous secret keeps signing after a
// rotation, so a receiver can switch without losing a delivery.
const SecretGrace = 24 * time.Hour

// RotateSecret makes a new secret; the old one keeps signing (a second
// signature) for SecretGrace. Reason codes: not_found.
func (s *Service) RotateSecret(ctx context.Context, tenant protocol.TenantID, id string) (protocol.WebhookEndpoint, error) {
	secret := NewSecret()
	now := s.opts.Now()
	res, err := s.db.ExecContext(ctx, `UPDATE webhook_endpoints SET old_secret = secret, old_until = ?, secret = ?, updated_at = ? WHERE id = ? AND tenant = ?`,
		now.Add(SecretGrace).UnixMicro(), secret, now.UnixMicro(), id, string(tenant))
	if err != nil {
		return protocol.WebhookEndpoint{}, fmt.Errorf("webhooks: rotate: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return protocol.WebhookEndpoint{}, errNoEndpoint
	}
	out, err := s.Endpoint(ctx, tenant, id)
	out.Secret = secret
	return out, err
}

// Enable turns a disabled endpoint on again; replay what it missed.
// Reason codes: not_found.
func (s *Service) Enable(ctx context.Context, tenant protocol.TenantID, id string) (protocol.WebhookEndpoint, error) {
	var res sql.Result
	err := s.endpointChange(ctx, true, func() (err error) {
		res, err = s.db.ExecContext(ctx, `UPDATE webhook_endpoints SET enabled = 1, disabled_reason = '', failing_since = 0, updated_at = ? WHERE id = ? AND tenant = ?`,
			s.opts.Now().UnixMicro(), id, string(tenant))
		return err
	})
	if err != nil {
		return protocol.WebhookEndpoint{}, fmt.Errorf("webhooks: enable: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return protocol.WebhookEndpoint{}, errNoEndpoint
	}
	return s.Endpoint(ctx, tenant, id)
}

// Deliveries lists an endpoint's delivery attempts, newest first, with
// id below before (0: from the newest), at most limit (1-200).
// Reason codes: not_found.
func (s *Service) Deliveries(ctx context.Context, tenant protocol.TenantID, id string, before int64, limit int) ([]protocol.WebhookDelivery, error) {
	if _, err := s.endpoint(ctx, s.db, tenant, id); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, event_id, event_type, attempt, status, ok, error, ms, at FROM webhook_deliveries
		WHERE endpoint = ? AND id < ? ORDER BY id DESC LIMIT ?`, id, before, limit)
	if err != nil {
		return nil, fmt.Errorf("webhooks: deliveries: %w", err)
	}
	defer rows.Close()
	out := []protocol.WebhookDelivery{}
	for rows.Next() {
		var d protocol.WebhookDelivery
		var at int64
		if err := rows.Scan(&d.ID, &d.EventID, &d.EventType, &d.Attempt, &d.Status, &d.OK, &d.Error, &d.Millis, &at); err != nil {
			return nil, fmt.Errorf("webhooks: deliveries: %w", err)
		}
		d.At = time.UnixMicro(at).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// Replay queues one event (r.EventID) or every event of tenant written in
// [r.From, r.To) for the endpoint again, whatever its filter, at most
// MaxReplay. Reason codes: invalid_input, not_found.
func (s *Service) Replay(ctx context.Context, tenant protocol.TenantID, id string, r protocol.WebhookReplay) (protocol.WebhookReplayResult, error) {
	ep, err := s.endpoint(ctx, s.db, tenant, id)
	if err != nil {
		return protocol.WebhookReplayResult{}, err
	}
	var es []protocol.Event
	switch {
	case r.EventID != "" && r.From == nil && r.To == nil:
		for _, src := range s.opts.Replay {
			e, ok, err := src.EventByID(ctx, tenant, r.EventID)
			if err != nil {
				return protocol.WebhookReplayResult{}, err
			}
			if ok {
				es = append(es, e)
				break
			}
		}
		if len(es) == 0 {
			return protocol.WebhookReplayResult{}, protocol.Errorf(protocol.CodeNotFound, "no event %q (events are kept for the retention period)", r.EventID)
		}
	case r.EventID == "" && r.From != nil && r.To != nil && r.From.Before(*r.To):
		// Every log (the ledger's and the catalog's), in a fixed order;
		// the events of the range in the order they were written.
		for _, name := range slices.Sorted(maps.Keys(s.opts.Replay)) {
			src := s.opts.Replay[name]
			var after int64
			for len(es) < MaxReplay {
				page, err := src.EventsBetween(ctx, tenant, *r.From, *r.To, after, min(1000, MaxReplay-len(es)))
				if err != nil {
					return protocol.WebhookReplayResult{}, err
				}
				es = append(es, page...)
				if len(page) == 0 {
					break
				}
				after = page[len(page)-1].Seq
			}
		}
	default:
		return protocol.WebhookReplayResult{}, protocol.FieldError("event_id", "give event_id, or from and to with from before to")
	}
	if !ep.enabled {
		return protocol.WebhookReplayResult{}, protocol.Errorf(protocol.CodeConflict, "the endpoint is disabled: enable it first")
	}
	slices.SortStableFunc(es, func(a, b protocol.Event) int { return a.At.Compare(b.At) })
	params := make([]river.InsertManyParams, 0, len(es))
	for _, e := range es {
		params = append(params, river.InsertManyParams{Args: jobOf(ep.id, e)})
	}
	if len(params) > 0 {
		if _, err := s.river.InsertMany(ctx, params); err != nil {
			return protocol.WebhookReplayResult{}, fmt.Errorf("webhooks: replay: %w", err)
		}
		s.wakeRiver()
	}
	return protocol.WebhookReplayResult{Queued: len(params)}, nil
}

// Prune deletes delivery records older than the retention (River cleans
// its own finished jobs). It reports how many it deleted.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries WHERE at < ? ORDER BY at LIMIT 10000)`,
		s.opts.Now().Add(-s.opts.Retention).UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("webhooks: prune: %w", err)
	}
	return res.RowsAffected()
}

// Backlog is the number of deliveries queued or waiting for a retry (a
// business gauge).
func (s *Service) Backlog(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM river_job WHERE state IN ('available', 'retryable', 'scheduled', 'running')`).Scan(&n)
	return n, err
}

func randomID() string {
	s := strings.TrimPrefix(NewSecret(), SecretPrefix)
	s = strings.NewReplacer("+", "", "/", "", "=", "").Replace(s)
	return s[:20]
}

// NewWake returns a wake channel for Options.Wake and the function that
// signals it without blocking (for ledger.Options.OnEvents and
// catalog.Catalog.OnEvents): signals while the relay is busy fold into
// one, which the relay takes after its round, so no commit goes unread.
func NewWake() (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	return c, func() {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}
