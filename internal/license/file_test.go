package license_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dgov/dgov/internal/license"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/crypto"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
)

// editFile decodes a licence file, lets edit change it, and encodes it again.
func editFile(t testing.TB, file []byte, edit func(f *license.File)) []byte {
	t.Helper()
	f, err := license.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	edit(&f)
	return f.Encode()
}

func TestFileOffline(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		rp := f.residencePermit(t)
		file, err := f.svc.DownloadFile(f.ctx, f.zhang, rp.Content.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.DownloadFile(f.ctx, f.li, rp.Content.ID); !errors.Is(err, i18n.ErrForbidden) {
			t.Fatalf("another citizen downloading: %v", err)
		}
		raw := file.Encode()
		if file.TrustList.Node != "sx" || file.TrustList.URL == "" || !strings.Contains(file.VerifyURL, "&d="+rp.ShortDigest()) ||
			file.FileName() != "JZZ-00000001-001.dgovlic" || !bytes.Equal(file.Signature.PublicKey, f.seals.keys["ty-ga"].der) {
			t.Fatalf("file %+v", file)
		}

		// Offline: the published trust list, verified with the node's public key, and nothing else.
		doc, err := f.svc.PublishTrustList(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		list, err := license.ParseTrustList(doc, f.nodeKeyPEM(t))
		if err != nil {
			t.Fatal(err)
		}
		trust := license.NewTrust(list)
		now := f.clock.now()
		res := license.VerifyFile(raw, trust, now)
		if !res.Valid || res.Code != license.CodeOK || res.Online || res.SignedBy.DeptName != "太原市公安局" || res.SignedBy.Node != "sx" ||
			res.License.HolderName != "张*" {
			t.Fatalf("VerifyFile = %+v", res)
		}

		// The holder's key, not the attacker's: a file re-signed with another key and carrying
		// that key is untrusted; one whose content changed fails.
		attacker, _ := sm2.GenerateKey(rand.Reader)
		attackerDER, _ := smx509.MarshalPKIXPublicKey(&attacker.PublicKey)
		forged := func(fl *license.File) {
			fl.Content.Items[2].Value = "北京市东城区"
			fl.Digest = fl.Content.Digest()
			fl.Signature.Value, _ = attacker.Sign(rand.Reader, fl.Content.Canonical(), sm2.DefaultSM2SignerOpts)
		}
		var reindented bytes.Buffer
		if err := json.Indent(&reindented, mustJSON(t, file), "", "\t\t"); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name  string
			file  []byte
			trust *license.Trust
			at    time.Time
			want  string
		}{
			{"re-indented", reindented.Bytes(), trust, now, license.CodeOK},
			{"no trust list", raw, license.NewTrust(), now, license.CodeUntrusted},
			{"nil trust", raw, nil, now, license.CodeUntrusted},
			{"an item changed", editFile(t, raw, func(fl *license.File) { fl.Content.Items[2].Value = "北京市东城区" }), trust, now, license.CodeTampered},
			{"an item changed, digest recomputed", editFile(t, raw, func(fl *license.File) {
				fl.Content.Items[2].Value = "北京市东城区"
				fl.Digest = fl.Content.Digest()
			}), trust, now, license.CodeBadSignature},
			{"validity extended", editFile(t, raw, func(fl *license.File) {
				fl.Content.ValidUntil = ptr(fl.Content.ValidUntil.AddDate(10, 0, 0))
				fl.Digest = fl.Content.Digest()
			}), trust, now, license.CodeBadSignature},
			{"re-signed by another key, same key id", editFile(t, raw, forged), trust, now, license.CodeBadSignature},
			{"re-signed, carrying its own key", editFile(t, raw, func(fl *license.File) { forged(fl); fl.Signature.PublicKey = attackerDER }), trust, now, license.CodeUntrusted},
			{"another issuer's credit code", editFile(t, raw, func(fl *license.File) { fl.Signature.KeyID = "seal-ty-scjg-1" }), trust, now, license.CodeUntrusted},
			{"expired", raw, trust, now.AddDate(1, 0, 0), license.CodeExpired},
			{"not yet valid", raw, trust, now.Add(-time.Hour), license.CodeNotYetValid},
			{"not JSON", []byte("%PDF-1.7"), trust, now, license.CodeMalformed},
			{"unknown member", bytes.Replace(raw, []byte(`"format"`), []byte(`"extra": 1, "format"`), 1), trust, now, license.CodeMalformed},
			{"identifier of another version", editFile(t, raw, func(fl *license.File) { fl.Content.Version = 2 }), trust, now, license.CodeMalformed},
		} {
			res := license.VerifyFile(tt.file, tt.trust, tt.at)
			if res.Code != tt.want || res.Valid != (tt.want == license.CodeOK) {
				t.Errorf("%s: %s (%v), want %s", tt.name, res.Code, res.Message, tt.want)
			}
		}

		// A key retired before the licence was issued does not vouch for it.
		f.clock.advance(time.Minute)
		if _, err := f.svc.RetireIssuerKey(f.ctx, f.admin, rp.Signature.KeyID, f.clock.now()); err != nil {
			t.Fatal(err)
		}
		doc, _ = f.svc.PublishTrustList(f.ctx)
		list, _ = license.ParseTrustList(doc, f.nodeKeyPEM(t))
		early := editFile(t, raw, func(fl *license.File) {}) // the same licence verifies: issued before retirement
		if res := license.VerifyFile(early, license.NewTrust(list), now); !res.Valid {
			t.Fatalf("issued before retirement: %+v", res)
		}
		if res := license.VerifyFile(raw, license.NewTrust(keysFrom(list, now.Add(-2*time.Hour), now.Add(-time.Hour))), now); res.Code != license.CodeKeyNotValid {
			t.Fatalf("issued after retirement: %+v", res)
		}

		// The service's own check uses its trust: its keys and imported lists.
		if res, err := f.svc.VerifyFile(f.ctx, raw); err != nil || !res.Valid {
			t.Fatalf("service VerifyFile: %+v, %v", res, err)
		}
	}, sources...)
}

