package quality

import (
	"context"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/dataset"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// FuzzRule feeds rules and values from outside (console forms, the API) through the
// validator and, for rules it accepts, through a run over two rows with the same value: no
// panic, every refusal a 400 quality.rule error, and the verdicts consistent — completeness
// fails exactly the empty value, uniqueness exactly the repeat of a non-empty one, a format
// judges both rows alike.
func FuzzRule(f *testing.F) {
	for _, s := range []struct {
		kind, column, format, pattern, library string
		grace                                  int
		value                                  string
	}{
		{"completeness", "v", "", "", "", 0, ""},
		{"uniqueness", "v", "", "", "", 0, "x"},
		{"format", "v", "resident_id", "", "", 0, "11010519491231002X"},
		{"format", "v", "credit_code", "", "", 0, "91350100M000100Y43"},
		{"format", "v", "division", "", "", 0, "140105"},
		{"format", "v", "mobile", "", "", 0, "138 0013 8000"},
		{"format", "v", "date", "", "", 0, "2024-02-30"},
		{"format", "v", "regex", "城市低保|农村低保", "", 0, "城镇低保"},
		{"format", "v", "regex", "a)|(b", "", 0, "a"},
		{"format", "v", "regex", `\p{Han}{2,4}`, "", 0, "张三"},
		{"reference", "v", "", "", "population", 0, "x"},
		{"timeliness", "", "", "", "", -1, ""},
		{"beauty", " v ", "", "", "", 0, "x"},
	} {
		f.Add(s.kind, s.column, s.format, s.pattern, s.library, s.grace, s.value)
	}
	schema := &dataset.Schema{Columns: []dataset.Column{{Name: "v", Type: dataset.String}}}
	s := &Service{now: func() time.Time { return time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) }, max: 10}
	f.Fuzz(func(t *testing.T, kind, column, format, pattern, library string, grace int, value string) {
		r := Rule{DatasetID: "d", Kind: Kind(kind), Column: column, Format: format, Pattern: pattern, Library: library, GraceHours: grace}
		if err := r.check(schema); err != nil {
			if ie, ok := i18n.As(err); !ok || ie.Code != ErrRule.Code || ie.HTTPStatus() != 400 || ie.Field == "" {
				t.Fatalf("refusal %v (%+v)", err, ie)
			}
			return
		}
		if r.Kind != Timeliness && r.Column != "v" {
			t.Fatalf("accepted a rule on column %q", r.Column)
		}
		if r.Kind == Reference || r.Kind == Timeliness {
			return // they need the libraries and a version: TestRules and TestTimeliness
		}
		rep := &Report{}
		e, err := s.newEvaluator(context.Background(), []Rule{r}, rep)
		if err != nil {
			t.Fatalf("accepted rule %+v does not prepare: %v", r, err)
		}
		for no := int64(1); no <= 2; no++ {
			row := dataset.Row{No: no, Line: no + 1, Values: map[string]string{}}
			if value != "" {
				row.Values["v"] = value
			}
			if err := e.row(row); err != nil {
				t.Fatal(err)
			}
		}
		flagged := map[int64]bool{}
		for _, fd := range rep.Findings {
			flagged[fd.RowNo] = true
			if fd.Code == "" || fd.Reason.ZH == "" || fd.Reason.EN == "" {
				t.Fatalf("finding %+v", fd)
			}
		}
		switch r.Kind {
		case Completeness:
			if flagged[1] != (value == "") || flagged[2] != (value == "") {
				t.Fatalf("completeness of %q: %v", value, flagged)
			}
		case Uniqueness:
			if flagged[1] || flagged[2] != (value != "") {
				t.Fatalf("uniqueness of %q: %v", value, flagged)
			}
		case Format:
			if flagged[1] != flagged[2] || (value == "" && flagged[1]) {
				t.Fatalf("format %s of %q: %v", r.Format, value, flagged)
			}
		}
		if rep.TotalRows != 2 || rep.FindingsTotal != int64(len(rep.Findings)) {
			t.Fatalf("report %+v", rep)
		}
	})
}
