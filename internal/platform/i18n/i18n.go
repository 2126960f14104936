// Package i18n holds user-facing text in Simplified Chinese (first) and English,
// and the typed error that carries such text to whoever shows it.
package i18n

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Lang is a UI language. Simplified Chinese is the default everywhere.
type Lang string

const (
	ZH Lang = "zh-CN"
	EN Lang = "en"
)

// Text is one message in both languages.
type Text struct {
	ZH string `json:"zh"`
	EN string `json:"en"`
}

// T builds a Text.
func T(zh, en string) Text { return Text{ZH: zh, EN: en} }

// In returns the message in lang, falling back to Chinese.
func (t Text) In(lang Lang) string {
	if lang == EN && t.EN != "" {
		return t.EN
	}
	return t.ZH
}

// String gives both languages, Chinese first, for logs and CLI output.
func (t Text) String() string {
	if t.EN == "" {
		return t.ZH
	}
	return t.ZH + " (" + t.EN + ")"
}

// Error is an error a person may see: a stable code, an HTTP status and the text in both
// languages. Driver and library errors never reach users raw; they are wrapped as Err.
type Error struct {
	Code   string // stable machine code, e.g. "ids.checksum"
	Status int    // HTTP status; 0 means 400
	Msg    Text
	Field  string // optional: the input field the error is about
	Err    error  // optional cause, logged, never shown
}

// New makes a bad-request error.
func New(code, zh, en string) *Error {
	return &Error{Code: code, Status: http.StatusBadRequest, Msg: T(zh, en)}
}

// Errorf makes an error with a status; zh and en may carry fmt verbs filled by the same args.
func Errorf(status int, code, zh, en string, args ...any) *Error {
	return &Error{Code: code, Status: status, Msg: T(fmt.Sprintf(zh, args...), fmt.Sprintf(en, args...))}
}

func (e *Error) Error() string {
	s := e.Code + ": " + e.Msg.String()
	if e.Field != "" {
		s = e.Field + ": " + s
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus is the status to answer with.
func (e *Error) HTTPStatus() int {
	if e.Status == 0 {
		return http.StatusBadRequest
	}
	return e.Status
}

// WithField returns a copy naming the input field.
func (e *Error) WithField(f string) *Error { c := *e; c.Field = f; return &c }

// Wrap returns a copy carrying cause.
func (e *Error) Wrap(cause error) *Error { c := *e; c.Err = cause; return &c }

// Is makes errors.Is match on the code, so sentinel errors can be compared after WithField/Wrap.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// As finds the user-facing error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// Common errors shared by every engine.
var (
	ErrNotFound     = &Error{Code: "not_found", Status: http.StatusNotFound, Msg: T("未找到", "not found")}
	ErrForbidden    = &Error{Code: "forbidden", Status: http.StatusForbidden, Msg: T("无权执行此操作", "you are not allowed to do this")}
	ErrUnauthorized = &Error{Code: "unauthorized", Status: http.StatusUnauthorized, Msg: T("请先登录", "please log in first")}
	ErrConflict     = &Error{Code: "conflict", Status: http.StatusConflict, Msg: T("数据已被修改或已存在", "the record changed or already exists")}
	ErrInternal     = &Error{Code: "internal", Status: http.StatusInternalServerError, Msg: T("服务器内部错误，请稍后重试", "internal error, please try again later")}
)

// FromRequest picks the language: ?lang=, then the dgov_lang cookie, then Accept-Language;
// Chinese unless English is asked for.
func FromRequest(r *http.Request) Lang {
	if l := r.URL.Query().Get("lang"); l != "" {
		return Parse(l)
	}
	if c, err := r.Cookie("dgov_lang"); err == nil {
		return Parse(c.Value)
	}
	al := strings.ToLower(r.Header.Get("Accept-Language"))
	if strings.HasPrefix(al, "en") {
		return EN
	}
	return ZH
}

// Parse maps a language tag to a Lang.
func Parse(s string) Lang {
	if strings.HasPrefix(strings.ToLower(s), "en") {
		return EN
	}
	return ZH
}
