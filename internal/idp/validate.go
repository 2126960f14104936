package idp

import (
	"context"
	"database/sql"
	"errors"
	"strings"
)

// ErrTokenInvalid answers ValidateAccessToken for an unknown, malformed, expired or revoked
// token, or a token of a disabled client. One error for all: a caller learns nothing more.
var ErrTokenInvalid = errors.New("idp: access token invalid, expired or revoked")

// ValidateAccessToken checks an opaque access token issued by this provider, in process (for
// resource servers of the node itself, such as the exchange gateway), the way introspection
// does: the token decrypts to its id and subject, its row is neither revoked nor expired, and
// its client exists and is not disabled. It returns the client the token was issued to and
// the token's scopes.
func (p *Provider) ValidateAccessToken(ctx context.Context, bearer string) (clientID string, scopes []string, err error) {
	bearer = strings.TrimSpace(bearer)
	if bearer == "" || len(bearer) > 4096 {
		return "", nil, ErrTokenInvalid
	}
	// The op package's bearer token is Encrypt(tokenID ":" subject) under Config.CryptoKey.
	plain, err := p.op.Crypto().Decrypt(bearer)
	if err != nil {
		return "", nil, ErrTokenInvalid
	}
	parts := strings.Split(plain, ":")
	if len(parts) != 2 || parts[0] == "" {
		return "", nil, ErrTokenInvalid
	}
	r, err := p.activeAccess(ctx, parts[0], parts[1])
	if err != nil {
		return "", nil, ErrTokenInvalid
	}
	// Only a system client's own client-credentials token: a person's token from an app must
	// never act as the app's department (it is the person's, and a public client has no secret).
	if c, err := p.client(ctx, p.cfg.DB, r.g.clientID); err != nil || c.Type != ClientService || r.g.subject != r.g.clientID {
		return "", nil, ErrTokenInvalid
	}
	return r.g.clientID, r.g.scopes, nil
}

// activeAccess is the token tokenID of subject if it is live and its client is enabled: what
// introspection and ValidateAccessToken both require.
func (p *Provider) activeAccess(ctx context.Context, tokenID, subject string) (*accessRow, error) {
	r, err := p.liveAccess(ctx, tokenID, subject)
	if err != nil {
		return nil, err
	}
	if c, err := p.client(ctx, p.cfg.DB, r.g.clientID); err != nil || c.Disabled {
		return nil, errors.New("token of a disabled client")
	}
	return r, nil
}

// ErrClientUnknown answers ClientDepartment for a client that is not registered or is disabled.
var ErrClientUnknown = errors.New("idp: unknown or disabled client")

// ClientDepartment names the department a registered, enabled client belongs to, for the
// node's own services (the exchange binds a grant only to a system of the consumer
// department). It authorizes nothing and returns nothing secret.
func (p *Provider) ClientDepartment(ctx context.Context, clientID string) (string, error) {
	c, err := p.client(ctx, p.cfg.DB, clientID)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && c.Disabled) {
		return "", ErrClientUnknown
	}
	if err != nil {
		return "", err
	}
	return c.DepartmentID, nil
}
