package rating

import "github.com/dgov/dgov/internal/platform/i18n"

// Reason tags (评价标签). The national 好差评 system grades each service on the overall level
// (整体满意度) and, below it, on second-level indicators that differ by channel — online:
// 办事效率, 办事指南精确度, 办事便捷度, 平台操作性; offline: 服务效率, 服务水平, 服务态度 — and
// shows its reasons per level (评价内容根据不同的评价等级分级展示). The exact third-level
// wording of GB/T 39735-2020 could not be verified from the text available to us, so the tags
// below are those indicators phrased as praise (for 4–5 stars) and as criticism (for 1–3 stars:
// at 基本满意 they say what could be better). Codes are stable; names may be reworded.

// Indicator is a second-level indicator a tag belongs to.
type Indicator string

const (
	IndicatorEfficiency  Indicator = "efficiency"  // 办事效率 / 服务效率
	IndicatorGuide       Indicator = "guide"       // 办事指南精确度
	IndicatorConvenience Indicator = "convenience" // 办事便捷度
	IndicatorPlatform    Indicator = "platform"    // 平台操作性
	IndicatorSkill       Indicator = "skill"       // 服务水平
	IndicatorAttitude    Indicator = "attitude"    // 服务态度
)

// IndicatorNames are display names.
var IndicatorNames = map[Indicator]i18n.Text{
	IndicatorEfficiency:  i18n.T("办事效率", "Efficiency"),
	IndicatorGuide:       i18n.T("办事指南精确度", "Accuracy of the guide"),
	IndicatorConvenience: i18n.T("办事便捷度", "Convenience"),
	IndicatorPlatform:    i18n.T("平台操作性", "Ease of the platform"),
	IndicatorSkill:       i18n.T("服务水平", "Competence"),
	IndicatorAttitude:    i18n.T("服务态度", "Attitude"),
}

// Tag is one reason a person may give.
type Tag struct {
	Code      string
	Name      i18n.Text
	Indicator Indicator
	Praise    bool // shown for 4–5 stars; otherwise for 1–3
	Online    bool // offered on the web and app channels
	Offline   bool // offered in the hall and by phone
}

// Tags is every reason tag, praise first.
var Tags = []Tag{
	{Code: "fast", Name: i18n.T("办理速度快", "Handled quickly"), Indicator: IndicatorEfficiency, Praise: true, Online: true, Offline: true},
	{Code: "short_wait", Name: i18n.T("等候时间短", "Short wait"), Indicator: IndicatorEfficiency, Praise: true, Offline: true},
	{Code: "guide_clear", Name: i18n.T("办事指南准确清楚", "Accurate, clear guide"), Indicator: IndicatorGuide, Praise: true, Online: true},
	{Code: "few_materials", Name: i18n.T("材料简便", "Few materials needed"), Indicator: IndicatorConvenience, Praise: true, Online: true, Offline: true},
	{Code: "no_visit", Name: i18n.T("网上办结，不用跑腿", "Done online, no visit"), Indicator: IndicatorConvenience, Praise: true, Online: true},
	{Code: "one_visit", Name: i18n.T("一次办成", "Done in one visit"), Indicator: IndicatorConvenience, Praise: true, Offline: true},
	{Code: "easy_to_use", Name: i18n.T("操作简单方便", "Easy to use"), Indicator: IndicatorPlatform, Praise: true, Online: true},
	{Code: "stable", Name: i18n.T("系统稳定流畅", "The system ran smoothly"), Indicator: IndicatorPlatform, Praise: true, Online: true},
	{Code: "skilled", Name: i18n.T("业务熟练，解答清楚", "Competent, clear answers"), Indicator: IndicatorSkill, Praise: true, Offline: true},
	{Code: "informed_once", Name: i18n.T("一次性告知清楚", "Told everything at once"), Indicator: IndicatorSkill, Praise: true, Offline: true},
	{Code: "friendly", Name: i18n.T("热情耐心", "Friendly and patient"), Indicator: IndicatorAttitude, Praise: true, Offline: true},

	{Code: "slow", Name: i18n.T("办理时间长", "Took too long"), Indicator: IndicatorEfficiency, Online: true, Offline: true},
	{Code: "overdue", Name: i18n.T("超过承诺时限", "Past the promised time limit"), Indicator: IndicatorEfficiency, Online: true, Offline: true},
	{Code: "long_wait", Name: i18n.T("等候时间长", "Long wait"), Indicator: IndicatorEfficiency, Offline: true},
	{Code: "guide_unclear", Name: i18n.T("办事指南不准确、不清楚", "Inaccurate or unclear guide"), Indicator: IndicatorGuide, Online: true},
	{Code: "many_materials", Name: i18n.T("材料繁琐、重复提交", "Too many or repeated materials"), Indicator: IndicatorConvenience, Online: true, Offline: true},
	{Code: "visits", Name: i18n.T("需要多次跑动", "Needed several visits"), Indicator: IndicatorConvenience, Online: true, Offline: true},
	{Code: "hard_to_use", Name: i18n.T("操作复杂", "Hard to use"), Indicator: IndicatorPlatform, Online: true},
	{Code: "unstable", Name: i18n.T("系统卡顿或出错", "The system was slow or failed"), Indicator: IndicatorPlatform, Online: true},
	{Code: "unskilled", Name: i18n.T("业务不熟练，解答不清", "Not competent, unclear answers"), Indicator: IndicatorSkill, Offline: true},
	{Code: "not_informed", Name: i18n.T("未一次性告知", "Not told everything at once"), Indicator: IndicatorSkill, Offline: true},
	{Code: "unfriendly", Name: i18n.T("态度冷淡、推诿", "Cold or evasive"), Indicator: IndicatorAttitude, Offline: true},
	{Code: "improper_charges", Name: i18n.T("违规收费或索要好处", "Improper charges or demands"), Indicator: IndicatorAttitude, Offline: true},
}

var tagByCode = func() map[string]Tag {
	m := make(map[string]Tag, len(Tags))
	for _, t := range Tags {
		m[t.Code] = t
	}
	return m
}()

// TagByCode returns the tag with the code.
func TagByCode(code string) (Tag, bool) { t, ok := tagByCode[code]; return t, ok }

// Offered reports whether the tag is offered on the channel.
func (t Tag) Offered(c Channel) bool {
	if c.Online() {
		return t.Online
	}
	return t.Offline
}

// Fits reports whether the tag belongs to the level: praise for 4–5 stars, criticism for 1–3.
func (t Tag) Fits(l Level) bool { return t.Praise == (l >= Satisfied) }

// TagsFor lists the tags offered on channel c for level l, in display order.
func TagsFor(c Channel, l Level) []Tag {
	var out []Tag
	for _, t := range Tags {
		if t.Offered(c) && t.Fits(l) {
			out = append(out, t)
		}
	}
	return out
}

// TagName is the display name of a tag code (the code itself for an unknown one).
func TagName(code string) i18n.Text {
	if t, ok := tagByCode[code]; ok {
		return t.Name
	}
	return i18n.T(code, code)
}
