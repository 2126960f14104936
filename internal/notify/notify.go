// Package notify tells citizens and enterprises what happened to their affairs (issue P5
// item 8): in-site messages (站内信) they read in their account, and an SMS through the
// identity engine's gateway when there is a number to send it to.
//
// A message is written inside the transaction of whatever it reports (Send takes the
// caller's *db.Tx), so a message exists exactly when the change does. Its SMS is sent after
// the commit — a phone is not part of a transaction — and, should that fail or the node stop,
// by the periodic job of Jobs, with backoff, up to Options.MaxSMSAttempts.
//
// OnCaseEvent is the bus handler that turns the workflow's case events of service
// applications (ref "application:<id>") into messages to the applicant; bus.HandleOnce makes
// each event one message, however often it is delivered.
package notify

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
	"github.com/dgov/dgov/internal/platform/jobs"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations create the notifications table. It references no other engine's tables.
var Migrations = db.Migrations("notify", migrationFiles, "migrations")

// SMS delivers a text to a mainland mobile number (identity.SMSGateway satisfies it).
type SMS interface {
	Send(ctx context.Context, mobile, text string) error
}

// Options configure the Service.
type Options struct {
	Now func() time.Time // default time.Now
	// Fields seals the SMS number until it is sent; without it, messages carry no SMS.
	Fields *crypto.FieldCipher
	// Application describes an application for OnCaseEvent (the app adapts govservice).
	Application func(ctx context.Context, id string) (Application, error)
	// Definitions names the steps of case definitions for OnCaseEvent (workflow.Service).
	Definitions Definitions
	// Signature starts every SMS (短信签名); default "【山西政务】".
	Signature string
	// MaxSMSAttempts is how often an SMS is tried before it is given up; default 5.
	MaxSMSAttempts int
	// SMSInterval is how often the job of Jobs retries pending SMS; default 1 minute.
	SMSInterval time.Duration
	Log         *slog.Logger // default slog.Default()
}

// Service keeps the messages and sends their SMS.
type Service struct {
	d    *db.DB
	sms  SMS
	opts Options
}

// New returns the notifier on d; sms may be nil (no SMS is sent, messages still are).
func New(d *db.DB, sms SMS, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Signature == "" {
		opts.Signature = "【山西政务】"
	}
	if opts.MaxSMSAttempts <= 0 {
		opts.MaxSMSAttempts = 5
	}
	if opts.SMSInterval <= 0 {
		opts.SMSInterval = time.Minute
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Service{d: d, sms: sms, opts: opts}
}

func (s *Service) clock() time.Time { return db.Now(s.opts.Now()) }

// Message is one message to send.
type Message struct {
	Recipient authz.Subject // Kind and ID: a citizen or an enterprise (or staff)
	Title     i18n.Text
	Body      i18n.Text
	Link      string // a local path, e.g. /account/applications/<id>; "" for none
	// SMSPhone, when set, also sends the message by SMS to this mainland mobile.
	SMSPhone string
	// SMSText is the SMS without signature; default the Chinese body.
	SMSText string
}

// Notification is a message as its recipient reads it.
type Notification struct {
	ID        string     `json:"id"`
	Title     i18n.Text  `json:"title"`
	Body      i18n.Text  `json:"body"`
	Link      string     `json:"link,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ReadAt    *time.Time `json:"read_at,omitempty"`
	SMS       string     `json:"sms,omitempty"` // "", pending, sent or failed
}

// Limits of a message.
const (
	maxTitle   = 200
	maxBody    = 2000
	maxLink    = 500
	maxSMSText = 300
)

// Errors of the notifier.
var (
	ErrInvalid = &i18n.Error{Code: "notify.invalid", Status: http.StatusBadRequest,
		Msg: i18n.T("消息内容不完整或过长", "the message is incomplete or too long")}
	ErrNotFound = &i18n.Error{Code: "notify.not_found", Status: http.StatusNotFound,
		Msg: i18n.T("未找到该消息", "no such message")}
)

func clean(t i18n.Text, limit int) (i18n.Text, bool) {
	t.ZH, t.EN = strings.TrimSpace(t.ZH), strings.TrimSpace(t.EN)
	ok := t.ZH != "" && utf8.RuneCountInString(t.ZH) <= limit && utf8.RuneCountInString(t.EN) <= limit
	return t, ok
}

// Send writes a message inside the caller's transaction and, when it has an SMS number,
// sends the SMS once the transaction commits. It returns the message id.
func (s *Service) Send(ctx context.Context, tx *db.Tx, m Message) (string, error) {
	title, body, err := m.check()
	if err != nil {
		return "", err
	}
	id, now := db.NewID(), s.clock()
	var state, text string
	var phone, next any
	if m.SMSPhone != "" && s.sms != nil && s.opts.Fields != nil {
		mobile, err := ids.ValidateMobile(m.SMSPhone)
		if err != nil {
			return "", err
		}
		sealed, err := s.opts.Fields.Seal(mobile, phoneAAD(id))
		if err != nil {
			return "", fmt.Errorf("seal SMS number: %w", err)
		}
		phone = sealed
		text = strings.TrimSpace(m.SMSText)
		if text == "" {
			text = body.ZH
		}
		if r := []rune(text); len(r) > maxSMSText {
			text = string(r[:maxSMSText-1]) + "…"
		}
		state, next = "pending", now
	}
	if _, err := tx.Exec(ctx, `INSERT INTO notifications (id, recipient_kind, recipient_id, title_zh, title_en, body_zh, body_en, link,
		created_at, sms_state, sms_phone_enc, sms_text, sms_next_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, string(m.Recipient.Kind), m.Recipient.ID, title.ZH, title.EN, body.ZH, body.EN, m.Link, now, state, phone, text, next); err != nil {
		return "", fmt.Errorf("store message: %w", err)
	}
	if state == "pending" {
		// Best effort now; the job retries what this does not deliver.
		tx.AfterCommit(func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
			defer cancel()
			if _, err := s.deliver(sctx, id); err != nil {
				s.opts.Log.Warn("sms notice", "message", id, "err", err)
			}
		})
	}
	return id, nil
}

