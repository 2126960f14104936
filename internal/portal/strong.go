package portal

// Level-3 (强实名) sign-in on the portal: passkeys (WebAuthn — the device's fingerprint or
// face) and SM2 certificates.
//
//   /account/strong                     the signed-in person's passkeys and certificates
//   /account/passkeys/register/{begin,finish}   JSON, driven by /static/js/passkey.js
//   /account/passkeys/delete            form
//   /account/certificates               form: an SM2 public key or CSR (PEM) → a certificate
//   /account/certificates/revoke        form
//   /login/strong                       step-up page: passkey or certificate; authRequestID, next
//   /login/passkey/{begin,finish}       JSON, driven by /static/js/passkey.js
//   /login/certificate                  form: certificate PEM + base64 signature of the challenge
//   /pki/ca.pem                         the node's CA certificate
//
// Certificates: browsers do not do SM2, so the key lives in a certificate tool or a USB key.
// The login page shows a one-time challenge; the tool signs its exact text (SM2 with SM3, the
// default user id), and the person pastes the certificate and the signature (base64 DER).
//
// Ceremonies are bound to this browser by the dgov_ceremony cookie (HttpOnly, random), and a
// passkey registration also to the SSO session that began it.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// CeremonyCookie binds login and registration ceremonies to one browser.
const CeremonyCookie = "dgov_ceremony"

// Strong serves the level-3 sign-in pages on top of the account pages.
type Strong struct {
	*Accounts
	// Passkeys is nil when the node's public URL is an IP address: WebAuthn needs a host name.
	Passkeys *identity.Passkeys
}

// NewStrong sets up level-3 sign-in for the node reached at publicURL. Passkeys are off
// (and the pages say why) when publicURL's host is an IP address.
func NewStrong(a *Accounts, publicURL string) (*Strong, error) {
	s := &Strong{Accounts: a}
	pk, err := identity.NewPasskeys(a.Identity, publicURL, "山西省数字政府")
	switch {
	case err == nil:
		s.Passkeys = pk
	case !errors.Is(err, identity.ErrPasskeyHost):
		return nil, err
	}
	return s, nil
}

// StrongLoginURL is the step-up page for an OpenID authorization (or, with authRequestID "",
// a plain level-3 sign-in going on to next).
func StrongLoginURL(authRequestID, next string) string {
	q := url.Values{}
	if authRequestID != "" {
		q.Set("authRequestID", authRequestID)
	}
	if next != "" {
		q.Set("next", next)
	}
	if len(q) == 0 {
		return "/login/strong"
	}
	return "/login/strong?" + q.Encode()
}

// Routes registers the level-3 pages and endpoints.
func (s *Strong) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /account/strong", s.signedIn(s.accountPage))
	mux.HandleFunc("POST /account/passkeys/register/begin", s.jsonSignedIn(s.registerBegin))
	mux.HandleFunc("POST /account/passkeys/register/finish", s.jsonSignedIn(s.registerFinish))
	mux.HandleFunc("POST /account/passkeys/delete", s.signedIn(s.deletePasskey))
	mux.HandleFunc("POST /account/certificates", s.signedIn(s.issueCertificate))
	mux.HandleFunc("POST /account/certificates/revoke", s.signedIn(s.revokeCertificate))
	mux.HandleFunc("GET /login/strong", s.loginPage)
	mux.HandleFunc("POST /login/passkey/begin", s.loginBegin)
	mux.HandleFunc("POST /login/passkey/finish", s.loginFinish)
	mux.HandleFunc("POST /login/certificate", s.certificateLogin)
	mux.HandleFunc("GET /pki/ca.pem", s.caCertificate)
}

// binding is this browser's ceremony cookie, set when missing.
func (s *Strong) binding(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(CeremonyCookie); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: CeremonyCookie, Value: v, Path: "/", HttpOnly: true, Secure: s.Secure(r),
		SameSite: http.SameSiteLaxMode})
	// A later request in this response's page sees it too.
	r.AddCookie(&http.Cookie{Name: CeremonyCookie, Value: v})
	return v
}

