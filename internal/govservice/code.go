package govservice

import (
	"fmt"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// ItemCode is a service item's basic code (基本编码) split into its parts.
//
// GB/T 39554.1-2020 gives every item of the basic directory a basic code built from an item
// type code, a main-item (主项) code and a sub-item (子项) code, and derives each implementing
// body's implementation code (实施编码) by prefixing the body's unified social credit code
// (GB 32100). The pack holds basic codes: one item is implemented by many departments of one
// kind, in every city or county. We use the layout
//
//	TT MMMMM SSS BB   (12 digits)
//	TT    item type (TypeCodes)
//	MMMMM main item, 00001–99999
//	SSS   sub-item, 000 when the main item is not divided
//	BB    business handling item (业务办理项), 00 when not divided
//
// The Shanxi pack's codes follow this layout but are illustrative (see packs/shanxi/README.md).
type ItemCode struct {
	Type     string // the item type's name, e.g. 行政许可
	TypeCode string // TT
	Main     string // MMMMM
	Sub      string // SSS
	Handling string // BB
}

// TypeCodes are the two-digit type codes of the item types a pack may declare, in the order
// of the ten kinds of administrative power (许可, 处罚, 强制, 征收, 给付, 检查, 确认, 奖励, 裁决,
// 其他) followed by public services. Types that citizens do not apply for (处罚, 强制, 征收,
// 检查) are not service items and are refused.
var TypeCodes = map[string]string{
	TypeLicensing:    "01",
	TypeBenefit:      "05",
	TypeConfirmation: "07",
	TypeReward:       "08",
	TypeAdjudication: "09",
	TypeOtherPower:   "10",
	TypePublic:       "11",
}

// ItemCodeLen is the length of a basic code.
const ItemCodeLen = 12

// ParseItemCode checks a basic code's layout and splits it.
func ParseItemCode(code string) (ItemCode, error) {
	bad := func(zh, en string) (ItemCode, error) {
		return ItemCode{}, &i18n.Error{Code: "govservice.code", Field: "code",
			Msg: i18n.T(fmt.Sprintf("事项编码“%s”%s", code, zh), fmt.Sprintf("item code %q %s", code, en))}
	}
	if len(code) != ItemCodeLen {
		return bad(fmt.Sprintf("应为 %d 位数字", ItemCodeLen), fmt.Sprintf("must be %d digits", ItemCodeLen))
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return bad(fmt.Sprintf("应为 %d 位数字", ItemCodeLen), fmt.Sprintf("must be %d digits", ItemCodeLen))
		}
	}
	c := ItemCode{TypeCode: code[0:2], Main: code[2:7], Sub: code[7:10], Handling: code[10:12]}
	for name, tc := range TypeCodes {
		if tc == c.TypeCode {
			c.Type = name
		}
	}
	if c.Type == "" {
		return bad("的事项类型代码（前两位）不是可申请的事项类型", "has a type code (first two digits) that is not a type of item one applies for")
	}
	if c.Main == "00000" {
		return bad("的主项代码（第 3–7 位）不能为 00000", "has main-item code 00000 (digits 3–7)")
	}
	return c, nil
}

// String gives the code back.
func (c ItemCode) String() string { return c.TypeCode + c.Main + c.Sub + c.Handling }
