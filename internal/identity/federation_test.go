package identity_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
)

const upstream = "https://tyrz.gjzwfw.gov.cn/oidc"

func TestFederationExplicitLink(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		a := f.register("13812345678", "")
		b := f.register("13912345678", "")

		_, err := f.svc.LoginFederated(f.ctx, identity.FederatedIdentity{Issuer: upstream, Subject: "u-1", Level: 2}, "10.0.0.1", "")
		wantErr(t, "login before any link", err, identity.ErrFederationNotLinked)

		l, err := f.svc.LinkFederated(f.ctx, a.ID, upstream, "u-1")
		if err != nil || l.AccountID != a.ID || l.Method != identity.LinkExplicit || l.LastLoginAt != nil {
			t.Fatalf("link: %+v %v", l, err)
		}
		if _, err := f.svc.LinkFederated(f.ctx, a.ID, upstream, "u-1"); err != nil {
			t.Fatalf("linking again is no error: %v", err)
		}
		_, err = f.svc.LinkFederated(f.ctx, b.ID, upstream, "u-1")
		wantErr(t, "identity of another account", err, identity.ErrFederationLinkedElsewhere)
		_, err = f.svc.LinkFederated(f.ctx, a.ID, upstream, "u-2")
		wantErr(t, "second identity of one issuer", err, identity.ErrFederationIssuerLinked)
		_, err = f.svc.LinkFederated(f.ctx, a.ID, "", "u-2")
		wantErr(t, "no issuer", err, identity.ErrFederationInvalid)
		if _, err := f.svc.LinkFederated(f.ctx, a.ID, "https://other.example/oidc", "u-1"); err != nil {
			t.Fatalf("another issuer: %v", err)
		}
		if got, err := f.svc.AccountByFederated(f.ctx, upstream, "u-1"); err != nil || got.ID != a.ID {
			t.Fatalf("account by federated: %+v %v", got, err)
		}
		if _, err := f.svc.AccountByFederated(f.ctx, upstream, "u-9"); !errors.Is(err, i18n.ErrNotFound) {
			t.Fatalf("unknown identity: %v", err)
		}

		// The linked login: level min(account L1, upstream L2), amr fed; the link remembers it.
		f.now = f.now.Add(time.Minute)
		res, err := f.svc.LoginFederated(f.ctx, identity.FederatedIdentity{Issuer: upstream, Subject: "u-1", Level: 2}, "10.0.0.1", "Firefox")
		if err != nil || res.Account.ID != a.ID || res.Session.Level != 1 || !slices.Equal(res.Session.AMR, []string{identity.AMRFederated}) || res.Linked != "" {
			t.Fatalf("federated login: %+v %v", res, err)
		}
		if ses, err := f.svc.GetSession(f.ctx, res.Token); err != nil || ses.ID != res.Session.ID {
			t.Fatalf("session: %+v %v", ses, err)
		}
		links, err := f.svc.ListFederated(f.ctx, a.ID)
		i := slices.IndexFunc(links, func(l identity.FederatedLink) bool { return l.Issuer == upstream })
		if err != nil || len(links) != 2 || i < 0 || links[i].LastLoginAt == nil || !links[i].LastLoginAt.Equal(f.now) {
			t.Fatalf("links: %+v %v", links, err)
		}

		// Unlinking: someone else's link is not found; an account with a password may drop all.
		wantErr(t, "unlink another's", f.svc.UnlinkFederated(f.ctx, b.ID, upstream, "u-1"), i18n.ErrNotFound)
		if err := f.svc.UnlinkFederated(f.ctx, a.ID, upstream, "u-1"); err != nil {
			t.Fatalf("unlink: %v", err)
		}
		_, err = f.svc.LoginFederated(f.ctx, identity.FederatedIdentity{Issuer: upstream, Subject: "u-1"}, "", "")
		wantErr(t, "login after unlink", err, identity.ErrFederationNotLinked)

		acts := f.actions()
		for _, want := range []string{identity.ActionFederationLinked, identity.ActionFederationRefused, identity.ActionLogin,
			identity.ActionLoginFailed, identity.ActionSessionCreated, identity.ActionFederationUnlinked} {
			if !slices.Contains(acts, want) {
				t.Errorf("audit lacks %s: %v", want, acts)
			}
		}
	}, sources...)
}

