package exchange

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// ReceiptHeader carries the receipt of a gateway answer: base64url (unpadded) of its JSON.
const ReceiptHeader = "X-Dgov-Receipt"

// Receipt proves what was exchanged: the node signs (SM2, GB/T 32918) the SM3 digest of the
// request's canonical form, the SM3 digest of the response body, the time and its key id.
// The request's own fields travel in the receipt, so a verifier recomputes its digest rather
// than trusting it; with the body and the node's public key (published at /api/v1/keys), a
// saved receipt is checked offline by VerifyReceipt (`dgov verify`).
//
// For a bulk extract the body is the extract's file, byte for byte as downloaded, and the
// request is the call that asked for it (its filters in Target, its Fields and Purpose).
// Version 2 adds Fields to the signed request; version 1 receipts (without) still verify.
type Receipt struct {
	Version   int    `json:"v"`
	RequestID string `json:"request_id"`
	Method    string `json:"method"`
	// Target is the request's escaped path and its query in canonical (sorted) form.
	Target   string `json:"target"`
	ClientID string `json:"client_id"`
	Purpose  string `json:"purpose"`
	Resource string `json:"resource"`
	GrantID  string `json:"grant_id"`
	// BodySM3 is the hex SM3 of the request body (POST lookup), "" for GET.
	BodySM3 string `json:"body_sm3,omitempty"`
	// Fields are the data items the answer carries (version 2).
	Fields      []string  `json:"fields,omitempty"`
	RowCount    int       `json:"row_count"`
	RequestSM3  string    `json:"request_sm3"`  // hex SM3 of the canonical request
	ResponseSM3 string    `json:"response_sm3"` // hex SM3 of the response body, byte for byte
	At          time.Time `json:"at"`
	KeyID       string    `json:"key_id"`
	Signature   []byte    `json:"signature"` // ASN.1 DER SM2 signature (base64 in JSON)
}

const (
	receiptVersion   = 2
	maxReceiptHeader = 16 << 10
)

// Domains of the signed digests, by receipt version.
var (
	requestDomains = map[int]string{1: "dgov-exchange-request/1", 2: "dgov-exchange-request/2"}
	receiptDomains = map[int]string{1: "dgov-exchange-receipt/1", 2: "dgov-exchange-receipt/2"}
)

// Errors of receipt verification.
var (
	ErrReceipt = &i18n.Error{Code: "exchange.receipt", Status: http.StatusBadRequest,
		Msg: i18n.T("回执格式无效", "the receipt is malformed")}
	ErrReceiptRequest = &i18n.Error{Code: "exchange.receipt.request", Status: http.StatusBadRequest,
		Msg: i18n.T("回执中的请求信息与其摘要不符（回执被改动）", "the receipt's request does not match its digest (the receipt was altered)")}
	ErrReceiptBody = &i18n.Error{Code: "exchange.receipt.body", Status: http.StatusBadRequest,
		Msg: i18n.T("响应内容与回执不符（内容被改动）", "the response body does not match the receipt (the body was altered)")}
)

// frame encodes fields with 4-byte big-endian length prefixes: SM3 over a concatenation of
// variable fields would not be injective.
func frame(fields ...string) []byte {
	var b bytes.Buffer
	for _, f := range fields {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		b.Write(n[:])
		b.WriteString(f)
	}
	return b.Bytes()
}

func sm3Hex(b []byte) string {
	h := crypto.SM3(b)
	return hex.EncodeToString(h[:])
}

// canonicalRequest is what the request digest covers.
func (r *Receipt) canonicalRequest() []byte {
	f := []string{requestDomains[r.Version], r.Method, r.Target, r.BodySM3, r.ClientID, r.Purpose, r.RequestID, r.Resource, r.GrantID}
	if r.Version >= 2 {
		f = append(f, string(frame(r.Fields...)))
	}
	return frame(f...)
}