// keysFrom is list with every key's validity set to [from, until).
func keysFrom(list license.TrustList, from, until time.Time) license.TrustList {
	out := list
	out.Issuers = nil
	for _, k := range list.Issuers {
		k.ValidFrom, k.ValidUntil = from, &until
		out.Issuers = append(out.Issuers, k)
	}
	return out
}

// nodeKeyPEM is the node's active public key, as /api/v1/keys publishes it.
func (f *fixture) nodeKeyPEM(t testing.TB) string {
	for _, k := range f.keys.PublicKeys() {
		if k.Active {
			return k.PEM
		}
	}
	t.Fatal("no active node key")
	return ""
}

// TestMutualRecognition: a licence issued by another province's node, on its own database
// with its own keys, verifies here against its imported trust list — and not without it, nor
// with a tampered one.
func TestMutualRecognition(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		sx := newFixture(t, d)
		hb := newNode(t, secondDB(t, d), license.Node{ID: "hb", Name: "河北省政务服务平台", Division: "130000"}, 7)
		hbAdmin := staff("hb-admin", "130000", "hb-zwfw", authz.RoleSysAdmin)
		if _, err := hb.svc.RegisterIssuer(hb.ctx, hbAdmin, license.Issuer{DeptID: "sjz-scjg", Name: "石家庄市市场监督管理局", CreditCode: sjzScjg,
			Division: "130100", Kind: "市场监督管理局", Active: true}); err != nil {
			t.Fatal(err)
		}
		hbOfficer := staff("sjz-officer", "130100", "sjz-scjg", authz.RoleOfficer)
		hbl, err := hb.svc.Issue(hb.ctx, hbOfficer, license.IssueInput{TypeCode: "YYZZ", IssuerDeptID: "sjz-scjg",
			Holder: license.Holder{Name: "石家庄某贸易有限公司", IDType: license.IDCreditCode, IDNumber: mustCredit('9', '1', "130102", "MA0A0001")},
			Items:  map[string]string{"entity_type": "有限责任公司", "legal_rep": "王强", "established_on": "2019-03-01", "address": "石家庄市长安区", "scope": "批发"}})
		if err != nil {
			t.Fatal(err)
		}
		holder := authz.Subject{Kind: authz.System, ID: "hb-export", Division: "130000", Roles: []authz.Role{authz.RoleSysAdmin}}
		hbFile, err := hb.svc.DownloadFile(hb.ctx, holder, hbl.Content.ID)
		if err != nil {
			t.Fatal(err)
		}
		raw := hbFile.Encode()

		// Before any import, Shanxi does not trust Hebei's seal keys.
		if res, err := sx.svc.VerifyFile(sx.ctx, raw); err != nil || res.Code != license.CodeUntrusted {
			t.Fatalf("before import: %+v, %v", res, err)
		}
		doc, err := hb.svc.PublishTrustList(hb.ctx)
		if err != nil {
			t.Fatal(err)
		}
		hbKey := hb.nodeKeyPEM(t)

		// A tampered list, a list checked with the wrong node key, or one imported by an
		// officer, is refused.
		var st license.SignedTrustList
		if err := json.Unmarshal(doc, &st); err != nil {
			t.Fatal(err)
		}
		tampered := bytes.Replace(doc, []byte(`石家庄市市场监督管理局`), []byte(`山西省假冒监督管理局`), 1)
		if bytes.Equal(tampered, doc) {
			t.Fatal("tampering did not change the list")
		}
		for _, tt := range []struct {
			name  string
			actor authz.Subject
			doc   []byte
			key   string
			want  error
		}{
			{"tampered", sx.admin, tampered, hbKey, license.ErrTrustList},
			{"wrong node key", sx.admin, doc, sx.nodeKeyPEM(t), license.ErrTrustList},
			{"not a key", sx.admin, doc, "-----BEGIN PUBLIC KEY-----", license.ErrTrustList},
			{"not JSON", sx.admin, []byte("<xml/>"), hbKey, license.ErrTrustList},
			{"an officer", sx.scjg, doc, hbKey, i18n.ErrForbidden},
			{"our own list", sx.admin, mustPublish(t, sx), sx.nodeKeyPEM(t), license.ErrTrustListOwn},
		} {
			if _, err := sx.svc.ImportTrustList(sx.ctx, tt.actor, tt.doc, tt.key); !errors.Is(err, tt.want) {
				t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
			}
		}
		info, err := sx.svc.ImportTrustList(sx.ctx, sx.admin, doc, hbKey)
		if err != nil || info.Node != "hb" || info.Issuers != 1 {
			t.Fatalf("import: %+v, %v", info, err)
		}
		res, err := sx.svc.VerifyFile(sx.ctx, raw)
		if err != nil || !res.Valid || res.SignedBy.Node != "hb" || res.SignedBy.DeptName != "石家庄市市场监督管理局" {
			t.Fatalf("after import: %+v, %v", res, err)
		}
		if res := license.VerifyFile(editFile(t, raw, func(fl *license.File) { fl.Content.Holder.Name = "别的公司" }), mustTrust(t, sx), sx.clock.now()); res.Valid {
			t.Fatalf("tampered Hebei licence verified: %+v", res)
		}
		// Shanxi's own licences still verify beside Hebei's.
		own, _ := sx.svc.DownloadFile(sx.ctx, sx.zhang, sx.residencePermit(t).Content.ID)
		if res, _ := sx.svc.VerifyFile(sx.ctx, own.Encode()); !res.Valid {
			t.Fatalf("own licence: %+v", res)
		}
		if nodes := mustTrust(t, sx).Nodes(); strings.Join(nodes, ",") != "hb,sx" {
			t.Fatalf("trusted nodes %v", nodes)
		}

		// A newer list replaces the old; an older one is refused (no rollback).
		hb.clock.advance(time.Hour)
		newer := mustPublish(t, hb)
		if _, err := sx.svc.ImportTrustList(sx.ctx, sx.admin, newer, hbKey); err != nil {
			t.Fatal(err)
		}
		if _, err := sx.svc.ImportTrustList(sx.ctx, sx.admin, doc, hbKey); !errors.Is(err, license.ErrTrustListStale) {
			t.Fatalf("rollback: %v", err)
		}
		lists, err := sx.svc.TrustLists(sx.ctx)
		if err != nil || len(lists) != 1 || !lists[0].IssuedAt.Equal(db.Now(hb.clock.now())) {
			t.Fatalf("trust lists %+v, %v", lists, err)
		}
		if a := sx.auditActions(t, "trust_list:hb"); len(a) != 2 {
			t.Fatalf("audit = %v", a)
		}

		// A stored list edited in the database no longer lends trust.
		if _, err := d.Exec(sx.ctx, `UPDATE license_trust_lists SET doc = ? WHERE node_id = 'hb'`, tampered); err != nil {
			t.Fatal(err)
		}
		if _, err := sx.svc.VerifyFile(sx.ctx, raw); !errors.Is(err, license.ErrCorrupt) {
			t.Fatalf("edited stored list: %v", err)
		}
	}, sources...)
}

