package pay

import (
	"context"
	"fmt"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/dgov/dgov/internal/platform/authz"
)

// QRModulePixels is the default size of one QR module in pixels: a phone camera reads it
// from a screen or an A4 print at arm's length.
const QRModulePixels = 6

// QRPNG draws content as a QR code (ISO/IEC 18004, GB/T 18284) in PNG, each module
// modulePixels wide (QRModulePixels when ≤ 0), with the quiet zone. Level M (15 %
// recovery) keeps codes of pay URLs small while surviving a smudged print.
func QRPNG(content string, modulePixels int) ([]byte, error) {
	if modulePixels <= 0 {
		modulePixels = QRModulePixels
	}
	q, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("qr code: %w", err)
	}
	q.DisableBorder = false
	return q.PNG(-modulePixels)
}

// PaymentQR opens (or reuses) the order's charge at channel for its payer and draws the
// "scan to pay" code: its payload is the channel's pay URL.
func (s *Service) PaymentQR(ctx context.Context, actor authz.Subject, orderID, channel string) ([]byte, Checkout, error) {
	c, err := s.StartPayment(ctx, actor, orderID, channel)
	if err != nil {
		return nil, Checkout{}, err
	}
	png, err := QRPNG(c.PayURL, 0)
	return png, c, err
}
