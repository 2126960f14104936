package seal

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/i18n"
)

// Sizes of official seals by 《国务院关于国家行政机关和企业事业单位社会团体印章管理的规定》
// (国发〔1999〕25号): round, a five-pointed star in the centre, the organ's name in Song type
// from left to right around the upper edge; 4.5 cm across for the departments of a provincial
// government, 4.2 cm for those of prefecture and county governments.
const (
	DiameterProvinceMM = 45
	DiameterLocalMM    = 42
)

// Limits of uploaded pictures.
const (
	maxPictureBytes = 256 << 10
	maxPNGSide      = 2000
	maxSealMM       = 100
)

// ErrPicture is an uploaded seal picture that is not a PNG or a plain SVG drawing.
var ErrPicture = &i18n.Error{Code: "seal.picture", Status: http.StatusBadRequest, Field: "picture",
	Msg: i18n.T("印章图片须为 PNG 或不含脚本和外部引用的 SVG（最大 256 KiB）",
		"the seal picture must be a PNG or an SVG without scripts or external references (at most 256 KiB)")}

const sealRed = "#e60012"

// DrawSeal draws the standard red round seal of a department as SVG: a ring, a five-pointed
// star, the department's name along the upper arc, and, for a special seal, its purpose
// (e.g. 行政审批专用章) across the bottom. diameterMM sets the printed size. SVG text needs no
// embedded font: the reader's Song (宋体) face draws it.
func DrawSeal(deptName, purpose string, diameterMM int) []byte {
	const unit = 10.0 // drawing units per millimetre
	d := float64(diameterMM) * unit
	c := d / 2
	border := 1.2 * unit * float64(diameterMM) / DiameterLocalMM
	r := c - border/2

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%dmm" height="%dmm" viewBox="0 0 %s %s">`, diameterMM, diameterMM, num(d), num(d))
	fmt.Fprintf(&b, `<title>%s</title>`, xmlText(strings.TrimSpace(deptName+purpose)))
	fmt.Fprintf(&b, `<g fill="%s" font-family="SimSun, 'Songti SC', STSong, 'Noto Serif CJK SC', 'Source Han Serif SC', serif" font-weight="bold">`, sealRed)
	fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="%s" fill="none" stroke="%s" stroke-width="%s"/>`, num(c), num(c), num(r), sealRed, num(border))

	// The star: about a third of the diameter across.
	b.WriteString(`<path d="`)
	b.WriteString(starPath(c, c, d*0.165))
	b.WriteString(`"/>`)

	// The name around the upper arc, each character upright towards the rim, evenly spaced.
	name := []rune(strings.TrimSpace(deptName))
	if n := len(name); n > 0 {
		font := d * 0.15
		rText := c - border - d*0.02 - font/2 // the glyphs' centre line
		span := math.Min(math.Max(float64(n)*24, 150), 250) * math.Pi / 180
		step := span / float64(n)
		scaleX := 1.0
		if w := rText * step; w < font*0.98 {
			scaleX = w / font / 1.02 // condensed, as engravers do for long names
		}
		rBase := rText - font*0.38 // baseline sits inward of the glyph centre
		for i, ch := range name {
			theta := -math.Pi/2 - span/2 + step*(float64(i)+0.5)
			x, y := c+rBase*math.Cos(theta), c+rBase*math.Sin(theta)
			rot := theta*180/math.Pi + 90
			fmt.Fprintf(&b, `<text font-size="%s" text-anchor="middle" transform="translate(%s %s) rotate(%s) scale(%s 1)">%s</text>`,
				num(font), num(x), num(y), num(rot), num(scaleX), xmlText(string(ch)))
		}
	}

	// The purpose of a special seal, straight across below the star.
	if p := strings.TrimSpace(purpose); p != "" {
		font := d * 0.1
		n := utf8.RuneCountInString(p)
		width := math.Min(float64(n)*font, d*0.56)
		fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="%s" text-anchor="middle" textLength="%s" lengthAdjust="spacingAndGlyphs">%s</text>`,
			num(c), num(c+d*0.3), num(font), num(width), xmlText(p))
	}
	b.WriteString(`</g></svg>`)
	return b.Bytes()
}

// starPath is a regular five-pointed star of circumradius r centred at (cx, cy), one point up.
func starPath(cx, cy, r float64) string {
	inner := r * math.Sin(math.Pi/10) / math.Sin(7*math.Pi/10) // where the edges cross
	var b strings.Builder
	for i := 0; i < 10; i++ {
		rr := r
		if i%2 == 1 {
			rr = inner
		}
		a := -math.Pi/2 + float64(i)*math.Pi/5
		if i == 0 {
			b.WriteString("M")
		} else {
			b.WriteString(" L")
		}
		b.WriteString(num(cx + rr*math.Cos(a)))
		b.WriteByte(' ')
		b.WriteString(num(cy + rr*math.Sin(a)))
	}
	b.WriteString(" Z")
	return b.String()
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// ---- uploaded pictures ----

const svgNS = "http://www.w3.org/2000/svg"

// svgElements are the drawing elements a seal picture may use: shapes, text, groups and
// gradients. Nothing that runs, loads, embeds or links (script, foreignObject, image, a, use
// of outside files, style sheets, animation).
var svgElements = map[string]bool{
	"svg": true, "g": true, "defs": true, "title": true, "desc": true, "path": true, "circle": true, "ellipse": true,
	"rect": true, "line": true, "polyline": true, "polygon": true, "text": true, "tspan": true, "textPath": true,
	"linearGradient": true, "radialGradient": true, "stop": true, "clipPath": true, "mask": true, "use": true,
}

// svgAttrs are the presentation and geometry attributes allowed on them.
var svgAttrs = map[string]bool{
	"id": true, "width": true, "height": true, "viewBox": true, "preserveAspectRatio": true, "version": true,
	"x": true, "y": true, "x1": true, "y1": true, "x2": true, "y2": true, "cx": true, "cy": true, "r": true, "rx": true, "ry": true,
	"fx": true, "fy": true, "d": true, "points": true, "transform": true, "fill": true, "fill-rule": true, "fill-opacity": true,
	"stroke": true, "stroke-width": true, "stroke-opacity": true, "stroke-linecap": true, "stroke-linejoin": true,
	"stroke-miterlimit": true, "stroke-dasharray": true, "opacity": true, "font-family": true, "font-size": true,
	"font-weight": true, "font-style": true, "letter-spacing": true, "text-anchor": true, "dominant-baseline": true,
	"textLength": true, "lengthAdjust": true, "startOffset": true, "dx": true, "dy": true, "rotate": true,
	"offset": true, "stop-color": true, "stop-opacity": true, "gradientUnits": true, "gradientTransform": true,
	"clipPathUnits": true, "clip-path": true, "mask": true, "maskUnits": true, "href": true,
}

// CleanSVG checks an uploaded SVG seal picture and returns it re-written from what was
// allowed: only the drawing elements and attributes above, in the SVG namespace, no
// processing instructions, DOCTYPE, entities, comments, scripts, event handlers, style sheets,
// or references other than to fragments of the picture itself. What is stored is what was
// checked, so the picture can be put inline into a sealed HTML document.
func CleanSVG(in []byte) ([]byte, error) {
	if len(in) > maxPictureBytes {
		return nil, ErrPicture.Wrap(fmt.Errorf("%d bytes", len(in)))
	}
	dec := xml.NewDecoder(bytes.NewReader(in))
	dec.Strict = true
	dec.Entity = nil
	var out bytes.Buffer
	var stack []string
	seenRoot := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, ErrPicture.Wrap(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space != svgNS || !svgElements[t.Name.Local] {
				return nil, ErrPicture.Wrap(fmt.Errorf("element %s:%s", t.Name.Space, t.Name.Local))
			}
			if len(stack) == 0 {
				if seenRoot || t.Name.Local != "svg" {
					return nil, ErrPicture.Wrap(errors.New("the root must be one svg element"))
				}
				seenRoot = true
			}
			if len(stack) >= 32 {
				return nil, ErrPicture.Wrap(errors.New("nested too deep"))
			}
			out.WriteByte('<')
			out.WriteString(t.Name.Local)
			if len(stack) == 0 {
				out.WriteString(` xmlns="` + svgNS + `"`)
			}
			for _, a := range t.Attr {
				name, ok := cleanAttrName(a.Name)
				if !ok {
					if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
						continue // namespace declarations: the root's is written above
					}
					return nil, ErrPicture.Wrap(fmt.Errorf("attribute %s:%s", a.Name.Space, a.Name.Local))
				}
				if !cleanAttrValue(name, a.Value) {
					return nil, ErrPicture.Wrap(fmt.Errorf("attribute %s=%q", name, a.Value))
				}
				out.WriteByte(' ')
				out.WriteString(name)
				out.WriteString(`="`)
				_ = xml.EscapeText(&out, []byte(a.Value))
				out.WriteByte('"')
			}
			out.WriteByte('>')
			stack = append(stack, t.Name.Local)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, ErrPicture
			}
			out.WriteString("</" + stack[len(stack)-1] + ">")
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, ErrPicture.Wrap(errors.New("text outside the svg element"))
				}
				continue
			}
			_ = xml.EscapeText(&out, t)
		case xml.Comment:
			// dropped
		case xml.ProcInst:
			if t.Target != "xml" || seenRoot {
				return nil, ErrPicture.Wrap(fmt.Errorf("processing instruction %q", t.Target))
			}
		case xml.Directive:
			return nil, ErrPicture.Wrap(errors.New("DOCTYPE or other directive"))
		}
	}
	if !seenRoot || len(stack) != 0 {
		return nil, ErrPicture.Wrap(errors.New("no complete svg element"))
	}
	return out.Bytes(), nil
}