func TestFederationRealNamePolicy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		z := f.verified("13812345678", "张伟", zhang)

		// Not enough to link: a level below 2, a name that differs.
		for _, fi := range []identity.FederatedIdentity{
			{Issuer: upstream, Subject: "z", Level: 1, Name: "张伟", IDNumber: zhang},
			{Issuer: upstream, Subject: "z", Level: 2, Name: "张三", IDNumber: zhang},
			{Issuer: upstream, Subject: "z", Level: 2, IDNumber: zhang},
		} {
			_, err := f.svc.LoginFederated(f.ctx, fi, "", "")
			wantErr(t, "weak or different identity", err, identity.ErrFederationNotLinked)
		}
		// The one account verified with the ID number and name: linked automatically.
		res, err := f.svc.LoginFederated(f.ctx, identity.FederatedIdentity{Issuer: upstream, Subject: "z", Level: 3, Name: "张伟", IDNumber: zhang}, "", "")
		if err != nil || res.Account.ID != z.ID || res.Linked != identity.LinkIDNumber || res.Session.Level != 2 {
			t.Fatalf("auto link: %+v %v", res, err)
		}
		// Later the upstream vouches for someone else under the same subject: refused.
		_, err = f.svc.LoginFederated(f.ctx, identity.FederatedIdentity{Issuer: upstream, Subject: "z", Level: 2, Name: "王建国", IDNumber: wang}, "", "")
		wantErr(t, "identity changed upstream", err, identity.ErrFederationMismatch)

		// An explicit link whose upstream identity is not the account's verified one.
		w := f.verified("13712345678", "王建国", wang)
		_, err = f.svc.LinkFederatedIdentity(f.ctx, w.ID, identity.FederatedIdentity{Issuer: upstream, Subject: "m", Level: 2, Name: "赵敏", IDNumber: zhao})
		wantErr(t, "explicit link of someone else", err, identity.ErrFederationMismatch)

		// No account, but the population library knows the person: a new L2 account without
		// password or mobile, bound to the ID number.
		res, err = f.svc.LoginFederated(f.ctx, identity.FederatedIdentity{Issuer: upstream, Subject: "l", Level: 2, Name: "李娜", IDNumber: li}, "", "")
		if err != nil || res.Linked != identity.LinkCreated || res.Session.Level != 2 || res.Account.Name != "李娜" ||
			res.Account.DivisionCode != "140106" || res.Account.Level != 2 || res.Account.Mobile != "" {
			t.Fatalf("created: %+v %v", res, err)
		}
		created := res.Account.ID
		if has, err := f.svc.HasPassword(f.ctx, created); err != nil || has {
			t.Fatalf("created account has a password: %v %v", has, err)
		}
		if has, _ := f.svc.HasPassword(f.ctx, z.ID); !has {
			t.Fatal("a registered account has a password")
		}
		_, err = f.svc.LoginPassword(f.ctx, li, pw, "")
		wantErr(t, "password login before one is set", err, identity.ErrBadCredentials)
		wantErr(t, "unlink the only way in", f.svc.UnlinkFederated(f.ctx, created, upstream, "l"), identity.ErrFederationLastMethod)
		// Not in the population library (or a wrong name there): nothing is created.
		_, err = f.svc.LoginFederated(f.ctx, identity.FederatedIdentity{Issuer: upstream, Subject: "x", Level: 2, Name: "赵敏敏", IDNumber: zhao}, "", "")
		wantErr(t, "unknown person", err, identity.ErrFederationNotLinked)

		// A first password, then the ID number and password sign in too, and the link may go.
		if err := f.svc.SetInitialPassword(f.ctx, created, pw); err != nil {
			t.Fatalf("set password: %v", err)
		}
		wantErr(t, "set it twice", f.svc.SetInitialPassword(f.ctx, created, pw), identity.ErrPasswordAlreadySet)
		if acc, err := f.svc.LoginPassword(f.ctx, li, pw, ""); err != nil || acc.ID != created {
			t.Fatalf("password login: %+v %v", acc, err)
		}
		if err := f.svc.UnlinkFederated(f.ctx, created, upstream, "l"); err != nil {
			t.Fatalf("unlink with a password: %v", err)
		}
		// Logging in again through the upstream finds the account by its ID number.
		res, err = f.svc.LoginFederated(f.ctx, identity.FederatedIdentity{Issuer: upstream, Subject: "l", Level: 2, Name: "李娜", IDNumber: li}, "", "")
		if err != nil || res.Account.ID != created || res.Linked != identity.LinkIDNumber {
			t.Fatalf("relink: %+v %v", res, err)
		}
		acts := f.actions()
		for _, want := range []string{identity.ActionRegister, identity.ActionFederationLinked, identity.ActionPasswordSet, identity.ActionLoginFailed} {
			if !slices.Contains(acts, want) {
				t.Errorf("audit lacks %s: %v", want, acts)
			}
		}
	}, sources...)
}

func TestFederationStateOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		exp := f.now.Add(10 * time.Minute)
		if err := f.svc.SpendFederationState(f.ctx, "abc", exp); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "replayed state", f.svc.SpendFederationState(f.ctx, "abc", exp), identity.ErrFederationReplay)
		if err := f.svc.SpendFederationState(f.ctx, "abd", exp); err != nil {
			t.Fatal(err)
		}
		// Expired states are swept; by then the portal's cookie has expired too.
		f.now = exp.Add(time.Minute)
		if err := f.svc.SpendFederationState(f.ctx, "new", f.now.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := d.QueryRow(f.ctx, `SELECT COUNT(*) FROM federated_states`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("states kept: %d %v", n, err)
		}
	}, sources...)
}