// check validates a message and returns its trimmed title and body.
func (m Message) check() (i18n.Text, i18n.Text, error) {
	if m.Recipient.Kind == "" || m.Recipient.ID == "" {
		return i18n.Text{}, i18n.Text{}, ErrInvalid.WithField("recipient")
	}
	title, ok := clean(m.Title, maxTitle)
	if !ok {
		return i18n.Text{}, i18n.Text{}, ErrInvalid.WithField("title")
	}
	body, ok := clean(m.Body, maxBody)
	if !ok {
		return i18n.Text{}, i18n.Text{}, ErrInvalid.WithField("body")
	}
	if m.Link != "" && (!strings.HasPrefix(m.Link, "/") || strings.HasPrefix(m.Link, "//") || len(m.Link) > maxLink ||
		strings.ContainsAny(m.Link, "\\\r\n\t ")) {
		return i18n.Text{}, i18n.Text{}, ErrInvalid.WithField("link")
	}
	for _, t := range []i18n.Text{title, body} {
		if !utf8.ValidString(t.ZH+t.EN) || strings.ContainsRune(t.ZH+t.EN, 0) {
			return i18n.Text{}, i18n.Text{}, ErrInvalid.WithField("body")
		}
	}
	return title, body, nil
}

func phoneAAD(id string) string { return "notify.notifications:" + id + ":sms_phone" }

// Page selects a page of an inbox.
type Page struct {
	Before     string // the Next of the previous page; "" for the newest
	Limit      int    // default 20, at most 100
	UnreadOnly bool
}

// Inbox is a page of messages, newest first.
type Inbox struct {
	Messages []Notification `json:"messages"`
	Unread   int            `json:"unread"`
	Next     string         `json:"next,omitempty"`
}

func checkRecipient(r authz.Subject) error {
	if r.Kind == "" || r.ID == "" {
		return i18n.ErrUnauthorized
	}
	return nil
}

