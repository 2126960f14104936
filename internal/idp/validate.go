package idp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
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
	r, err := p.activeBearer(ctx, bearer)
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

// activeBearer decrypts an opaque access token and returns its row if it is live and its
// client enabled.
func (p *Provider) activeBearer(ctx context.Context, bearer string) (*accessRow, error) {
	bearer = strings.TrimSpace(bearer)
	if bearer == "" || len(bearer) > 4096 {
		return nil, ErrTokenInvalid
	}
	// The op package's bearer token is Encrypt(tokenID ":" subject) under Config.CryptoKey.
	plain, err := p.op.Crypto().Decrypt(bearer)
	if err != nil {
		return nil, ErrTokenInvalid
	}
	parts := strings.Split(plain, ":")
	if len(parts) != 2 || parts[0] == "" {
		return nil, ErrTokenInvalid
	}
	return p.activeAccess(ctx, parts[0], parts[1])
}

// ErrNotPersonToken answers ValidatePersonToken for a live token that speaks for no citizen:
// a system client's own token (client credentials) or a staff member's.
var ErrNotPersonToken = errors.New("idp: access token is not a citizen's or an enterprise user's")

// PersonToken is a live access token of a citizen, acting for themselves or for an enterprise.
type PersonToken struct {
	Subject   string // the account id
	Kind      string // "citizen", or "enterprise" when acting for ActingFor
	ActingFor string // the enterprise id, "" when acting for themselves
	ClientID  string // the app the token was issued to
	Scopes    []string
	// Level is the assurance level of the sign-in the token came from, capped at the level
	// the account has now (as the userinfo claim dgov_level).
	Level   int
	Expires time.Time
}

// ValidatePersonToken checks, in process, an opaque access token a person's app presents to
// one of the node's own APIs: it is live (neither expired nor revoked), its client exists and
// is enabled, and it speaks for a citizen — not a system client (ErrNotPersonToken), not a
// staff member signed in at the console (ErrNotPersonToken). The subject is asked of Users
// afresh, so an account disabled or a membership ended since issue makes the token invalid
// (ErrTokenInvalid, wrapping Users' answer). Which scopes to require is the caller's choice.
func (p *Provider) ValidatePersonToken(ctx context.Context, bearer string) (PersonToken, error) {
	r, err := p.activeBearer(ctx, bearer)
	if err != nil {
		return PersonToken{}, ErrTokenInvalid
	}
	c, err := p.client(ctx, p.cfg.DB, r.g.clientID)
	if err != nil {
		return PersonToken{}, ErrTokenInvalid
	}
	// A system client has no users; a staff application's tokens are a civil servant's.
	if r.isService || c.Type == ClientService || c.Audience == AudienceStaff {
		return PersonToken{}, ErrNotPersonToken
	}
	uc, err := p.cfg.Users.Claims(ctx, r.g.subject, r.g.actingFor)
	if err != nil {
		return PersonToken{}, fmt.Errorf("%w: subject: %w", ErrTokenInvalid, err)
	}
	if uc.Kind != "citizen" && uc.Kind != "enterprise" { // staff
		return PersonToken{}, ErrNotPersonToken
	}
	kind := "citizen"
	if r.g.actingFor != "" {
		kind = "enterprise"
	}
	return PersonToken{Subject: r.g.subject, Kind: kind, ActingFor: r.g.actingFor, ClientID: r.g.clientID,
		Scopes: slices.Clone(r.g.scopes), Level: min(r.g.level, uc.Level), Expires: r.expires}, nil
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