func cleanAttrName(n xml.Name) (string, bool) {
	switch n.Space {
	case "":
		if strings.HasPrefix(strings.ToLower(n.Local), "on") {
			return "", false // event handlers
		}
		return n.Local, svgAttrs[n.Local]
	case "http://www.w3.org/1999/xlink":
		if n.Local == "href" {
			return "href", true // SVG 2 takes plain href
		}
	case "http://www.w3.org/XML/1998/namespace":
		if n.Local == "space" {
			return "xml:space", true
		}
	}
	return "", false
}

// cleanAttrValue refuses references outside the picture: href only to "#fragment", url()
// only to "url(#fragment)".
func cleanAttrValue(name, v string) bool {
	if len(v) > 64<<10 {
		return false
	}
	lv := strings.ToLower(v)
	if name == "href" {
		return strings.HasPrefix(v, "#") && !strings.ContainsAny(v, " ()\"'<>")
	}
	for rest := lv; ; {
		i := strings.Index(rest, "url(")
		if i < 0 {
			break
		}
		rest = rest[i+4:]
		if !strings.HasPrefix(strings.TrimLeft(rest, " \t\n'\""), "#") {
			return false
		}
	}
	return !strings.Contains(lv, "javascript:") && !strings.Contains(lv, "data:")
}

