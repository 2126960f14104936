package pay

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// Receipt is the electronic receipt (财政电子票据) of a paid order, issued in the same
// transaction as the payment and signed (SM2, GB/T 32918, with the default user ID) with the
// node's key. Its numbering follows the 财政电子票据 rules (财政部 财综〔2018〕62号): an
// 8-digit 票据代码 — province (2, GB/T 2260), class and kind (4, Options.ReceiptKind), year
// (2) —, a 10-digit 票据号码 in sequence within the code, and a 6-character 校验码, here the
// first six hex digits of the SM3 of the receipt's content, so a printed receipt can be
// checked by hand against the online one. With the node's public key (published at
// /api/v1/keys) anyone verifies a saved receipt offline: VerifyReceipt.
type Receipt struct {
	Version      int       `json:"v"`
	Code         string    `json:"code"`       // 票据代码
	Number       string    `json:"number"`     // 票据号码
	CheckCode    string    `json:"check_code"` // 校验码
	OrderID      string    `json:"order_id"`
	PaymentCode  string    `json:"payment_code"` // 缴款码
	ItemCode     string    `json:"item_code"`
	PayerName    string    `json:"payer_name"`
	Lines        []Line    `json:"lines"`
	TotalFen     int64     `json:"total_fen"`
	PayeeDeptID  string    `json:"payee_dept_id"`
	PayeeDept    string    `json:"payee_dept"`
	Division     string    `json:"division"`
	Channel      string    `json:"channel"`
	ChannelTxnID string    `json:"channel_txn_id"`
	PaidAt       time.Time `json:"paid_at"`
	IssuedAt     time.Time `json:"issued_at"`
	KeyID        string    `json:"key_id"`
	Signature    []byte    `json:"signature"` // ASN.1 DER SM2 signature (base64 in JSON)
}

const (
	receiptVersion = 1
	receiptDomain  = "dgov-pay-receipt/1"
	maxReceiptJSON = 64 << 10
)

// Errors of receipt verification.
var (
	ErrReceipt = &i18n.Error{Code: "pay.receipt", Status: http.StatusBadRequest,
		Msg: i18n.T("电子票据格式无效", "the electronic receipt is malformed")}
	ErrReceiptAltered = &i18n.Error{Code: "pay.receipt.altered", Status: http.StatusBadRequest,
		Msg: i18n.T("电子票据内容与校验码不符（票据被改动）", "the receipt's content does not match its check code (the receipt was altered)")}
)

// frame encodes fields with 4-byte big-endian length prefixes: SM3 over a concatenation of
// variable fields would not be injective.
func frame(b *bytes.Buffer, fields ...string) {
	for _, f := range fields {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		b.Write(n[:])
		b.WriteString(f)
	}
}

// content is every field of the receipt but its check code, key id and signature.
func (r *Receipt) content() []byte {
	var b bytes.Buffer
	frame(&b, receiptDomain, strconv.Itoa(r.Version), r.Code, r.Number, r.OrderID, r.PaymentCode, r.ItemCode, r.PayerName,
		strconv.FormatInt(r.TotalFen, 10), r.PayeeDeptID, r.PayeeDept, r.Division, r.Channel, r.ChannelTxnID,
		r.PaidAt.UTC().Format(time.RFC3339Nano), r.IssuedAt.UTC().Format(time.RFC3339Nano), strconv.Itoa(len(r.Lines)))
	for _, l := range r.Lines {
		frame(&b, l.Name, strconv.FormatInt(l.AmountFen, 10), l.Basis)
	}
	return b.Bytes()
}

func (r *Receipt) checkCode() string {
	return strings.ToUpper(crypto.SM3Hex(r.content())[:6])
}

// message is what the node signs: the content, the check code and the key id.
func (r *Receipt) message() []byte {
	b := bytes.NewBuffer(r.content())
	frame(b, r.CheckCode, r.KeyID)
	return b.Bytes()
}

