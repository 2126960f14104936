package ids

import (
	"strings"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Errors of the unified social credit code (统一社会信用代码); compare with errors.Is.
var (
	ErrCreditLength      = i18n.New("ids.credit.length", "统一社会信用代码应为18位", "unified social credit code must be 18 characters")
	ErrCreditCharset     = i18n.New("ids.credit.charset", "统一社会信用代码含有无效字符（只用数字和除I、O、Z、S、V外的大写字母）", "unified social credit code has an invalid character (digits and capital letters except I, O, Z, S, V)")
	ErrCreditAuthority   = i18n.New("ids.credit.authority", "统一社会信用代码的登记管理部门代码无效", "unified social credit code has an unknown registration authority")
	ErrCreditType        = i18n.New("ids.credit.type", "统一社会信用代码的机构类别代码无效", "unified social credit code has an invalid organisation type")
	ErrCreditDivision    = i18n.New("ids.credit.division", "统一社会信用代码的登记管理机关行政区划码无效", "unified social credit code has an invalid division code")
	ErrCreditOrgChecksum = i18n.New("ids.credit.org_checksum", "统一社会信用代码中组织机构代码的校验码错误", "unified social credit code: the organisation code check character is wrong")
	ErrCreditChecksum    = i18n.New("ids.credit.checksum", "统一社会信用代码校验码错误", "unified social credit code check character is wrong")
)

// CreditCode is a parsed unified social credit code (GB 32100-2015).
type CreditCode struct {
	Code      string // normalised: 18 upper-case characters
	Authority byte   // position 1, registration authority (登记管理部门代码)
	Type      byte   // position 2, organisation type (机构类别代码)
	Division  string // positions 3–8, division of the registering office (登记管理机关行政区划码)
	OrgCode   string // positions 9–17, organisation code (主体标识码) of GB 11714, with its check character
}

// AuthorityText names the registration authority.
func (c CreditCode) AuthorityText() i18n.Text { return authorities[c.Authority].name }

// TypeText names the organisation type, or is empty if the authority defines no such type.
func (c CreditCode) TypeText() i18n.Text { return authorities[c.Authority].types[c.Type] }

type authority struct {
	name  i18n.Text
	types map[byte]i18n.Text
}

// authorities are the registration authority codes of GB 32100-2015 (1, 5, 9, Y) and those
// assigned since, with the organisation types each defines. Types are used for display only:
// the code's validity does not depend on them (see validType).
var authorities = map[byte]authority{
	'1': {i18n.T("机构编制", "institutional establishment"), map[byte]i18n.Text{
		'1': i18n.T("机关", "government organ"),
		'2': i18n.T("事业单位", "public institution"),
		'3': i18n.T("中央编办直接管理机构编制的群众团体", "mass organisation staffed by the central establishment office"),
		'9': i18n.T("其他", "other"),
	}},
	'2': {i18n.T("外交", "foreign affairs"), map[byte]i18n.Text{
		'1': i18n.T("外国常驻新闻机构", "resident foreign news agency"),
		'9': i18n.T("其他", "other"),
	}},
	'3': {i18n.T("司法行政", "judicial administration"), map[byte]i18n.Text{
		'1': i18n.T("律师执业机构", "law firm"),
		'2': i18n.T("公证处", "notary office"),
		'3': i18n.T("基层法律服务所", "grassroots legal service office"),
		'4': i18n.T("司法鉴定机构", "forensic appraisal institution"),
		'5': i18n.T("仲裁委员会", "arbitration commission"),
		'9': i18n.T("其他", "other"),
	}},
	'4': {i18n.T("文化", "culture"), map[byte]i18n.Text{
		'1': i18n.T("外国在华文化中心", "foreign cultural centre in China"),
		'9': i18n.T("其他", "other"),
	}},
	'5': {i18n.T("民政", "civil affairs"), map[byte]i18n.Text{
		'1': i18n.T("社会团体", "social organisation"),
		'2': i18n.T("民办非企业单位", "private non-enterprise unit"),
		'3': i18n.T("基金会", "foundation"),
		'9': i18n.T("其他", "other"),
	}},
	'6': {i18n.T("旅游", "tourism"), map[byte]i18n.Text{
		'1': i18n.T("外国旅游部门常驻代表机构", "resident office of a foreign tourism authority"),
		'2': i18n.T("港澳台地区旅游部门常驻内地（大陆）代表机构", "resident office of a Hong Kong, Macao or Taiwan tourism authority"),
		'9': i18n.T("其他", "other"),
	}},
	'7': {i18n.T("宗教", "religious affairs"), map[byte]i18n.Text{
		'1': i18n.T("宗教活动场所", "place of religious activity"),
		'2': i18n.T("宗教院校", "religious school"),
		'9': i18n.T("其他", "other"),
	}},
	'8': {i18n.T("工会", "trade unions"), map[byte]i18n.Text{
		'1': i18n.T("基层工会", "grassroots trade union"),
		'9': i18n.T("其他", "other"),
	}},
	'9': {i18n.T("工商", "market regulation (industry and commerce)"), map[byte]i18n.Text{
		'1': i18n.T("企业", "enterprise"),
		'2': i18n.T("个体工商户", "individual business"),
		'3': i18n.T("农民专业合作社", "farmers' cooperative"),
	}},
	'A': {i18n.T("中央军委改革和编制办公室", "CMC Office for Reform and Organisational Structure"), map[byte]i18n.Text{
		'1': i18n.T("军队事业单位", "military public institution"),
		'9': i18n.T("其他", "other"),
	}},
	'N': {i18n.T("农业", "agriculture and rural affairs"), map[byte]i18n.Text{
		'1': i18n.T("组级集体经济组织", "group-level collective economic organisation"),
		'2': i18n.T("村级集体经济组织", "village-level collective economic organisation"),
		'3': i18n.T("乡镇级集体经济组织", "township-level collective economic organisation"),
		'9': i18n.T("其他", "other"),
	}},
	'Y': {i18n.T("其他", "other"), map[byte]i18n.Text{
		'1': i18n.T("其他", "other"),
	}},
}

// creditCharset is the GB 32100-2015 code set in value order: digits, then capital letters
// without I, O, Z, S, V (too easily misread as 1, 0, 2, 5, U).
const creditCharset = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// creditValue maps an ASCII byte to its value in creditCharset, or -1.
var creditValue = func() (v [128]int8) {
	for i := range v {
		v[i] = -1
	}
	for i := 0; i < len(creditCharset); i++ {
		v[creditCharset[i]] = int8(i)
	}
	return v
}()

// creditWeights are W_i = 3^(i-1) mod 31 for positions 1–17: GB 32100-2015 computes its
// check character after GB/T 17710 (ISO 7064), modulus 31.
var creditWeights = [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// creditCheck computes position 18 over 17 characters of creditCharset:
// C18 = 31 - (Σ C_i·W_i mod 31), where 31 is written as 0.
func creditCheck(first17 string) byte {
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(creditValue[first17[i]]) * creditWeights[i]
	}
	return creditCharset[(31-sum%31)%31]
}

// orgWeights are the GB 11714-1997 weights for the 8 body characters of an organisation code.
var orgWeights = [8]int{3, 7, 9, 10, 5, 8, 4, 2}

// orgCheck computes the GB 11714-1997 check character of an 8-character body:
// C9 = 11 - (Σ C_i·W_i mod 11), where 10 is written X and 11 is written 0. Letters count
// as A=10 … Z=35 (their order in 0-9A-Z), not as their creditCharset value.
func orgCheck(body string) byte {
	sum := 0
	for i := 0; i < 8; i++ {
		c := body[i]
		v := int(c - '0')
		if c >= 'A' && c <= 'Z' {
			v = int(c-'A') + 10
		}
		sum += v * orgWeights[i]
	}
	switch c := 11 - sum%11; c {
	case 10:
		return 'X'
	case 11:
		return '0'
	default:
		return byte('0' + c)
	}
}

// validType accepts the organisation types 1–9. Every type every authority has defined is
// a digit 1–9; the standard allows letters in principle, but none is assigned, so a letter
// or 0 here is far likelier a misread character than a new type.
func validType(c byte) bool { return c >= '1' && c <= '9' }

// validCreditDivision accepts a 6-digit GB/T 2260 code under a known province, or 100000,
// used by registration offices at national level (e.g. central government bodies).
func validCreditDivision(d string) bool {
	return len(d) == 6 && isDigits(d) && (ProvinceKnown(d) || d == "100000")
}

// ValidateCreditCode validates and parses a unified social credit code (GB 32100-2015).
// Surrounding spaces are ignored and lower-case letters are accepted. Both check characters
// are verified: the organisation code's own (position 17, GB 11714) and the code's (18).
func ValidateCreditCode(s string) (CreditCode, error) {
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n != 18 {
		return CreditCode{}, fail(ErrCreditLength, "统一社会信用代码应为18位，实际为%d位", "unified social credit code must be 18 characters, got %d", n)
	}
	var buf [18]byte
	pos := 0
	for _, r := range s {
		if r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		if r >= 128 || creditValue[r] < 0 {
			return CreditCode{}, fail(ErrCreditCharset, "统一社会信用代码第%d位字符%q无效（只用数字和除I、O、Z、S、V外的大写字母）", "unified social credit code character %d, %q, is not allowed (digits and capital letters except I, O, Z, S, V)", pos+1, string(r))
		}
		buf[pos] = byte(r)
		pos++
	}
	code := string(buf[:])
	if err := checkCreditFields(code); err != nil {
		return CreditCode{}, err
	}
	if want := orgCheck(code[8:16]); code[16] != want {
		return CreditCode{}, fail(ErrCreditOrgChecksum, "统一社会信用代码第17位（组织机构代码校验码）与第9–16位不符，请逐位核对", "unified social credit code character 17 (organisation code check) does not match characters 9–16; check every character")
	}
	if want := creditCheck(code[:17]); code[17] != want {
		return CreditCode{}, fail(ErrCreditChecksum, "统一社会信用代码校验码与前17位不符，请逐位核对", "unified social credit code check character does not match the first 17; check every character")
	}
	return CreditCode{Code: code, Authority: code[0], Type: code[1], Division: code[2:8], OrgCode: code[8:17]}, nil
}

// checkCreditFields checks positions 1–8 of a code already known to be in creditCharset.
func checkCreditFields(code string) error {
	if _, ok := authorities[code[0]]; !ok {
		return fail(ErrCreditAuthority, "统一社会信用代码第1位登记管理部门代码%q无效（应为1–9、A、N或Y）", "unified social credit code character 1, registration authority %q, is unknown (1–9, A, N or Y)", string(code[0]))
	}
	if !validType(code[1]) {
		return fail(ErrCreditType, "统一社会信用代码第2位机构类别代码%q无效（应为1–9）", "unified social credit code character 2, organisation type %q, is invalid (1–9)", string(code[1]))
	}
	if d := code[2:8]; !validCreditDivision(d) {
		return fail(ErrCreditDivision, "统一社会信用代码第3–8位登记管理机关行政区划码%s无效", "unified social credit code characters 3–8, division code %s, are not a known division", d)
	}
	return nil
}

// MakeCreditCode builds a unified social credit code for demo data and tests from the
// registration authority, organisation type, 6-digit division and the 8-character body of
// the organisation code; it computes both check characters. Inputs must be upper-case and
// valid by the same rules as ValidateCreditCode, whose errors it returns otherwise.
func MakeCreditCode(authority, orgType byte, division, orgBody string) (string, error) {
	if len(division) != 6 || len(orgBody) != 8 {
		return "", fail(ErrCreditLength, "行政区划码应为6位、组织机构代码本体应为8位", "division code must be 6 characters and organisation code body 8")
	}
	first16 := string([]byte{authority, orgType}) + division + orgBody
	for i := 0; i < len(first16); i++ {
		if c := first16[i]; c >= 128 || creditValue[c] < 0 {
			return "", fail(ErrCreditCharset, "统一社会信用代码第%d位字符%q无效（只用数字和除I、O、Z、S、V外的大写字母）", "unified social credit code character %d, %q, is not allowed (digits and capital letters except I, O, Z, S, V)", i+1, first16[i:i+1])
		}
	}
	if err := checkCreditFields(first16); err != nil {
		return "", err
	}
	first17 := first16 + string(orgCheck(orgBody))
	return first17 + string(creditCheck(first17)), nil
}
