package app

import (
	"context"
	"errors"
	"net/http"

	"github.com/dgov/dgov/internal/console"
	"github.com/dgov/dgov/internal/govservice"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/jobs"
	"github.com/dgov/dgov/internal/portal"
	"github.com/dgov/dgov/internal/rating"
)

// openRatings builds 好差评 (P5 item 7) on the case engine and the applications, so it comes
// after openServices. A 差评's rectification has the default limits: 5 working days to
// rectify, 3 for the callback (rating.Options; no configuration key yet). Calling it again
// does nothing.
func (a *App) openRatings() {
	if a.Ratings != nil {
		return
	}
	rating.RegisterPermissions(a.Policy)
	a.Ratings = rating.New(a.DB, a.Policy, a.Workflow, ratedApplications{a.Applications}, rating.Options{
		Now: a.Now, Audit: a.auditOrg})
}

// ratingRoutes mounts the rating pages: the applicant's form handler and the public summary
// on the portal, the statistics and rectifications in the console. It returns the portal side
// for the application page, which shows the form (portal.Services.Ratings). A node opened
// without ratings mounts none.
func (a *App) ratingRoutes(mux *http.ServeMux, con *console.Console, accounts *portal.Accounts) *portal.Ratings {
	if a.Ratings == nil {
		return nil
	}
	division := a.Cfg.NodeDivision
	if division == "" {
		division = "140000"
	}
	rt := &portal.Ratings{Accounts: accounts, Service: a.Ratings, Division: division}
	rt.Routes(mux)
	con.RatingRoutes(mux, a.Ratings)
	return rt
}

// serveRatings subscribes the mirror of rectification cases onto their ratings (one durable
// for the cluster: the effect is in the shared database and idempotent). The returned
// function stops it.
func (a *App) serveRatings(ctx context.Context) (func(), error) {
	if a.Ratings == nil {
		return func() {}, nil
	}
	sub, err := bus.Subscribe(ctx, a.js, rating.Consumer, rating.ConsumerSubjects, a.Ratings.OnCaseEvent)
	if err != nil {
		return nil, err
	}
	return sub.Stop, nil
}

// ratingJobs registers the periodic reconciling of open rectifications with their cases (the
// safety net under serveRatings' consumer).
func (a *App) ratingJobs(workers *jobs.Workers) []*jobs.PeriodicJob {
	if a.Ratings == nil {
		return nil
	}
	return a.Ratings.Jobs(workers)
}

// ratedApplications is govservice.Applications as the rating engine reads it. The engine
// checks with the case engine itself that the application is completed and the actor's.
type ratedApplications struct{ apps *govservice.Applications }

func (r ratedApplications) RatedApplication(ctx context.Context, actor authz.Subject, id string) (rating.Application, error) {
	d, err := r.apps.Get(ctx, actor, id)
	if errors.Is(err, govservice.ErrApplicationNotFound) {
		return rating.Application{}, i18n.ErrNotFound
	}
	if err != nil {
		return rating.Application{}, err
	}
	return rating.Application{ID: d.ID, Number: d.Number, ItemCode: d.ItemCode, ItemName: d.ItemName, ItemNameEn: d.ItemNameEn,
		DeptID: d.DeptID, DeptName: d.DeptName, Division: d.Division, CaseID: d.CaseID}, nil
}
