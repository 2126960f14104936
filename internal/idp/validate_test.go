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

// ValidatePersonToken answers in process what a person's app's token speaks for, and refuses
// what is not a live token of a citizen.
func TestValidatePersonToken(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		web := f.newRP(t, idp.ClientInput{Name: "三晋通"})
		other := f.newRP(t, idp.ClientInput{Name: "另一应用"})
		refused := func(what, tok string, want error) {
			t.Helper()
			if pt, err := f.p.ValidatePersonToken(f.ctx, tok); !errors.Is(err, want) || pt.Subject != "" {
				t.Errorf("%s: %+v %v, want %v", what, pt, err, want)
			}
		}

		// A citizen acting for themselves.
		li, _, _ := f.codeFlow(t, web, login{subject: "citizen-li", session: "sso-p1", level: 2})
		pt, err := f.p.ValidatePersonToken(f.ctx, li.AccessToken)
		if err != nil {
			t.Fatalf("valid token: %v", err)
		}
		wantScopes := []string{"openid", "profile", "offline_access"}
		if pt.Subject != "citizen-li" || pt.Kind != "citizen" || pt.ActingFor != "" || pt.ClientID != web.client.ID ||
			!slices.Equal(pt.Scopes, wantScopes) || pt.Level != 2 || !pt.Expires.Equal(db.Now(f.clock.now().Add(15*time.Minute))) {
			t.Errorf("valid token: %+v", pt)
		}
		// A person acting for an enterprise.
		zhang, _, _ := f.codeFlow(t, other, login{subject: "citizen-zhang", actingFor: "ent-1", session: "sso-p2", level: 3})
		if pt, err := f.p.ValidatePersonToken(f.ctx, zhang.AccessToken); err != nil || pt.Subject != "citizen-zhang" ||
			pt.Kind != "enterprise" || pt.ActingFor != "ent-1" || pt.ClientID != other.client.ID || pt.Level != 3 {
			t.Errorf("enterprise token: %+v %v", pt, err)
		}

		refused("empty", "", idp.ErrTokenInvalid)
		refused("garbage", "garbage", idp.ErrTokenInvalid)
		refused("truncated", li.AccessToken[:len(li.AccessToken)-4], idp.ErrTokenInvalid)

		// A system client's own token is live, but nobody's.
		svc := f.newRP(t, idp.ClientInput{Name: "人社业务系统", Type: idp.ClientService, AllowedScopes: []string{"dgov.exchange"}})
		cc := clientcredentials.Config{ClientID: svc.client.ID, ClientSecret: svc.secret, TokenURL: f.oidc.Endpoint().TokenURL}
		sys, err := cc.Token(f.ctx)
		if err != nil {
			t.Fatalf("client credentials: %v", err)
		}
		refused("system client", sys.AccessToken, idp.ErrNotPersonToken)
		// A staff member's token, from a staff application or (were one issued) a citizens' one.
		console := f.newRP(t, idp.ClientInput{Name: "统一工作台", Audience: idp.AudienceStaff})
		st, _, _ := f.codeFlow(t, console, login{subject: "staff-7", session: "sso-p3", level: 2})
		refused("staff application", st.AccessToken, idp.ErrNotPersonToken)
		st, _, _ = f.codeFlow(t, web, login{subject: "staff-7", session: "sso-p4", level: 2})
		refused("staff subject", st.AccessToken, idp.ErrNotPersonToken)

		// Revoked.
		revoked, _, _ := f.codeFlow(t, web, login{subject: "citizen-li", session: "sso-p5", level: 2})
		if st := f.postForm(t, "/revoke", web.client.ID, web.secret, url.Values{"token": {revoked.AccessToken}}, nil); st != http.StatusOK {
			t.Fatalf("revoke: %d", st)
		}
		refused("revoked", revoked.AccessToken, idp.ErrTokenInvalid)
		if _, err := f.p.ValidatePersonToken(f.ctx, li.AccessToken); err != nil {
			t.Errorf("revoking one token ended another: %v", err)
		}

		// A client disabled after issue: its tokens stop at once.
		if err := f.p.DisableClient(f.ctx, staff, other.client.ID); err != nil {
			t.Fatal(err)
		}
		refused("disabled client", zhang.AccessToken, idp.ErrTokenInvalid)
		if _, err := f.p.ValidatePersonToken(f.ctx, li.AccessToken); err != nil {
			t.Errorf("disabling one client ended another's token: %v", err)
		}

		// Expired (access tokens live 15 minutes).
		f.clock.advance(16 * time.Minute)
		refused("expired", li.AccessToken, idp.ErrTokenInvalid)
	}, crypto.Migrations, idp.Migrations)
}
