package catalog

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"

	"github.com/dgov/dgov/internal/org/divisions"
)

// DCATOptions configures the DCAT export.
type DCATOptions struct {
	// BaseURL is where the open catalog is served, e.g. https://data.example.gov.cn/open;
	// the catalog is BaseURL/catalog and each dataset BaseURL/datasets/<code with - for />.
	BaseURL string
	// Division names the catalog (its GB/T 2260 name); "" is the province of Shanxi.
	Division string
}

// dcatContext is the JSON-LD context: the prefixes of W3C DCAT v3 and the vocabularies it uses.
var dcatContext = map[string]string{
	"dcat":  "http://www.w3.org/ns/dcat#",
	"dct":   "http://purl.org/dc/terms/",
	"foaf":  "http://xmlns.com/foaf/0.1/",
	"vcard": "http://www.w3.org/2006/vcard/ns#",
	"xsd":   "http://www.w3.org/2001/XMLSchema#",
}

// frequencies maps update cycles to the Dublin Core Collection Description Frequency
// vocabulary that DCAT recommends for dct:accrualPeriodicity.
var frequencies = map[UpdateCycle]string{
	CycleRealtime: "continuous", CycleDaily: "daily", CycleWeekly: "weekly", CycleMonthly: "monthly",
	CycleQuarterly: "quarterly", CycleYearly: "annual", CycleIrregular: "irregular",
}

// accessRights are the EU access-right authority table's IRIs, the usual dct:accessRights values.
var accessRights = map[OpenType]string{
	OpenUnconditional: "http://publications.europa.eu/resource/authority/access-right/PUBLIC",
	OpenConditional:   "http://publications.europa.eu/resource/authority/access-right/RESTRICTED",
}

type ldText struct {
	Value string `json:"@value"`
	Lang  string `json:"@language,omitempty"`
	Type  string `json:"@type,omitempty"`
}

type ldRef struct {
	ID string `json:"@id"`
}

func zh(s string) ldText { return ldText{Value: s, Lang: "zh-CN"} }

// WriteDCAT writes a W3C DCAT v3 catalog in JSON-LD of the published resources among rs
// that are open to the public (无条件开放 as public, 有条件开放 as restricted access); the
// others are left out. Data items are not listed: they belong to the distributions the open
// data platform (D6) adds.
func WriteDCAT(w io.Writer, rs []Resource, opts DCATOptions) error {
	base := strings.TrimRight(opts.BaseURL, "/")
	if base == "" {
		base = "urn:dgov:catalog"
	}
	name := "山西省"
	if d, ok := divisions.Lookup(opts.Division); ok {
		name = d.Name
	}
	datasets := []map[string]any{}
	for _, r := range rs {
		rights, open := accessRights[r.OpenType]
		if !open || r.PublishedAt == nil {
			continue
		}
		ds := map[string]any{
			"@id":                    base + "/datasets/" + strings.ReplaceAll(r.Code, "/", "-"),
			"@type":                  "dcat:Dataset",
			"dct:identifier":         r.Code,
			"dct:title":              zh(r.Name),
			"dct:description":        zh(r.Summary),
			"dct:publisher":          map[string]any{"@type": "foaf:Organization", "foaf:name": zh(r.Provider)},
			"dct:modified":           ldText{Value: r.PublishedAt.In(china).Format(dateLayout), Type: "xsd:date"},
			"dct:accessRights":       ldRef{rights},
			"dct:accrualPeriodicity": ldRef{"http://purl.org/cld/freq/" + frequencies[r.UpdateCycle]},
			"dcat:version":           strconv.Itoa(r.Version),
			"dcat:keyword":           keywords(r),
		}
		contact := map[string]any{"@type": "vcard:Organization", "vcard:fn": zh(r.Provider)}
		if tel := telURI(r.Contact.Phone); tel != "" {
			contact["vcard:hasTelephone"] = ldRef{tel}
		}
		ds["dcat:contactPoint"] = contact
		datasets = append(datasets, ds)
	}
	doc := map[string]any{
		"@context":     dcatContext,
		"@id":          base + "/catalog",
		"@type":        "dcat:Catalog",
		"dct:title":    []ldText{zh(name + "政务数据开放目录"), {Value: name + " open government data catalog", Lang: "en"}},
		"dct:language": ldRef{"http://id.loc.gov/vocabulary/iso639-1/zh"},
		"dcat:dataset": datasets,
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func keywords(r Resource) []ldText {
	out := []ldText{zh(r.Classification.Class.Name().ZH)}
	if r.Classification.Theme != "" {
		out = append(out, zh(r.Classification.Theme))
	}
	return out
}

// telURI makes an RFC 3966 tel: IRI of a phone number (digits, with - as visual separator).
func telURI(phone string) string {
	var b strings.Builder
	for _, c := range phone {
		switch {
		case c >= '0' && c <= '9', c == '+' && b.Len() == 0:
			b.WriteRune(c)
		case c == '-' || c == ' ' || c == '(' || c == ')':
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
				b.WriteByte('-')
			}
		default:
			return "" // an extension or other text: leave the number out rather than mangle it
		}
	}
	s := strings.Trim(b.String(), "-")
	if s == "" {
		return ""
	}
	return "tel:" + s
}

// ExportDCAT writes the public DCAT catalog of division ("" for the whole province): the
// versions in force that are open to the public. It needs no actor — open data is public.
func (s *Service) ExportDCAT(ctx context.Context, w io.Writer, opts DCATOptions) error {
	rs, err := s.OpenResources(ctx, opts.Division)
	if err != nil {
		return err
	}
	return WriteDCAT(w, rs, opts)
}
