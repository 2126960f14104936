package govservice

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Pack is the validated content of a pack: its service items and bundles, each sorted by code.
type Pack struct {
	Items   []Item
	Bundles []Bundle
}

// Item returns the pack's item with code.
func (p Pack) Item(code string) (Item, bool) {
	i := slices.IndexFunc(p.Items, func(it Item) bool { return it.Code == code })
	if i < 0 {
		return Item{}, false
	}
	return p.Items[i], true
}

// Validate checks a pack built by hand as LoadPack checks files, naming each entry by its
// code ("services/<code>", "bundles/<code>") instead of a file.
func (p Pack) Validate() error {
	var ps Problems
	codes := map[string]bool{}
	for _, it := range p.Items {
		file := ServicesDir + "/" + it.Code
		add := func(path, zh, en string) { ps.add(file, path, zh, en) }
		validateItem(&it, add)
		if codes[it.Code] {
			add("code", fmt.Sprintf("事项编码“%s”重复", it.Code), fmt.Sprintf("item code %q appears twice", it.Code))
		}
		codes[it.Code] = true
	}
	codes = map[string]bool{}
	for _, b := range p.Bundles {
		file := BundlesDir + "/" + b.Code
		add := func(path, zh, en string) { ps.add(file, path, zh, en) }
		validateBundle(&b, p, add)
		if codes[b.Code] {
			add("code", fmt.Sprintf("“一件事”编码“%s”重复", b.Code), fmt.Sprintf("bundle code %q appears twice", b.Code))
		}
		codes[b.Code] = true
	}
	return ps.Err()
}

// Directories of a pack that hold the catalogue, one JSON document per file.
const (
	ServicesDir = "services"
	BundlesDir  = "bundles"
)

// Problem is one thing wrong in a pack: the file, the JSON path within it, and what.
type Problem struct {
	File string    `json:"file"`
	Path string    `json:"path"`
	Msg  i18n.Text `json:"message"`
}

func (p Problem) String() string {
	where := p.File
	if p.Path != "" {
		where += ": " + p.Path
	}
	return where + ": " + p.Msg.String()
}

// Problems are everything wrong in a pack, in file order.
type Problems []Problem

func (ps *Problems) add(file, path, zh, en string) {
	*ps = append(*ps, Problem{File: file, Path: path, Msg: i18n.T(zh, en)})
}

// Error lists every problem, one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// maxListed bounds the problems spelled out in the user-facing message; Problems holds all.
const maxListed = 20

// Err is nil without problems, else an ErrPackInvalid whose message lists them (the first
// maxListed) in both languages, with Problems as its cause (errors.As finds them).
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	var zh, en []string
	for i, p := range ps {
		if i == maxListed {
			zh = append(zh, fmt.Sprintf("……另有 %d 处问题", len(ps)-maxListed))
			en = append(en, fmt.Sprintf("… and %d more problems", len(ps)-maxListed))
			break
		}
		where := strings.TrimSuffix(p.File+": "+p.Path, ": ")
		zh = append(zh, where+": "+p.Msg.ZH)
		en = append(en, where+": "+p.Msg.EN)
	}
	e := ErrPackInvalid.Wrap(ps)
	e.Msg = i18n.T(fmt.Sprintf("事项包有 %d 处问题：\n%s", len(ps), strings.Join(zh, "\n")),
		fmt.Sprintf("the pack has %d problems:\n%s", len(ps), strings.Join(en, "\n")))
	e.Field = strings.TrimSuffix(ps[0].File+": "+ps[0].Path, ": ")
	return e
}

var (
	fileNamePattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}\.json$`)
	bundleCodePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{1,63}$`)
	roleNamePattern   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
)

// maxDocument bounds one pack file: items with their forms are a few tens of kilobytes.
const maxDocument = 1 << 20

