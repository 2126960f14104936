package httpx

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// DefaultMaxJSONBytes bounds a JSON request body when DecodeJSON is given no limit.
const DefaultMaxJSONBytes = 1 << 20

// Errors DecodeJSON returns (compare with errors.Is; the returned copies carry details).
var (
	ErrBadJSON = &i18n.Error{Code: "request.bad_json", Status: http.StatusBadRequest,
		Msg: i18n.T("请求体不是有效的 JSON", "the request body is not valid JSON")}
	ErrEmptyBody = &i18n.Error{Code: "request.empty_body", Status: http.StatusBadRequest,
		Msg: i18n.T("请求体为空", "the request body is empty")}
	ErrTooLarge = &i18n.Error{Code: "request.too_large", Status: http.StatusRequestEntityTooLarge,
		Msg: i18n.T("请求体过大", "the request body is too large")}
	ErrUnknownField = &i18n.Error{Code: "request.unknown_field", Status: http.StatusBadRequest,
		Msg: i18n.T("请求中有无法识别的字段", "the request has a field that is not recognised")}
	ErrWrongType = &i18n.Error{Code: "request.wrong_type", Status: http.StatusBadRequest,
		Msg: i18n.T("字段类型不正确", "a field has the wrong type")}
	ErrTrailingData = &i18n.Error{Code: "request.trailing_data", Status: http.StatusBadRequest,
		Msg: i18n.T("请求体在 JSON 之后还有多余内容", "the request body has more data after the JSON value")}
	ErrUnsupportedMediaType = &i18n.Error{Code: "request.unsupported_media_type", Status: http.StatusUnsupportedMediaType,
		Msg: i18n.T("请求体须为 JSON（Content-Type: application/json）", "the request body must be JSON (Content-Type: application/json)")}
	ErrReadBody = &i18n.Error{Code: "request.read_failed", Status: http.StatusBadRequest,
		Msg: i18n.T("读取请求体失败", "the request body could not be read")}
)

func errTooLarge(limit int64) *i18n.Error {
	e := *ErrTooLarge
	e.Msg = i18n.T("请求体过大，上限为 "+strconv.FormatInt(limit, 10)+" 字节",
		"the request body is too large; the limit is "+strconv.FormatInt(limit, 10)+" bytes")
	return &e
}

func derive(base *i18n.Error, zh, en string, cause error) *i18n.Error {
	e := *base
	e.Msg = i18n.T(zh, en)
	e.Err = cause
	return &e
}

// DecodeJSON reads one JSON value from the request body into v. It refuses a body that is not
// declared as JSON, is larger than maxBytes (≤0: DefaultMaxJSONBytes), is empty, is not valid
// JSON, has a field v does not know, has a value of the wrong type, or has anything but
// whitespace after the value. Every error it returns is an *i18n.Error with text for the user;
// an *i18n.Error from a type's own UnmarshalJSON (say an ID-number check) is passed through.
func DecodeJSON(r *http.Request, v any, maxBytes int64) error {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxJSONBytes
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
			return ErrUnsupportedMediaType
		}
	}
	if r.ContentLength > maxBytes {
		return errTooLarge(maxBytes)
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	// nil writer: DecodeJSON has none; the server still closes the connection on a
	// too-large body because the handler will not read the rest.
	src := &bodyReader{r: http.MaxBytesReader(nil, body, maxBytes)}
	dec := json.NewDecoder(src)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, src.err, maxBytes)
	}
	// One value only: "{}{}" or "{} x" is a client bug we should not half-accept.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge(maxBytes).Wrap(err)
		}
		return ErrTrailingData.Wrap(err)
	}
	return nil
}

// bodyReader remembers the error reading the body failed with, to tell a broken connection
// from bad JSON.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func decodeError(err, readErr error, maxBytes int64) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
		inv *json.InvalidUnmarshalError
	)
	switch {
	case errors.As(err, &mbe):
		return errTooLarge(maxBytes).Wrap(err)
	case readErr != nil && errors.Is(err, readErr):
		return ErrReadBody.Wrap(err)
	case errors.Is(err, io.EOF):
		return ErrEmptyBody
	case errors.Is(err, io.ErrUnexpectedEOF):
		return derive(ErrBadJSON, "请求体不是有效的 JSON：内容不完整", "the request body is not valid JSON: it ends too early", err)
	case errors.As(err, &syn):
		n := strconv.FormatInt(syn.Offset, 10)
		return derive(ErrBadJSON, "请求体不是有效的 JSON：第 "+n+" 个字符附近", "the request body is not valid JSON near character "+n, err)
	case errors.As(err, &typ):
		kind := jsonKind(typ.Type)
		zhField, enField := "字段 "+typ.Field+" ", "field "+typ.Field
		if typ.Field == "" {
			zhField, enField = "请求体", "the request body"
		}
		e := derive(ErrWrongType, zhField+"的类型不正确，应为"+kind.ZH, enField+" has the wrong type; expected "+kind.EN, err)
		if typ.Value == "number" || strings.HasPrefix(typ.Value, "number ") {
			if k := reflectKind(typ.Type); k >= reflect.Int && k <= reflect.Float64 {
				e.Msg = i18n.T(zhField+"的数值超出范围或格式不符，应为"+kind.ZH, enField+" is out of range or not "+kind.EN)
			}
		}
		e.Field = typ.Field
		return e
	case errors.As(err, &inv):
		return i18n.ErrInternal.Wrap(err) // a programming error: v is not a non-nil pointer
	}
	if ie, ok := i18n.As(err); ok {
		return ie
	}
	// encoding/json has no typed error for DisallowUnknownFields.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if uq, err2 := strconv.Unquote(name); err2 == nil {
			name = uq
		}
		e := derive(ErrUnknownField, "无法识别的字段 "+name, "unknown field "+name, err)
		e.Field = name
		return e
	}
	// What is left came from a json.Unmarshaler or encoding.TextUnmarshaler (a time that
	// does not parse, say): the value is malformed.
	return ErrBadJSON.Wrap(err)
}

func reflectKind(t reflect.Type) reflect.Kind {
	if t == nil {
		return reflect.Invalid
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind()
}

// jsonKind names the JSON type a Go type expects.
func jsonKind(t reflect.Type) i18n.Text {
	if t == nil {
		return i18n.T("其他类型", "another type")
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return i18n.T("布尔值", "a boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return i18n.T("整数", "an integer")
	case reflect.Float32, reflect.Float64:
		return i18n.T("数字", "a number")
	case reflect.String:
		return i18n.T("字符串", "a string")
	case reflect.Slice, reflect.Array:
		return i18n.T("数组", "an array")
	case reflect.Map, reflect.Struct:
		return i18n.T("对象", "an object")
	}
	return i18n.T("其他类型", "another type")
}
