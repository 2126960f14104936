package baselib

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// Registration statuses (登记状态) of a legal entity.
const (
	StatusActive       = "存续" // registered and existing (存续/在业)
	StatusDeregistered = "注销" // deregistered: the entity no longer exists
	StatusRevoked      = "吊销" // licence revoked: still exists until deregistered
)

// Common entity types (市场主体类型 and others). The type is free text — registries write
// finer forms such as 有限责任公司（自然人投资或控股） — but must agree with the organisation
// type of a market-regulation credit code (see checkEntityType).
const (
	TypeLLC            = "有限责任公司"
	TypeJointStock     = "股份有限公司"
	TypeSoleProprietor = "个人独资企业"
	TypePartnership    = "合伙企业"
	TypeIndividual     = "个体工商户"
	TypeCooperative    = "农民专业合作社"
)

// EntityInput registers a legal entity (or other registered market subject) in the
// legal-entity library.
type EntityInput struct {
	CreditCode           string // GB 32100-2015 unified social credit code
	Name                 string
	EntityType           string // e.g. TypeLLC
	LegalRepName         string // 法定代表人 (负责人, 经营者 for an individual business)
	LegalRepID           string // optional: the representative's resident ID number
	DivisionCode         string // a Shanxi province-, city- or county-level division
	Address              string // registered address (住所), public
	RegisteredCapitalFen int64  // integer fen, ≥ 0
	Established          string // YYYY-MM-DD, not after today
	BusinessScope        string
	Status               string // default StatusActive
}

