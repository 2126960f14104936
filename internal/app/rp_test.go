package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/dgov/dgov/internal/idp"
)

// relyingParty is a third-party web application that signs its users in through dgov's
// OpenID provider, written only with go-oidc and x/oauth2 as an integrator would.
type relyingParty struct {
	srv      *httptest.Server
	cfg      oauth2.Config
	verifier *oidc.IDTokenVerifier
	logout   *oidc.IDTokenVerifier

	mu       sync.Mutex
	pending  map[string][2]string // state → nonce, PKCE verifier
	sessions map[string]rpSession // cookie → session
}

type rpSession struct{ name, level, sid string }

// newRelyingParty registers an application with the node and starts it.
func newRelyingParty(t *testing.T, n *node, name string, adjust ...func(*idp.ClientInput)) *relyingParty {
	t.Helper()
	rp := &relyingParty{pending: map[string][2]string{}, sessions: map[string]rpSession{}}
	rp.srv = httptest.NewServer(http.HandlerFunc(rp.serve))
	t.Cleanup(rp.srv.Close)
	ctx := context.Background()
	admin, err := n.Org.Subject(ctx, adminID(t, n))
	if err != nil {
		t.Fatal(err)
	}
	in := idp.ClientInput{Name: name, Type: idp.ClientWeb,
		RedirectURIs: []string{rp.srv.URL + "/callback"}, PostLogoutRedirectURIs: []string{rp.srv.URL + "/"},
		BackchannelLogoutURI: rp.srv.URL + "/backchannel-logout", MinLevel: 2}
	for _, f := range adjust {
		f(&in)
	}
	client, secret, err := n.IdP.RegisterClient(ctx, admin, in)
	if err != nil {
		t.Fatalf("register client: %v", err)
	}
	provider, err := oidc.NewProvider(ctx, n.URL+"/oidc")
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	rp.cfg = oauth2.Config{ClientID: client.ID, ClientSecret: secret, Endpoint: provider.Endpoint(),
		RedirectURL: rp.srv.URL + "/callback", Scopes: []string{oidc.ScopeOpenID, "profile"}}
	rp.verifier = provider.Verifier(&oidc.Config{ClientID: client.ID})
	// A logout token is a JWT from the same issuer and keys, without a nonce or expiry of an ID token's kind.
	rp.logout = provider.Verifier(&oidc.Config{ClientID: client.ID, SkipExpiryCheck: true})
	return rp
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (rp *relyingParty) serve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	switch r.URL.Path {
	case "/":
		if ck, err := r.Cookie("rp_session"); err == nil {
			rp.mu.Lock()
			s, ok := rp.sessions[ck.Value]
			rp.mu.Unlock()
			if ok {
				fmt.Fprintf(w, `<!doctype html><html><body><h1 id="welcome">欢迎，%s</h1><p id="level">%s</p></body></html>`, html.EscapeString(s.name), s.level)
				return
			}
		}
		state, nonce, verifier := randomHex(), randomHex(), oauth2.GenerateVerifier()
		rp.mu.Lock()
		rp.pending[state] = [2]string{nonce, verifier}
		rp.mu.Unlock()
		http.Redirect(w, r, rp.cfg.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
	case "/callback":
		if e := r.URL.Query().Get("error"); e != "" {
			http.Error(w, "refused: "+e, http.StatusForbidden)
			return
		}
		state := r.URL.Query().Get("state")
		rp.mu.Lock()
		p, ok := rp.pending[state]
		delete(rp.pending, state)
		rp.mu.Unlock()
		if !ok {
			http.Error(w, "unknown state", http.StatusBadRequest)
			return
		}
		tok, err := rp.cfg.Exchange(ctx, r.URL.Query().Get("code"), oauth2.VerifierOption(p[1]))
		if err != nil {
			http.Error(w, "exchange: "+err.Error(), http.StatusBadGateway)
			return
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := rp.verifier.Verify(ctx, raw)
		if err != nil || idt.Nonce != p[0] {
			http.Error(w, fmt.Sprintf("id token: %v", err), http.StatusUnauthorized)
			return
		}
		var claims struct {
			Name  string `json:"name"`
			Level string `json:"dgov_level"`
			SID   string `json:"sid"`
		}
		if err := idt.Claims(&claims); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		cookie := randomHex()
		rp.mu.Lock()
		rp.sessions[cookie] = rpSession{name: claims.Name, level: claims.Level, sid: claims.SID}
		rp.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "rp_session", Value: cookie, Path: "/", HttpOnly: true})
		http.Redirect(w, r, "/", http.StatusFound)
	case "/backchannel-logout":
		tok, err := rp.logout.Verify(ctx, r.PostFormValue("logout_token"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var claims struct {
			SID    string         `json:"sid"`
			Events map[string]any `json:"events"`
		}
		if err := tok.Claims(&claims); err != nil || claims.Events["http://schemas.openid.net/event/backchannel-logout"] == nil {
			http.Error(w, "not a logout token", http.StatusBadRequest)
			return
		}
		rp.mu.Lock()
		for k, s := range rp.sessions {
			if s.sid == claims.SID {
				delete(rp.sessions, k)
			}
		}
		rp.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	default:
		http.NotFound(w, r)
	}
}

func (rp *relyingParty) sessionCount() int {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return len(rp.sessions)
}
