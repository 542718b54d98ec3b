package api

import (
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
)

// limiter is a fixed-window request counter per API key. It is in memory:
// each hub replica limits on its own, which is enough to stop a runaway
// client; a shared limit would need the database on every request.
type limiter struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	start time.Time
	n     int
}

// maxBuckets triggers a sweep of expired windows, bounding memory.
const maxBuckets = 10_000

func newLimiter(limit int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{limit: limit, window: window, now: now, buckets: map[string]*bucket{}}
}

// take counts one request of key and returns what is left in its window,
// when the window resets, and false when the limit is exceeded.
func (l *limiter) take(key string) (remaining int, reset time.Time, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil || now.Sub(b.start) >= l.window {
		if b == nil && len(l.buckets) >= maxBuckets {
			for k, old := range l.buckets {
				if now.Sub(old.start) >= l.window {
					delete(l.buckets, k)
				}
			}
		}
		b = &bucket{start: now}
		l.buckets[key] = b
	}
	b.n++
	reset = b.start.Add(l.window)
	if b.n > l.limit {
		return 0, reset, false
	}
	return l.limit - b.n, reset, true
}

// limit applies the key's rate limit and sets X-RateLimit-Limit,
// X-RateLimit-Remaining and X-RateLimit-Reset (seconds until the window
// resets), plus Retry-After on a 429.
func (s *Server) limit(c *fiber.Ctx, k catalog.Key) error {
	remaining, reset, ok := s.limiter.take(k.ID)
	secs := int(reset.Sub(s.cfg.Now()).Seconds() + 0.999)
	secs = max(secs, 1)
	c.Set("X-RateLimit-Limit", strconv.Itoa(s.limiter.limit))
	c.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	c.Set("X-RateLimit-Reset", strconv.Itoa(secs))
	if !ok {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
		return protocol.NewError(protocol.CodeRateLimited)
	}
	return nil
}