// Inbox lists the recipient's messages, newest first, with the count of unread ones.
func (s *Service) Inbox(ctx context.Context, recipient authz.Subject, p Page) (Inbox, error) {
	if err := checkRecipient(recipient); err != nil {
		return Inbox{}, err
	}
	switch {
	case p.Limit <= 0:
		p.Limit = 20
	case p.Limit > 100:
		p.Limit = 100
	}
	q := `SELECT id, title_zh, title_en, body_zh, body_en, link, created_at, read_at, sms_state FROM notifications
		WHERE recipient_kind = ? AND recipient_id = ?`
	args := []any{string(recipient.Kind), recipient.ID}
	if p.UnreadOnly {
		q += ` AND read_at IS NULL`
	}
	if p.Before != "" {
		if len(p.Before) > 64 {
			return Inbox{}, ErrInvalid.WithField("before")
		}
		q += ` AND id < ?`
		args = append(args, p.Before)
	}
	rows, err := s.d.Query(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, p.Limit+1)...)
	if err != nil {
		return Inbox{}, fmt.Errorf("inbox: %w", err)
	}
	defer rows.Close()
	out := Inbox{Messages: []Notification{}}
	for rows.Next() {
		var n Notification
		var read sql.NullTime
		if err := rows.Scan(&n.ID, &n.Title.ZH, &n.Title.EN, &n.Body.ZH, &n.Body.EN, &n.Link, &n.CreatedAt, &read, &n.SMS); err != nil {
			return Inbox{}, fmt.Errorf("inbox: %w", err)
		}
		n.CreatedAt = n.CreatedAt.UTC()
		if read.Valid {
			t := read.Time.UTC()
			n.ReadAt = &t
		}
		out.Messages = append(out.Messages, n)
	}
	if err := rows.Err(); err != nil {
		return Inbox{}, fmt.Errorf("inbox: %w", err)
	}
	rows.Close()
	if len(out.Messages) > p.Limit {
		out.Messages = out.Messages[:p.Limit]
		out.Next = out.Messages[p.Limit-1].ID
	}
	if out.Unread, err = s.Unread(ctx, recipient); err != nil {
		return Inbox{}, err
	}
	return out, nil
}

// Unread counts the recipient's unread messages.
func (s *Service) Unread(ctx context.Context, recipient authz.Subject) (int, error) {
	if err := checkRecipient(recipient); err != nil {
		return 0, err
	}
	var n int
	if err := s.d.QueryRow(ctx, `SELECT COUNT(*) FROM notifications WHERE recipient_kind = ? AND recipient_id = ? AND read_at IS NULL`,
		string(recipient.Kind), recipient.ID).Scan(&n); err != nil {
		return 0, fmt.Errorf("unread messages: %w", err)
	}
	return n, nil
}

