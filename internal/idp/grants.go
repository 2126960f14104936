package idp

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Grant is an application a person has signed in to, as their account page lists it: the
// scopes it holds and when it last received tokens.
type Grant struct {
	ClientID    string
	ClientName  string
	Scopes      []string
	LastGranted time.Time
	Active      bool // it holds a live access or refresh token
}

// Grants lists the applications subject has signed in to, newest first.
func (p *Provider) Grants(ctx context.Context, subject string) ([]Grant, error) {
	now := p.now()
	rows, err := p.cfg.DB.Query(ctx, `
		SELECT t.client_id, c.name, t.scopes, t.created_at,
		       CASE WHEN t.revoked_at IS NULL AND t.expires_at > ? THEN 1 ELSE 0 END
		FROM (SELECT client_id, scopes, created_at, revoked_at, expires_at FROM idp_refresh_tokens WHERE subject = ?
		      UNION ALL
		      SELECT client_id, scopes, created_at, revoked_at, expires_at FROM idp_access_tokens WHERE subject = ?) t
		JOIN idp_clients c ON c.id = t.client_id`, now, subject, subject)
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	defer rows.Close()
	byClient := map[string]*Grant{}
	for rows.Next() {
		var g Grant
		var scopes string
		var active int
		if err := rows.Scan(&g.ClientID, &g.ClientName, &scopes, &g.LastGranted, &active); err != nil {
			return nil, fmt.Errorf("list grants: %w", err)
		}
		cur, ok := byClient[g.ClientID]
		if !ok {
			g.Scopes = parseList(scopes)
			cur = &g
			byClient[g.ClientID] = cur
		} else if g.LastGranted.After(cur.LastGranted) {
			cur.LastGranted, cur.Scopes = g.LastGranted, parseList(scopes)
		}
		cur.Active = cur.Active || active == 1
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Grant, 0, len(byClient))
	for _, g := range byClient {
		if g.Active {
			out = append(out, *g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastGranted.After(out[j].LastGranted) })
	return out, nil
}

// RevokeGrant withdraws an application's access to subject: every access and refresh token it
// holds for them ends now. The next visit to the application asks it to sign in again.
func (p *Provider) RevokeGrant(ctx context.Context, subject, clientID string) error {
	now := p.now()
	var n int64
	for _, table := range []string{"idp_access_tokens", "idp_refresh_tokens"} {
		res, err := p.cfg.DB.Exec(ctx, `UPDATE `+table+` SET revoked_at = ? WHERE subject = ? AND client_id = ? AND revoked_at IS NULL`,
			now, subject, clientID)
		if err != nil {
			return fmt.Errorf("revoke grant: %w", err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	// Consent goes with the grant: the next sign-in asks again.
	if _, err := p.cfg.DB.Exec(ctx, `DELETE FROM idp_consents WHERE subject = ? AND client_id = ?`, subject, clientID); err != nil {
		return fmt.Errorf("revoke consent: %w", err)
	}
	if n == 0 {
		return i18n.ErrNotFound
	}
	return p.cfg.Audit(ctx, "citizen:"+subject, "oidc.grant.revoke", "oidc_client:"+clientID, map[string]any{"tokens": n})
}
