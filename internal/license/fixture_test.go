package license_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/org/divisions"
	"github.com/dgov/dgov/internal/platform/audit"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/bus"
	"github.com/dgov/dgov/internal/platform/calendar"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/platform/ids"
)

var sources = []db.Source{crypto.Migrations, audit.Migrations, bus.Migrations, license.Migrations}

// t0 is Friday 24 January 2025, 10:00 in Beijing.
var t0 = time.Date(2025, 1, 24, 10, 0, 0, 0, calendar.Beijing)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *clock) set(t time.Time)         { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func birth(y, m, d int) time.Time        { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }
func ptr[T any](v T) *T                  { return &v }
func staff(id, division, dept string, roles ...authz.Role) authz.Subject {
	return authz.Subject{Kind: authz.Staff, ID: id, Name: id, Division: division, Dept: dept, Roles: roles}
}

// sealKeys is the seal engine as this package sees it: a real SM2 key per department
// (gmsm), signing with SM3 and the default user ID. Keys rotate on demand.
type sealKeys struct {
	mu   sync.Mutex
	keys map[string]*sealKey
	// forge makes the next signature one over other data (a broken seal service).
	forge bool
}

type sealKey struct {
	id   string
	priv *sm2.PrivateKey
	der  []byte
}

func newSealKeys() *sealKeys { return &sealKeys{keys: map[string]*sealKey{}} }

func (s *sealKeys) key(t testing.TB, dept string) *sealKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keys[dept]; k != nil {
		return k
	}
	return s.newKey(t, dept, 1)
}

func (s *sealKeys) newKey(t testing.TB, dept string, n int) *sealKey {
	priv, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := smx509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	k := &sealKey{id: fmt.Sprintf("seal-%s-%d", dept, n), priv: priv, der: der}
	s.keys[dept] = k
	return k
}

// rotate gives dept a new key.
func (s *sealKeys) rotate(t testing.TB, dept string) *sealKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 1
	if k := s.keys[dept]; k != nil {
		fmt.Sscanf(k.id[len("seal-"+dept+"-"):], "%d", &n)
		n++
	}
	return s.newKey(t, dept, n)
}

type signerFor struct {
	t testing.TB
	s *sealKeys
}

func (f signerFor) SignAs(_ context.Context, deptID string, data []byte) (license.Signature, error) {
	k := f.s.key(f.t, deptID)
	f.s.mu.Lock()
	forge := f.s.forge
	f.s.forge = false
	f.s.mu.Unlock()
	if forge {
		data = append([]byte("other "), data...)
	}
	sig, err := k.priv.Sign(rand.Reader, data, sm2.DefaultSM2SignerOpts)
	if err != nil {
		return license.Signature{}, err
	}
	return license.Signature{KeyID: k.id, PublicKey: k.der, Value: sig, SignedAt: time.Now()}, nil
}

// holders maps accounts to the identity they verified (identity's part, adapted by the app).
type holders map[string]license.HolderID

func (h holders) HolderID(_ context.Context, s authz.Subject) (license.HolderID, error) {
	id, ok := h[s.ID]
	if !ok {
		return license.HolderID{}, license.ErrHolderUnknown
	}
	return id, nil
}

type departments map[string]license.Department

func (d departments) Department(_ context.Context, id string) (license.Department, error) {
	dep, ok := d[id]
	if !ok {
		return dep, i18n.ErrNotFound
	}
	return dep, nil
}

// Identities of the fixture.
var (
	zhangID = ids.MakeResident("140105", birth(1985, 6, 15), 123, true)
	liID    = ids.MakeResident("140106", birth(1992, 11, 3), 46, false)
	shopCC  = mustCredit('9', '1', "140105", "MA0K1234") // 太原 小店区 一家餐饮公司
	tyScjg  = mustCredit('1', '1', "140100", "01234567") // 太原市市场监督管理局
	tyGa    = mustCredit('1', '1', "140100", "01234568") // 太原市公安局
	dtScjg  = mustCredit('1', '1', "140200", "01234569") // 大同市市场监督管理局
	sjzScjg = mustCredit('1', '1', "130100", "01234570") // 石家庄市市场监督管理局 (another province)
)