func mustPublish(t testing.TB, f *fixture) []byte {
	t.Helper()
	doc, err := f.svc.PublishTrustList(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func mustTrust(t testing.TB, f *fixture) *license.Trust {
	t.Helper()
	tr, err := f.svc.Trust(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// fileSeed is a licence file signed by a real key, for the fuzz corpus (no database).
func fileSeed(t testing.TB) ([]byte, []byte, string) {
	priv, _ := sm2.GenerateKey(rand.Reader)
	der, _ := smx509.MarshalPKIXPublicKey(&priv.PublicKey)
	id, _ := license.MakeIdentifier(license.Identifier{TypeCode: "JZZ", CreditCode: tyGa, Serial: "00000001", Version: 1})
	c := license.Content{Format: license.ContentFormat, ID: id, TypeCode: "JZZ", TypeName: "居住证",
		Holder: license.Holder{Name: "张伟", Kind: license.NaturalPerson, IDType: license.IDResident, IDNumber: zhangID},
		Issuer: license.ContentIssuer{Name: "太原市公安局", CreditCode: tyGa, Division: "140100"}, Node: "sx",
		IssuedAt: t0.UTC(), ValidFrom: t0.UTC(), ValidUntil: ptr(t0.AddDate(1, 0, 0).UTC()), Version: 1,
		Items: []license.Item{{Key: "sex", Label: "性别", Value: "男"}}}
	sig, _ := priv.Sign(rand.Reader, c.Canonical(), sm2.DefaultSM2SignerOpts)
	f := license.File{Format: license.FileFormat, Content: c, Digest: c.Digest(),
		Signature: license.Signature{KeyID: "k1", PublicKey: der, Value: sig, SignedAt: t0}, TrustList: license.TrustRef{Node: "sx"}}
	return f.Encode(), der, id
}

func TestParseFileOffline(t *testing.T) {
	raw, der, _ := fileSeed(t)
	trust := license.NewTrust(license.TrustList{Format: license.TrustListFormat, Node: license.Node{ID: "sx"},
		Issuers: []license.IssuerKey{{KeyID: "k1", CreditCode: tyGa, DeptName: "太原市公安局", PublicKey: der, ValidFrom: t0.Add(-time.Hour)}}})
	if res := license.VerifyFile(raw, trust, t0.Add(time.Hour)); !res.Valid {
		t.Fatalf("seed file: %+v", res)
	}
	if _, err := license.ParseFile(bytes.Repeat([]byte(" "), 2<<20)); !errors.Is(err, license.ErrFile) {
		t.Fatalf("huge file: %v", err)
	}
	if _, err := license.ParseFile(append(bytes.Clone(raw), []byte(`{}`)...)); !errors.Is(err, license.ErrFile) {
		t.Fatalf("trailing data: %v", err)
	}
}

func FuzzParseFile(f *testing.F) {
	raw, der, _ := fileSeed(f)
	trust := license.NewTrust(license.TrustList{Format: license.TrustListFormat, Node: license.Node{ID: "sx"},
		Issuers: []license.IssuerKey{{KeyID: "k1", CreditCode: tyGa, PublicKey: der, ValidFrom: t0.Add(-time.Hour)}}})
	f.Add(raw)
	f.Add([]byte(`{"format":"dgov-license-file/1"}`))
	f.Add([]byte(`{"format":"dgov-license-file/1","content":{"format":"dgov-license/1","id":"1.2.156.3005.2"}}`))
	f.Add([]byte("null"))
	f.Add(bytes.Replace(raw, []byte(`"男"`), []byte(`"女"`), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, err := license.ParseFile(b)
		res := license.VerifyFile(b, trust, t0.Add(time.Hour))
		if err != nil {
			if res.Valid || res.Code != license.CodeMalformed {
				t.Fatalf("unparseable file verified: %+v", res)
			}
			return
		}
		// A parsed file encodes and parses back to the same content.
		again, err := license.ParseFile(fl.Encode())
		if err != nil || !bytes.Equal(again.Content.Canonical(), fl.Content.Canonical()) {
			t.Fatalf("round trip: %v", err)
		}
		// Whatever verifies carries exactly the signed content.
		if res.Valid && !bytes.Equal(fl.Content.Canonical(), mustCanonical(t, raw)) {
			t.Fatalf("a changed file verified: %s", b)
		}
	})
}

func mustCanonical(t testing.TB, raw []byte) []byte {
	fl, err := license.ParseFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	return fl.Content.Canonical()
}

func FuzzParseTrustList(f *testing.F) {
	priv, _ := sm2.GenerateKey(rand.Reader)
	der, _ := smx509.MarshalPKIXPublicKey(&priv.PublicKey)
	nodeKey, _ := crypto.MarshalPublicKeyPEM(&priv.PublicKey)
	l := license.TrustList{Format: license.TrustListFormat, Node: license.Node{ID: "hb"}, IssuedAt: t0.UTC(),
		Issuers: []license.IssuerKey{{KeyID: "k1", CreditCode: sjzScjg, PublicKey: der, ValidFrom: t0.UTC()}}}
	canon, _ := json.Marshal(l) // canonical: compact, declared order, no HTML in these values
	sig, _ := priv.Sign(rand.Reader, canon, sm2.DefaultSM2SignerOpts)
	doc, _ := json.Marshal(license.SignedTrustList{List: canon, KeyID: "n1", Signature: sig})
	if _, err := license.ParseTrustList(doc, nodeKey); err != nil {
		f.Fatalf("seed list: %v", err)
	}
	f.Add(doc)
	f.Add([]byte(`{"list":{},"key_id":"","signature":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := license.ParseTrustList(b, nodeKey)
		if err != nil {
			return
		}
		// Only the signed list parses: same node, same keys.
		if got.Node.ID != "hb" || len(got.Issuers) != 1 || !bytes.Equal(got.Issuers[0].PublicKey, der) {
			t.Fatalf("accepted a changed list: %+v", got)
		}
	})
}
