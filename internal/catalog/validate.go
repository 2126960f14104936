package catalog

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Limits of a record.
const (
	MaxItems     = 2000
	maxName      = 200
	maxSummary   = 4000
	maxCondition = 2000
	maxItemName  = 100
	maxItemDesc  = 1000
	maxLength    = 1 << 30
)

// text trims v and checks presence, length and control characters.
func text(field, zh, en, v string, required bool, maxLen int) (string, *i18n.Error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "" && required:
		return "", invalid(field, "catalog.field.required", zh+"不能为空", en+" is required")
	case !utf8.ValidString(v):
		return "", invalid(field, "catalog.field.encoding", zh+"不是有效的 UTF-8 文本", en+" is not valid UTF-8")
	case utf8.RuneCountInString(v) > maxLen:
		return "", invalid(field, "catalog.field.too_long",
			fmt.Sprintf("%s不能超过 %d 个字符", zh, maxLen), fmt.Sprintf("%s must have at most %d characters", en, maxLen))
	case strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0:
		return "", invalid(field, "catalog.field.control", zh+"含有不可见的控制字符", en+" contains control characters")
	}
	return v, nil
}

// normalize trims and checks a draft against GB/T 21063.3 and the sharing rules, returning
// every problem found (each names its field), so an import can report them all.
func normalize(d *Draft) []*i18n.Error {
	var errs []*i18n.Error
	add := func(e *i18n.Error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	var e *i18n.Error
	d.Name, e = text("name", "资源名称", "the resource name", d.Name, true, maxName)
	add(e)
	d.Summary, e = text("summary", "资源摘要", "the summary", d.Summary, true, maxSummary)
	add(e)
	d.Provider, e = text("provider", "资源提供方", "the provider", d.Provider, false, 100)
	add(e)
	d.ProviderDeptID = strings.TrimSpace(d.ProviderDeptID)
	d.FormatDetail, e = text("format_detail", "资源格式说明", "the format detail", d.FormatDetail, false, 100)
	add(e)

	d.Code = strings.TrimSpace(d.Code)
	cls := d.Classification
	if err := cls.check(); err != nil {
		add(err.(*i18n.Error))
	} else {
		d.Classification = cls
		if d.Code != "" {
			if cc, _, err := ParseCode(d.Code); err != nil {
				add(err.(*i18n.Error))
			} else if cc.Prefix() != cls.Prefix() {
				add(invalid("code", "catalog.code.classification",
					fmt.Sprintf("资源代码的分类码 %s 与资源分类 %s 不一致", cc.Prefix(), cls.Prefix()),
					fmt.Sprintf("the code's classification %s differs from the classification %s", cc.Prefix(), cls.Prefix())))
			}
		}
	}
	if !known(formats, d.Format) {
		add(invalid("format", "catalog.format.invalid", "资源格式须为电子文件、电子表格、数据库、图形图像、流媒体、接口或其他",
			"the format must be file, spreadsheet, database, image, media, api or other"))
	}
	if !known(cycles, d.UpdateCycle) {
		add(invalid("update_cycle", "catalog.update_cycle.invalid", "更新周期须为实时、每日、每周、每月、每季度、每年或不定期",
			"the update cycle must be realtime, daily, weekly, monthly, quarterly, yearly or irregular"))
	}

	d.ShareCondition, e = text("share_condition", "共享条件", "the sharing condition", d.ShareCondition, false, maxCondition)
	add(e)
	switch d.ShareType {
	case ShareUnconditional:
		if d.ShareCondition != "" {
			add(invalid("share_condition", "catalog.share_condition.unexpected", "无条件共享的资源不应填写共享条件",
				"a resource shared unconditionally takes no sharing condition"))
		}
	case ShareConditional:
		if d.ShareCondition == "" && e == nil {
			add(invalid("share_condition", "catalog.share_condition.required", "有条件共享的资源须写明共享条件",
				"a resource shared on conditions must state the conditions"))
		}
	case ShareNone:
		// 《政务信息资源共享管理暂行办法》第九条: 列入不予共享类的须有法律、行政法规或党中央、国务院政策依据.
		if d.ShareCondition == "" && e == nil {
			add(invalid("share_condition", "catalog.share_condition.basis", "不予共享的资源须写明法律、行政法规或党中央、国务院政策依据",
				"a resource that is not shared must state its basis in law, regulation or central policy"))
		}
	default:
		add(invalid("share_type", "catalog.share_type.invalid", "共享类型须为 1（无条件共享）、2（有条件共享）或 3（不予共享）",
			"the sharing type must be 1 (unconditional), 2 (conditional) or 3 (not shared)"))
	}
	switch {
	case !known(openTypes, d.OpenType):
		add(invalid("open_type", "catalog.open_type.invalid", "开放类型须为 1（无条件开放）、2（有条件开放）或 3（不予开放）",
			"the open type must be 1 (open), 2 (open on conditions) or 3 (not open)"))
	case d.ShareType == ShareNone && d.OpenType != OpenNone:
		add(invalid("open_type", "catalog.open_type.not_shared", "不予共享的资源不能向社会开放",
			"a resource that is not shared among departments cannot be open to the public"))
	}

	d.Contact.Name, e = text("contact.name", "联系人", "the contact name", d.Contact.Name, true, 64)
	add(e)
	d.Contact.Phone = strings.TrimSpace(d.Contact.Phone)
	if !phoneOK(d.Contact.Phone) {
		add(invalid("contact.phone", "catalog.contact_phone.invalid", "联系电话须为 7–20 位的电话号码（可含区号、分机号、-、空格和括号）",
			"the contact phone must be a 7–20 character phone number (digits, area code, extension, -, spaces and brackets)"))
	}

	if len(d.Items) == 0 {
		add(invalid("items", "catalog.items.required", "资源至少须有一个信息项", "a resource needs at least one data item"))
	}
	if len(d.Items) > MaxItems {
		add(invalid("items", "catalog.items.too_many", fmt.Sprintf("信息项不能超过 %d 个", MaxItems),
			fmt.Sprintf("a resource has at most %d data items", MaxItems)))
		d.Items = d.Items[:MaxItems]
	}
	seen := map[string]int{}
	for i := range d.Items {
		for _, e := range normalizeItem(&d.Items[i]) {
			add(e.WithField(fmt.Sprintf("items[%d].%s", i, e.Field)))
		}
		it := d.Items[i]
		if it.Sensitive && d.OpenType == OpenUnconditional {
			add(invalid(fmt.Sprintf("items[%d].sensitive", i), "catalog.items.sensitive_open",
				"含敏感信息项的资源不能无条件开放", "a resource with sensitive data items cannot be open unconditionally"))
		}
		if it.Name != "" {
			if j, dup := seen[it.Name]; dup {
				add(invalid(fmt.Sprintf("items[%d].name", i), "catalog.items.duplicate",
					fmt.Sprintf("信息项名称“%s”与第 %d 个信息项重复", it.Name, j+1),
					fmt.Sprintf("data item name %q repeats item %d", it.Name, j+1)))
			}
			seen[it.Name] = i
		}
	}
	return errs
}

func normalizeItem(it *DataItem) []*i18n.Error {
	var errs []*i18n.Error
	var e *i18n.Error
	if it.Name, e = text("name", "信息项名称", "the item name", it.Name, true, maxItemName); e != nil {
		errs = append(errs, e)
	}
	if it.EnglishName, e = text("english_name", "英文名称", "the English name", it.EnglishName, false, maxItemName); e != nil {
		errs = append(errs, e)
	}
	if it.Description, e = text("description", "描述", "the description", it.Description, false, maxItemDesc); e != nil {
		errs = append(errs, e)
	}
	if !known(itemTypes, it.Type) {
		errs = append(errs, invalid("type", "catalog.item_type.invalid",
			"数据类型须为字符型C、数值型N、日期型D、日期时间型T、布尔型B或二进制BY",
			"the data type must be C (character), N (numeric), D (date), T (date-time), B (boolean) or BY (binary)"))
	}
	switch {
	case it.Length < 0 || it.Length > maxLength:
		errs = append(errs, invalid("length", "catalog.item_length.invalid", "长度须为非负整数", "the length must be a non-negative integer"))
	case it.Type == TypeChar && it.Length == 0:
		errs = append(errs, invalid("length", "catalog.item_length.required", "字符型信息项须填写长度", "a character item needs a length"))
	}
	return errs
}

func phoneOK(p string) bool {
	if len(p) < 7 || len(p) > 20 {
		return false
	}
	digits := 0
	for _, c := range p {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case strings.ContainsRune("+-() 转", c):
		default:
			return false
		}
	}
	return digits >= 7
}

// Validate checks a draft without storing it and returns its first problem, or nil.
func Validate(d Draft) error {
	if errs := normalize(&d); len(errs) > 0 {
		return errs[0]
	}
	return nil
}
