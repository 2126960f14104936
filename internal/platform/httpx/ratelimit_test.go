package httpx_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/dgov/dgov/internal/platform/httpx"
)

// fakeClock is a swappable clock for tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRateLimit(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	proxies, _ := httpx.ParseTrustedProxies("10.0.0.0/8")
	l := httpx.NewRateLimiter(httpx.RateLimitConfig{Rate: 0.5, Burst: 3, TrustedProxies: proxies, Now: clock.Now})
	h := httpx.Chain(okHandler(), httpx.AssignRequestID, l.Middleware)

	from := func(peer, xff string) scenario {
		sc := scenario{url: "/", remoteAddr: peer}
		if xff != "" {
			sc.headers = map[string]string{"X-Forwarded-For": xff}
		}
		return sc
	}
	ok := func(sc scenario) scenario { sc.wantStatus = 200; return sc }
	limited := func(sc scenario, retry string) scenario {
		sc.wantStatus = 429
		sc.wantHeaders = map[string]string{"Retry-After": retry}
		sc.wantBody = []string{"rate_limited", "请求过于频繁"}
		return sc
	}

	steps := []struct {
		name string
		sc   scenario
		wait time.Duration
	}{
		{"burst 1", ok(from("192.0.2.1:1000", "")), 0},
		{"burst 2", ok(from("192.0.2.1:1001", "")), 0},
		{"burst 3", ok(from("192.0.2.1:1002", "")), 0},
		{"over the burst", limited(from("192.0.2.1:1003", ""), "2"), 0},
		{"other IP unaffected", ok(from("192.0.2.2:1000", "")), 0},
		{"spoofed XFF from untrusted peer is ignored", limited(from("192.0.2.1:1004", "198.51.100.7"), "2"), time.Second},
		{"after 1 s still limited", limited(from("192.0.2.1:1005", ""), "1"), time.Second},
		{"after 2 s one token back", ok(from("192.0.2.1:1006", "")), 0},
		{"and used up again", limited(from("192.0.2.1:1007", ""), "2"), 0},
		{"client behind trusted proxy has own bucket", ok(from("10.0.0.5:1000", "192.0.2.1, 198.51.100.7")), 0},
		{"IPv6 same /64 shares a bucket 1", ok(from("[2001:db8:1:2::1]:1", "")), 0},
		{"IPv6 same /64 shares a bucket 2", ok(from("[2001:db8:1:2::2]:1", "")), 0},
		{"IPv6 same /64 shares a bucket 3", ok(from("[2001:db8:1:2::3]:1", "")), 0},
		{"IPv6 same /64 shares a bucket 4", limited(from("[2001:db8:1:2::ffff]:1", ""), "2"), 0},
		{"IPv6 other /64", ok(from("[2001:db8:1:3::1]:1", "")), 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			rec := st.sc.run(t, h)
			if rec.Code == 429 {
				p := decodeProblem(t, rec)
				if p["request_id"] == "" || p["status"] != float64(429) {
					t.Errorf("problem = %v", p)
				}
			}
		})
		clock.Add(st.wait)
	}
}

func TestRateLimitBoundedMemory(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	l := httpx.NewRateLimiter(httpx.RateLimitConfig{Rate: 1, Burst: 1, MaxClients: 100, Now: clock.Now})
	for i := range 10_000 {
		l.Allow(fmt.Sprintf("client-%d", i))
	}
	if n := l.Clients(); n > 100 {
		t.Fatalf("%d buckets held, want ≤ 100", n)
	}
	// Idle buckets go after two idle periods even without pressure.
	clock.Add(2 * time.Minute)
	l.Allow("a")
	clock.Add(2 * time.Minute)
	l.Allow("b")
	if n := l.Clients(); n > 2 {
		t.Fatalf("%d buckets after idling, want ≤ 2", n)
	}
	// A busy client keeps its (empty) bucket across rotations.
	if ok, _ := l.Allow("b"); ok {
		t.Fatal("b got a second token with burst 1")
	}
}

func TestRateLimitKeyFunc(t *testing.T) {
	l := httpx.NewRateLimiter(httpx.RateLimitConfig{Rate: rate.Every(time.Hour), Burst: 1,
		Key: func(r *http.Request) string { return r.Header.Get("X-User") }})
	h := l.Middleware(okHandler())
	for i, want := range []int{200, 429, 200, 200} {
		req := httptest.NewRequest("GET", "/", nil)
		if i < 2 {
			req.Header.Set("X-User", "u1") // "" for later ones: not limited
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("request %d: %d, want %d", i, rec.Code, want)
		}
	}
}