// LoadPack reads and validates the catalogue of a pack: services/*.json (one item per file)
// and bundles/*.json (one bundle per file); other files are ignored. It reports every problem
// at once, each naming the file and the JSON path, as Problems inside an ErrPackInvalid.
func LoadPack(fsys fs.FS) (Pack, error) {
	var ps Problems
	var p Pack
	itemFiles := map[string]string{} // code → file
	names := map[string]string{}     // name → file
	for _, file := range packFiles(fsys, ServicesDir, &ps, true) {
		var it Item
		if !decodeFile(fsys, file, &it, &ps) {
			continue
		}
		add := func(path, zh, en string) { ps.add(file, path, zh, en) }
		validateItem(&it, add)
		if it.Code != "" {
			if prev, dup := itemFiles[it.Code]; dup {
				add("code", fmt.Sprintf("事项编码“%s”已在 %s 中使用", it.Code, prev), fmt.Sprintf("item code %q is already used in %s", it.Code, prev))
				continue
			}
			itemFiles[it.Code] = file
		}
		if it.Name != "" {
			if prev, dup := names[it.Name]; dup {
				add("name", fmt.Sprintf("事项名称“%s”已在 %s 中使用", it.Name, prev), fmt.Sprintf("item name %q is already used in %s", it.Name, prev))
			}
			names[it.Name] = file
		}
		p.Items = append(p.Items, it)
	}
	slices.SortFunc(p.Items, func(a, b Item) int { return strings.Compare(a.Code, b.Code) })

	bundleFiles := map[string]string{}
	for _, file := range packFiles(fsys, BundlesDir, &ps, false) {
		var b Bundle
		if !decodeFile(fsys, file, &b, &ps) {
			continue
		}
		add := func(path, zh, en string) { ps.add(file, path, zh, en) }
		validateBundle(&b, p, add)
		if b.Code != "" {
			if prev, dup := bundleFiles[b.Code]; dup {
				add("code", fmt.Sprintf("“一件事”编码“%s”已在 %s 中使用", b.Code, prev), fmt.Sprintf("bundle code %q is already used in %s", b.Code, prev))
				continue
			}
			bundleFiles[b.Code] = file
		}
		p.Bundles = append(p.Bundles, b)
	}
	slices.SortFunc(p.Bundles, func(a, b Bundle) int { return strings.Compare(a.Code, b.Code) })
	if err := ps.Err(); err != nil {
		return Pack{}, err
	}
	return p, nil
}

// packFiles lists the JSON files of dir, sorted.
func packFiles(fsys fs.FS, dir string, ps *Problems, required bool) []string {
	entries, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil
	}
	if err != nil {
		ps.add(dir, "", "无法读取目录："+err.Error(), "cannot read the directory: "+err.Error())
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".json" {
			continue
		}
		file := path.Join(dir, e.Name())
		if !fileNamePattern.MatchString(e.Name()) {
			ps.add(file, "", "文件名应为小写字母、数字和连字符组成的简短标识，加 .json",
				"the file name must be a short slug of lower-case letters, digits and hyphens, then .json")
			continue
		}
		out = append(out, file)
	}
	return out
}

// decodeFile reads one JSON document strictly: unknown properties and trailing data are
// refused, and a syntax error names its line and column.
func decodeFile(fsys fs.FS, file string, v any, ps *Problems) bool {
	f, err := fsys.Open(file)
	if err != nil {
		ps.add(file, "", "无法读取文件："+err.Error(), "cannot read the file: "+err.Error())
		return false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDocument+1))
	if err != nil {
		ps.add(file, "", "无法读取文件："+err.Error(), "cannot read the file: "+err.Error())
		return false
	}
	if len(data) > maxDocument {
		ps.add(file, "", "文件超过 1 MiB", "the file is larger than 1 MiB")
		return false
	}
	if err := decodeStrict(data, v); err != nil {
		zh, en := describeJSONError(data, err)
		ps.add(file, "", zh, en)
		return false
	}
	return true
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON document")
	}
	return nil
}

// describeJSONError says where a decoding error is, by line and column when known.
func describeJSONError(data []byte, err error) (string, string) {
	var off int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
		if typ.Field != "" {
			return fmt.Sprintf("%s 的类型应为 %s", typ.Field, typ.Type), fmt.Sprintf("%s must be of type %s", typ.Field, typ.Type)
		}
	}
	if off >= 0 && off <= int64(len(data)) {
		line := bytes.Count(data[:off], []byte("\n")) + 1
		col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
		return fmt.Sprintf("第 %d 行第 %d 列：JSON 无法解析（%v）", line, col, err),
			fmt.Sprintf("line %d, column %d: invalid JSON (%v)", line, col, err)
	}
	return fmt.Sprintf("JSON 无法解析（%v）", err), fmt.Sprintf("invalid JSON (%v)", err)
}

// departmentKnown reports whether code is a standard department kind.
func departmentKnown(code string) bool {
	for _, k := range org.DepartmentKinds {
		if k.Code == code {
			return true
		}
	}
	return false
}

func licenseKnown(t string) bool { return t == "" || slices.Contains(LicenseTypes, t) }

func required(add func(path, zh, en string), path, value, zh, en string) {
	if strings.TrimSpace(value) == "" {
		add(path, "缺少"+zh, en+" is missing")
	}
}

