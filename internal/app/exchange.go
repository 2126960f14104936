package app

import (
	"context"
	"net/http"

	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/idp"
)

// exchangePrefix is where the exchange gateway is mounted.
const exchangePrefix = "/api/v1/exchange"

// openExchange builds the dataset store and the sharing exchange (D4) over the catalogue, the
// organisation and the OpenID provider's clients. Requests unanswered past their deadline stay
// pending and flagged overdue (Options.ExpireAfterWorkdays is 0), so no expiry job is needed.
func (a *App) openExchange() {
	a.Datasets = dataset.New(a.DB, a.Keys.FieldCipher(), dataset.Options{Now: a.Now})
	a.Exchange = exchange.New(a.DB, a.Policy, a.Catalog, a.Org, a.Datasets, a.Keys.FieldCipher(), a.Audit, exchange.Options{
		Now: a.Now,
		// A grant is bound only to a system client registered for the consumer department.
		ClientOwner: a.IdP.ClientDepartment,
	})
}

// exchangeGateway is the gateway consumer systems call with client-credential tokens of this
// node's provider, validated in process.
func (a *App) exchangeGateway() (http.Handler, error) {
	return exchange.NewGateway(exchange.GatewayConfig{Service: a.Exchange, Tokens: tokenValidator{a.IdP}, Signer: a.Keys,
		Prefix: exchangePrefix, Logger: a.Log})
}

// exchangeCSRFExempt: the gateway's POST is called by systems with a bearer token (which the
// CSRF check skips anyway); exempt it so that a call without one is answered 401, not 403.
var exchangeCSRFExempt = []string{"POST " + exchangePrefix + "/{resource}/lookup"}

// tokenValidator is exchange.TokenValidator on the provider's own token store.
type tokenValidator struct{ p *idp.Provider }

func (v tokenValidator) Validate(ctx context.Context, bearer string) (string, []string, error) {
	return v.p.ValidateAccessToken(ctx, bearer)
}
