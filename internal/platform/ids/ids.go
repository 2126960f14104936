// Package ids validates, parses, generates and masks the identifiers a Chinese government
// service takes from people: the resident identity number (GB 11643-1999), the unified social
// credit code (GB 32100-2015), administrative division codes (GB/T 2260, GB/T 10114) and
// mainland mobile numbers.
//
// Every validation failure is an *i18n.Error with Status 400, a stable Code such as
// "ids.resident.checksum" and a message in Chinese and English that names the rule that
// failed. The Err… variables carry those codes, so callers test with errors.Is.
package ids

import (
	"github.com/dgov/dgov/internal/platform/i18n"
)

// fail builds the detailed error for one rule; it keeps base's code (and so errors.Is
// matches base) but says exactly what was wrong with this input.
func fail(base *i18n.Error, zh, en string, args ...any) error {
	return i18n.Errorf(base.HTTPStatus(), base.Code, zh, en, args...)
}

// provinces are the province-level codes of GB/T 2260 (first two digits of a division code),
// including Taiwan (71), Hong Kong (81) and Macao (82), which the standard lists.
var provinces = map[string]i18n.Text{
	"11": i18n.T("北京市", "Beijing"),
	"12": i18n.T("天津市", "Tianjin"),
	"13": i18n.T("河北省", "Hebei"),
	"14": i18n.T("山西省", "Shanxi"),
	"15": i18n.T("内蒙古自治区", "Inner Mongolia"),
	"21": i18n.T("辽宁省", "Liaoning"),
	"22": i18n.T("吉林省", "Jilin"),
	"23": i18n.T("黑龙江省", "Heilongjiang"),
	"31": i18n.T("上海市", "Shanghai"),
	"32": i18n.T("江苏省", "Jiangsu"),
	"33": i18n.T("浙江省", "Zhejiang"),
	"34": i18n.T("安徽省", "Anhui"),
	"35": i18n.T("福建省", "Fujian"),
	"36": i18n.T("江西省", "Jiangxi"),
	"37": i18n.T("山东省", "Shandong"),
	"41": i18n.T("河南省", "Henan"),
	"42": i18n.T("湖北省", "Hubei"),
	"43": i18n.T("湖南省", "Hunan"),
	"44": i18n.T("广东省", "Guangdong"),
	"45": i18n.T("广西壮族自治区", "Guangxi"),
	"46": i18n.T("海南省", "Hainan"),
	"50": i18n.T("重庆市", "Chongqing"),
	"51": i18n.T("四川省", "Sichuan"),
	"52": i18n.T("贵州省", "Guizhou"),
	"53": i18n.T("云南省", "Yunnan"),
	"54": i18n.T("西藏自治区", "Xizang"),
	"61": i18n.T("陕西省", "Shaanxi"),
	"62": i18n.T("甘肃省", "Gansu"),
	"63": i18n.T("青海省", "Qinghai"),
	"64": i18n.T("宁夏回族自治区", "Ningxia"),
	"65": i18n.T("新疆维吾尔自治区", "Xinjiang"),
	"71": i18n.T("台湾省", "Taiwan"),
	"81": i18n.T("香港特别行政区", "Hong Kong"),
	"82": i18n.T("澳门特别行政区", "Macao"),
}

// ProvinceKnown reports whether code starts with a province-level code of GB/T 2260.
// It is the default DivisionKnown rule for resident identity numbers.
func ProvinceKnown(code string) bool {
	if len(code) < 2 {
		return false
	}
	_, ok := provinces[code[:2]]
	return ok
}

// ProvinceName is the name of the province whose code starts code, or an empty Text.
func ProvinceName(code string) i18n.Text {
	if len(code) < 2 {
		return i18n.Text{}
	}
	return provinces[code[:2]]
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// atoi reads a short run of ASCII digits already checked by isDigits.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
