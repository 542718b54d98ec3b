package api

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"

	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/protocol"
)

// limiter is a token bucket per caller (an API key, or a remote address
// for requests without a valid key), from golang.org/x/time/rate: limit
// requests per window on average with bursts of up to limit. Unlike a
// fixed window, which lets a client spend its whole budget at the end of
// one window and again at the start of the next (twice the limit in a
// moment), a bucket refills steadily, so no interval of one window ever
// admits much more than limit. It is in memory: each hub replica limits on
// its own, which is enough to stop a runaway client; a shared limit would
// need the database on every request.
type limiter struct {
	limit  int // the default; a caller may have its own (take)
	window time.Duration

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// maxBuckets bounds memory: when reached, full buckets (which behave as a
// new one would) are dropped; if every bucket is in use, new callers share
// one overflow bucket until some refill.
const maxBuckets = 10_000

// overflowKey is the shared bucket's key; no API key ID or address is
// empty.
const overflowKey = ""

func newLimiter(limit int, window time.Duration) *limiter {
	return &limiter{limit: limit, window: window, buckets: map[string]*rate.Limiter{}}
}

// every is the refill rate of a bucket of limit requests per window.
func (l *limiter) every(limit int) rate.Limit { return rate.Limit(float64(limit) / l.window.Seconds()) }

// bucket returns key's bucket of limit requests per window, creating it
// (l.mu held).
func (l *limiter) bucket(key string, limit int, now time.Time) *rate.Limiter {
	if b := l.buckets[key]; b != nil {
		return b
	}
	if len(l.buckets) >= maxBuckets {
		for k, b := range l.buckets {
			if b.TokensAt(now) >= float64(b.Burst()) {
				delete(l.buckets, k)
			}
		}
		if len(l.buckets) >= maxBuckets {
			key = overflowKey
			if b := l.buckets[key]; b != nil {
				return b
			}
		}
	}
	b := rate.NewLimiter(l.every(limit), limit)
	l.buckets[key] = b
	return b
}

// take spends one request of key, whose limit is limit (0: the
// limiter's default), at now. It returns the whole requests left, how long
// until the bucket is full again, how long until the next request is
// allowed (0 when ok), and whether this one is.
func (l *limiter) take(key string, limit int, now time.Time) (remaining int, full, retry time.Duration, ok bool) {
	if limit <= 0 {
		limit = l.limit
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(key, limit, now)
	ok = b.AllowN(now, 1)
	tokens := b.TokensAt(now)
	remaining = max(int(math.Floor(tokens)), 0)
	full = wait(b.Limit(), float64(b.Burst())-tokens)
	if !ok {
		retry = wait(b.Limit(), 1-tokens)
	}
	return remaining, full, retry, ok
}

// empty reports whether key has no request left at now, without spending
// one.
func (l *limiter) empty(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	return b != nil && b.TokensAt(now) < 1
}

// wait is how long a bucket refilled at every takes to refill n tokens.
func wait(every rate.Limit, n float64) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(n / float64(every) * float64(time.Second))
}

// limit applies lim to the caller key and sets X-RateLimit-Limit,
// X-RateLimit-Remaining and X-RateLimit-Reset (seconds until the bucket
// is full again), plus Retry-After (seconds until the next request is
// allowed) on a 429.
func (s *Server) limit(c *fiber.Ctx, lim *limiter, key string, limit int) error {
	if limit <= 0 {
		limit = lim.limit
	}
	remaining, full, retry, ok := lim.take(key, limit, s.cfg.Now())
	c.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	c.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	c.Set("X-RateLimit-Reset", strconv.Itoa(ceilSeconds(full)))
	if !ok {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(ceilSeconds(retry), 1)))
		return protocol.NewError(protocol.CodeRateLimited)
	}
	return nil
}

func ceilSeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

// limitAnon limits a request without a valid API key by its remote
// address (the TCP peer; the hub trusts no forwarding header).
func (s *Server) limitAnon(c *fiber.Ctx) error { return s.limit(c, s.anon, c.IP(), 0) }

// limitKey applies the key's own limit (Config.KeyRateLimits, else
// RateLimit), then its tenant's, which all the tenant's keys share
// (Config.TenantRateLimits, else TenantRateLimit; none when 0). The
// headers show the limit that answered last.
func (s *Server) limitKey(c *fiber.Ctx, k manage.Key) error {
	if err := s.limit(c, s.limiter, k.ID, s.cfg.KeyRateLimits[k.ID]); err != nil {
		return err
	}
	if k.Tenant == "" {
		return nil
	}
	tl, ok := s.cfg.TenantRateLimits[k.Tenant]
	if !ok {
		tl = s.cfg.TenantRateLimit
	}
	if tl <= 0 {
		return nil
	}
	return s.limit(c, s.tenants, string(k.Tenant), tl)
}
