package license

import (
	"context"
	"time"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// View is a licence laid out for its page (the holder's or an officer's): the surface's
// template renders it as the licence face, with the QR code image served from VerifyURL.
type View struct {
	ID               string     `json:"id"`
	TypeCode         string     `json:"type_code"`
	TypeName         i18n.Text  `json:"type_name"`
	HolderName       string     `json:"holder_name"`
	HolderKind       i18n.Text  `json:"holder_kind"`
	HolderIDType     i18n.Text  `json:"holder_id_type"`
	HolderID         string     `json:"holder_id"`
	IssuerName       string     `json:"issuer_name"`
	IssuerCreditCode string     `json:"issuer_credit_code"`
	IssuedOn         string     `json:"issued_on"`   // Beijing date, YYYY-MM-DD
	ValidFrom        string     `json:"valid_from"`  // Beijing date
	ValidThrough     string     `json:"valid_until"` // last day of validity (Beijing); "" when LongTerm
	LongTerm         bool       `json:"long_term"`   // 长期有效
	Status           Status     `json:"status"`
	StatusText       i18n.Text  `json:"status_text"`
	StatusReason     string     `json:"status_reason,omitempty"`
	Version          int        `json:"version"`
	PreviousID       string     `json:"previous_id,omitempty"`
	SupersededBy     string     `json:"superseded_by,omitempty"`
	Items            []ViewItem `json:"items"`
	Digest           string     `json:"digest"`
	SignedBy         string     `json:"signed_by"` // key id of the seal
	VerifyURL        string     `json:"verify_url"`
	FileName         string     `json:"file_name"`
}

// ViewItem is one data item on the page.
type ViewItem struct {
	Key   string    `json:"key"`
	Label i18n.Text `json:"label"`
	Value string    `json:"value"`
}

// beijingDate is t's calendar date in Beijing.
func beijingDate(t time.Time) string { return t.In(calendar.Beijing).Format(time.DateOnly) }

// ViewOf lays out l. Labels come from the type's template where it still has the item (for
// the English label), else from the licence itself.
func (s *Service) ViewOf(l License, t Type) View {
	c := l.Content
	v := View{ID: c.ID, TypeCode: c.TypeCode, TypeName: i18n.T(c.TypeName, t.Name.EN), HolderName: c.Holder.Name,
		HolderKind: HolderKindNames[c.Holder.Kind], HolderIDType: IDTypes[c.Holder.IDType].Name, HolderID: c.Holder.IDNumber,
		IssuerName: c.Issuer.Name, IssuerCreditCode: c.Issuer.CreditCode, IssuedOn: beijingDate(c.IssuedAt),
		ValidFrom: beijingDate(c.ValidFrom), LongTerm: c.ValidUntil == nil, Status: l.Status, StatusText: StatusNames[l.Status],
		StatusReason: l.StatusReason, Version: c.Version, PreviousID: c.PreviousID, SupersededBy: l.SupersededBy,
		Digest: l.Digest, SignedBy: l.Signature.KeyID, VerifyURL: s.VerifyURL(c.ID, l.ShortDigest())}
	if c.ValidUntil != nil {
		// ValidUntil is exclusive (midnight): the last day in force is the day before.
		v.ValidThrough = beijingDate(c.ValidUntil.Add(-time.Nanosecond))
	}
	for _, it := range c.Items {
		label := i18n.T(it.Label, "")
		if d, ok := t.itemDef(it.Key); ok && d.Label.ZH == it.Label {
			label = d.Label
		}
		v.Items = append(v.Items, ViewItem{Key: it.Key, Label: label, Value: it.Value})
	}
	v.FileName = File{Content: c}.FileName()
	return v
}

// View returns the page of licence id to its holder or to staff who may read it (audited).
func (s *Service) View(ctx context.Context, actor authz.Subject, id string) (View, error) {
	l, err := s.Get(ctx, actor, id)
	if err != nil {
		return View{}, err
	}
	t, err := getType(ctx, s.d, l.Content.TypeCode)
	if err != nil {
		t = Type{} // a type since removed: labels from the licence
	}
	return s.ViewOf(l, t), nil
}

// ValidThrough is the last Beijing day (YYYY-MM-DD) of a validity that ends, exclusively, at
// until; "" when it does not end.
func ValidThrough(until *time.Time) string {
	if until == nil {
		return ""
	}
	return until.Add(-time.Nanosecond).In(calendar.Beijing).Format(time.DateOnly)
}
