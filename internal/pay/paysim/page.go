package paysim

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"

	"github.com/dgov/dgov/internal/pay"
)

// The pay page is the bank's own, self-contained (no external assets, as the node's network
// may be isolated).
var pageTemplate = template.Must(template.New("pay").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>开发银行 · 收银台</title>
<style>body{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;color:#222}
.amount{font-size:2rem;font-weight:bold;color:#c0392b}dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem}
button{font-size:1.2rem;padding:.6rem 2rem;background:#c0392b;color:#fff;border:0;border-radius:.3rem}
.note{color:#666;font-size:.85rem}</style></head><body>
<h1>开发银行收银台 <small class="note">Development bank (simulator)</small></h1>
{{if .Message}}<p id="message" class="{{.State}}">{{.Message}}</p>{{end}}
<p class="amount">¥{{.Yuan}}</p>
<dl><dt>商品</dt><dd>{{.Subject}}</dd><dt>缴款码</dt><dd id="code">{{.Code}}</dd><dt>状态</dt><dd id="state">{{.State}}</dd></dl>
{{if .Payable}}<form method="post"><button type="submit" id="confirm">确认支付</button></form>{{end}}
{{if .ReturnURL}}<p><a id="return" href="{{.ReturnURL}}">返回商户 / back to the merchant</a></p>{{end}}
<p class="note">这是开发用的模拟支付渠道，不会产生真实扣款。This simulator moves no real money.</p>
</body></html>`))

type pageData struct {
	Code, Subject, Yuan, Message, ReturnURL string
	State                                   pay.ChargeState
	Payable                                 bool
}

// Yuan formats fen as yuan with two decimals.
func Yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

func (s *Sim) page(w http.ResponseWriter, code string, status int, msg string) {
	s.mu.Lock()
	c, ok := s.charges[code]
	var d pageData
	if ok {
		d = pageData{Code: code, Subject: c.req.Subject, Yuan: Yuan(c.req.AmountFen), State: c.state, Message: msg,
			Payable: c.state == pay.ChargePending && (c.req.ExpiresAt.IsZero() || s.now().Before(c.req.ExpiresAt))}
		if u, err := url.Parse(c.req.ReturnURL); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			d.ReturnURL = u.String()
		}
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, "no charge with this payment code", http.StatusNotFound)
		return
	}
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, d); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (s *Sim) payPage(w http.ResponseWriter, r *http.Request) {
	s.page(w, r.PathValue("code"), http.StatusOK, "")
}

func (s *Sim) payConfirm(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	if _, err := s.Pay(code); err != nil {
		s.mu.Lock()
		_, known := s.charges[code]
		s.mu.Unlock()
		if !known {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		s.page(w, code, http.StatusConflict, "支付失败："+err.Error())
		return
	}
	s.page(w, code, http.StatusOK, "支付成功 / paid")
}