// checkPNG checks an uploaded PNG picture: it decodes, and is not too large.
func checkPNG(in []byte) error {
	if len(in) > maxPictureBytes {
		return ErrPicture.Wrap(fmt.Errorf("%d bytes", len(in)))
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(in))
	if err != nil {
		return ErrPicture.Wrap(err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxPNGSide || cfg.Height > maxPNGSide {
		return ErrPicture.Wrap(fmt.Errorf("%d×%d pixels", cfg.Width, cfg.Height))
	}
	if _, err := png.Decode(bytes.NewReader(in)); err != nil {
		return ErrPicture.Wrap(err)
	}
	return nil
}

// Picture is an uploaded seal picture.
type Picture struct {
	Type string // PictureSVG or PicturePNG
	Data []byte
	// WidthMM and HeightMM are the printed size; 0 takes the standard diameter.
	WidthMM, HeightMM int
}

// cleanPicture checks an upload and returns what to store.
func cleanPicture(p Picture, defaultMM int) (Picture, error) {
	if p.WidthMM == 0 {
		p.WidthMM = defaultMM
	}
	if p.HeightMM == 0 {
		p.HeightMM = p.WidthMM
	}
	if p.WidthMM < 10 || p.HeightMM < 10 || p.WidthMM > maxSealMM || p.HeightMM > maxSealMM {
		return p, invalid("picture", "seal.picture_size", "印章尺寸须在 10 至 100 毫米之间", "the seal's size must be 10 to 100 mm")
	}
	switch strings.ToUpper(p.Type) {
	case PictureSVG:
		data, err := CleanSVG(p.Data)
		if err != nil {
			return p, err
		}
		return Picture{Type: PictureSVG, Data: data, WidthMM: p.WidthMM, HeightMM: p.HeightMM}, nil
	case PicturePNG:
		if err := checkPNG(p.Data); err != nil {
			return p, err
		}
		return Picture{Type: PicturePNG, Data: p.Data, WidthMM: p.WidthMM, HeightMM: p.HeightMM}, nil
	}
	return p, ErrPicture.Wrap(fmt.Errorf("type %q", p.Type))
}

// RasterSeal draws the ring and the star of a standard seal as a PNG of size×size pixels
// (4×4 supersampled), for formats that cannot carry SVG. Text is not drawn: that would need an
// embedded CJK font, which the binary does not carry; the SVG picture remains the seal's image.
func RasterSeal(size int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	c := float64(size) / 2
	border := 1.2 / DiameterLocalMM * float64(size)
	rOut, rIn := c, c-border
	star := starPoints(c, c, float64(size)*0.165)
	const ss = 4
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			hit := 0
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					px, py := float64(x)+(float64(sx)+0.5)/ss, float64(y)+(float64(sy)+0.5)/ss
					dist := math.Hypot(px-c, py-c)
					if (dist <= rOut && dist >= rIn) || inPolygon(star, px, py) {
						hit++
					}
				}
			}
			if hit > 0 {
				i := img.PixOffset(x, y)
				img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = 0xe6, 0x00, 0x12, uint8(hit*255/(ss*ss))
			}
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img) // encoding an in-memory image cannot fail
	return b.Bytes()
}

func starPoints(cx, cy, r float64) [][2]float64 {
	inner := r * math.Sin(math.Pi/10) / math.Sin(7*math.Pi/10)
	pts := make([][2]float64, 10)
	for i := range pts {
		rr := r
		if i%2 == 1 {
			rr = inner
		}
		a := -math.Pi/2 + float64(i)*math.Pi/5
		pts[i] = [2]float64{cx + rr*math.Cos(a), cy + rr*math.Sin(a)}
	}
	return pts
}

// inPolygon is the even-odd rule.
func inPolygon(pts [][2]float64, x, y float64) bool {
	in := false
	for i, j := 0, len(pts)-1; i < len(pts); j, i = i, i+1 {
		xi, yi, xj, yj := pts[i][0], pts[i][1], pts[j][0], pts[j][1]
		if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
			in = !in
		}
	}
	return in
}
