package ids_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// now is the fixed clock of these tests.
var now = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// checkErr asserts the contract every failure of this package keeps: a user-facing
// *i18n.Error with status 400, an "ids." code and text in both languages.
func checkErr(t *testing.T, err error) *i18n.Error {
	t.Helper()
	e, ok := i18n.As(err)
	if !ok {
		t.Fatalf("error %v (%T) is not an *i18n.Error", err, err)
	}
	if e.HTTPStatus() != http.StatusBadRequest || e.Status != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", e.Status)
	}
	if !strings.HasPrefix(e.Code, "ids.") {
		t.Errorf("code %q lacks the ids. prefix", e.Code)
	}
	if e.Msg.ZH == "" || e.Msg.EN == "" {
		t.Errorf("message missing a language: %+v", e.Msg)
	}
	if !utf8.ValidString(e.Msg.ZH) || !utf8.ValidString(e.Msg.EN) {
		t.Errorf("message is not valid UTF-8: %q", e.Msg)
	}
	return e
}

// wantErr asserts err is want's failure (by code and errors.Is), or nil if want is nil.
func wantErr(t *testing.T, err error, want *i18n.Error) *i18n.Error {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return nil
	}
	if err == nil {
		t.Fatalf("no error, want %s", want.Code)
	}
	e := checkErr(t, err)
	if e.Code != want.Code || !errors.Is(err, want) {
		t.Fatalf("error %v, want code %s", err, want.Code)
	}
	return e
}
