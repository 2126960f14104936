package app

import (
	"context"
	"net/http"

	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/idp"
	"github.com/dgov/dgov/internal/platform/jobs"
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
	x, err := a.exchangeExtracts()
	if err != nil {
		return nil, err
	}
	return exchange.NewGateway(exchange.GatewayConfig{Service: a.Exchange, Tokens: tokenValidator{a.IdP}, Signer: a.Keys,
		Prefix: exchangePrefix, Extracts: x, Logger: a.Log})
}

// exchangeExtracts builds the producer of bulk extracts, with files in the node's blob store:
// the gateway asks for extracts through it, the job queue's workers write them. It holds no
// state of its own, so the gateway and the queue each build one. The queue is looked up when
// an extract is asked for (Serve starts it before the HTTP server; a node without it answers 503).
//
// Files are kept for DGOV_EXCHANGE_EXTRACT_TTL (7 days by default).
func (a *App) exchangeExtracts() (*exchange.Extracts, error) {
	return exchange.NewExtracts(exchange.ExtractsConfig{Service: a.Exchange, Blobs: a.Blobs, Signer: a.Keys, Logger: a.Log, TTL: a.Cfg.ExchangeExtractTTL,
		Queue: func() exchange.JobQueue {
			if a.queue == nil {
				return nil
			}
			return a.queue
		}})
}

// exchangeJobs registers the extract workers (write a file; delete expired files) and returns
// the periodic expiry sweep, for startJobs.
func (a *App) exchangeJobs(workers *jobs.Workers) []*jobs.PeriodicJob {
	x, err := a.exchangeExtracts()
	if err != nil { // only a node opened without its blob store or keys
		a.Log.Error("exchange extracts are off", "err", err)
		return nil
	}
	return x.RegisterJobs(workers, 0)
}

// exchangeCSRFExempt: the gateway's POSTs are called by systems with a bearer token (which the
// CSRF check skips anyway); exempt them so that a call without one is answered 401, not 403.
var exchangeCSRFExempt = []string{"POST " + exchangePrefix + "/{resource}/lookup", "POST " + exchangePrefix + "/{resource}/extracts"}

// tokenValidator is exchange.TokenValidator on the provider's own token store.
type tokenValidator struct{ p *idp.Provider }

func (v tokenValidator) Validate(ctx context.Context, bearer string) (string, []string, error) {
	return v.p.ValidateAccessToken(ctx, bearer)
}