// maxName bounds names shown in lists and on certificates.
const maxName = 100

// validateItem checks one item against the P5 contract and the catalogue's rules.
func validateItem(it *Item, add func(path, zh, en string)) {
	if it.Version != 0 || it.Active || it.UpdatedAt != nil {
		add("", "version、active、updated_at 由系统维护，事项包中不能填写", "version, active and updated_at are kept by the system; a pack must not set them")
	}
	if c, err := ParseItemCode(it.Code); err != nil {
		e, _ := i18n.As(err)
		add("code", e.Msg.ZH, e.Msg.EN)
	} else if _, ok := Types[it.Type]; ok && c.Type != it.Type {
		add("code", fmt.Sprintf("事项编码的类型代码 %s 表示“%s”，与事项类型“%s”不符", c.TypeCode, c.Type, it.Type),
			fmt.Sprintf("the code's type digits %s mean %s, not the item's type %s", c.TypeCode, c.Type, it.Type))
	}
	required(add, "name", it.Name, "事项名称", "the name")
	required(add, "name_en", it.NameEn, "英文名称", "the English name")
	if utf8.RuneCountInString(it.Name) > maxName {
		add("name", fmt.Sprintf("事项名称不能超过 %d 个字", maxName), fmt.Sprintf("the name is limited to %d characters", maxName))
	}
	if _, ok := Types[it.Type]; !ok {
		add("type", fmt.Sprintf("未知的事项类型“%s”", it.Type), fmt.Sprintf("unknown item type %q", it.Type))
	}
	if !departmentKnown(it.Department) {
		add("department", fmt.Sprintf("未知的部门类别“%s”", it.Department), fmt.Sprintf("unknown department kind %q", it.Department))
	}
	if _, ok := Levels[it.Level]; !ok {
		add("level", fmt.Sprintf("行使层级应为 province、city 或 county，而不是“%s”", it.Level), fmt.Sprintf("the level must be province, city or county, not %q", it.Level))
	}
	if len(it.LegalBasis) == 0 {
		add("legal_basis", "缺少设定依据", "the legal basis is missing")
	}
	for i, b := range it.LegalBasis {
		required(add, fmt.Sprintf("legal_basis[%d]", i), b, "设定依据", "the legal basis")
	}
	required(add, "conditions", it.Conditions, "受理条件", "the conditions")
	if it.StatutoryDays < 1 {
		add("statutory_days", "法定办结时限应为正整数（工作日）", "the statutory limit must be a positive number of working days")
	}
	if it.PromisedDays < 1 {
		add("promised_days", "承诺办结时限应为正整数（工作日）", "the promised limit must be a positive number of working days")
	} else if it.PromisedDays > it.StatutoryDays && it.StatutoryDays >= 1 {
		add("promised_days", fmt.Sprintf("承诺时限 %d 个工作日超过法定时限 %d 个工作日", it.PromisedDays, it.StatutoryDays),
			fmt.Sprintf("the promised limit (%d working days) exceeds the statutory limit (%d)", it.PromisedDays, it.StatutoryDays))
	}
	validateMaterials(it.Materials, add)
	for i, f := range it.Fees {
		p := fmt.Sprintf("fees[%d]", i)
		required(add, p+".name", f.Name, "收费项目名称", "the fee's name")
		if f.AmountFen < 0 {
			add(p+".amount_fen", "收费金额不能为负数", "a fee cannot be negative")
		}
		if f.AmountFen > 0 {
			required(add, p+".basis", f.Basis, "收费依据", "the fee's basis")
		}
	}
	validateSteps(it, add)
	validateChannels(it, add)
	required(add, "result.name", it.Result.Name, "办理结果名称", "the result's name")
	if !licenseKnown(it.Result.LicenseType) {
		add("result.license_type", fmt.Sprintf("未知的电子证照类型“%s”", it.Result.LicenseType), fmt.Sprintf("unknown e-license type %q", it.Result.LicenseType))
	}
	for i, q := range it.FAQ {
		required(add, fmt.Sprintf("faq[%d].q", i), q.Q, "问题", "the question")
		required(add, fmt.Sprintf("faq[%d].a", i), q.A, "回答", "the answer")
	}
	validateKeywords(it.Keywords, add)
	for i, k := range it.Applicants {
		if k != authz.Citizen && k != authz.Enterprise {
			add(fmt.Sprintf("applicants[%d]", i), "申请人类别应为 citizen 或 enterprise", "an applicant kind must be citizen or enterprise")
		}
	}
	checkForm(it.Form, "form", add)
}