func mustCredit(a, t byte, div, body string) string {
	c, err := ids.MakeCreditCode(a, t, div, body)
	if err != nil {
		panic(err)
	}
	return c
}

// fixture is one node: its database, keys, audit log and licence service.
type fixture struct {
	cases atomic.Int64 // numbers the case refs of issued licences (one licence per case)
	t     testing.TB
	ctx   context.Context
	d     *db.DB
	clock *clock
	keys  *crypto.Keyring
	log   *audit.Log
	seals *sealKeys
	svc   *license.Service
	node  license.Node

	sys, admin, auditor         authz.Subject
	scjg, ga, dtScjg, rs, rsOut authz.Subject // officers
	zhang, li, shop             authz.Subject // holders
}

// newFixture is the Shanxi node with its issuers, staff and holders.
func newFixture(t testing.TB, d *db.DB) *fixture {
	f := newNode(t, d, license.Node{ID: "sx", Name: "山西省一体化政务服务平台", Division: "140000", TrustListURL: "https://zwfw.shanxi.gov.cn/api/v1/licenses/trust-list"}, 5)
	f.zhang = authz.Subject{Kind: authz.Citizen, ID: "c-zhang", Name: "张伟"}
	f.li = authz.Subject{Kind: authz.Citizen, ID: "c-li", Name: "李娜"}
	f.shop = authz.Subject{Kind: authz.Enterprise, ID: "e-shop", Name: "太原市小店区味美餐饮有限公司"}
	f.sys = authz.Subject{Kind: authz.System, ID: "workflow", Division: "140000", Roles: []authz.Role{authz.RoleOfficer}}
	f.admin = staff("admin", "140000", "sx-zwfw", authz.RoleSysAdmin)
	f.auditor = staff("auditor", "140000", "sx-zwfw", authz.RoleAuditor)
	f.scjg = staff("scjg-officer", "140100", "ty-scjg", authz.RoleOfficer)
	f.ga = staff("ga-officer", "140100", "ty-ga", authz.RoleOfficer)
	f.dtScjg = staff("dt-officer", "140200", "dt-scjg", authz.RoleOfficer)
	f.rs = staff("rs-officer", "140100", "ty-rs", authz.RoleOfficer)
	f.rsOut = staff("rs-dt-officer", "140200", "dt-rs", authz.RoleOfficer)
	orgAdmin := staff("ty-admin", "140100", "ty-zwfw", authz.RoleOrgAdmin)
	dtAdmin := staff("dt-admin", "140200", "dt-zwfw", authz.RoleOrgAdmin)
	for _, in := range []struct {
		by authz.Subject
		i  license.Issuer
	}{
		{orgAdmin, license.Issuer{DeptID: "ty-scjg", Name: "太原市市场监督管理局", CreditCode: tyScjg, Division: "140100", Kind: "市场监督管理局", Active: true}},
		{orgAdmin, license.Issuer{DeptID: "ty-ga", Name: "太原市公安局", CreditCode: tyGa, Division: "140100", Kind: "公安", Active: true}},
		{dtAdmin, license.Issuer{DeptID: "dt-scjg", Name: "大同市市场监督管理局", CreditCode: dtScjg, Division: "140200", Kind: "市场监督管理局", Active: true}},
	} {
		if _, err := f.svc.RegisterIssuer(f.ctx, in.by, in.i); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// newNode makes a node with its own keyring (master key of bytes m), seal keys and service.
func newNode(t testing.TB, d *db.DB, node license.Node, m byte) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), d: d, clock: &clock{t: t0}, seals: newSealKeys(), node: node}
	var err error
	if f.keys, err = crypto.Open(f.ctx, d, bytes.Repeat([]byte{m}, crypto.MasterKeySize), time.Now); err != nil {
		t.Fatal(err)
	}
	f.log = audit.New(d, f.keys, f.clock.now, audit.Options{})
	policy := authz.NewPolicy(divisions.Contains)
	license.RegisterPermissions(policy)
	f.svc = license.New(license.Deps{
		DB: d, Policy: policy, Fields: f.keys.FieldCipher(), Signer: signerFor{t, f.seals}, NodeKey: f.keys,
		Holders: holders{
			"c-zhang": {Type: license.IDResident, Number: zhangID},
			"c-li":    {Type: license.IDResident, Number: liID},
			"e-shop":  {Type: license.IDCreditCode, Number: shopCC},
		},
		Departments: departments{
			"ty-rs":  {ID: "ty-rs", Name: "太原市人力资源和社会保障局", Division: "140100"},
			"dt-rs":  {ID: "dt-rs", Name: "大同市人力资源和社会保障局", Division: "140200"},
			"ty-ga":  {ID: "ty-ga", Name: "太原市公安局", Division: "140100"},
			"sx-gzw": {ID: "sx-gzw", Name: "山西省国有资产监督管理委员会", Division: "140000"},
		},
	}, license.Options{
		Now: f.clock.now, Node: node, VerifyURL: "https://zwfw.shanxi.gov.cn/license/verify",
		Audit: func(ctx context.Context, tx *db.Tx, actor authz.Subject, action, object string, detail map[string]any) error {
			name := actor.String()
			if actor.Kind == "" {
				name = audit.ActorSystem
			}
			_, err := f.log.AppendTx(ctx, tx, audit.Entry{Actor: name, ActorDivision: actor.Division, Action: action, Object: object,
				Outcome: audit.OutcomeOK, Detail: detail})
			return err
		},
	})
	if n, err := f.svc.SeedTypes(f.ctx); err != nil || n != 7 {
		t.Fatalf("SeedTypes = %d, %v", n, err)
	}
	return f
}

