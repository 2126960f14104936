package license

import (
	"fmt"
	"net/url"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// defaultVerifyURL serves development; the app sets Options.VerifyURL to the public address.
const defaultVerifyURL = "http://127.0.0.1:8080/license/verify"

// VerifyURL is what a licence's QR code carries: the public verification page with the
// identifier and the short digest (id, d). Scanning it runs VerifyOnline.
func (s *Service) VerifyURL(id, shortDigest string) string {
	base := s.opts.VerifyURL
	if base == "" {
		base = defaultVerifyURL
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "id=" + url.QueryEscape(id) + "&d=" + url.QueryEscape(shortDigest)
}

// ParseVerifyURL reads the identifier and digest back from a scanned verification URL.
func ParseVerifyURL(raw string) (id, digest string, err error) {
	if len(raw) > 2048 {
		return "", "", ErrIdentifier.Wrap(fmt.Errorf("URL of %d bytes", len(raw)))
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", "", ErrIdentifier.Wrap(err)
	}
	q := u.Query()
	pid, err := ParseIdentifier(q.Get("id"))
	if err != nil {
		return "", "", err
	}
	d := strings.ToLower(q.Get("d"))
	if d != "" && (len(d) != 16 || !hexOK(d)) {
		return "", "", ErrIdentifier.Wrap(fmt.Errorf("digest %q", d))
	}
	return pid.String(), d, nil
}

// QRSize is the default side of a QR image in pixels.
const QRSize = 256

// QRCode is the PNG of a QR code for the verification URL of licence id (VerifyURL), size
// pixels square (QRSize when 0), with error correction level M (15%: survives a crease or a
// stamp on a printout).
func (s *Service) QRCode(id, shortDigest string, size int) ([]byte, error) {
	if size <= 0 || size > 2048 {
		size = QRSize
	}
	png, err := qrcode.Encode(s.VerifyURL(id, shortDigest), qrcode.Medium, size)
	if err != nil {
		return nil, fmt.Errorf("QR code of %s: %w", id, err)
	}
	return png, nil
}