// message is what the node signs: SM3(request) ‖ SM3(response) ‖ time ‖ key id, framed, with
// the row count (so a receipt also proves how many records left).
func (r *Receipt) message() []byte {
	return frame(receiptDomains[r.Version], r.RequestSM3, r.ResponseSM3, r.At.UTC().Format(time.RFC3339Nano), r.KeyID, fmt.Sprint(r.RowCount))
}

// sign fills the digests and the signature.
func (r *Receipt) sign(signer Signer, body []byte) error {
	return r.signDigest(signer, sm3Hex(body))
}

// signDigest signs a response known by its hex SM3 digest (an extract's file, hashed as the
// blob store wrote it).
func (r *Receipt) signDigest(signer Signer, responseSM3 string) error {
	r.Version = receiptVersion
	r.RequestSM3 = sm3Hex(r.canonicalRequest())
	r.ResponseSM3 = responseSM3
	// The key id is part of the signed message: take it before signing by signing twice only
	// if the key rotated in between (rare), so the message always names the key that signed.
	for range 3 {
		r.KeyID = signer.ActiveKeyID()
		sig, keyID, err := signer.Sign(r.message())
		if err != nil {
			return fmt.Errorf("sign receipt: %w", err)
		}
		if keyID == r.KeyID {
			r.Signature = sig
			return nil
		}
	}
	return fmt.Errorf("sign receipt: the signing key keeps changing")
}

// Encode is the header form of the receipt: base64url (unpadded) of its JSON.
func (r Receipt) Encode() string {
	b, _ := json.Marshal(r) // strings, ints, bytes, a time: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseReceipt reads a receipt in header form (base64url JSON) or as plain JSON (a saved file).
func ParseReceipt(s string) (Receipt, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxReceiptHeader*2 {
		return Receipt{}, ErrReceipt
	}
	raw := []byte(s)
	if !strings.HasPrefix(s, "{") {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return Receipt{}, ErrReceipt.Wrap(err)
		}
		raw = b
	}
	var r Receipt
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Receipt{}, ErrReceipt.Wrap(err)
	}
	if !knownVersion(r) || r.KeyID == "" || len(r.Signature) == 0 || r.At.IsZero() {
		return Receipt{}, ErrReceipt
	}
	return r, nil
}

// knownVersion: a receipt of a version this node can check, with only that version's fields.
func knownVersion(r Receipt) bool {
	return r.Version == receiptVersion || (r.Version == 1 && len(r.Fields) == 0)
}

// VerifyReceipt checks, offline, that body is the response the node signed for the request the
// receipt describes: the request fields match their digest, body matches the response digest,
// and the signature verifies with publicKeyPEM (the node's SM2 public key of r.KeyID).
func VerifyReceipt(r Receipt, body []byte, publicKeyPEM string) error {
	return verifyReceipt(r, sm3Hex(body), publicKeyPEM)
}

// VerifyReceiptReader is VerifyReceipt for a body read from body (a large extract file),
// hashed as it streams.
func VerifyReceiptReader(r Receipt, body io.Reader, publicKeyPEM string) error {
	h := sm3.New()
	if _, err := io.Copy(h, body); err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	return verifyReceipt(r, hex.EncodeToString(h.Sum(nil)), publicKeyPEM)
}

func verifyReceipt(r Receipt, bodySM3, publicKeyPEM string) error {
	if !knownVersion(r) || len(r.Signature) == 0 {
		return ErrReceipt
	}
	if sm3Hex(r.canonicalRequest()) != r.RequestSM3 {
		return ErrReceiptRequest
	}
	if bodySM3 != r.ResponseSM3 {
		return ErrReceiptBody
	}
	return crypto.VerifyWithPublicKeyPEM(publicKeyPEM, r.message(), r.Signature)
}

// Signer signs receipts with the node's SM2 key; *crypto.Keyring has it.
type Signer interface {
	Sign(msg []byte) (sig []byte, keyID string, err error)
	ActiveKeyID() string
}
