package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// MaxImportBytes bounds an import file; MaxImportRecords the resources in it.
const (
	MaxImportBytes   = 32 << 20
	MaxImportRecords = 5000
)

// Problem is one thing wrong with an import, located in the file.
type Problem struct {
	Where i18n.Text // e.g. 第3条记录 / record 3; 第2行第5列 / row 2 column 5
	Err   *i18n.Error
	order [3]int // sheet, row, column: problems are listed in file order
}

// Problems is every problem of a rejected import; nothing was imported. It is the cause
// (Unwrap) of the *i18n.Error an import returns, for callers that list them one by one.
type Problems []Problem

func (ps Problems) Error() string { return fmt.Sprintf("%d problems in the import", len(ps)) }

// maxListed problems are spelled out in the message; the rest are counted.
const maxListed = 50

// importError turns problems into the user-facing error: "导入未完成，共 N 处错误，未导入任何记录" and one line per problem.
func (ps Problems) importError() *i18n.Error {
	var zh, en strings.Builder
	fmt.Fprintf(&zh, "导入失败：共 %d 处错误，未导入任何记录。", len(ps))
	fmt.Fprintf(&en, "import failed: %d problems; nothing was imported.", len(ps))
	for i, p := range ps {
		if i == maxListed {
			fmt.Fprintf(&zh, "\n……另有 %d 处错误", len(ps)-maxListed)
			fmt.Fprintf(&en, "\n… and %d more", len(ps)-maxListed)
			break
		}
		zh.WriteString("\n" + p.Where.ZH + "：" + p.Err.Msg.ZH)
		en.WriteString("\n" + p.Where.EN + ": " + p.Err.Msg.EN)
	}
	return &i18n.Error{Code: "catalog.import.invalid", Status: http.StatusUnprocessableEntity, Msg: i18n.T(zh.String(), en.String()), Err: ps}
}

// Batch is the resources read from one import file, with how to locate each field in it.
type Batch struct {
	Drafts []Draft
	// where names record i's field (a Draft JSON path such as "name" or "items[2].type").
	where func(i int, field string) i18n.Text
}

// Where locates record i's field in the file (a Batch built by hand counts records from 1).
func (b *Batch) Where(i int, field string) i18n.Text {
	if b.where == nil {
		return jsonWhere(i, field)
	}
	return b.where(i, field)
}

func jsonWhere(i int, field string) i18n.Text {
	if field == "" {
		return i18n.T(fmt.Sprintf("第 %d 条记录", i+1), fmt.Sprintf("record %d", i+1))
	}
	return i18n.T(fmt.Sprintf("第 %d 条记录 %s", i+1, field), fmt.Sprintf("record %d, %s", i+1, field))
}

// ParseJSON reads the JSON exchange format: an array of Draft objects (fields as in Draft's
// JSON tags; unknown fields are errors), e.g.
//
//	[{"code": "101001/1401000001", "name": "人口基本信息", "provider": "太原市公安局",
//	  "summary": "…", "classification": {"class": 1, "item": "01", "entry": "001"},
//	  "format": "database", "items": [{"name": "公民身份号码", "type": "C", "length": 18, "sensitive": true}],
//	  "share_type": 2, "share_condition": "用于政务服务身份核验", "open_type": 3,
//	  "update_cycle": "daily", "contact": {"name": "王科长", "phone": "0351-1234567"}}]
//
// Every record is checked; the error lists every problem with its record number. The output
// of WriteJSON reads back: its extra fields (id, status, version…) are ignored.
func ParseJSON(r io.Reader) (*Batch, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxImportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read JSON import: %w", err)
	}
	if len(data) > MaxImportBytes {
		return nil, tooLarge()
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, i18n.Errorf(http.StatusBadRequest, "catalog.import.json", "文件不是有效的 JSON 数组：%s",
			"the file is not a valid JSON array: %s", jsonProblem(err)).Wrap(err)
	}
	if len(raw) > MaxImportRecords {
		return nil, tooMany()
	}
	b := &Batch{Drafts: make([]Draft, len(raw)), where: jsonWhere}
	var ps Problems
	for i, m := range raw {
		var rec jsonRecord
		dec := json.NewDecoder(bytes.NewReader(m))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			ps = append(ps, Problem{Where: jsonWhere(i, ""), Err: i18n.Errorf(http.StatusBadRequest, "catalog.import.record",
				"记录格式错误：%s", "malformed record: %s", jsonProblem(err))})
			continue
		}
		d := rec.Draft
		for _, e := range normalize(&d) {
			ps = append(ps, Problem{Where: jsonWhere(i, e.Field), Err: e})
		}
		b.Drafts[i] = d
	}
	if len(ps) > 0 {
		return nil, ps.importError()
	}
	return b, nil
}