// jsonSignedIn is signedIn for the JSON endpoints: no session is a 401 problem, not a redirect.
func (s *Strong) jsonSignedIn(h signedInHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ses, token, ok := s.session(r)
		if !ok {
			httpx.WriteError(w, r, identity.ErrSessionInvalid)
			return
		}
		h(w, r, ses, token)
	}
}

func (s *Strong) passkeys() (*identity.Passkeys, error) {
	if s.Passkeys == nil {
		return nil, identity.ErrPasskeyHost
	}
	return s.Passkeys, nil
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	w.Header().Set("Cache-Control", "no-store")
	if err := httpx.WriteJSON(w, http.StatusOK, v); err != nil {
		httpx.Logger(r.Context()).Error("write json", "err", err)
	}
}

// strongSession gives the browser a level-3 session for accountID proven by amr: its own
// session raised when it is this account's, else a new one (ending another account's).
func (s *Strong) strongSession(w http.ResponseWriter, r *http.Request, accountID, amr string) (identity.Session, error) {
	ctx := r.Context()
	if cur, token, ok := s.session(r); ok {
		if cur.AccountID == accountID {
			return s.Identity.RaiseSessionLevel(ctx, token, identity.LevelStrong, amr)
		}
		if s.Provider != nil {
			if err := s.Provider.Logout(ctx, cur.ID); err != nil {
				httpx.Logger(ctx).Error("back-channel logout", "err", err)
			}
		}
		if err := s.Identity.Logout(ctx, token); err != nil {
			return identity.Session{}, err
		}
	}
	return s.startSession(w, r, accountID, identity.LevelStrong, []string{amr})
}

// nextURL is where a browser goes after a level-3 sign-in: back to the application that
// asked, or to next.
func (s *Strong) nextURL(ctx context.Context, d loginData, ses identity.Session) (string, error) {
	if d.AuthRequestID != "" && s.Provider != nil {
		// Back through the login page, which now finds a strong session and answers the app
		// the one way every login does — consent for a third-party app included.
		return "/login?authRequestID=" + url.QueryEscape(d.AuthRequestID) + "&method=password", nil
	}
	return d.Next, nil
}

// ---- the account's passkeys and certificates ----

type strongAccountData struct {
	Level        int
	SessionLevel int
	PasskeysOn   bool
	RPID         string
	Passkeys     []identity.Passkey
	Certificates []identity.Certificate
	Issued       *identity.Certificate
	PublicKey    string
}

var strongTitle = i18n.T("通行密钥与数字证书", "Passkeys and certificates")

func (s *Strong) accountData(ctx context.Context, ses identity.Session) (strongAccountData, error) {
	acc, err := s.Identity.GetAccount(ctx, ses.AccountID)
	if err != nil {
		return strongAccountData{}, err
	}
	d := strongAccountData{Level: acc.Level, SessionLevel: ses.Level, PasskeysOn: s.Passkeys != nil}
	if s.Passkeys != nil {
		d.RPID = s.Passkeys.RPID()
		if d.Passkeys, err = s.Passkeys.ListPasskeys(ctx, ses.AccountID); err != nil {
			return d, err
		}
	}
	if d.Certificates, err = s.Identity.ListCertificates(ctx, ses.AccountID); err != nil {
		return d, err
	}
	return d, nil
}