// MarkRead marks one of the recipient's messages read; reading it again changes nothing.
// Another recipient's message is ErrNotFound.
func (s *Service) MarkRead(ctx context.Context, recipient authz.Subject, id string) error {
	if err := checkRecipient(recipient); err != nil {
		return err
	}
	res, err := s.d.Exec(ctx, `UPDATE notifications SET read_at = ? WHERE id = ? AND recipient_kind = ? AND recipient_id = ? AND read_at IS NULL`,
		s.clock(), id, string(recipient.Kind), recipient.ID)
	if err != nil {
		return fmt.Errorf("mark message read: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var one int
	err = s.d.QueryRow(ctx, `SELECT 1 FROM notifications WHERE id = ? AND recipient_kind = ? AND recipient_id = ?`,
		id, string(recipient.Kind), recipient.ID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// MarkAllRead marks every unread message of the recipient read and says how many.
func (s *Service) MarkAllRead(ctx context.Context, recipient authz.Subject) (int, error) {
	if err := checkRecipient(recipient); err != nil {
		return 0, err
	}
	res, err := s.d.Exec(ctx, `UPDATE notifications SET read_at = ? WHERE recipient_kind = ? AND recipient_id = ? AND read_at IS NULL`,
		s.clock(), string(recipient.Kind), recipient.ID)
	if err != nil {
		return 0, fmt.Errorf("mark messages read: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// ---- SMS ----

// smsLease is how long a sender holds a pending SMS before another may try it.
const smsLease = 5 * time.Minute

// smsBackoff is the wait before attempt n+1.
func smsBackoff(n int) time.Duration {
	return min(time.Duration(1<<min(n, 10))*time.Minute, 6*time.Hour)
}

// deliver sends one pending SMS if it is due and nobody else is sending it, and reports
// whether it tried.
func (s *Service) deliver(ctx context.Context, id string) (bool, error) {
	now := s.clock()
	res, err := s.d.Exec(ctx, `UPDATE notifications SET sms_attempts = sms_attempts + 1, sms_next_at = ?
		WHERE id = ? AND sms_state = 'pending' AND sms_next_at <= ?`, now.Add(smsLease), id, now)
	if err != nil {
		return false, fmt.Errorf("take SMS %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	var enc []byte
	var text string
	var attempts int
	if err := s.d.QueryRow(ctx, `SELECT sms_phone_enc, sms_text, sms_attempts FROM notifications WHERE id = ?`, id).Scan(&enc, &text, &attempts); err != nil {
		return true, fmt.Errorf("read SMS %s: %w", id, err)
	}
	var sendErr error
	phone, err := s.opts.Fields.Open(enc, phoneAAD(id))
	if err != nil {
		sendErr = err
		attempts = s.opts.MaxSMSAttempts // a number that cannot be opened never will be
	} else {
		sendErr = s.sms.Send(ctx, phone, s.opts.Signature+text)
	}
	done := s.clock()
	switch {
	case sendErr == nil:
		_, err = s.d.Exec(ctx, `UPDATE notifications SET sms_state = 'sent', sms_sent_at = ?, sms_phone_enc = NULL, sms_next_at = NULL, sms_error = ''
			WHERE id = ?`, done, id)
	case attempts >= s.opts.MaxSMSAttempts:
		_, err = s.d.Exec(ctx, `UPDATE notifications SET sms_state = 'failed', sms_phone_enc = NULL, sms_next_at = NULL, sms_error = ? WHERE id = ?`,
			truncate(sendErr.Error(), 500), id)
	default:
		_, err = s.d.Exec(ctx, `UPDATE notifications SET sms_next_at = ?, sms_error = ? WHERE id = ?`,
			done.Add(smsBackoff(attempts)), truncate(sendErr.Error(), 500), id)
	}
	if err != nil {
		return true, fmt.Errorf("record SMS %s: %w", id, err)
	}
	if sendErr != nil {
		return true, fmt.Errorf("send SMS %s (attempt %d): %w", id, attempts, sendErr)
	}
	return true, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// SMSResult counts what DeliverSMS did.
type SMSResult struct {
	Sent   int `json:"sent"`
	Failed int `json:"failed"` // attempts that failed this time (retried later, or given up)
}

// DeliverSMS sends every pending SMS that is due; the job of Jobs runs it. Several nodes may
// run it at once: each SMS is taken by one.
func (s *Service) DeliverSMS(ctx context.Context) (SMSResult, error) {
	var res SMSResult
	if s.sms == nil || s.opts.Fields == nil {
		return res, nil
	}
	rows, err := s.d.Query(ctx, `SELECT id FROM notifications WHERE sms_state = 'pending' AND sms_next_at <= ? ORDER BY sms_next_at LIMIT 200`, s.clock())
	if err != nil {
		return res, fmt.Errorf("pending SMS: %w", err)
	}
	var due []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return res, fmt.Errorf("pending SMS: %w", err)
		}
		due = append(due, id)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return res, fmt.Errorf("pending SMS: %w", err)
	}
	rows.Close()
	for _, id := range due {
		tried, err := s.deliver(ctx, id)
		switch {
		case err != nil && ctx.Err() != nil:
			return res, err
		case err != nil:
			s.opts.Log.Warn("sms notice", "message", id, "err", err)
			res.Failed++
		case tried:
			res.Sent++
		}
	}
	return res, nil
}

// smsArgs is the job that runs DeliverSMS.
type smsArgs struct{}

func (smsArgs) Kind() string { return "notify_sms" }

// Jobs registers the SMS worker and returns its periodic job, for the app's job queue.
func (s *Service) Jobs(workers *jobs.Workers) []*jobs.PeriodicJob {
	jobs.AddWorker(workers, jobs.WorkFunc(func(ctx context.Context, _ *jobs.Job[smsArgs]) error {
		_, err := s.DeliverSMS(ctx)
		return err
	}))
	every := s.opts.SMSInterval
	return []*jobs.PeriodicJob{jobs.Every(every, true, func() (jobs.JobArgs, *jobs.InsertOpts) {
		return smsArgs{}, &jobs.InsertOpts{UniqueOpts: jobs.UniqueOpts{ByPeriod: every}}
	})}
}
