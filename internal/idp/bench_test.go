package idp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/dgov/dgov/internal/idp"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// eachDB runs a benchmark on SQLite and, when reachable, PostgreSQL.
func eachDB(b *testing.B, fn func(b *testing.B, d *db.DB)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, dbtest.SQLite(b, crypto.Migrations, idp.Migrations)) })
	b.Run("postgres", func(b *testing.B) { fn(b, dbtest.Postgres(b, crypto.Migrations, idp.Migrations)) })
}

// benchClient keeps connections alive across parallel goroutines (the default transport
// keeps two per host, and the rest would churn through ephemeral ports).
func benchClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	return &http.Client{Transport: tr}
}

func perSecond(b *testing.B, unit string) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// BenchmarkClientCredentials: system clients getting access tokens over HTTP.
func BenchmarkClientCredentials(b *testing.B) {
	eachDB(b, func(b *testing.B, d *db.DB) {
		f := newFixture(b, d)
		svc := f.newRP(b, idp.ClientInput{Name: "bench", Type: idp.ClientService, AllowedScopes: []string{"exchange.read"}})
		cc := clientcredentials.Config{ClientID: svc.client.ID, ClientSecret: svc.secret, TokenURL: f.oidc.Endpoint().TokenURL}
		ctx := context.WithValue(f.ctx, oauth2.HTTPClient, benchClient())
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := cc.Token(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
		perSecond(b, "grants/s")
	})
}

// BenchmarkIntrospection: a resource server introspecting a user's access token over HTTP.
func BenchmarkIntrospection(b *testing.B) {
	eachDB(b, func(b *testing.B, d *db.DB) {
		f := newFixture(b, d)
		web := f.newRP(b, idp.ClientInput{Name: "bench web"})
		rs := f.newRP(b, idp.ClientInput{Name: "bench rs", Type: idp.ClientService})
		tok, _, _ := f.codeFlow(b, web, login{subject: "citizen-zhang", session: "bench", level: 3})
		hc := benchClient()
		form := url.Values{"token": {tok.AccessToken}}.Encode()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(http.MethodPost, f.issuer+"/oauth/introspect", strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(rs.client.ID, rs.secret)
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				var out struct {
					Active bool `json:"active"`
				}
				err = json.NewDecoder(resp.Body).Decode(&out)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || !out.Active {
					b.Errorf("introspection: %v, active %v", err, out.Active)
					return
				}
			}
		})
		perSecond(b, "introspections/s")
	})
}

// BenchmarkIDTokenVerify: a relying party verifying our ID tokens with go-oidc (keys cached
// after the first fetch, as in any RP).
func BenchmarkIDTokenVerify(b *testing.B) {
	d := dbtest.SQLite(b, crypto.Migrations, idp.Migrations)
	f := newFixture(b, d)
	web := f.newRP(b, idp.ClientInput{Name: "bench web"})
	_, _, raw := f.codeFlow(b, web, login{subject: "citizen-zhang", session: "bench", level: 3})
	v := f.oidc.Verifier(&oidc.Config{ClientID: web.client.ID})
	if _, err := v.Verify(f.ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(f.ctx, raw); err != nil {
				b.Error(err)
				return
			}
		}
	})
	perSecond(b, "verifications/s")
}
