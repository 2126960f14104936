package idp_test

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/dgov/dgov/internal/idp"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
)

// ValidateAccessToken answers in process what introspection answers over HTTP.
func TestValidateAccessToken(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		rs := f.newRP(t, idp.ClientInput{Name: "资源服务", Type: idp.ClientService, AllowedScopes: []string{"dgov.exchange"}})
		svc := f.newRP(t, idp.ClientInput{Name: "人社业务系统", Type: idp.ClientService, AllowedScopes: []string{"dgov.exchange", "other"}})
		cc := clientcredentials.Config{ClientID: svc.client.ID, ClientSecret: svc.secret, TokenURL: f.oidc.Endpoint().TokenURL,
			Scopes: []string{"dgov.exchange"}}
		token := func() string {
			t.Helper()
			tok, err := cc.Token(f.ctx)
			if err != nil {
				t.Fatalf("client credentials: %v", err)
			}
			return tok.AccessToken
		}
		invalid := func(what, tok string) {
			t.Helper()
			if id, sc, err := f.p.ValidateAccessToken(f.ctx, tok); !errors.Is(err, idp.ErrTokenInvalid) || id != "" || sc != nil {
				t.Errorf("%s: %q %v %v, want ErrTokenInvalid", what, id, sc, err)
			}
		}

		tok := token()
		id, scopes, err := f.p.ValidateAccessToken(f.ctx, tok)
		if err != nil || id != svc.client.ID || !slices.Equal(scopes, []string{"dgov.exchange"}) {
			t.Fatalf("valid token: %q %v %v", id, scopes, err)
		}
		if in := f.introspect(t, rs, tok); !in.Active || in.ClientID != id || in.Scope != "dgov.exchange" {
			t.Errorf("introspection disagrees: %+v", in)
		}

		invalid("empty", "")
		invalid("garbage", "garbage")
		invalid("not base64", "!!!!")
		invalid("truncated", tok[:len(tok)-4])
		// One changed character decrypts to another id (the ciphertext is not authenticated; the lookup is).
		invalid("tampered", tok[:20]+string('A'+(tok[20]-'A'+1)%26)+tok[21:])

		// A person's token from an app is refused: it must not act as the app's department.
		web := f.newRP(t, idp.ClientInput{Name: "一网通办"})
		ut, _, _ := f.codeFlow(t, web, login{subject: "citizen-li", session: "sso-v1", level: 2})
		if id, _, err := f.p.ValidateAccessToken(f.ctx, ut.AccessToken); err == nil {
			t.Errorf("a user's token was accepted for %q", id)
		}

		// Revoked.
		revoked := token()
		if st := f.postForm(t, "/revoke", svc.client.ID, svc.secret, url.Values{"token": {revoked}}, nil); st != http.StatusOK {
			t.Fatalf("revoke: %d", st)
		}
		invalid("revoked", revoked)
		if _, _, err := f.p.ValidateAccessToken(f.ctx, tok); err != nil {
			t.Errorf("revoking one token ended another: %v", err)
		}

		// Expired (access tokens live 15 minutes).
		f.clock.advance(16 * time.Minute)
		invalid("expired", tok)
		fresh := token()
		if _, _, err := f.p.ValidateAccessToken(f.ctx, fresh); err != nil {
			t.Fatalf("fresh token: %v", err)
		}

		// The department a client belongs to (the registering staff member's by default).
		if dep, err := f.p.ClientDepartment(f.ctx, svc.client.ID); err != nil || dep != staff.Dept {
			t.Errorf("client department: %q %v", dep, err)
		}
		if _, err := f.p.ClientDepartment(f.ctx, "nope"); !errors.Is(err, idp.ErrClientUnknown) {
			t.Errorf("unknown client's department: %v", err)
		}

		// Disabled client.
		if err := f.p.DisableClient(f.ctx, staff, svc.client.ID); err != nil {
			t.Fatal(err)
		}
		invalid("disabled client", fresh)
		if _, err := f.p.ClientDepartment(f.ctx, svc.client.ID); !errors.Is(err, idp.ErrClientUnknown) {
			t.Errorf("disabled client's department: %v", err)
		}
	}, crypto.Migrations, idp.Migrations)
}
