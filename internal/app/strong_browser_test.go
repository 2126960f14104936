package app

import (
	"context"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"html"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/platform/config"
)

// ---- helpers ----

// citizenL2 registers a citizen over HTTP and verifies the real name (c ends signed in at L2);
// it returns the account id.
func citizenL2(t *testing.T, n *node, c *http.Client, mobile, name string) string {
	t.Helper()
	idNumber := addResident(t, n, name)
	_, page := get(t, c, n.URL+"/register")
	if res, body := postForm(t, c, n.URL, "/register/code", url.Values{"csrf_token": {csrfFrom(t, page)}, "mobile": {mobile}}); res.StatusCode != http.StatusOK {
		t.Fatalf("send code: %d\n%.800s", res.StatusCode, body)
	}
	_, page = get(t, c, n.URL+"/register")
	res, body := postForm(t, c, n.URL, "/register", url.Values{"csrf_token": {csrfFrom(t, page)}, "mobile": {mobile},
		"code": {lastCode(t, n, c, mobile)}, "password": {"Fenhe#River2026"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("register: %d\n%.800s", res.StatusCode, body)
	}
	_, page = get(t, c, n.URL+"/account/realname")
	if res, body := postForm(t, c, n.URL, "/account/realname", url.Values{"csrf_token": {csrfFrom(t, page)}, "name": {name}, "id_number": {idNumber}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("verify: %d\n%.800s", res.StatusCode, body)
	}
	var id string
	if err := n.DB.QueryRow(context.Background(), `SELECT id FROM accounts WHERE name = ?`, name).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

var (
	issuedRE    = regexp.MustCompile(`id="issued-cert">([^<]*)</pre>`)
	challengeRE = regexp.MustCompile(`id="challenge">([^<]*)</code>`)
)

func match(t *testing.T, re *regexp.Regexp, page string) string {
	t.Helper()
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %s in page:\n%.2000s", re, page)
	}
	return html.UnescapeString(m[1])
}

// issueCert asks the portal for a certificate for key; c is signed in.
func issueCert(t *testing.T, n *node, c *http.Client, key *sm2.PrivateKey) string {
	t.Helper()
	pub, err := identity.MarshalSM2PublicKeyPEM(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	_, page := get(t, c, n.URL+"/account/strong")
	res, body := postForm(t, c, n.URL, "/account/certificates", url.Values{"csrf_token": {csrfFrom(t, page)}, "public_key": {pub}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("issue certificate: %d\n%.1500s", res.StatusCode, body)
	}
	return match(t, issuedRE, body)
}

// certLogin signs the challenge of the strong login page with key, as a certificate tool does,
// and posts the certificate form.
func certLogin(t *testing.T, n *node, c *http.Client, query, cert string, key *sm2.PrivateKey) (*http.Response, string) {
	t.Helper()
	_, page := get(t, c, n.URL+"/login/strong"+query)
	ch := match(t, challengeRE, page)
	sig, err := identity.SignCertificateChallenge(key, ch)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := url.ParseQuery(strings.TrimPrefix(query, "?"))
	return postForm(t, c, n.URL, "/login/certificate", url.Values{"csrf_token": {csrfFrom(t, page)}, "challenge": {ch},
		"certificate": {cert}, "signature": {base64.StdEncoding.EncodeToString(sig)}, "authRequestID": {q.Get("authRequestID")},
		"next": {q.Get("next")}})
}

func logout(t *testing.T, n *node, c *http.Client) {
	t.Helper()
	_, page := get(t, c, n.URL+"/account")
	postForm(t, c, n.URL, "/logout", url.Values{"csrf_token": {csrfFrom(t, page)}})
	if res, _ := get(t, c, n.URL+"/account"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("still signed in after logout: %d", res.StatusCode)
	}
}

// newestSession is the account's most recent live session.
func newestSession(t *testing.T, n *node, accountID string) identity.Session {
	t.Helper()
	list, err := n.Identity.ListSessions(context.Background(), accountID)
	if err != nil || len(list) == 0 {
		t.Fatalf("sessions: %v %v", list, err)
	}
	return list[0]
}

// otherCACert is a certificate for key with our subject, issued by an unrelated SM2 CA.
func otherCACert(t *testing.T, key *sm2.PrivateKey, accountID, name string) string {
	t.Helper()
	caKey, _ := sm2.GenerateKey(rand.Reader)
	now := time.Now()
	caTmpl := &smx509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "山西省数字政府 统一身份认证 CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: smx509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	caDER, err := smx509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := smx509.ParseCertificate(caDER)
	tmpl := &smx509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name, SerialNumber: accountID},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: smx509.KeyUsageDigitalSignature,
		ExtKeyUsage: []smx509.ExtKeyUsage{smx509.ExtKeyUsageClientAuth}}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// ---- SM2 certificates over HTTP ----

// A citizen's certificate tool, played by gmsm: an L2 citizen gets an SM2 certificate from the
// portal, steps the session up to L3 with it, signs in with it alone, is refused once it is
// revoked, is refused with a certificate of another CA or a wrong signature, and an application
// that requires L3 gets the citizen back at L3 through the step-up page — on both databases.
func TestCertificateLogin(t *testing.T) {
	eachDB(t, func(t *testing.T, n *node) {
		c := client(t)
		accountID := citizenL2(t, n, c, "13812340011", "王晋中")
		key, _ := sm2.GenerateKey(rand.Reader)
		cert := issueCert(t, n, c, key)
		if !strings.Contains(cert, "BEGIN CERTIFICATE") {
			t.Fatalf("issued: %q", cert)
		}
		// The CA certificate is public.
		if res, body := get(t, c, n.URL+"/pki/ca.pem"); res.StatusCode != http.StatusOK || !strings.Contains(body, "BEGIN CERTIFICATE") {
			t.Fatalf("CA: %d %q", res.StatusCode, body)
		}

		// Step-up: the password session becomes L3, same session.
		before := newestSession(t, n, accountID)
		res, body := certLogin(t, n, c, "?next=/account", cert, key)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
			t.Fatalf("step-up: %d %s\n%.1500s", res.StatusCode, res.Header.Get("Location"), body)
		}
		after := newestSession(t, n, accountID)
		if after.ID != before.ID || after.Level != 3 || !slices.Contains(after.AMR, identity.AMRSM2) {
			t.Fatalf("session after step-up: %+v (was %+v)", after, before)
		}
		if _, page := get(t, c, n.URL+"/account"); !strings.Contains(page, "L3") {
			t.Fatalf("account page after step-up:\n%.1500s", page)
		}

		// Certificate-first: signed out, the certificate alone opens an L3 session.
		logout(t, n, c)
		res, body = certLogin(t, n, c, "", cert, key)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
			t.Fatalf("certificate login: %d %s\n%.1500s", res.StatusCode, res.Header.Get("Location"), body)
		}
		if s := newestSession(t, n, accountID); s.Level != 3 || !slices.Equal(s.AMR, []string{identity.AMRSM2}) {
			t.Fatalf("certificate session: %+v", s)
		}

		// Revoked on the account page: refused.
		key2, _ := sm2.GenerateKey(rand.Reader)
		cert2 := issueCert(t, n, c, key2)
		b, _ := pem.Decode([]byte(cert2))
		x, _ := smx509.ParseCertificate(b.Bytes)
		_, page := get(t, c, n.URL+"/account/strong")
		if res, _ := postForm(t, c, n.URL, "/account/certificates/revoke", url.Values{"csrf_token": {csrfFrom(t, page)},
			"serial": {x.SerialNumber.Text(16)}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("revoke: %d", res.StatusCode)
		}
		if _, page := get(t, c, n.URL+"/account/strong"); !strings.Contains(page, "已吊销") {
			t.Fatalf("revoked certificate not shown:\n%.2000s", page)
		}
		logout(t, n, c)
		res, body = certLogin(t, n, c, "", cert2, key2)
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "证书已吊销") {
			t.Fatalf("revoked certificate: %d\n%.1500s", res.StatusCode, body)
		}
		// Another CA's certificate, even with our subject and a good signature: refused.
		res, body = certLogin(t, n, c, "", otherCACert(t, key, accountID, "王晋中"), key)
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "不是本平台签发") {
			t.Fatalf("foreign certificate: %d\n%.1500s", res.StatusCode, body)
		}
		// Our certificate, the wrong key's signature: refused.
		res, body = certLogin(t, n, c, "", cert, key2)
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "签名验证失败") {
			t.Fatalf("wrong signature: %d\n%.1500s", res.StatusCode, body)
		}
		if res, _ := get(t, c, n.URL+"/account"); res.StatusCode != http.StatusSeeOther {
			t.Fatal("a refused login left a session")
		}

		// An application requiring L3: the step-up page signs in and returns to it at L3.
		rp := newRelyingParty(t, n, "晋中市公积金网上服务")
		if _, err := n.DB.Exec(context.Background(), `UPDATE idp_clients SET min_level = 3 WHERE id = ?`, rp.cfg.ClientID); err != nil {
			t.Fatal(err)
		}
		follow := &http.Client{Jar: c.Jar, Timeout: 20 * time.Second}
		res, _ = get(t, follow, rp.srv.URL+"/")
		authRequestID := res.Request.URL.Query().Get("authRequestID")
		if authRequestID == "" {
			t.Fatalf("the app did not reach the login page: %s", res.Request.URL)
		}
		res, body = certLogin(t, n, c, "?authRequestID="+url.QueryEscape(authRequestID), cert, key)
		if res.StatusCode != http.StatusFound || !strings.Contains(res.Header.Get("Location"), "callback") {
			t.Fatalf("step-up for the app: %d %s\n%.1500s", res.StatusCode, res.Header.Get("Location"), body)
		}
		to, _ := res.Location()
		_, body = get(t, follow, to.String())
		if !strings.Contains(body, "欢迎，王晋中") || !strings.Contains(body, `<p id="level">L3</p>`) {
			t.Fatalf("the app shows:\n%.800s", body)
		}

		// Every step is in the audit log.
		var actions []string
		rows, err := n.DB.Query(context.Background(), `SELECT action FROM audit_log ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a string
			rows.Scan(&a)
			actions = append(actions, a)
		}
		rows.Close()
		for _, want := range []string{identity.ActionCACreated, identity.ActionCertIssued, identity.ActionCertRevoked,
			identity.ActionLevelRaised, identity.ActionLogin, identity.ActionLoginFailed} {
			if !slices.Contains(actions, want) {
				t.Errorf("audit lacks %s", want)
			}
		}
	})
}

// ---- passkeys in a real browser ----

// startLocalhostNode is startNode with the public URL on "localhost": WebAuthn refuses IP
// addresses as relying party ids.
func startLocalhostNode(t *testing.T, dialect string) *node {
	t.Helper()
	return startNode(t, dialect, withConfig(func(cfg *config.Config) {
		_, port, _ := net.SplitHostPort(cfg.HTTPAddr)
		cfg.BaseURL = "http://localhost:" + port
	}))
}

// virtualAuthenticator gives the browser tab a platform authenticator with a fingerprint that
// always matches: what a phone's biometric does for a real person.
func virtualAuthenticator() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{
			Options: &cdpwebauthn.VirtualAuthenticatorOptions{
				Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Ctap2version: cdpwebauthn.Ctap2versionCtap21,
				Transport: cdpwebauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
				IsUserVerified: true, AutomaticPresenceSimulation: true,
			}})
		return err
	})
}

// An L2 citizen adds a passkey on the account's passkey page (the device's fingerprint, here
// Chromium's virtual authenticator), signs out, signs in with the passkey alone — no account
// name typed — and the account page shows L3 with a level-3 session. A cloned authenticator
// (its signature counter going back) is then refused. On both databases.
func TestBrowserPasskey(t *testing.T) {
	chromePath(t)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			if dialect == "postgres" && testing.Short() {
				t.Skip("PostgreSQL tests are skipped with -short")
			}
			n := startLocalhostNode(t, dialect)
			_, port, _ := net.SplitHostPort(strings.TrimPrefix(n.URL, "http://"))
			base := "http://localhost:" + port
			idNumber := addResident(t, n, "赵太原")
			ctx := browser(t, 1280, 900)
			hc := client(t)
			const mobile = "13812340021"

			if err := chromedp.Do(ctx,
				chromedp.Navigate(base+"/register"),
				virtualAuthenticator(),
				chromedp.WaitVisible(chromedp.ID("mobile")),
				chromedp.SendKeys(chromedp.ID("mobile"), mobile),
				chromedp.Click(chromedp.ID("send-code")),
				chromedp.WaitVisible(chromedp.ID("code")),
			); err != nil {
				t.Fatalf("request a code: %v", err)
			}
			if err := chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.ID("code"), lastCode(t, n, hc, mobile)),
				chromedp.SendKeys(chromedp.ID("password"), "Fenhe#River2026"),
				chromedp.Click(chromedp.ID("register")),
				chromedp.WaitVisible(chromedp.ID("id_number")),
				chromedp.SendKeys(chromedp.ID("name"), "赵太原"),
				chromedp.SendKeys(chromedp.ID("id_number"), idNumber),
				chromedp.Click(chromedp.ID("verify")),
				chromedp.WaitVisible(chromedp.ID("level")),
			); err != nil {
				t.Fatalf("register and verify: %v", err)
			}
			if level := read(t, ctx, chromedp.Text(chromedp.ID("level"))); !strings.Contains(level, "L2") {
				t.Fatalf("before the passkey the account shows %q", level)
			}

			// Add a passkey.
			if err := chromedp.Do(ctx,
				chromedp.Navigate(base+"/account/strong"),
				chromedp.WaitVisible(chromedp.ID("passkey-register")),
				chromedp.SendKeys(chromedp.ID("passkey-name"), "我的手机"),
				chromedp.Click(chromedp.ID("passkey-register")),
				chromedp.WaitVisible(chromedp.CSS("#passkeys tbody tr")),
			); err != nil {
				t.Fatalf("add a passkey: %v (page error: %q)", err, passkeyError(ctx))
			}
			if row := read(t, ctx, chromedp.Text(chromedp.CSS("#passkeys tbody tr"))); !strings.Contains(row, "我的手机") {
				t.Fatalf("passkey row: %q", row)
			}
			saveScreenshot(t, "portal-passkeys-"+dialect+".png", read(t, ctx, chromedp.FullScreenshot(100)))
			var accountID string
			if err := n.DB.QueryRow(context.Background(), `SELECT id FROM accounts WHERE name = ?`, "赵太原").Scan(&accountID); err != nil {
				t.Fatal(err)
			}
			if s := newestSession(t, n, accountID); s.Level != 2 {
				t.Fatalf("adding a passkey must not raise the session: %+v", s)
			}

			// Sign out, then in with the passkey alone.
			if err := chromedp.Do(ctx,
				chromedp.Navigate(base+"/account"),
				chromedp.WaitVisible(chromedp.ID("logout")),
				chromedp.Click(chromedp.ID("logout")),
				chromedp.WaitNotPresent(chromedp.ID("logout")),
				chromedp.Navigate(base+"/login/strong"),
				chromedp.WaitVisible(chromedp.ID("passkey-login")),
				chromedp.Click(chromedp.ID("passkey-login")),
				chromedp.WaitVisible(chromedp.ID("level")),
			); err != nil {
				t.Fatalf("sign in with the passkey: %v (page error: %q)", err, passkeyError(ctx))
			}
			if level := read(t, ctx, chromedp.Text(chromedp.ID("level"))); !strings.Contains(level, "L3") {
				t.Fatalf("after the passkey login the account shows %q", level)
			}
			if s := newestSession(t, n, accountID); s.Level != 3 || !slices.Equal(s.AMR, []string{identity.AMRHardware}) {
				t.Fatalf("passkey session: %+v", s)
			}
			saveScreenshot(t, "portal-account-l3-"+dialect+".png", read(t, ctx, chromedp.FullScreenshot(100)))

			// A clone: the server has seen a higher counter than the device now shows.
			if _, err := n.DB.Exec(context.Background(), `UPDATE account_passkeys SET sign_count = 1000`); err != nil {
				t.Fatal(err)
			}
			if err := chromedp.Do(ctx,
				chromedp.Click(chromedp.ID("logout")),
				chromedp.WaitNotPresent(chromedp.ID("logout")),
				chromedp.Navigate(base+"/login/strong"),
				chromedp.WaitVisible(chromedp.ID("passkey-login")),
				chromedp.Click(chromedp.ID("passkey-login")),
				chromedp.WaitVisible(chromedp.ID("passkey-error")),
			); err != nil {
				t.Fatalf("cloned passkey: %v", err)
			}
			if msg := passkeyError(ctx); !strings.Contains(msg, "疑似被复制") {
				t.Fatalf("cloned passkey message: %q", msg)
			}
			var cloned bool
			if err := n.DB.QueryRow(context.Background(), `SELECT clone_warning FROM account_passkeys`).Scan(&cloned); err != nil || !cloned {
				t.Fatalf("clone not recorded: %v %v", cloned, err)
			}
		})
	}
}

// passkeyError is the text of the page's passkey error box, "" when there is none.
func passkeyError(ctx context.Context) string {
	v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("passkey-error")||{}).textContent||""`))
	return v
}
