package idp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// ConsentNeeded reports whether subject must first allow the pending request's application:
// it is third party and the person has not yet allowed every scope it asks for. It returns the
// scopes to show.
func (p *Provider) ConsentNeeded(ctx context.Context, authRequestID, subject string) (bool, []string, error) {
	a, c, err := p.pending(ctx, authRequestID)
	if err != nil {
		return false, nil, err
	}
	if !c.ThirdParty {
		return false, nil, nil
	}
	var granted string
	err = p.cfg.DB.QueryRow(ctx, `SELECT scopes FROM idp_consents WHERE subject = ? AND client_id = ?`, subject, c.ID).Scan(&granted)
	if errors.Is(err, sql.ErrNoRows) {
		return true, a.Scopes, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("read consent: %w", err)
	}
	have := parseList(granted)
	for _, s := range a.Scopes {
		if !slices.Contains(have, s) {
			return true, a.Scopes, nil
		}
	}
	return false, nil, nil
}

// GrantConsent records that subject allows the pending request's application the scopes it
// asks for (kept for later logins), and audits it.
func (p *Provider) GrantConsent(ctx context.Context, authRequestID, subject string) error {
	a, c, err := p.pending(ctx, authRequestID)
	if err != nil {
		return err
	}
	now := p.now()
	if _, err := p.cfg.DB.Exec(ctx, `INSERT INTO idp_consents (subject, client_id, scopes, granted_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (subject, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`,
		subject, c.ID, jsonList(a.Scopes), now); err != nil {
		return fmt.Errorf("record consent: %w", err)
	}
	return p.cfg.Audit(ctx, "citizen:"+subject, "oidc.consent", "oidc_client:"+c.ID, map[string]any{"scopes": a.Scopes})
}

// DenyAuthRequest answers the application that the person refused (access_denied, RFC 6749
// §4.1.2.1), sending the browser back to its registered redirect URI, and audits it.
func (p *Provider) DenyAuthRequest(w http.ResponseWriter, r *http.Request, authRequestID, subject string) {
	a, c, err := p.pending(r.Context(), authRequestID)
	if err != nil {
		httpx.WriteError(w, r, err) // bilingual problem; a database error is never shown raw
		return
	}
	p.audit(r.Context(), "citizen:"+subject, "oidc.consent_denied", "oidc_client:"+c.ID, map[string]any{"scopes": a.Scopes})
	op.AuthRequestError(w, r, a, oidc.ErrAccessDenied().WithDescription("the user refused"), p.op)
}

// pending loads an open auth request and its client.
func (p *Provider) pending(ctx context.Context, id string) (*authRequest, *Client, error) {
	a, err := p.authRequest(ctx, p.cfg.DB, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, ErrAuthRequestNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("auth request %s: %w", id, err)
	}
	if a.IsDone {
		return nil, nil, ErrAuthRequestDone
	}
	c, err := p.client(ctx, p.cfg.DB, a.ClientID)
	if err != nil {
		return nil, nil, fmt.Errorf("auth request %s: client: %w", id, err)
	}
	if c.Disabled {
		return nil, nil, ErrClientDisabled
	}
	return a, c, nil
}