// issueReceipt numbers, signs and stores the receipt of o, just paid, inside tx.
func (s *Service) issueReceipt(ctx context.Context, tx *db.Tx, o Order) (Receipt, error) {
	if s.keys == nil {
		return Receipt{}, fmt.Errorf("receipt of %s: no signing keys", o.Code)
	}
	now := s.clock()
	year := now.In(calendar.Beijing).Format("06")
	code := o.Division[:2] + s.opts.ReceiptKind + year
	seq, err := nextSeq(ctx, tx, "receipt:"+code)
	if err != nil {
		return Receipt{}, err
	}
	if seq > 9_999_999_999 {
		return Receipt{}, fmt.Errorf("receipt numbers of %s used up", code)
	}
	r := Receipt{Version: receiptVersion, Code: code, Number: fmt.Sprintf("%010d", seq), OrderID: o.ID, PaymentCode: o.Code,
		ItemCode: o.ItemCode, PayerName: o.PayerName, Lines: o.Lines, TotalFen: o.TotalFen, PayeeDeptID: o.DeptID,
		PayeeDept: o.DeptName, Division: o.Division, Channel: o.Channel, ChannelTxnID: o.ChannelTxnID, PaidAt: *o.PaidAt, IssuedAt: now}
	r.CheckCode = r.checkCode()
	// The key id is part of the signed message: sign again in the rare case the key rotated
	// between reading its id and signing, so the message always names the key that signed.
	for range 3 {
		r.KeyID = s.keys.ActiveKeyID()
		sig, keyID, err := s.keys.Sign(r.message())
		if err != nil {
			return Receipt{}, fmt.Errorf("sign receipt of %s: %w", o.Code, err)
		}
		if keyID == r.KeyID {
			r.Signature = sig
			break
		}
	}
	if r.Signature == nil {
		return Receipt{}, fmt.Errorf("sign receipt of %s: the signing key keeps changing", o.Code)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return Receipt{}, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO pay_receipts (order_id, number, body, issued_at) VALUES (?, ?, ?, ?)`,
		o.ID, r.Code+r.Number, string(body), now); err != nil {
		return Receipt{}, fmt.Errorf("store receipt of %s: %w", o.Code, err)
	}
	return r, nil
}

// Receipt returns the electronic receipt of a paid order the actor may see.
func (s *Service) Receipt(ctx context.Context, actor authz.Subject, orderID string) (Receipt, error) {
	if _, err := s.Get(ctx, actor, orderID); err != nil {
		return Receipt{}, err
	}
	var body string
	err := s.d.QueryRow(ctx, `SELECT body FROM pay_receipts WHERE order_id = ?`, orderID).Scan(&body)
	if isNoRow(err) {
		return Receipt{}, i18n.ErrNotFound
	}
	if err != nil {
		return Receipt{}, fmt.Errorf("receipt of %s: %w", orderID, err)
	}
	return ParseReceipt([]byte(body))
}

// ParseReceipt reads a receipt saved as JSON.
func ParseReceipt(b []byte) (Receipt, error) {
	if len(b) > maxReceiptJSON {
		return Receipt{}, ErrReceipt
	}
	var r Receipt
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Receipt{}, ErrReceipt.Wrap(err)
	}
	if r.Version != receiptVersion || r.KeyID == "" || len(r.Signature) == 0 || r.Number == "" {
		return Receipt{}, ErrReceipt
	}
	return r, nil
}

// VerifyReceipt checks, offline, that r is a receipt the node signed and that nothing in it
// changed, against publicKeyPEM (the node's SM2 public key of r.KeyID).
func VerifyReceipt(r Receipt, publicKeyPEM string) error {
	if r.Version != receiptVersion || len(r.Signature) == 0 {
		return ErrReceipt
	}
	if r.checkCode() != r.CheckCode {
		return ErrReceiptAltered
	}
	return crypto.VerifyWithPublicKeyPEM(publicKeyPEM, r.message(), r.Signature)
}

// VerifyReceipt checks r against the node's own keys, active or retired.
func (s *Service) VerifyReceipt(r Receipt) error {
	if r.Version != receiptVersion || len(r.Signature) == 0 {
		return ErrReceipt
	}
	if r.checkCode() != r.CheckCode {
		return ErrReceiptAltered
	}
	return s.keys.Verify(r.KeyID, r.message(), r.Signature)
}
