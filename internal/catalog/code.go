package catalog

import (
	"fmt"
	"strings"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Class is the first level (类) of the resource-attribute classification of GB/T 21063.4
// as the guide applies it: basic, thematic and departmental resources.
type Class int

const (
	ClassBase       Class = 1 // 基础信息资源
	ClassTheme      Class = 2 // 主题信息资源
	ClassDepartment Class = 3 // 部门信息资源
)

var classes = []label[Class]{
	{ClassBase, i18n.T("基础信息资源", "basic information resources")},
	{ClassTheme, i18n.T("主题信息资源", "thematic information resources")},
	{ClassDepartment, i18n.T("部门信息资源", "departmental information resources")},
}

// Name is the class's display name.
func (c Class) Name() i18n.Text { return nameOf(classes, c) }

// Themes are the second-level items (项) the guide lists under the basic and thematic
// classes, numbered 01… in the order it lists them. Departmental resources use their own
// item and entry numbers (by the body that owns the department), so they are not listed.
var Themes = map[Class][]string{
	ClassBase: {"人口", "法人单位", "自然资源和空间地理", "社会信用", "电子证照"},
	ClassTheme: {"公共服务", "健康保障", "社会保障", "食品药品安全", "安全生产", "价格监管", "能源安全",
		"信用体系", "城乡建设", "社区治理", "生态环保", "应急维稳"},
}

// Classification places a resource in the catalog (信息资源分类): class, item, entry and
// optional sub-entry — the four levels 类、项、目、细目 of GB/T 21063.4.
type Classification struct {
	Class    Class  `json:"class"`               // 类: 1 digit
	Item     string `json:"item"`                // 项: 2 digits
	Entry    string `json:"entry"`               // 目: 3 digits
	SubEntry string `json:"sub_entry,omitempty"` // 细目: 0–9 digits
	// Theme names the item (e.g. 人口); filled from Themes for the basic and thematic
	// classes, free text for departmental resources.
	Theme string `json:"theme,omitempty"`
}

// Prefix is the classification part of a resource code (前段码): 类 + 项 + 目 + 细目.
func (c Classification) Prefix() string {
	return fmt.Sprintf("%d%s%s%s", c.Class, c.Item, c.Entry, c.SubEntry)
}

// String is the classification as departments write it in a sheet: "101001 基础信息资源/人口".
func (c Classification) String() string {
	s := c.Prefix() + " " + c.Class.Name().ZH
	if c.Theme != "" {
		s += "/" + c.Theme
	}
	return s
}

func digitsOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// MaxSubEntry and MaxSequence bound the variable-length parts of a code (the guide leaves
// both 不定长度); a code is at most 1+2+3+9 + 1 + 20 = 36 characters.
const (
	MaxSubEntry = 9
	MaxSequence = 20
)

// ParsePrefix reads the classification part of a code (前段码).
func ParsePrefix(p string) (Classification, error) {
	bad := func(zh, en string) (Classification, error) {
		return Classification{}, invalid("classification", "catalog.classification.invalid", zh, en)
	}
	if len(p) < 6 || len(p) > 6+MaxSubEntry || !digitsOnly(p) {
		return bad("资源分类代码须为 6–15 位数字：类 1 位、项 2 位、目 3 位、细目 0–9 位（GB/T 21063.4）",
			"the classification code must have 6–15 digits: class 1, item 2, entry 3, sub-entry 0–9 (GB/T 21063.4)")
	}
	c := Classification{Class: Class(p[0] - '0'), Item: p[1:3], Entry: p[3:6], SubEntry: p[6:]}
	return c, c.check()
}

// check validates the levels and fills the theme of the basic and thematic classes.
func (c *Classification) check() error {
	bad := func(field, zh, en string) error {
		return invalid("classification."+field, "catalog.classification.invalid", zh, en)
	}
	if c.Class.Name() == (i18n.Text{}) {
		return bad("class", "资源分类的“类”须为 1（基础信息资源）、2（主题信息资源）或 3（部门信息资源）",
			"the class must be 1 (basic), 2 (thematic) or 3 (departmental)")
	}
	if len(c.Item) != 2 || !digitsOnly(c.Item) || c.Item == "00" {
		return bad("item", "资源分类的“项”须为 01–99 的 2 位数字", "the item must be 2 digits, 01–99")
	}
	if len(c.Entry) != 3 || !digitsOnly(c.Entry) {
		return bad("entry", "资源分类的“目”须为 3 位数字", "the entry must be 3 digits")
	}
	if len(c.SubEntry) > MaxSubEntry || !digitsOnly(c.SubEntry) {
		return bad("sub_entry", "资源分类的“细目”须为 0–9 位数字", "the sub-entry must have 0–9 digits")
	}
	if themes, ok := Themes[c.Class]; ok {
		n := int(c.Item[0]-'0')*10 + int(c.Item[1]-'0')
		if n > len(themes) {
			return bad("item", fmt.Sprintf("%s的“项”须为 01–%02d", c.Class.Name().ZH, len(themes)),
				fmt.Sprintf("the item of %s must be 01–%02d", c.Class.Name().EN, len(themes)))
		}
		c.Theme = themes[n-1]
	}
	return nil
}

// ParseCode checks a resource code and returns its classification and sequence.
//
// The structure is the guide's, on the classification of GB/T 21063.4: 前段码 "/" 后段码. The front
// part is the classification — 类 (1 digit), 项 (2), 目 (3), 细目 (variable) — and the back
// part is the resource's sequence code (顺序码, variable). dgov assigns sequences as the
// provider's GB/T 2260 division code followed by a 4-digit running number within that
// classification and division, so every division numbers its own resources and the
// rolled-up provincial catalog stays free of collisions without a central counter.
// Codes assigned elsewhere are accepted as long as the sequence is 1–20 digits.
// Example: 101001/1401000001 — 基础信息资源, 人口 (01), 目 001, 太原市 (140100), No. 1.
func ParseCode(code string) (Classification, string, error) {
	front, back, ok := strings.Cut(code, "/")
	if !ok || back == "" || len(back) > MaxSequence || !digitsOnly(back) {
		return Classification{}, "", invalid("code", "catalog.code.invalid",
			"资源代码格式应为“分类码/顺序码”，如 101001/1401000001：分类码为类、项、目、细目，顺序码为 1–20 位数字",
			"a resource code is \"classification/sequence\", e.g. 101001/1401000001: class, item, entry, sub-entry, then 1–20 digits")
	}
	c, err := ParsePrefix(front)
	if err != nil {
		e, _ := i18n.As(err)
		return c, "", e.WithField("code")
	}
	return c, back, nil
}

// sequenceCode is the back part dgov assigns: division code + running number (≥ 4 digits).
func sequenceCode(division string, n int) string { return fmt.Sprintf("%s%04d", division, n) }