func (s *Strong) accountPage(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	d, err := s.accountData(r.Context(), ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	s.binding(w, r)
	p := s.page(r, strongTitle, d)
	switch r.URL.Query().Get("ok") {
	case "passkey":
		t := i18n.T("通行密钥已添加", "Passkey added")
		p.Flash = &t
	case "1":
		t := i18n.T("已保存", "Saved")
		p.Flash = &t
	}
	s.render(w, r, http.StatusOK, "portal/strong", p)
}

type registerFinishInput struct {
	Ceremony   string          `json:"ceremony"`
	Name       string          `json:"name"`
	Credential json.RawMessage `json:"credential"`
}

func (s *Strong) registerBegin(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	pk, err := s.passkeys()
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if ses.Level < identity.LevelRealName {
		httpx.WriteError(w, r, identity.ErrLevelTooLow)
		return
	}
	if err := s.freshSignIn(ses); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	c, err := pk.BeginRegistration(r.Context(), ses.AccountID, s.binding(w, r)+"|"+ses.ID)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	writeJSON(w, r, c)
}

func (s *Strong) registerFinish(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	pk, err := s.passkeys()
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var in registerFinishInput
	if err := httpx.DecodeJSON(r, &in, 64<<10); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if _, err := pk.FinishRegistration(r.Context(), ses.AccountID, in.Ceremony, s.binding(w, r)+"|"+ses.ID, in.Name, in.Credential); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	writeJSON(w, r, map[string]any{"ok": true, "redirect": "/account/strong?ok=passkey"})
}

func (s *Strong) deletePasskey(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	pk, err := s.passkeys()
	if err == nil {
		err = pk.DeletePasskey(r.Context(), ses.AccountID, r.PostFormValue("id"))
	}
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account/strong?ok=1", http.StatusSeeOther)
}

func (s *Strong) issueCertificate(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	ctx := r.Context()
	key := r.PostFormValue("public_key")
	err := s.freshSignIn(ses)
	var c identity.Certificate
	if err == nil {
		c, err = s.Identity.IssueCertificate(ctx, ses.AccountID, key)
	}
	d, derr := s.accountData(ctx, ses)
	if derr != nil {
		httpx.WriteError(w, r, derr)
		return
	}
	p := s.page(r, strongTitle, d)
	if err != nil {
		d.PublicKey = key
		p.Data = d
		s.fail(w, r, err, "portal/strong", p)
		return
	}
	d.Issued = &c
	p.Data = d
	t := i18n.T("证书已签发，请将下面的证书导入您的证书工具", "Certificate issued: import it into your certificate tool")
	p.Flash = &t
	s.render(w, r, http.StatusOK, "portal/strong", p)
}

func (s *Strong) revokeCertificate(w http.ResponseWriter, r *http.Request, ses identity.Session, _ string) {
	if err := s.Identity.RevokeCertificate(r.Context(), ses.AccountID, r.PostFormValue("serial"), r.PostFormValue("reason")); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account/strong?ok=1", http.StatusSeeOther)
}

func (s *Strong) caCertificate(w http.ResponseWriter, r *http.Request) {
	pemText, err := s.Identity.CACertificatePEM(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="dgov-ca.pem"`)
	_, _ = w.Write([]byte(pemText))
}

// ---- level-3 sign-in ----

type strongLoginData struct {
	loginData
	Challenge    string
	PasskeysOn   bool
	SignedIn     bool
	SessionLevel int
	Certificate  string
}

var strongLoginTitle = i18n.T("强实名登录", "Strong sign-in")

func (s *Strong) strongLoginData(w http.ResponseWriter, r *http.Request, form url.Values) (strongLoginData, error) {
	ld, err := s.loginData(r, form)
	if err != nil {
		return strongLoginData{}, err
	}
	d := strongLoginData{loginData: ld, PasskeysOn: s.Passkeys != nil}
	if ses, _, ok := s.session(r); ok {
		d.SignedIn, d.SessionLevel = true, ses.Level
	}
	if d.Challenge, err = s.Identity.CertificateChallenge(r.Context(), s.binding(w, r)); err != nil {
		return d, err
	}
	return d, nil
}

func (s *Strong) loginPage(w http.ResponseWriter, r *http.Request) {
	// Already strong enough: on at once (single sign-on).
	if ses, _, ok := s.session(r); ok && ses.Level >= identity.LevelStrong {
		ld, err := s.loginData(r, r.URL.Query())
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		s.finish(w, r, ld, ses)
		return
	}
	d, err := s.strongLoginData(w, r, r.URL.Query())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "portal/strong_login", s.page(r, strongLoginTitle, d))
}

func (s *Strong) certificateLogin(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	ctx := r.Context()
	binding := s.binding(w, r)
	cert := r.PostFormValue("certificate")
	sig, serr := decodeSignature(r.PostFormValue("signature"))
	var acc identity.Account
	var err error
	if serr != nil {
		err = serr
	} else {
		acc, _, err = s.Identity.CertificateLogin(ctx, cert, strings.TrimSpace(r.PostFormValue("challenge")), sig, binding)
	}
	if err != nil {
		d, derr := s.strongLoginData(w, r, r.PostForm)
		if derr != nil {
			httpx.WriteError(w, r, derr)
			return
		}
		d.Certificate = cert
		s.fail(w, r, err, "portal/strong_login", s.page(r, strongLoginTitle, d))
		return
	}
	ses, err := s.strongSession(w, r, acc.ID, identity.AMRSM2)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	ld, err := s.loginData(r, r.PostForm)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	s.finish(w, r, ld, ses)
}

var errSignatureEncoding = &i18n.Error{Code: "identity.cert.signature_encoding", Status: http.StatusBadRequest, Field: "signature",
	Msg: i18n.T("签名须为 Base64 编码的 DER 格式", "the signature must be DER, base64-encoded")}

func decodeSignature(v string) ([]byte, error) {
	v = strings.Join(strings.Fields(v), "")
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil && len(b) > 0 {
			return b, nil
		}
	}
	return nil, errSignatureEncoding
}

type loginBeginInput struct {
	Mobile string `json:"mobile"`
}

type loginFinishInput struct {
	Ceremony      string          `json:"ceremony"`
	Credential    json.RawMessage `json:"credential"`
	AuthRequestID string          `json:"authRequestID"`
	Next          string          `json:"next"`
}

func (s *Strong) loginBegin(w http.ResponseWriter, r *http.Request) {
	pk, err := s.passkeys()
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var in loginBeginInput
	if err := httpx.DecodeJSON(r, &in, 4<<10); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	binding := s.binding(w, r)
	var c identity.Ceremony
	// Signed in already (step-up): the device is asked for this account's passkeys.
	if ses, _, ok := s.session(r); ok && strings.TrimSpace(in.Mobile) == "" {
		c, err = pk.BeginStepUp(r.Context(), ses.AccountID, binding)
	} else {
		c, err = pk.BeginLogin(r.Context(), in.Mobile, binding)
	}
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	writeJSON(w, r, c)
}

func (s *Strong) loginFinish(w http.ResponseWriter, r *http.Request) {
	pk, err := s.passkeys()
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var in loginFinishInput
	if err := httpx.DecodeJSON(r, &in, 64<<10); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	ctx := r.Context()
	acc, _, err := pk.FinishLogin(ctx, in.Ceremony, s.binding(w, r), in.Credential)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	ses, err := s.strongSession(w, r, acc.ID, identity.AMRHardware)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	ld, err := s.loginData(r, url.Values{"authRequestID": {in.AuthRequestID}, "next": {in.Next}})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	to, err := s.nextURL(ctx, ld, ses)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	writeJSON(w, r, map[string]any{"ok": true, "redirect": to})
}

// FreshSignIn is how recent a sign-in must be to add a level-3 method: a session left open (or
// stolen) must not be able to mint a lasting certificate or passkey for someone else.
const FreshSignIn = 10 * time.Minute

// ErrSignInAgain asks for a fresh sign-in before a sensitive change.
var ErrSignInAgain = &i18n.Error{Code: "identity.sign_in_again", Status: http.StatusForbidden,
	Msg: i18n.T("为保护账号安全，请退出后重新登录（10 分钟内）再添加通行密钥或数字证书", "for your account's safety, sign in again (within 10 minutes) before adding a passkey or certificate")}

func (s *Strong) freshSignIn(ses identity.Session) error {
	if s.Now().Sub(ses.CreatedAt) > FreshSignIn {
		return ErrSignInAgain
	}
	return nil
}
