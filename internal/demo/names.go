package demo

import "strings"

// Word lists of the generator. They are slices, never maps, so that drawing from them is
// deterministic; weights are integers (no floating point, whose last bits may differ between
// architectures), so a seed gives the same data everywhere.

// weighted is a list of choices with integer weights.
type weighted[T any] struct {
	items  []T
	cum    []int // cumulative weights
	totalW int
}

func newWeighted[T any](items []T, weights []int) weighted[T] {
	if len(items) != len(weights) {
		panic("demo: weights do not match items")
	}
	w := weighted[T]{items: items, cum: make([]int, len(items))}
	for i, x := range weights {
		w.totalW += x
		w.cum[i] = w.totalW
	}
	return w
}

func (w weighted[T]) pick(r intner) T {
	n := r.IntN(w.totalW)
	lo, hi := 0, len(w.cum)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if w.cum[mid] > n {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return w.items[lo]
}

type intner interface{ IntN(n int) int }

func pick[T any](r intner, xs []T) T { return xs[r.IntN(len(xs))] }

// surnames are common Chinese surnames, roughly in order of frequency in Shanxi (王, 张, 李,
// 刘, 赵 lead; 郭, 武, 贾, 田 are more common there than nationally), with a few compound
// surnames of Shanxi origin (令狐; 司马 of 夏县).
var surnames = func() weighted[string] {
	list := strings.Fields(`王 张 李 刘 赵 杨 郭 陈 武 贾 田 梁 孙 高 吴 任 韩 周 马
		胡 段 冯 薛 董 许 程 郝 宋 曹 徐 侯 杜 范 苏 常 卫 史 乔 牛 闫 吕 白 秦 崔 原 申 阎 郑 黄
		石 温 彭 成 樊 姚 康 贺 雷 卢 谢 于 邢 霍 安 袁 丁 魏 唐 朱 罗 蔡 付 姜 孟 尹 裴 柴 邓`)
	weights := make([]int, len(list))
	for i := range list {
		// Zipf-like: the first surnames are far more common than the last.
		weights[i] = 2000 / (i + 4)
	}
	list = append(list, "令狐", "司马", "欧阳", "上官")
	weights = append(weights, 3, 3, 2, 1)
	return newWeighted(list, weights)
}()

// Given-name characters. Each name draws one or two characters from its sex's pool or the
// shared one.
var (
	givenMale = []rune(`伟强军勇杰涛明斌鹏磊超浩宇轩博志建国华平辉刚毅晨亮峰俊鑫
		龙海林波宁彬飞成栋凯晋忠德福贵山川岳峻钢铁`)
	givenFemale = []rune(`芳娜敏静丽艳娟霞玲燕婷颖雪慧琳欣怡佳萱悦梅兰红英秀萍洁琴
		倩璐瑶蕾妍婧茜雯薇晶丹`)
	givenShared = []rune(`文晓春子思嘉一雨安乐新天永立晓明宏云泽浩睿涵`)
)

func cleanRunes(rs []rune) []rune {
	out := rs[:0:0]
	for _, r := range rs {
		if r > ' ' {
			out = append(out, r)
		}
	}
	return out
}

func init() {
	givenMale, givenFemale, givenShared = cleanRunes(givenMale), cleanRunes(givenFemale), cleanRunes(givenShared)
}

// fullName draws a name: surname, then one given character (a third of names) or two.
func fullName(r intner, male bool) string {
	pool := givenFemale
	if male {
		pool = givenMale
	}
	givenChar := func() rune {
		if r.IntN(4) == 0 {
			return pick(r, givenShared)
		}
		return pick(r, pool)
	}
	var b strings.Builder
	b.WriteString(surnames.pick(r))
	first := givenChar()
	b.WriteRune(first)
	if r.IntN(3) != 0 {
		second := givenChar()
		for second == first && r.IntN(2) == 0 { // 婷婷 happens, but not that often
			second = givenChar()
		}
		b.WriteRune(second)
	}
	return b.String()
}

// cityInfo: the 11 prefecture-level cities, with the pinyin initials that prefix their
// demo usernames and their weight, the 2020 census population in 10,000s.
var cities = []struct {
	code, initials string
	pop            int
}{
	{"140100", "ty", 530}, // 太原
	{"140200", "dt", 311}, // 大同
	{"140300", "yq", 132}, // 阳泉
	{"140400", "cz", 318}, // 长治
	{"140500", "jc", 219}, // 晋城
	{"140600", "sz", 159}, // 朔州
	{"140700", "jz", 338}, // 晋中
	{"140800", "yc", 477}, // 运城
	{"140900", "xz", 269}, // 忻州
	{"141000", "lf", 398}, // 临汾
	{"141100", "ll", 340}, // 吕梁
}

// taiyuanCounties: username prefixes of 太原's districts and counties; 阳曲 and 娄烦 get an
// x (县) so that they differ from 阳泉 (yq) and 临汾 (lf).
var taiyuanCounties = []struct{ code, initials string }{
	{"140105", "xd"},  // 小店区
	{"140106", "yz"},  // 迎泽区
	{"140107", "xhl"}, // 杏花岭区
	{"140108", "jcp"}, // 尖草坪区
	{"140109", "wbl"}, // 万柏林区
	{"140110", "jy"},  // 晋源区
	{"140121", "qx"},  // 清徐县
	{"140122", "yqx"}, // 阳曲县
	{"140123", "lfx"}, // 娄烦县
	{"140181", "gj"},  // 古交市
}

// Address parts.
var (
	roads = strings.Fields(`建设路 解放路 人民路 和平路 新华街 胜利街 文化路 迎宾路 朝阳街 东风路
		振兴街 育才路 府西街 府东街 北大街 长风街 学府街 体育路 滨河路 青年路 南环路 北环路 五一路 新建路`)
	villages = strings.Fields(`东关 西关 南街 北街 前进 红旗 新庄 张家庄 李家庄 王家堡 赵家沟
		刘家峪 马家湾 杨家坡 后沟 上庄 下庄 东堡 西堡 中心 柳树湾 榆林 杏园 枣林`)
	mobilePrefixes = strings.Fields(`134 135 136 137 138 139 147 150 151 152 157 158 159 178 182 183
		187 188 130 131 132 155 156 166 175 176 185 186 133 153 173 177 180 181 189 191 199`)
)

// Enterprise name parts: trade names (字号), many after Shanxi places and landmarks.
var tradeNames = strings.Fields(`晋阳 汾河 太行 吕梁 恒山 龙城 并州 三晋 华晋 晋商 鑫源 宏达 兴旺
	瑞丰 泰和 金鼎 万通 盛世 永安 博远 汇丰 天润 中晟 晋泰 云冈 五台 绵山 壶口 晋祠 雁门 乔家
	常家 鹳雀 尧都 舜帝 禹王 黄河 沁河 桑干 滹沱 晋韵 恒信 聚源 福瑞 隆昌 德顺 宏图 昌盛 金石 宝丰`)

// industry is a line of business of a company, with the business scope it registers.
type industry struct{ name, scope string }

var industries = []industry{
	{"新材料科技", "新材料技术研发；技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广；新型金属功能材料销售。"},
	{"煤业", "煤炭开采；煤炭洗选；煤炭及制品销售。（依法须经批准的项目，经相关部门批准后方可开展经营活动）"},
	{"焦化", "焦炭生产、销售；煤焦油、粗苯生产、销售。"},
	{"商贸", "日用百货、五金交电、建筑材料、服装鞋帽销售。"},
	{"建筑工程", "房屋建筑工程、市政公用工程施工；建筑劳务分包。"},
	{"房地产开发", "房地产开发经营；物业管理；非居住房地产租赁。"},
	{"农业开发", "谷物种植；杂粮种植；农产品初加工；农业技术推广服务。"},
	{"物流", "普通货物道路运输；普通货物仓储服务（不含危险化学品）；装卸搬运。"},
	{"餐饮管理", "餐饮服务；餐饮管理；食品销售。"},
	{"信息技术", "软件开发；信息系统集成服务；信息技术咨询服务；数据处理和存储支持服务。"},
	{"文化传媒", "组织文化艺术交流活动；广告设计、代理、制作、发布；会议及展览服务。"},
	{"医药", "药品批发；第二类医疗器械销售；保健食品销售。"},
	{"机械制造", "通用设备制造；矿山机械制造；机械零部件加工及销售。"},
	{"能源", "新能源技术研发；太阳能发电技术服务；风力发电技术服务；合同能源管理。"},
	{"环保科技", "环保技术研发；污水处理及其再生利用；固体废物治理；大气污染治理。"},
	{"食品", "食品生产；食品销售；农副产品收购。"},
	{"醋业", "食醋生产、销售；调味品生产、销售。"},
	{"酒业", "白酒生产、销售；预包装食品销售。"},
	{"旅游开发", "旅游景区开发经营；旅游信息咨询；住宿服务；餐饮服务。"},
	{"电子商务", "互联网销售（除销售需要许可的商品）；网络技术服务；供应链管理服务。"},
}

// shop is what an individual business (个体工商户) does; food shops are named after the
// owner's surname (老王刀削面馆 style: 王记刀削面馆).
type shop struct {
	name, scope string
	food        bool
}

var shops = []shop{
	{"刀削面馆", "餐饮服务；小餐饮。", true},
	{"饺子馆", "餐饮服务；小餐饮。", true},
	{"莜面馆", "餐饮服务；小餐饮。", true},
	{"烧烤店", "餐饮服务；小餐饮。", true},
	{"包子铺", "小餐饮；食品销售。", true},
	{"便利店", "食品销售；日用百货销售；烟草制品零售。", false},
	{"超市", "食品销售；日用百货销售；烟草制品零售。", false},
	{"五金店", "五金产品零售；建筑材料销售。", false},
	{"理发店", "理发服务；美容服务。", false},
	{"手机维修部", "通讯设备修理；电子产品销售。", false},
	{"水果店", "新鲜水果零售；食品销售。", false},
	{"服装店", "服装服饰零售；鞋帽零售。", false},
	{"干洗店", "洗烫服务。", false},
	{"打印部", "打字复印；办公用品销售。", false},
	{"汽车美容店", "洗车服务；汽车装饰用品销售。", false},
	{"建材店", "建筑材料销售；建筑装饰材料销售。", false},
}

// crops of farmers' cooperatives (农民专业合作社), Shanxi specialities among them.
var crops = strings.Fields(`小杂粮种植 红枣种植 核桃种植 苹果种植 蔬菜种植 谷子种植 中药材种植 食用菌种植
	酥梨种植 马铃薯种植 沙棘种植 黄花菜种植 生猪养殖 肉羊养殖 蜜蜂养殖`)

// funds of partnerships (合伙企业).
var funds = []struct{ name, scope string }{
	{"创业投资", "创业投资（限投资未上市企业）；以私募基金从事股权投资、投资管理、资产管理等活动（须在中国证券投资基金业协会完成登记备案后方可从事经营活动）。"},
	{"股权投资", "以私募基金从事股权投资、投资管理、资产管理等活动（须在中国证券投资基金业协会完成登记备案后方可从事经营活动）。"},
	{"企业管理咨询", "企业管理咨询；信息咨询服务（不含许可类信息咨询服务）。"},
}

// Registered capital choices, in 万元 (10,000 yuan): registries see round amounts.
var (
	capitalLLC         = []int64{10, 30, 50, 100, 100, 200, 300, 500, 500, 800, 1000, 1000, 2000, 3000, 5000}
	capitalJointStock  = []int64{1000, 2000, 5000, 8000, 10000, 20000, 50000, 100000}
	capitalSole        = []int64{1, 3, 5, 10, 20, 50, 100}
	capitalPartnership = []int64{100, 500, 1000, 3000, 5000, 10000, 20000}
	capitalIndividual  = []int64{1, 2, 3, 5, 5, 10, 20, 50}
	capitalCooperative = []int64{10, 20, 50, 100, 200, 300, 500}
)
