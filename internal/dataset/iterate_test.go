package dataset_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dgov/dgov/internal/dataset"
)

// Each walks every row of a version once, in order, across pages, with sensitive values open.
func TestEach(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		const n = dataset.EachPage*2 + 7
		res, err := f.svc.Load(f.ctx, "each", subsidy, dataset.Source{Name: "r.csv", Reader: strings.NewReader(residentsCSV(n, 0))}, dataset.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var seen int64
		err = f.svc.Each(f.ctx, "each", res.Version, func(r dataset.Row) error {
			seen++
			if r.No != seen || r.Line != seen+1 {
				return fmt.Errorf("row %d: no %d line %d", seen, r.No, r.Line)
			}
			if id := r.Values["身份证号"]; len(id) != 18 || strings.Contains(id, "*") {
				return fmt.Errorf("row %d: ID number %q not opened", seen, id)
			}
			return nil
		})
		if err != nil || seen != n {
			t.Fatalf("walked %d of %d rows: %v", seen, n, err)
		}
		seen = 0
		if err := f.svc.Each(f.ctx, "each", res.Version, func(dataset.Row) error {
			if seen++; seen == 3 {
				return dataset.ErrStop
			}
			return nil
		}); err != nil || seen != 3 {
			t.Fatalf("stop: %d %v", seen, err)
		}
		boom := errors.New("boom")
		if err := f.svc.Each(f.ctx, "each", res.Version, func(dataset.Row) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("error: %v", err)
		}
		if err := f.svc.Each(f.ctx, "each", res.Version+1, func(dataset.Row) error { return nil }); err == nil {
			t.Fatal("a missing version walked")
		}
	})
}
