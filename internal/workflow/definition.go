package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/authz"
)

// Limits of a definition.
const (
	MaxSteps    = 30
	MaxStepDays = 365  // working days of one step
	MaxCaseDays = 3650 // working days of a whole case
	maxKeyLen   = 120
	maxNameLen  = 100
)

// ParseDefinition decodes a definition from JSON strictly (unknown fields, trailing data and
// wrong types are errors) and validates it with Validate(nil). Errors are *i18n.Error naming
// the bad path, e.g. "steps[2].days".
func ParseDefinition(data []byte) (Definition, error) {
	var d Definition
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Definition{}, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Definition{}, invalid("", "workflow.definition.json", "流程定义之后还有多余内容", "extra data after the definition")
	}
	if err := d.Validate(nil); err != nil {
		return Definition{}, err
	}
	return d, nil
}

func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return invalid(te.Field, "workflow.definition.json", "字段 %s 的类型不正确", "field %s has the wrong type", te.Field)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f = strings.Trim(f, `"`)
		return invalid(f, "workflow.definition.json", "未知字段 %q", "unknown field %q", f)
	}
	return invalid("", "workflow.definition.json", "流程定义不是有效的 JSON", "the definition is not valid JSON").Wrap(err)
}

// defaultHandlerRoles are the roles RegisterPermissions lets handle cases; Validate(nil)
// accepts steps for these only.
var defaultHandlerRoles = []authz.Role{authz.RoleOfficer, RoleLeader}

// Validate normalises d (trims text) and checks it: a key, a version from 1, a name, 1 to
// MaxSteps steps with unique keys, days from 0, and step roles that may handle cases —
// roles granted PermHandle in p, or, when p is nil, the roles RegisterPermissions grants it.
func (d *Definition) Validate(p *authz.Policy) error {
	d.Key = strings.TrimSpace(d.Key)
	d.Name = strings.TrimSpace(d.Name)
	d.NameEn = strings.TrimSpace(d.NameEn)
	if d.Key == "" {
		return invalid("key", "workflow.definition.key", "缺少流程标识", "the key is missing")
	}
	if len(d.Key) > maxKeyLen || !validKey(d.Key) {
		return invalid("key", "workflow.definition.key", "流程标识只能由字母、数字和 . _ : - / 组成，最长 %d 个字符",
			"the key may hold letters, digits and . _ : - / only, at most %d characters", maxKeyLen)
	}
	if d.Version < 1 {
		return invalid("version", "workflow.definition.version", "版本号须从 1 开始", "the version must be 1 or more")
	}
	if err := checkName("name", d.Name, true); err != nil {
		return err
	}
	if err := checkName("name_en", d.NameEn, false); err != nil {
		return err
	}
	if d.TotalDays < 0 || d.TotalDays > MaxCaseDays {
		return invalid("total_days", "workflow.definition.days", "总办理时限须在 0 到 %d 个工作日之间",
			"the total limit must be 0 to %d working days", MaxCaseDays)
	}
	if len(d.Steps) == 0 {
		return invalid("steps", "workflow.definition.no_steps", "流程至少需要一个环节", "a definition needs at least one step")
	}
	if len(d.Steps) > MaxSteps {
		return invalid("steps", "workflow.definition.too_many_steps", "流程最多 %d 个环节", "a definition has at most %d steps", MaxSteps)
	}
	seen := make(map[string]bool, len(d.Steps))
	sum := 0
	for i := range d.Steps {
		st := &d.Steps[i]
		at := fmt.Sprintf("steps[%d]", i)
		st.Key = strings.TrimSpace(st.Key)
		st.Name = strings.TrimSpace(st.Name)
		st.NameEn = strings.TrimSpace(st.NameEn)
		st.Role = strings.TrimSpace(st.Role)
		if !validStepKey(st.Key) {
			return invalid(at+".key", "workflow.definition.step_key", "环节标识须为小写字母开头的小写字母、数字或下划线，最长 40 个字符",
				"a step key is lower-case letters, digits and _ starting with a letter, at most 40 characters")
		}
		if seen[st.Key] {
			return invalid(at+".key", "workflow.definition.step_duplicate", "环节标识 %q 重复", "step key %q appears twice", st.Key)
		}
		seen[st.Key] = true
		if err := checkName(at+".name", st.Name, true); err != nil {
			return err
		}
		if err := checkName(at+".name_en", st.NameEn, false); err != nil {
			return err
		}
		if st.Days < 0 || st.Days > MaxStepDays {
			return invalid(at+".days", "workflow.definition.days", "环节时限须在 0 到 %d 个工作日之间",
				"a step's limit must be 0 to %d working days", MaxStepDays)
		}
		sum += st.Days
		if r := st.HandlerRole(); !handlerRole(p, r) {
			return invalid(at+".role", "workflow.definition.role", "角色 %q 不能办理案件", "role %q cannot handle cases", clip(string(r), 40))
		}
	}
	if sum > MaxCaseDays {
		return invalid("steps", "workflow.definition.days", "各环节时限之和超过 %d 个工作日", "the steps' limits add up to more than %d working days", MaxCaseDays)
	}
	return nil
}

func handlerRole(p *authz.Policy, r authz.Role) bool {
	if p == nil {
		return slices.Contains(defaultHandlerRoles, r)
	}
	return slices.Contains(p.Permissions(r), PermHandle)
}

func checkName(field, v string, required bool) error {
	if v == "" {
		if required {
			return invalid(field, "workflow.definition.name", "缺少名称", "the name is missing")
		}
		return nil
	}
	if !utf8.ValidString(v) || utf8.RuneCountInString(v) > maxNameLen || strings.ContainsFunc(v, isControl) {
		return invalid(field, "workflow.definition.name", "名称最长 %d 个字符，且不含控制字符", "a name is at most %d characters without control characters", maxNameLen)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func validKey(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:-/", c) >= 0) {
			return false
		}
	}
	return true
}

func validStepKey(s string) bool {
	if s == "" || len(s) > 40 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func clip(v string, n int) string {
	if utf8.RuneCountInString(v) <= n {
		return v
	}
	return string([]rune(v)[:n]) + "…"
}

// step returns the definition's step at i (clamped, so a closed case names its last step).
func (d Definition) step(i int) Step {
	return d.Steps[max(0, min(i, len(d.Steps)-1))]
}

// caseDays is the whole case's limit in working days (0 = none).
func (d Definition) caseDays() int {
	if d.TotalDays > 0 {
		return d.TotalDays
	}
	n := 0
	for _, st := range d.Steps {
		n += st.Days
	}
	return n
}

// canonical is the stored form of a validated definition; two Define calls with the same
// key and version must give the same bytes.
func (d Definition) canonical() string {
	b, _ := json.Marshal(d) // plain strings and ints: cannot fail
	return string(b)
}

// decodeStored reads a definition body written by Define.
func decodeStored(body string) (Definition, error) {
	var d Definition
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		return Definition{}, fmt.Errorf("decode stored definition: %w", err)
	}
	if len(d.Steps) == 0 {
		return Definition{}, errors.New("stored definition has no steps")
	}
	return d, nil
}