// Entity is a full legal-entity record, with the representative's ID number decrypted.
type Entity struct {
	ID                   string
	CreditCode           string
	Name                 string
	EntityType           string
	LegalRepName         string
	LegalRepID           string
	DivisionCode         string
	DivisionName         string
	Address              string
	RegisteredCapitalFen int64
	Established          string
	BusinessScope        string
	Status               string
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

// EntityView is a legal entity as lists show it. The credit code, name and address are
// public register data and shown as they are; the representative's name is masked like
// every natural person's name in a list, and the ID number is left out.
type EntityView struct {
	ID                   string
	CreditCode           string
	Name                 string
	EntityType           string
	LegalRepName         string // 王*
	DivisionCode         string
	DivisionName         string
	RegisteredCapitalFen int64
	Established          string
	Status               string
	CreatedAt            time.Time
}

// EntityFilter selects legal entities, like PersonFilter; Status "" means any.
type EntityFilter struct {
	Division string
	Status   string
	Limit    int
	Offset   int
}

var validStatus = map[string]bool{StatusActive: true, StatusDeregistered: true, StatusRevoked: true}

func badStatus() error {
	return invalid("status", "baselib.status.invalid", "登记状态须为存续、注销或吊销", "the status must be 存续, 注销 or 吊销")
}

// checkEntityType makes the entity type agree with the organisation type (position 2) of a
// credit code issued by market regulation (authority 9, GB 32100-2015): 1 enterprise,
// 2 individual business, 3 farmers' cooperative.
func checkEntityType(c ids.CreditCode, entityType string) error {
	if c.Authority != '9' {
		return nil
	}
	var ok bool
	switch c.Type {
	case '1':
		ok = entityType != TypeIndividual && !strings.Contains(entityType, "合作社")
	case '2':
		ok = entityType == TypeIndividual
	case '3':
		ok = strings.Contains(entityType, "合作社")
	default:
		ok = true
	}
	if ok {
		return nil
	}
	want := c.TypeText()
	return invalid("entity_type", "baselib.entity_type.mismatch",
		fmt.Sprintf("主体类型“%s”与统一社会信用代码的机构类别（%s）不符", entityType, want.ZH),
		fmt.Sprintf("entity type %q does not match the credit code's organisation type (%s)", entityType, want.EN))
}

const entityCols = 15

const entityInsert = `INSERT INTO legal_entities (id, credit_code, name, entity_type, legal_rep_name, legal_rep_id_enc,
	legal_rep_id_idx, division_code, address, registered_capital_fen, established, business_scope, status,
	created_at, updated_at) VALUES `

// entityRow validates one input and returns its column values and its credit code.
func (s *Service) entityRow(in EntityInput, now time.Time) ([]any, string, error) {
	cc, err := ids.ValidateCreditCode(in.CreditCode)
	if err != nil {
		if e, ok := i18n.As(err); ok && e.Field == "" {
			return nil, "", e.WithField("credit_code")
		}
		return nil, "", err
	}
	name, err := cleanText("name", "名称", "the name", in.Name, true, 100)
	if err != nil {
		return nil, "", err
	}
	entityType, err := cleanText("entity_type", "主体类型", "the entity type", in.EntityType, true, 64)
	if err != nil {
		return nil, "", err
	}
	if err := checkEntityType(cc, entityType); err != nil {
		return nil, "", err
	}
	repName, err := cleanName("legal_rep_name", "法定代表人姓名", "the legal representative's name", in.LegalRepName)
	if err != nil {
		return nil, "", err
	}
	var repID string
	if strings.TrimSpace(in.LegalRepID) != "" {
		r, err := residentNumber("legal_rep_id", in.LegalRepID, now)
		if err != nil {
			return nil, "", err
		}
		repID = r.Number
	}
	div, err := shanxiDivision(in.DivisionCode, divisions.Province, divisions.City, divisions.County)
	if err != nil {
		return nil, "", err
	}
	address, err := cleanText("address", "住所", "the address", in.Address, false, 200)
	if err != nil {
		return nil, "", err
	}
	if in.RegisteredCapitalFen < 0 {
		return nil, "", invalid("registered_capital_fen", "baselib.capital.negative", "注册资本不能为负数", "the registered capital cannot be negative")
	}
	established, err := cleanDate("established", "成立日期", "the date of establishment", in.Established, now)
	if err != nil {
		return nil, "", err
	}
	scope, err := cleanText("business_scope", "经营范围", "the business scope", in.BusinessScope, false, 2000)
	if err != nil {
		return nil, "", err
	}
	status := strings.TrimSpace(in.Status)
	if status == "" {
		status = StatusActive
	}
	if !validStatus[status] {
		return nil, "", badStatus()
	}
	id := db.NewID()
	var repEnc []byte
	repIdx := ""
	if repID != "" {
		if repEnc, err = s.fc.Seal(repID, fieldAAD("legal_entities", id, "legal_rep_id")); err != nil {
			return nil, "", fmt.Errorf("seal legal representative id: %w", err)
		}
		repIdx = s.fc.BlindIndex(IndexResidentID, repID)
	}
	return []any{id, cc.Code, name, entityType, repName, nullBytes(repEnc), nullString(repIdx), div.Code, address,
		in.RegisteredCapitalFen, established, scope, status, now, now}, cc.Code, nil
}

// AddEntities registers legal entities in one transaction, all or none, like AddPersons: the
// credit code is validated (GB 32100, both check characters) and must agree with the entity
// type; a code already registered, or twice in the batch, is ErrEntityExists (409). It
// returns the new ids in input order.
func (s *Service) AddEntities(ctx context.Context, in []EntityInput) ([]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if len(in) > MaxBatch {
		return nil, ErrBatchTooLarge
	}
	now := s.clock()
	vals := make([]any, 0, len(in)*entityCols)
	codes := make([]string, len(in))
	out := make([]string, len(in))
	seen := make(map[string]int, len(in))
	for i, e := range in {
		row, code, err := s.entityRow(e, now)
		if err != nil {
			return nil, atRow("entities", i, err)
		}
		if j, dup := seen[code]; dup {
			return nil, atRow("entities", i, duplicateOf(ErrEntityExists, i18n.T("统一社会信用代码", "the credit code"), j))
		}
		seen[code] = i
		codes[i], out[i] = code, row[0].(string)
		vals = append(vals, row...)
	}
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		have, err := existing(ctx, tx, "legal_entities", "credit_code", codes)
		if err != nil {
			return fmt.Errorf("check legal entities: %w", err)
		}
		for i, c := range codes {
			if have[c] {
				return atRow("entities", i, ErrEntityExists)
			}
		}
		if err := insertRows(ctx, tx, entityInsert, entityCols, vals); db.IsUniqueViolation(err) {
			return ErrEntityExists.Wrap(err)
		} else if err != nil {
			return fmt.Errorf("insert legal entities: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

const entitySelect = `SELECT id, credit_code, name, entity_type, legal_rep_name, legal_rep_id_enc, division_code,
	address, registered_capital_fen, established, business_scope, status, created_at, updated_at FROM legal_entities`

// FindEntityByCreditCode returns the entity with this credit code, or i18n.ErrNotFound. A
// malformed code is a validation error, as from ids.ValidateCreditCode.
func (s *Service) FindEntityByCreditCode(ctx context.Context, code string) (Entity, error) {
	cc, err := ids.ValidateCreditCode(code)
	if err != nil {
		return Entity{}, err
	}
	var e Entity
	var repEnc []byte
	err = s.d.QueryRow(ctx, entitySelect+` WHERE credit_code = ?`, cc.Code).Scan(&e.ID, &e.CreditCode, &e.Name,
		&e.EntityType, &e.LegalRepName, &repEnc, &e.DivisionCode, &e.Address, &e.RegisteredCapitalFen,
		&e.Established, &e.BusinessScope, &e.Status, &e.CreatedAt, &e.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Entity{}, i18n.ErrNotFound
	}
	if err != nil {
		return Entity{}, fmt.Errorf("find legal entity: %w", err)
	}
	e.DivisionName = divisionName(e.DivisionCode)
	if e.LegalRepID, err = s.open(repEnc, "legal_entities", e.ID, "legal_rep_id"); err != nil {
		return Entity{}, err
	}
	return e, nil
}

func entityWhere(f EntityFilter) (string, []any, error) {
	var conds []string
	var args []any
	if f.Division != "" {
		lo, hi, err := divisionRange(f.Division)
		if err != nil {
			return "", nil, err
		}
		conds, args = append(conds, `division_code >= ? AND division_code < ?`), append(args, lo, hi)
	}
	if f.Status != "" {
		if !validStatus[f.Status] {
			return "", nil, badStatus()
		}
		conds, args = append(conds, `status = ?`), append(args, f.Status)
	}
	if len(conds) == 0 {
		return "", nil, nil
	}
	return ` WHERE ` + strings.Join(conds, ` AND `), args, nil
}

// ListEntities lists legal entities by division and id (see EntityView for what is masked).
func (s *Service) ListEntities(ctx context.Context, f EntityFilter) ([]EntityView, error) {
	where, args, err := entityWhere(f)
	if err != nil {
		return nil, err
	}
	limit, offset := page(f.Limit, f.Offset)
	rows, err := s.d.Query(ctx, `SELECT id, credit_code, name, entity_type, legal_rep_name, division_code,
		registered_capital_fen, established, status, created_at FROM legal_entities`+where+
		` ORDER BY division_code, id LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, fmt.Errorf("list legal entities: %w", err)
	}
	defer rows.Close()
	out := []EntityView{}
	for rows.Next() {
		var v EntityView
		if err := rows.Scan(&v.ID, &v.CreditCode, &v.Name, &v.EntityType, &v.LegalRepName, &v.DivisionCode,
			&v.RegisteredCapitalFen, &v.Established, &v.Status, &v.CreatedAt); err != nil {
			return nil, fmt.Errorf("list legal entities: %w", err)
		}
		v.LegalRepName, v.DivisionName = ids.MaskName(v.LegalRepName), divisionName(v.DivisionCode)
		out = append(out, v)
	}
	return out, rows.Err()
}

// CountEntities counts the entities a filter selects (Limit and Offset are ignored).
func (s *Service) CountEntities(ctx context.Context, f EntityFilter) (int, error) {
	where, args, err := entityWhere(f)
	if err != nil {
		return 0, err
	}
	var n int
	if err := s.d.QueryRow(ctx, `SELECT COUNT(*) FROM legal_entities`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count legal entities: %w", err)
	}
	return n, nil
}

// VerifyEntity answers enterprise real-name verification: is there a registered entity with
// exactly this credit code, name and legal representative? Yes or no, with the same work
// either way, like VerifyPerson. A deregistered (注销) entity no longer exists and does not
// verify; one whose licence was revoked (吊销) still does, as it must still be able to apply
// for deregistration. Names compare after Unicode NFKC, so half- and full-width brackets
// in a name such as …合伙企业（有限合伙） match.
func (s *Service) VerifyEntity(ctx context.Context, creditCode, name, legalRepName string) (bool, error) {
	cc, err := ids.ValidateCreditCode(creditCode)
	if err != nil {
		return false, err
	}
	name, err = cleanText("name", "名称", "the name", name, true, 100)
	if err != nil {
		return false, err
	}
	legalRepName, err = cleanName("legal_rep_name", "法定代表人姓名", "the legal representative's name", legalRepName)
	if err != nil {
		return false, err
	}
	var storedName, storedRep, status string
	err = s.d.QueryRow(ctx, `SELECT name, legal_rep_name, status FROM legal_entities WHERE credit_code = ?`, cc.Code).
		Scan(&storedName, &storedRep, &status)
	found := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("verify legal entity: %w", err)
	}
	nameOK := sameText(norm.NFKC.String(storedName), norm.NFKC.String(name))
	repOK := sameText(storedRep, legalRepName)
	return found && nameOK && repOK && status != StatusDeregistered, nil
}
