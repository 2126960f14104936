package idp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/dgov/dgov/internal/platform/db"
)

// backchannelEvent is the event of a logout token (OIDC Back-Channel Logout 1.0 §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// Back-channel delivery: a few tries with a short pause; a relying party that is down
// misses the logout (its tokens are revoked all the same) and the failure is logged.
var backchannelBackoff = []time.Duration{0, 200 * time.Millisecond, time.Second}

type logoutTarget struct {
	clientID, uri string
}

// LogoutSession ends SSO session sessionID at every relying party: it revokes every access
// and refresh token issued in the session, forgets pending logins of it, and posts a signed
// logout token to the back-channel logout URI of each client that got tokens in it. It
// returns once delivery was tried (bounded retries); delivery failures are logged and
// audited, not returned — the session is over either way.
func (p *Provider) LogoutSession(ctx context.Context, sessionID string) error {
	sid := sidOf(sessionID)
	now := p.now()
	var subject string
	var targets []logoutTarget
	err := p.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT subject FROM idp_sessions WHERE sid = ?`, sid).Scan(&subject); err != nil {
			subject = "" // no tokens were ever issued in it; still clear pending logins below
		}
		rows, err := tx.Query(ctx, `SELECT c.id, c.backchannel_logout_uri FROM idp_session_clients sc
			JOIN idp_clients c ON c.id = sc.client_id WHERE sc.sid = ? ORDER BY c.id`, sid)
		if err != nil {
			return err
		}
		for rows.Next() {
			var t logoutTarget
			if err := rows.Scan(&t.clientID, &t.uri); err != nil {
				rows.Close()
				return err
			}
			if t.uri != "" {
				targets = append(targets, t)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := p.revokeTx(ctx, tx, "sid", sid, now); err != nil {
			return err
		}
		// A code not yet exchanged must not yield tokens in a closed session.
		if _, err := tx.Exec(ctx, `DELETE FROM idp_auth_requests WHERE sid = ?`, sid); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM idp_sessions WHERE sid = ?`, sid)
		return err
	})
	if err != nil {
		return fmt.Errorf("logout session: %w", err)
	}
	if subject == "" {
		return nil
	}
	failed := p.deliverLogout(ctx, subject, sid, targets)
	detail := map[string]any{"sid": sid, "notified": len(targets) - len(failed)}
	if len(failed) > 0 {
		detail["failed"] = failed
	}
	p.audit(ctx, subject, "oidc.logout", "oidc_session:"+sid, detail)
	return nil
}

func (p *Provider) deliverLogout(ctx context.Context, subject, sid string, targets []logoutTarget) []string {
	var mu sync.Mutex
	var failed []string
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.deliverOne(ctx, subject, sid, t); err != nil {
				p.log.WarnContext(ctx, "idp: back-channel logout failed", "client", t.clientID, "err", err)
				mu.Lock()
				failed = append(failed, t.clientID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

func (p *Provider) deliverOne(ctx context.Context, subject, sid string, t logoutTarget) error {
	var last error
	for _, pause := range backchannelBackoff {
		if pause > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pause):
			}
		}
		// A fresh token per try: each has its own jti, and RPs may reject a replayed one.
		token, err := p.LogoutToken(ctx, t.clientID, subject, sid)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.uri,
			strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := p.cfg.HTTPClient.Do(req)
		if err != nil {
			last = err
			continue
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		// §2.8: 200 (or 204) on success; 400 means the RP rejected the token — retrying the
		// same claims will not help.
		switch {
		case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent:
			return nil
		case resp.StatusCode == http.StatusBadRequest:
			return fmt.Errorf("%s answered 400", t.uri)
		default:
			last = fmt.Errorf("%s answered %d", t.uri, resp.StatusCode)
		}
	}
	return last
}

// LogoutToken signs a logout token for clientID (typ logout+jwt; iss, aud, iat, exp, jti,
// sub, sid, events; never a nonce).
func (p *Provider) LogoutToken(ctx context.Context, clientID, subject, sid string) (string, error) {
	k, _, err := p.keys.get(ctx)
	if err != nil {
		return "", err
	}
	now := p.cfg.Now()
	claims := &oidc.LogoutTokenClaims{
		Issuer:     p.cfg.Issuer,
		Subject:    subject,
		Audience:   oidc.Audience{clientID},
		IssuedAt:   oidc.FromTime(now),
		Expiration: oidc.FromTime(now.Add(2 * time.Minute)),
		JWTID:      randomToken(),
		Events:     map[string]any{backchannelEvent: struct{}{}},
		SessionID:  sid,
	}
	payload, err := claims.MarshalJSON()
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: signingAlg, Key: &jose.JSONWebKey{Key: k.key, KeyID: k.id}},
		(&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
