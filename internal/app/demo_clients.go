package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dgov/dgov/internal/demo"
	"github.com/dgov/dgov/internal/idp"
	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
)

// Demo applications an integrator can try single sign-on and client credentials with.
const (
	DemoRPID       = "demo-rp"
	DemoSystemID   = "demo-system"
	DemoRPCallback = "http://127.0.0.1:9999/callback"
)

// demoClientsFile holds the demo clients' secrets (0600) in the data dir.
func (a *App) demoClientsFile() string { return filepath.Join(a.Cfg.DataDir, "demo-clients.json") }

// registerDemoClients registers demo-rp (a web application at 127.0.0.1:9999) and demo-system
// (a system client for client credentials) unless they exist, and writes their secrets to
// demoClientsFile. It returns the file's path.
func (a *App) registerDemoClients(ctx context.Context) (string, error) {
	admin, err := a.demoAdmin(ctx)
	if err != nil {
		return "", err
	}
	path := a.demoClientsFile()
	secrets := map[string]any{"issuer": a.IdP.Issuer(), "discovery": a.IdP.Issuer() + "/.well-known/openid-configuration"}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &secrets)
	}
	for _, in := range []idp.ClientInput{
		{ID: DemoRPID, Name: "示例第三方应用 (demo-rp)", Type: idp.ClientWeb, RedirectURIs: []string{DemoRPCallback},
			PostLogoutRedirectURIs: []string{"http://127.0.0.1:9999/"}, BackchannelLogoutURI: "http://127.0.0.1:9999/backchannel-logout"},
		{ID: DemoSystemID, Name: "示例系统客户端 (demo-system)", Type: idp.ClientService, AllowedScopes: []string{"dgov.exchange"}},
	} {
		_, secret, err := a.IdP.RegisterClient(ctx, admin, in)
		if errors.Is(err, idp.ErrClientIDTaken) {
			continue // registered by an earlier run; its secret is in the file
		}
		if err != nil {
			return "", fmt.Errorf("register %s: %w", in.ID, err)
		}
		entry := map[string]any{"client_id": in.ID, "client_secret": secret, "type": in.Type}
		if len(in.RedirectURIs) > 0 {
			entry["redirect_uri"] = in.RedirectURIs[0]
		}
		secrets[in.ID] = entry
	}
	b, _ := json.MarshalIndent(secrets, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// demoAdmin is the demo's system administrator, who registers the demo clients.
func (a *App) demoAdmin(ctx context.Context) (authz.Subject, error) {
	sys := authz.Subject{Kind: authz.System, ID: "demo", Division: a.Cfg.NodeDivision, Roles: []authz.Role{authz.RoleOfficer}}
	list, err := a.Org.ListStaff(ctx, sys, org.StaffFilter{Query: demo.AdminUsername, Limit: 10})
	if err != nil {
		return authz.Subject{}, err
	}
	for _, st := range list {
		if st.Username == demo.AdminUsername {
			return a.Org.Subject(ctx, st.ID)
		}
	}
	return authz.Subject{}, errors.New("the demo administrator is missing")
}
