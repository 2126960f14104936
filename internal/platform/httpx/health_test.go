package httpx_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/httpx"
)

func TestHealth(t *testing.T) {
	hl := httpx.NewHealth(50 * time.Millisecond)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", hl.Healthz)
	mux.HandleFunc("GET /readyz", hl.Readyz)

	scenario{url: "/healthz", wantStatus: 200, wantBody: []string{"ok"}}.run(t, mux)
	scenario{url: "/readyz", wantStatus: 200, wantBody: []string{`"status":"ok"`, `"checks":[]`}}.run(t, mux)

	dbUp := true
	hl.Register("db", func(ctx context.Context) error {
		if !dbUp {
			return errors.New("dial tcp 10.0.0.5:5432: connection refused")
		}
		return nil
	})
	hl.Register("nats", func(ctx context.Context) error { return nil })
	scenario{url: "/readyz", wantStatus: 200}.run(t, mux)

	dbUp = false
	hl.Register("slow", func(ctx context.Context) error { time.Sleep(time.Second); return nil }) // ignores ctx
	start := time.Now()
	rec := scenario{url: "/readyz", wantStatus: 503, notBody: []string{"10.0.0.5", "refused"}}.run(t, mux)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("readyz waited %v for a hung check", d)
	}
	var got httpx.Readiness
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"db": "fail", "nats": "ok", "slow": "timeout"}
	if got.Status != "unavailable" || len(got.Checks) != 3 {
		t.Fatalf("readiness = %+v", got)
	}
	for _, c := range got.Checks {
		if want[c.Name] != c.Status {
			t.Errorf("check %s = %s, want %s", c.Name, c.Status, want[c.Name])
		}
	}
	// Healthz is unaffected by failing dependencies.
	scenario{url: "/healthz", wantStatus: 200}.run(t, mux)

	hl2 := httpx.NewHealth(0)
	hl2.Drain()
	mux2 := http.NewServeMux()
	mux2.HandleFunc("GET /readyz", hl2.Readyz)
	scenario{url: "/readyz", wantStatus: 503, wantBody: []string{`"status":"draining"`}}.run(t, mux2)
}
