package exchange_test

import (
	"errors"
	"testing"

	"github.com/dgov/dgov/internal/catalog"
	"github.com/dgov/dgov/internal/exchange"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// A request is readable by both departments and no one else.
func TestRequest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, exchange.Options{})
		res := f.publish("人口基本信息", catalog.ShareConditional, "用于身份核验")
		req, _, err := f.svc.Apply(f.ctx, f.tyRS, exchange.ApplyInput{ResourceID: res.ID, Fields: []string{"姓名"}, Purpose: "社保资格认证"})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			sub  authz.Subject
			ok   bool
		}{{"consumer", f.tyRS, true}, {"provider", f.gaOfficer, true}, {"another department", f.xdRS, false}} {
			got, err := f.svc.Request(f.ctx, c.sub, req.ID)
			if c.ok && (err != nil || got.ID != req.ID || got.Purpose != "社保资格认证" || got.DueAt == nil) {
				t.Errorf("%s: %+v %v", c.name, got, err)
			}
			if !c.ok && !errors.Is(err, i18n.ErrForbidden) {
				t.Errorf("%s read the request: %v", c.name, err)
			}
		}
		if _, err := f.svc.Request(f.ctx, f.tyRS, "nope"); !errors.Is(err, i18n.ErrNotFound) {
			t.Errorf("unknown request: %v", err)
		}
	}, sources...)
}
