package ids

import (
	"strings"
	"unicode/utf8"
)

// Masking follows the usual display practice for personal information (GB/T 35273-2020
// de-identification; GB/T 37964-2019): show enough for a person to recognise their own
// record, never enough to reconstruct it. Input too short to mask safely is starred entirely.

// MaskResident keeps the first 6 and last 4 characters of an identity number:
// 140105199001011234 → 140105********1234. The birth date and sequence are hidden.
func MaskResident(s string) string {
	return keepEnds(strings.TrimSpace(s), 6, 4, 15)
}

// MaskMobile keeps the first 3 and last 4 digits: 13812345678 → 138****5678. A valid number
// in any accepted form is normalised first.
func MaskMobile(s string) string {
	if n, err := ValidateMobile(s); err == nil {
		s = n
	}
	return keepEnds(strings.TrimSpace(s), 3, 4, 11)
}

// MaskName keeps the surname and stars the given name, one star per character:
// 张三 → 张*, 欧阳娜娜 → 欧阳**. The surname is the first character, or the first two when
// they form a common compound surname and the name is longer than two characters (a
// two-character name such as 欧阳 is surname 欧 plus given name 阳).
func MaskName(s string) string {
	s = strings.TrimSpace(s)
	r := []rune(s)
	keep := 1
	if len(r) > 2 && compoundSurnames[string(r[:2])] {
		keep = 2
	}
	if len(r) <= keep {
		return s
	}
	return string(r[:keep]) + strings.Repeat("*", len(r)-keep)
}

// compoundSurnames are the common two-character surnames (复姓).
var compoundSurnames = func() map[string]bool {
	m := map[string]bool{}
	for _, s := range strings.Fields(`欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文
		司徒 司空 夏侯 轩辕 令狐 端木 独孤 南宫 西门 百里 呼延 澹台 公冶 太史 申屠 闻人 万俟
		赫连 拓跋 钟离 宗政 濮阳 淳于 单于 仲孙 东郭 南门 羊舌 微生 梁丘 左丘 东门 第五 亓官
		司寇 子车 颛孙 壤驷 公良 漆雕 乐正 公西 巫马 谷梁 段干 闾丘 公羊 鲜于 呼衍`) {
		m[s] = true
	}
	return m
}()

// keepEnds shows head and tail runes of s and stars the middle; s shorter than min runes
// is starred entirely, as showing head+tail of it would give most of it away.
func keepEnds(s string, head, tail, min int) string {
	n := utf8.RuneCountInString(s)
	if n < min {
		return strings.Repeat("*", n)
	}
	r := []rune(s)
	return string(r[:head]) + strings.Repeat("*", n-head-tail) + string(r[n-tail:])
}
