package paysim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"github.com/dgov/dgov/internal/pay"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/crypto"
)

// ClientOptions configure a Client.
type ClientOptions struct {
	Name         string // the channel's name in our records; default "paysim"
	BaseURL      string // the simulator's URL
	MerchantKey  string
	PublicKeyPEM string // the simulator's SM2 public key
	HTTPClient   *http.Client
}

// Client is the pay.Channel of the simulator's protocol.
type Client struct {
	name, base, merchant string
	pub                  *ecdsa.PublicKey
	hc                   *http.Client
}

var _ pay.Channel = (*Client)(nil)

// NewClient returns the channel that talks to a simulator at o.BaseURL.
func NewClient(o ClientOptions) (*Client, error) {
	if o.Name == "" {
		o.Name = "paysim"
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	u, err := url.Parse(o.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("paysim client: base URL %q: want http(s)://host", o.BaseURL)
	}
	pub, err := crypto.ParsePublicKeyPEM(o.PublicKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("paysim client: %w", err)
	}
	return &Client{name: o.Name, base: strings.TrimRight(o.BaseURL, "/"), merchant: o.MerchantKey, pub: pub, hc: o.HTTPClient}, nil
}

// Client returns a Client of s served at baseURL (tests, development).
func (s *Sim) Client(baseURL string, hc *http.Client) *Client {
	c, err := NewClient(ClientOptions{Name: s.opts.Name, BaseURL: baseURL, MerchantKey: s.opts.MerchantKey, PublicKeyPEM: s.pubPEM, HTTPClient: hc})
	if err != nil {
		panic(err) // our own key and a test server's URL: cannot fail
	}
	return c
}

// Name is the channel's name.
func (c *Client) Name() string { return c.name }

// verify checks the simulator's signature over body.
func (c *Client) verify(header http.Header, body []byte) error {
	sig, err := base64.StdEncoding.DecodeString(header.Get(SignatureHeader))
	if err != nil || len(sig) == 0 {
		return pay.ErrBadSignature.Wrap(errors.New("no signature"))
	}
	if !sm2.VerifyASN1WithSM2(c.pub, nil, body, sig) {
		return pay.ErrBadSignature
	}
	return nil
}

// call makes an API call and decodes its verified answer into out. A 4xx answer with a
// signed error body is a definite refusal (pay.ErrChannelRefused, or ErrChannelPaid for
// "paid"); transport errors and 5xx are pay.ErrChannelUnavailable (outcome unknown).
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.merchant)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return pay.ErrChannelUnavailable.Wrap(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return pay.ErrChannelUnavailable.Wrap(err)
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusUnauthorized {
		return pay.ErrChannelUnavailable.Wrap(fmt.Errorf("%s %s: %s", method, path, resp.Status))
	}
	if err := c.verify(resp.Header, b); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		_ = json.Unmarshal(b, &e)
		if e.Code == "paid" {
			return pay.ErrChannelPaid.Wrap(errors.New(e.Error))
		}
		return pay.ErrChannelRefused.Wrap(fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return pay.ErrBadNotification.Wrap(err)
	}
	return nil
}

// CreateCharge opens a charge.
func (c *Client) CreateCharge(ctx context.Context, req pay.ChargeRequest) (pay.Charge, error) {
	var out pay.Charge
	err := c.call(ctx, http.MethodPost, "/api/charges", req, &out)
	return out, err
}

// CloseCharge closes an unpaid charge.
func (c *Client) CloseCharge(ctx context.Context, code string) error {
	var out pay.ChargeStatus
	return c.call(ctx, http.MethodPost, "/api/charges/"+url.PathEscape(code)+"/close", nil, &out)
}

// QueryCharge asks where a charge stands.
func (c *Client) QueryCharge(ctx context.Context, code string) (pay.ChargeStatus, error) {
	var out pay.ChargeStatus
	err := c.call(ctx, http.MethodGet, "/api/charges/"+url.PathEscape(code), nil, &out)
	return out, err
}

// Refund asks for a refund.
func (c *Client) Refund(ctx context.Context, req pay.RefundRequest) (pay.Txn, error) {
	var out pay.Txn
	err := c.call(ctx, http.MethodPost, "/api/refunds", req, &out)
	return out, err
}

// Statement fetches and parses a day's statement.
func (c *Client) Statement(ctx context.Context, day time.Time) ([]pay.StatementLine, error) {
	d := day.In(calendar.Beijing).Format(time.DateOnly)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/statements/"+d, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.merchant)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, pay.ErrChannelUnavailable.Wrap(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, pay.ErrChannelUnavailable.Wrap(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, pay.ErrChannelUnavailable.Wrap(fmt.Errorf("statement %s: %s", d, resp.Status))
	}
	if err := c.verify(resp.Header, b); err != nil {
		return nil, err
	}
	return pay.ParseStatement(bytes.NewReader(b))
}

// maxNotification bounds a notification's body.
const maxNotification = 16 << 10

// ParseNotification verifies and reads a notification.
func (c *Client) ParseNotification(header http.Header, body []byte) (pay.Txn, error) {
	if len(body) == 0 || len(body) > maxNotification {
		return pay.Txn{}, pay.ErrBadNotification.Wrap(fmt.Errorf("body of %d bytes", len(body)))
	}
	if err := c.verify(header, body); err != nil {
		return pay.Txn{}, err
	}
	return decodeNotification(body)
}

// decodeNotification reads a notification whose signature was verified.
func decodeNotification(body []byte) (pay.Txn, error) {
	var w wireTxn
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return pay.Txn{}, pay.ErrBadNotification.Wrap(err)
	}
	if dec.More() {
		return pay.Txn{}, pay.ErrBadNotification.Wrap(errors.New("trailing data"))
	}
	t := pay.Txn{Kind: pay.TxnKind(w.Type), TxnID: w.TxnID, Code: w.Code, RefundID: w.RefundID, AmountFen: w.AmountFen, At: w.At.UTC()}
	if err := pay.CheckTxn(t); err != nil {
		return pay.Txn{}, pay.ErrBadNotification.Wrap(err)
	}
	return t, nil
}
