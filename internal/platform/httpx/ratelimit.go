package httpx

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// ErrRateLimited is the answer to a client over its rate.
var ErrRateLimited = &i18n.Error{Code: "rate_limited", Status: http.StatusTooManyRequests,
	Msg: i18n.T("请求过于频繁，请稍后再试", "too many requests; please wait a moment and try again")}

// RateLimitConfig configures NewRateLimiter.
type RateLimitConfig struct {
	Rate  rate.Limit // sustained requests per second per client; 0: 10
	Burst int        // requests a client may make at once; 0: 2×Rate, at least 20
	// TrustedProxies decide whose X-Forwarded-For is believed (see ClientIP).
	TrustedProxies TrustedProxies
	// Key names the client of a request; "" lets the request through unlimited.
	// nil: the client IP, IPv6 clients by their /64 (one subscriber's network).
	Key func(*http.Request) string
	// MaxClients bounds the buckets kept in memory; 0: 100 000.
	MaxClients int
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// RateLimiter gives every client a token bucket (golang.org/x/time/rate). Buckets live in two
// generations: lookups promote a bucket into the current one, and the current one becomes
// the previous (and the previous is dropped) once it is full or an idle period has passed.
// Memory stays within MaxClients buckets and eviction costs nothing per request. A bucket is
// dropped after at least one idle period (by then it would be full again anyway), or earlier
// only when a flood of new clients fills a generation.
type RateLimiter struct {
	limit   rate.Limit
	burst   int
	key     func(*http.Request) string
	now     func() time.Time
	maxGen  int
	idle    time.Duration
	mu      sync.Mutex
	cur     map[string]*rate.Limiter
	prev    map[string]*rate.Limiter
	rotated time.Time
}

// NewRateLimiter builds a per-client rate limiter.
func NewRateLimiter(cfg RateLimitConfig) *RateLimiter {
	l := &RateLimiter{limit: cfg.Rate, burst: cfg.Burst, key: cfg.Key, now: cfg.Now}
	if l.limit <= 0 {
		l.limit = 10
	}
	if l.burst <= 0 {
		l.burst = max(20, int(math.Min(2*float64(l.limit), 1e6)))
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.key == nil {
		proxies := cfg.TrustedProxies
		l.key = func(r *http.Request) string { return clientKey(ClientIP(r, proxies)) }
	}
	maxClients := cfg.MaxClients
	if maxClients <= 0 {
		maxClients = 100_000
	}
	l.maxGen = max(1, maxClients/2)
	// Idle long enough to refill the whole bucket, so dropping it changes nothing.
	l.idle = time.Minute
	if l.limit != rate.Inf {
		if fill := time.Duration(float64(l.burst) / float64(l.limit) * float64(time.Second)); fill > l.idle {
			l.idle = fill
		}
	}
	l.cur = make(map[string]*rate.Limiter)
	l.rotated = l.now()
	return l
}

func clientKey(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// Allow takes a token for key, and otherwise says how long until one is available.
func (l *RateLimiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	lim := l.bucket(key, now)
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	if l.limit <= 0 || missing <= 0 {
		return false, time.Second
	}
	return false, time.Duration(missing / float64(l.limit) * float64(time.Second))
}

func (l *RateLimiter) bucket(key string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lim, ok := l.cur[key]; ok {
		return lim
	}
	if now.Sub(l.rotated) >= l.idle || len(l.cur) >= l.maxGen {
		l.prev, l.cur = l.cur, make(map[string]*rate.Limiter, len(l.cur))
		l.rotated = now
	}
	lim, ok := l.prev[key]
	if ok {
		delete(l.prev, key)
	} else {
		lim = rate.NewLimiter(l.limit, l.burst)
	}
	l.cur[key] = lim
	return lim
}

// Clients is the number of buckets held, for tests and metrics.
func (l *RateLimiter) Clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cur) + len(l.prev)
}

// Middleware answers 429 with Retry-After (whole seconds, at least 1) to a client over its rate.
func (l *RateLimiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := l.key(r)
		if key == "" {
			next.ServeHTTP(w, r)
			return
		}
		if ok, wait := l.Allow(key); !ok {
			secs := int64(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.FormatInt(max(1, secs), 10))
			WriteError(w, r, ErrRateLimited)
			return
		}
		next.ServeHTTP(w, r)
	})
}
