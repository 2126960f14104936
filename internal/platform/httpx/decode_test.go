package httpx_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dgov/dgov/internal/platform/httpx"
	"github.com/dgov/dgov/internal/platform/i18n"
)

type applyRequest struct {
	Name    string   `json:"name"`
	Age     int      `json:"age"`
	Ratio   float64  `json:"ratio"`
	Small   uint8    `json:"small"`
	Tags    []string `json:"tags"`
	Address *struct {
		City string `json:"city"`
	} `json:"address"`
	Extra map[string]int `json:"extra"`
	When  time.Time      `json:"when"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		contentType string
		max         int64
		code        string // "" means success
		field       string
		zh, en      string // substrings of the message
	}{
		{name: "ok", body: `{"name":"张三","age":30,"address":{"city":"太原"}}`},
		{name: "ok with trailing whitespace", body: "{\"name\":\"x\"}\n\t "},
		{name: "ok +json type", body: `{}`, contentType: "application/merge-patch+json"},
		{name: "ok json with charset", body: `{}`, contentType: "application/json; charset=utf-8"},
		{name: "unknown field", body: `{"name":"x","nmae":"y"}`, code: "request.unknown_field", field: "nmae", zh: "无法识别的字段 nmae", en: "unknown field nmae"},
		{name: "unknown nested field", body: `{"address":{"town":"x"}}`, code: "request.unknown_field", field: "town"},
		{name: "oversize", body: `{"name":"` + strings.Repeat("x", 200) + `"}`, max: 64, code: "request.too_large", zh: "上限为 64 字节", en: "limit is 64 bytes"},
		{name: "oversize in trailing data", body: `{}` + strings.Repeat(" ", 100) + "x", max: 64, code: "request.too_large"},
		{name: "trailing value", body: `{"name":"x"}{"name":"y"}`, code: "request.trailing_data", zh: "多余内容", en: "more data"},
		{name: "trailing garbage", body: `{"name":"x"} hello`, code: "request.trailing_data"},
		{name: "bad syntax", body: `{"name": x}`, code: "request.bad_json", zh: "第 10 个字符附近", en: "near character 10"},
		{name: "truncated", body: `{"name":"x"`, code: "request.bad_json", zh: "不完整", en: "ends too early"},
		{name: "empty", body: ``, code: "request.empty_body"},
		{name: "wrong type", body: `{"age":"thirty"}`, code: "request.wrong_type", field: "age", zh: "应为整数", en: "expected an integer"},
		{name: "wrong nested type", body: `{"address":{"city":5}}`, code: "request.wrong_type", field: "address.city", zh: "应为字符串"},
		{name: "out of range", body: `{"small":300}`, code: "request.wrong_type", field: "small", zh: "超出范围", en: "out of range"},
		{name: "array instead of object", body: `[1,2]`, code: "request.wrong_type", en: "the request body has the wrong type; expected an object"},
		{name: "bad time", body: `{"when":"yesterday"}`, code: "request.bad_json"},
		{name: "form content type", body: `name=x`, contentType: "application/x-www-form-urlencoded", code: "request.unsupported_media_type"},
		{name: "text/plain content type", body: `{}`, contentType: "text/plain", code: "request.unsupported_media_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			if tt.name == "oversize in trailing data" {
				req.ContentLength = -1 // streamed: the limit is found while reading
			}
			var v applyRequest
			err := httpx.DecodeJSON(req, &v, tt.max)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			ie, ok := err.(*i18n.Error)
			if !ok {
				t.Fatalf("error %T %v is not *i18n.Error", err, err)
			}
			if ie.Code != tt.code {
				t.Errorf("code = %q, want %q (%v)", ie.Code, tt.code, ie)
			}
			if ie.Field != tt.field {
				t.Errorf("field = %q, want %q", ie.Field, tt.field)
			}
			if !strings.Contains(ie.Msg.ZH, tt.zh) || !strings.Contains(ie.Msg.EN, tt.en) {
				t.Errorf("message = %q / %q, want %q / %q", ie.Msg.ZH, ie.Msg.EN, tt.zh, tt.en)
			}
			if ie.HTTPStatus() < 400 || ie.HTTPStatus() > 499 {
				t.Errorf("status %d is not a client error", ie.HTTPStatus())
			}
		})
	}
}

func TestDecodeJSONSentinels(t *testing.T) {
	req := httptest.NewRequest("POST", "/", strings.NewReader(`{"x":1}`))
	err := httpx.DecodeJSON(req, &applyRequest{}, 0)
	if !errors.Is(err, httpx.ErrUnknownField) {
		t.Errorf("errors.Is(%v, ErrUnknownField) = false", err)
	}
	req = httptest.NewRequest("POST", "/", strings.NewReader(`{}`))
	if err := httpx.DecodeJSON(req, applyRequest{}, 0); !errors.Is(err, i18n.ErrInternal) {
		t.Errorf("non-pointer target: %v, want internal", err)
	}
}

// ID is a type with its own user-facing validation error.
type ID string

func (id *ID) UnmarshalJSON(b []byte) error {
	if string(b) != `"ok"` {
		return i18n.New("ids.bad", "编号不正确", "bad id").WithField("id")
	}
	*id = "ok"
	return nil
}

func TestDecodeJSONPassesUnmarshalerErrors(t *testing.T) {
	var v struct{ ID ID }
	req := httptest.NewRequest("POST", "/", strings.NewReader(`{"ID":"nope"}`))
	err := httpx.DecodeJSON(req, &v, 0)
	ie, ok := i18n.As(err)
	if !ok || ie.Code != "ids.bad" {
		t.Fatalf("got %v, want ids.bad", err)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"name":"张三","age":30,"address":{"city":"太原"},"tags":["a"],"extra":{"k":1}}`,
		`{"name":"x"}{"name":"y"}`, `{"age":"x"}`, `{"small":1e400}`, `[`, ``, `null`, `{"when":"2026-01-01T00:00:00Z"}`,
		"{\"name\":\"\xff\"}", `{"address":null}`, `{"a":{"b":[[[[[]]]]]}}`, `{"name":"x"}  `,
	} {
		f.Add([]byte(s), int64(0))
		f.Add([]byte(s), int64(8))
	}
	f.Fuzz(func(t *testing.T, body []byte, max int64) {
		req := httptest.NewRequest("POST", "/", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		if max%2 == 0 {
			req.ContentLength = -1 // exercise the streaming limit too
		}
		var v applyRequest
		err := httpx.DecodeJSON(req, &v, max%4096)
		if err == nil {
			return
		}
		ie, ok := err.(*i18n.Error)
		if !ok {
			t.Fatalf("error %T %v is not *i18n.Error", err, err)
		}
		if ie.Code == "" || ie.Msg.ZH == "" || ie.Msg.EN == "" {
			t.Fatalf("error without code or text: %#v", ie)
		}
		if s := ie.HTTPStatus(); s < 400 || s > 499 {
			t.Fatalf("status %d for %q", s, body)
		}
	})
}
