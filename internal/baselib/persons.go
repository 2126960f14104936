package baselib

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

// PersonInput registers a person in the population library.
type PersonInput struct {
	Name         string
	IDNumber     string // GB 11643-1999 resident ID number; sex and birth date are read from it
	DivisionCode string // 户籍所在地: a Shanxi county-level division (GB/T 2260)
	Address      string // optional, at most 200 characters
	Mobile       string // optional; any form ids.ValidateMobile accepts, stored as 11 digits
}

// Person is a full population record, decrypted. Only the exact lookups return it.
type Person struct {
	ID           string
	Name         string
	IDNumber     string
	Sex          ids.Sex
	BirthDate    string // YYYY-MM-DD
	DivisionCode string
	DivisionName string // e.g. 太原市小店区
	Address      string
	Mobile       string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// PersonView is a population record as lists show it: name, ID number and mobile masked;
// no address and no birth date (which the masked ID number hides on purpose).
type PersonView struct {
	ID           string
	Name         string // 张*
	IDNumber     string // 140105********1234
	Sex          ids.Sex
	DivisionCode string
	DivisionName string
	Mobile       string // 138****5678, or "" when none is registered
	CreatedAt    time.Time
}

// PersonFilter selects persons. Division "" is the whole library; a province, city or
// county code selects the persons registered in it (or in the divisions under it).
type PersonFilter struct {
	Division string
	Limit    int // default 50, at most 1000
	Offset   int
}

// sexCode is the GB/T 2261.1-2003 code stored in persons.sex.
func sexCode(s ids.Sex) string {
	if s == ids.Male {
		return "1"
	}
	return "2"
}

func parseSex(c string) ids.Sex {
	switch c {
	case "1":
		return ids.Male
	case "2":
		return ids.Female
	}
	return ids.SexUnknown
}

const personCols = 12

const personInsert = `INSERT INTO persons (id, name, id_number_enc, id_number_idx, sex, birth_date, division_code,
	address_enc, mobile_enc, mobile_idx, created_at, updated_at) VALUES `

// personRow validates one input and returns its column values (sealed) and its ID-number
// blind index.
func (s *Service) personRow(in PersonInput, now time.Time) ([]any, string, error) {
	name, err := cleanName("name", "姓名", "the name", in.Name)
	if err != nil {
		return nil, "", err
	}
	r, err := residentNumber("id_number", in.IDNumber, now)
	if err != nil {
		return nil, "", err
	}
	div, err := shanxiDivision(in.DivisionCode, divisions.County)
	if err != nil {
		return nil, "", err
	}
	address, err := cleanText("address", "住址", "the address", in.Address, false, 200)
	if err != nil {
		return nil, "", err
	}
	var mobile string
	if in.Mobile != "" {
		if mobile, err = ids.ValidateMobile(in.Mobile); err != nil {
			if e, ok := i18n.As(err); ok {
				return nil, "", e.WithField("mobile")
			}
			return nil, "", err
		}
	}
	id := db.NewID()
	idEnc, err := s.fc.Seal(r.Number, fieldAAD("persons", id, "id_number"))
	if err != nil {
		return nil, "", fmt.Errorf("seal id number: %w", err)
	}
	var addrEnc, mobileEnc []byte
	mobileIdx := ""
	if address != "" {
		if addrEnc, err = s.fc.Seal(address, fieldAAD("persons", id, "address")); err != nil {
			return nil, "", fmt.Errorf("seal address: %w", err)
		}
	}
	if mobile != "" {
		if mobileEnc, err = s.fc.Seal(mobile, fieldAAD("persons", id, "mobile")); err != nil {
			return nil, "", fmt.Errorf("seal mobile: %w", err)
		}
		mobileIdx = s.fc.BlindIndex(IndexMobile, mobile)
	}
	idx := s.fc.BlindIndex(IndexResidentID, r.Number)
	return []any{id, name, idEnc, idx, sexCode(r.Sex), r.Birth.Format(time.DateOnly), div.Code,
		nullBytes(addrEnc), nullBytes(mobileEnc), nullString(mobileIdx), now, now}, idx, nil
}

// duplicateOf is the conflict of a batch record repeating an earlier one (index j).
func duplicateOf(base *i18n.Error, what i18n.Text, j int) *i18n.Error {
	c := *base
	c.Msg = i18n.T(fmt.Sprintf("%s与第%d条重复", what.ZH, j+1), fmt.Sprintf("%s is the same as in record %d", what.EN, j+1))
	return &c
}

// AddPersons registers persons in one transaction: all of them, or — when any record is
// invalid or already registered — none, with an error naming the first bad record (see
// atRow). Each ID number is validated (GB 11643, birth date not after today) and so is each
// mobile number. A number already in the library, or twice in the batch, is ErrPersonExists
// (409). It returns the new ids in input order.
func (s *Service) AddPersons(ctx context.Context, in []PersonInput) ([]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if len(in) > MaxBatch {
		return nil, ErrBatchTooLarge
	}
	now := s.clock()
	// Validate and seal before the transaction: on SQLite it holds the only writer.
	vals := make([]any, 0, len(in)*personCols)
	idxs := make([]string, len(in))
	out := make([]string, len(in))
	seen := make(map[string]int, len(in))
	for i, p := range in {
		row, idx, err := s.personRow(p, now)
		if err != nil {
			return nil, atRow("persons", i, err)
		}
		if j, dup := seen[idx]; dup {
			return nil, atRow("persons", i, duplicateOf(ErrPersonExists, i18n.T("身份证号码", "the ID number"), j))
		}
		seen[idx] = i
		idxs[i], out[i] = idx, row[0].(string)
		vals = append(vals, row...)
	}
	err := s.d.InTx(ctx, func(tx *db.Tx) error {
		have, err := existing(ctx, tx, "persons", "id_number_idx", idxs)
		if err != nil {
			return fmt.Errorf("check persons: %w", err)
		}
		for i, idx := range idxs {
			if have[idx] {
				return atRow("persons", i, ErrPersonExists)
			}
		}
		if err := insertRows(ctx, tx, personInsert, personCols, vals); db.IsUniqueViolation(err) {
			return ErrPersonExists.Wrap(err) // registered concurrently, after the check
		} else if err != nil {
			return fmt.Errorf("insert persons: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

const personSelect = `SELECT id, name, id_number_enc, sex, birth_date, division_code, address_enc, mobile_enc,
	created_at, updated_at FROM persons`

// FindPersonByIDNumber returns the person with this ID number, decrypted, or
// i18n.ErrNotFound. A malformed number is a validation error, as from ids.ValidateResident.
func (s *Service) FindPersonByIDNumber(ctx context.Context, number string) (Person, error) {
	r, err := residentNumber("id_number", number, s.clock())
	if err != nil {
		return Person{}, err
	}
	var p Person
	var idEnc, addrEnc, mobileEnc []byte
	var sex string
	err = s.d.QueryRow(ctx, personSelect+` WHERE id_number_idx = ?`, s.fc.BlindIndex(IndexResidentID, r.Number)).
		Scan(&p.ID, &p.Name, &idEnc, &sex, &p.BirthDate, &p.DivisionCode, &addrEnc, &mobileEnc, &p.CreatedAt, &p.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Person{}, i18n.ErrNotFound
	}
	if err != nil {
		return Person{}, fmt.Errorf("find person: %w", err)
	}
	p.Sex, p.DivisionName = parseSex(sex), divisionName(p.DivisionCode)
	if p.IDNumber, err = s.open(idEnc, "persons", p.ID, "id_number"); err != nil {
		return Person{}, err
	}
	// The index matched; the sealed value must too, or the row was tampered with.
	if p.IDNumber != r.Number {
		return Person{}, ErrCorrupt.Wrap(fmt.Errorf("persons %s: id_number does not match its index", p.ID))
	}
	if p.Address, err = s.open(addrEnc, "persons", p.ID, "address"); err != nil {
		return Person{}, err
	}
	if p.Mobile, err = s.open(mobileEnc, "persons", p.ID, "mobile"); err != nil {
		return Person{}, err
	}
	return p, nil
}

// personWhere is the WHERE clause of a filter.
func personWhere(f PersonFilter) (string, []any, error) {
	if f.Division == "" {
		return "", nil, nil
	}
	lo, hi, err := divisionRange(f.Division)
	if err != nil {
		return "", nil, err
	}
	return ` WHERE division_code >= ? AND division_code < ?`, []any{lo, hi}, nil
}

// ListPersons lists persons by division and id, masked (see PersonView).
func (s *Service) ListPersons(ctx context.Context, f PersonFilter) ([]PersonView, error) {
	where, args, err := personWhere(f)
	if err != nil {
		return nil, err
	}
	limit, offset := page(f.Limit, f.Offset)
	rows, err := s.d.Query(ctx, `SELECT id, name, id_number_enc, sex, division_code, mobile_enc, created_at FROM persons`+
		where+` ORDER BY division_code, id LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, fmt.Errorf("list persons: %w", err)
	}
	defer rows.Close()
	out := []PersonView{}
	for rows.Next() {
		var v PersonView
		var idEnc, mobileEnc []byte
		var sex string
		if err := rows.Scan(&v.ID, &v.Name, &idEnc, &sex, &v.DivisionCode, &mobileEnc, &v.CreatedAt); err != nil {
			return nil, fmt.Errorf("list persons: %w", err)
		}
		number, err := s.open(idEnc, "persons", v.ID, "id_number")
		if err != nil {
			return nil, err
		}
		mobile, err := s.open(mobileEnc, "persons", v.ID, "mobile")
		if err != nil {
			return nil, err
		}
		v.Name, v.IDNumber = ids.MaskName(v.Name), ids.MaskResident(number)
		if mobile != "" {
			v.Mobile = ids.MaskMobile(mobile)
		}
		v.Sex, v.DivisionName = parseSex(sex), divisionName(v.DivisionCode)
		out = append(out, v)
	}
	return out, rows.Err()
}

// CountPersons counts the persons a filter selects (Limit and Offset are ignored).
func (s *Service) CountPersons(ctx context.Context, f PersonFilter) (int, error) {
	where, args, err := personWhere(f)
	if err != nil {
		return 0, err
	}
	var n int
	if err := s.d.QueryRow(ctx, `SELECT COUNT(*) FROM persons`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count persons: %w", err)
	}
	return n, nil
}

// VerifyPerson answers real-name verification (实名核验): does the population library hold a
// person with exactly this name and ID number? It says yes or no and nothing else — not
// which of the two differed, nor whether the number is registered at all — and does the
// same work either way (one indexed read, one decryption, constant-time comparisons).
// Only a malformed input is an error (it reveals nothing about the library).
func (s *Service) VerifyPerson(ctx context.Context, name, idNumber string) (bool, error) {
	r, err := residentNumber("id_number", idNumber, s.clock())
	if err != nil {
		return false, err
	}
	name, err = cleanName("name", "姓名", "the name", name)
	if err != nil {
		return false, err
	}
	var id, stored string
	var idEnc []byte
	err = s.d.QueryRow(ctx, `SELECT id, name, id_number_enc FROM persons WHERE id_number_idx = ?`,
		s.fc.BlindIndex(IndexResidentID, r.Number)).Scan(&id, &stored, &idEnc)
	if errors.Is(err, sql.ErrNoRows) {
		_, _ = s.fc.Open(s.dummy, fieldAAD("persons", "dummy", "id_number"))
		_ = sameText(name, name) && sameText(r.Number, r.Number)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("verify person: %w", err)
	}
	number, err := s.open(idEnc, "persons", id, "id_number")
	if err != nil {
		return false, err
	}
	nameOK, numberOK := sameText(stored, name), sameText(number, r.Number)
	return nameOK && numberOK, nil
}
