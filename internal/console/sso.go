package console

import (
	"context"
	"net/http"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Single sign-on for civil servants: an application registered for staff sends its users to
// the OpenID provider, which sends them here; a staff member signed in to the console is
// answered at once, without another prompt, and logging out of the console logs them out of
// those applications too (back-channel logout).

// StaffSSO is the OpenID provider as the console uses it.
type StaffSSO interface {
	// CompleteStaff answers authorization authRequestID for the staff member, in the console
	// session identified by sessionKey; it returns where to send the browser.
	CompleteStaff(ctx context.Context, authRequestID string, sub authz.Subject, sessionKey string, authTime time.Time) (string, error)
	// LogoutStaff ends the applications' sessions that came from the console session.
	LogoutStaff(ctx context.Context, sessionKey string) error
}

// sessionKey names a console session to the provider without revealing its token.
func sessionKey(token string) string { return tokenHash(token) }

func (c *Console) sso(w http.ResponseWriter, r *http.Request, sub authz.Subject) {
	if c.SSO == nil {
		httpx.WriteError(w, r, i18n.ErrNotFound)
		return
	}
	ck, err := r.Cookie(CookieName)
	if err != nil {
		httpx.WriteError(w, r, i18n.ErrUnauthorized)
		return
	}
	ses, err := c.Sessions.Get(r.Context(), ck.Value)
	if err != nil {
		httpx.WriteError(w, r, i18n.ErrUnauthorized)
		return
	}
	to, err := c.SSO.CompleteStaff(r.Context(), r.URL.Query().Get("authRequestID"), sub, sessionKey(ck.Value), ses.CreatedAt)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}