func validateMaterials(ms []Material, add func(path, zh, en string)) {
	keys := map[string]bool{}
	for i, m := range ms {
		p := fmt.Sprintf("materials[%d]", i)
		switch {
		case !keyPattern.MatchString(m.Key):
			add(p+".key", "材料标识应为小写字母开头的字母、数字和下划线", "the material key must be lower-case letters, digits and underscores, starting with a letter")
		case keys[m.Key]:
			add(p+".key", fmt.Sprintf("材料标识“%s”重复", m.Key), fmt.Sprintf("material key %q appears twice", m.Key))
		}
		keys[m.Key] = true
		required(add, p+".name", m.Name, "材料名称", "the material's name")
		required(add, p+".name_en", m.NameEn, "材料英文名称", "the material's English name")
		if !licenseKnown(m.LicenseType) {
			add(p+".license_type", fmt.Sprintf("未知的电子证照类型“%s”", m.LicenseType), fmt.Sprintf("unknown e-license type %q", m.LicenseType))
		}
	}
}

func validateSteps(it *Item, add func(path, zh, en string)) {
	if len(it.Steps) == 0 {
		add("steps", "至少应有一个办理环节", "the item needs at least one step")
	}
	keys := map[string]bool{}
	total := 0
	for i, s := range it.Steps {
		p := fmt.Sprintf("steps[%d]", i)
		switch {
		case !keyPattern.MatchString(s.Key):
			add(p+".key", "环节标识应为小写字母开头的字母、数字和下划线", "the step key must be lower-case letters, digits and underscores, starting with a letter")
		case keys[s.Key]:
			add(p+".key", fmt.Sprintf("环节标识“%s”重复", s.Key), fmt.Sprintf("step key %q appears twice", s.Key))
		}
		keys[s.Key] = true
		required(add, p+".name", s.Name, "环节名称", "the step's name")
		if s.Role != "" && !roleNamePattern.MatchString(s.Role) {
			add(p+".role", fmt.Sprintf("角色“%s”不是有效的角色名", s.Role), fmt.Sprintf("%q is not a valid role name", s.Role))
		}
		if s.Days < 1 {
			add(p+".days", "环节时限应为正整数（工作日）", "a step's limit must be a positive number of working days")
		}
		total += s.Days
	}
	// The steps' clocks run inside the promise: together they may not exceed it.
	if it.PromisedDays >= 1 && total > it.PromisedDays {
		add("steps", fmt.Sprintf("各环节时限合计 %d 个工作日，超过承诺时限 %d 个工作日", total, it.PromisedDays),
			fmt.Sprintf("the steps take %d working days together, more than the promised %d", total, it.PromisedDays))
	}
}

func validateChannels(it *Item, add func(path, zh, en string)) {
	if len(it.Channels) == 0 {
		add("channels", "至少应有一个办理渠道", "the item needs at least one channel")
	}
	seen := map[string]bool{}
	for i, c := range it.Channels {
		if _, ok := ChannelNames[c]; !ok {
			add(fmt.Sprintf("channels[%d]", i), fmt.Sprintf("未知的办理渠道“%s”（应为 web、app 或 hall）", c), fmt.Sprintf("unknown channel %q (web, app or hall)", c))
		}
		if seen[c] {
			add(fmt.Sprintf("channels[%d]", i), fmt.Sprintf("办理渠道“%s”重复", c), fmt.Sprintf("channel %q appears twice", c))
		}
		seen[c] = true
	}
	// 零跑动: the whole item is done without going anywhere, so it must be offered online.
	if it.ZeroVisit && !seen[ChannelWeb] && !seen[ChannelApp] {
		add("zero_visit", "“零跑动”事项必须可以网上或掌上办理", "a zero-visit item must be offered on the web or the app")
	}
}

func validateKeywords(kws []string, add func(path, zh, en string)) {
	seen := map[string]bool{}
	for i, k := range kws {
		p := fmt.Sprintf("keywords[%d]", i)
		required(add, p, k, "关键词", "the keyword")
		if seen[k] {
			add(p, fmt.Sprintf("关键词“%s”重复", k), fmt.Sprintf("keyword %q appears twice", k))
		}
		seen[k] = true
	}
}