// jsonRecord accepts the read-only fields WriteJSON adds, so an export imports back.
type jsonRecord struct {
	Draft
	ID           string          `json:"id"`
	DivisionCode string          `json:"division_code"`
	Status       string          `json:"status"`
	Version      int             `json:"version"`
	LiveVersion  int             `json:"live_version"`
	PublishedAt  json.RawMessage `json:"published_at"`
	RejectReason string          `json:"reject_reason"`
	SubmittedBy  string          `json:"submitted_by"`
	CreatedAt    json.RawMessage `json:"created_at"`
	UpdatedAt    json.RawMessage `json:"updated_at"`
}

// jsonProblem describes a decoding error without echoing large input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("offset %d: %s", se.Offset, se.Error())
	case errors.As(err, &te):
		return fmt.Sprintf("%s: %s", te.Field, te.Value)
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.ToValidUTF8(s, "?")
}

func tooLarge() *i18n.Error {
	return i18n.Errorf(http.StatusRequestEntityTooLarge, "catalog.import.too_large", "导入文件不能超过 %d MB",
		"the import file must not exceed %d MB", MaxImportBytes>>20)
}

func tooMany() *i18n.Error {
	return i18n.Errorf(http.StatusRequestEntityTooLarge, "catalog.import.too_many", "一次最多导入 %d 个资源",
		"at most %d resources per import", MaxImportRecords)
}

// WriteJSON writes resources in the JSON exchange format (indented, UTF-8).
func WriteJSON(w io.Writer, rs []Resource) error {
	if rs == nil {
		rs = []Resource{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(rs)
}

// Import stores a batch in one transaction: a record whose code is already in the catalog
// revises that resource (as UpdateDraft), any other creates a draft (as CreateDraft). If any
// record fails — unknown provider, out of the actor's scope, resource under review, a code
// used twice — nothing is stored and the error lists every problem with its location.
func (s *Service) Import(ctx context.Context, actor authz.Subject, b *Batch) ([]Resource, error) {
	if actor.Kind == "" {
		return nil, i18n.ErrUnauthorized
	}
	var ps Problems
	fail := func(i int, err error) error {
		e, ok := i18n.As(err)
		if !ok {
			return err // not the input's fault
		}
		ps = append(ps, Problem{Where: b.Where(i, e.Field), Err: e})
		return nil
	}
	seen := map[string]int{}
	for i, d := range b.Drafts {
		if d.Code == "" {
			continue
		}
		if j, dup := seen[d.Code]; dup {
			_ = fail(i, invalid("code", "catalog.import.duplicate_code",
				fmt.Sprintf("资源代码 %s 与%s重复", d.Code, b.Where(j, "").ZH),
				fmt.Sprintf("resource code %s repeats %s", d.Code, b.Where(j, "").EN)))
		}
		seen[d.Code] = i
	}
	out := make([]Resource, len(b.Drafts))
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		for i, d := range b.Drafts {
			if err := firstError(normalize(&d)); err != nil {
				if err := fail(i, err); err != nil {
					return err
				}
				continue
			}
			var r Resource
			if err := lockResource(ctx, tx, "code", d.Code); err != nil {
				return fmt.Errorf("lock resource %s: %w", d.Code, err)
			}
			cur, err := getResourceByCode(ctx, tx, d.Code)
			switch {
			case d.Code != "" && err == nil:
				if err = s.policy.Authorize(actor, PermEdit, cur.DivisionCode); err == nil {
					r, err = s.update(ctx, tx, actor, cur, d)
				}
			case d.Code != "" && !isNoRow(err):
				return fmt.Errorf("read resource %s: %w", d.Code, err)
			default:
				var dep org.Department
				if dep, err = s.provider(ctx, actor, &d); err == nil {
					r, err = s.create(ctx, tx, actor, d, dep)
				}
			}
			if err != nil {
				if err := fail(i, err); err != nil {
					return err
				}
				continue
			}
			out[i] = r
		}
		if len(ps) > 0 {
			return ps.importError()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