// secondDB is another database of the same kind as d: another province's node.
func secondDB(t *testing.T, d *db.DB) *db.DB {
	if d.Dialect == db.Postgres {
		return dbtest.Postgres(t, sources...)
	}
	return dbtest.SQLite(t, sources...)
}

// businessLicence issues a 营业执照 to the shop.
func (f *fixture) businessLicence(t testing.TB) license.License {
	t.Helper()
	l, err := f.svc.Issue(f.ctx, f.scjg, license.IssueInput{TypeCode: "YYZZ", IssuerDeptID: "ty-scjg",
		Holder: license.Holder{Name: "太原市小店区味美餐饮有限公司", IDType: license.IDCreditCode, IDNumber: shopCC},
		Items: map[string]string{"entity_type": "有限责任公司（自然人投资或控股）", "legal_rep": "张伟", "registered_capital": "壹佰万圆整",
			"established_on": "2020-05-08", "business_term": "长期", "address": "山西省太原市小店区坞城路92号", "scope": "餐饮服务；食品销售"},
		CaseRef: fmt.Sprintf("case-%04d", f.cases.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// residencePermit issues a 居住证 to Zhang.
func (f *fixture) residencePermit(t testing.TB) license.License {
	t.Helper()
	l, err := f.svc.Issue(f.ctx, f.ga, license.IssueInput{TypeCode: "JZZ", IssuerDeptID: "ty-ga",
		Holder: license.Holder{Name: "张伟", IDType: license.IDResident, IDNumber: zhangID},
		Items:  map[string]string{"sex": "男", "birth_date": "1985-06-15", "address": "山西省太原市小店区亲贤北街3号", "hukou_place": "河北省石家庄市"}})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// auditActions lists the actions recorded on object, oldest first.
func (f *fixture) auditActions(t testing.TB, object string) []string {
	t.Helper()
	recs, err := f.log.List(f.ctx, audit.Filter{Object: object, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(recs) - 1; i >= 0; i-- {
		out = append(out, recs[i].Action+" by "+recs[i].Actor)
	}
	return out
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