// validateBundle checks a bundle against the pack's items: members exist, the combined form
// is valid, and each member receives fields that the combined form has, that its own form
// has with the same type, and that cover the member's unconditional required fields without
// a prefill — so the fan-out always yields applications the members' forms accept.
func validateBundle(b *Bundle, p Pack, add func(path, zh, en string)) {
	if b.Version != 0 || b.Active || b.UpdatedAt != nil {
		add("", "version、active、updated_at 由系统维护，事项包中不能填写", "version, active and updated_at are kept by the system; a pack must not set them")
	}
	if !bundleCodePattern.MatchString(b.Code) {
		add("code", "“一件事”编码应为小写字母开头的字母、数字和连字符", "the bundle code must be lower-case letters, digits and hyphens, starting with a letter")
	}
	required(add, "name", b.Name, "名称", "the name")
	required(add, "name_en", b.NameEn, "英文名称", "the English name")
	required(add, "summary", b.Summary, "简介", "the summary")
	if b.Lead != "" && !departmentKnown(b.Lead) {
		add("lead", fmt.Sprintf("未知的部门类别“%s”", b.Lead), fmt.Sprintf("unknown department kind %q", b.Lead))
	}
	validateKeywords(b.Keywords, add)
	if len(b.Items) < 2 {
		add("items", "“一件事”至少应包含两个事项", "a bundle combines at least two items")
	}
	members := map[string]Item{}
	for i, code := range b.Items {
		it, ok := p.Item(code)
		switch {
		case !ok:
			add(fmt.Sprintf("items[%d]", i), fmt.Sprintf("事项“%s”不存在", code), fmt.Sprintf("item %q does not exist", code))
		case members[code].Code != "":
			add(fmt.Sprintf("items[%d]", i), fmt.Sprintf("事项“%s”重复", code), fmt.Sprintf("item %q appears twice", code))
		default:
			members[code] = it
		}
	}
	_, fields := checkForm(b.Form, "form", add)
	for _, code := range b.Items {
		if _, ok := b.Fields[code]; !ok && members[code].Code != "" {
			add("fields", fmt.Sprintf("缺少事项“%s”接收的字段", code), fmt.Sprintf("the fields item %q receives are missing", code))
		}
	}
	codes := make([]string, 0, len(b.Fields))
	for code := range b.Fields {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	for _, code := range codes {
		keys := b.Fields[code]
		fp := "fields." + code
		it, member := members[code]
		if !member {
			if !slices.Contains(b.Items, code) {
				add(fp, fmt.Sprintf("“%s”不是本“一件事”的事项", code), fmt.Sprintf("%q is not an item of this bundle", code))
			}
			continue
		}
		if len(keys) == 0 {
			add(fp, "事项至少应接收一个字段", "an item receives at least one field")
		}
		_, own := checkForm(it.Form, "form", func(string, string, string) {})
		got := map[string]bool{}
		for i, k := range keys {
			kp := fmt.Sprintf("%s[%d]", fp, i)
			bf, inBundle := fields[k]
			if got[k] {
				add(kp, fmt.Sprintf("字段“%s”重复", k), fmt.Sprintf("field %q appears twice", k))
			}
			got[k] = true
			if !inBundle {
				if fields != nil {
					add(kp, fmt.Sprintf("“一件事”表单没有字段“%s”", k), fmt.Sprintf("the bundle form has no field %q", k))
				}
				continue
			}
			of, inItem := own[k]
			switch {
			case !inItem:
				add(kp, fmt.Sprintf("事项“%s”的表单没有字段“%s”", code, k), fmt.Sprintf("the form of item %q has no field %q", code, k))
			case of.Type != bf.Type:
				add(kp, fmt.Sprintf("字段“%s”在“一件事”表单中是 %s，在事项“%s”的表单中是 %s", k, bf.Type, code, of.Type),
					fmt.Sprintf("field %q is %s in the bundle form but %s in the form of item %q", k, bf.Type, of.Type, code))
			}
		}
		for _, k := range mustSupply(it.Form) {
			if !got[k] {
				add(fp, fmt.Sprintf("事项“%s”的必填字段“%s”没有由“一件事”表单提供", code, k),
					fmt.Sprintf("required field %q of item %q is not supplied by the bundle form", k, code))
			}
		}
	}
}

// mustSupply lists the fields of a form that are required, always shown and not prefilled:
// whoever fills the form on the applicant's behalf must supply them.
func mustSupply(raw json.RawMessage) []string {
	var f formDecl
	if json.Unmarshal(raw, &f) != nil {
		return nil
	}
	var out []string
	for _, s := range f.Sections {
		if s.When != nil {
			continue
		}
		for _, fd := range s.Fields {
			if fd.Required && fd.When == nil && fd.Prefill == "" {
				out = append(out, fd.Key)
			}
		}
	}
	return out
}
