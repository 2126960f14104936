package seal_test

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"github.com/dgov/dgov/internal/org"
	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/i18n"
	"github.com/dgov/dgov/internal/seal"
)

func TestCreateAuthorizationAndStructure(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ty := f.dept["140100/scjg"]
		for _, tc := range []struct {
			name  string
			actor authz.Subject
			want  error
		}{
			{"anonymous", authz.Subject{}, i18n.ErrUnauthorized},
			{"officer", f.tyOfficer, i18n.ErrForbidden},
			{"auditor", f.auditor, i18n.ErrForbidden},
			{"another city's admin", f.dtAdmin, i18n.ErrForbidden},
			{"citizen", authz.Subject{Kind: authz.Citizen, ID: "c1"}, i18n.ErrForbidden},
		} {
			_, err := f.svc.Create(f.ctx, tc.actor, seal.CreateInput{DeptID: ty.ID})
			wantErr(t, tc.name, err, tc.want)
		}

		sl := f.official()
		if sl.Name != ty.Name || sl.Purpose != "" || sl.Version != 1 || sl.Status != seal.StatusActive || sl.Type != seal.SealTypeOrganisation {
			t.Fatalf("seal %+v", sl)
		}
		if sl.WidthMM != seal.DiameterLocalMM || sl.PictureType != seal.PictureSVG || !bytes.Contains(sl.Picture, []byte("<svg")) {
			t.Fatalf("picture %s %d mm", sl.PictureType, sl.WidthMM)
		}
		if !strings.HasPrefix(sl.ESID, "140100") || !sl.ValidFrom.Equal(t0) || !sl.ValidTo.Equal(t0.Add(5*365*24*time.Hour)) {
			t.Fatalf("esID %s, period %s–%s", sl.ESID, sl.ValidFrom, sl.ValidTo)
		}

		// The SES_Seal is the GB/T 38540 structure: it parses and says what the row says.
		es, err := seal.ParseSeal(sl.ESeal)
		if err != nil {
			t.Fatal(err)
		}
		if es.ESID != sl.ESID || es.Name != sl.Name || es.Version != 4 || es.Vendor != "dgov" || es.CertListType != 1 ||
			len(es.Certs) != 1 || !bytes.Equal(es.Certs[0], sl.Cert) || !bytes.Equal(es.Picture, sl.Picture) ||
			es.PictureType != "SVG" || es.WidthMM != 42 || !es.ValidFrom.Equal(sl.ValidFrom) || !es.ValidTo.Equal(sl.ValidTo) {
			t.Fatalf("SES_Seal %+v", es)
		}
		// The key's certificate is issued by the seal maker, for the seal's period and key.
		makerDER := must[[]byte](t, "maker")(f.svc.MakerCertificate(f.ctx))
		if !bytes.Equal(es.MakerCert, makerDER) {
			t.Fatal("the SES_Seal's maker certificate is not the node's seal maker")
		}
		maker := must[*smx509.Certificate](t, "parse maker")(smx509.ParseCertificate(makerDER))
		cert := must[*smx509.Certificate](t, "parse cert")(smx509.ParseCertificate(sl.Cert))
		if err := cert.CheckSignatureFrom(maker); err != nil {
			t.Fatalf("certificate not issued by the maker: %v", err)
		}
		pkix := must[[]byte](t, "pkix")(smx509.MarshalPKIXPublicKey(cert.PublicKey.(*ecdsa.PublicKey)))
		if !bytes.Equal(pkix, sl.PublicKey) || cert.Subject.CommonName != sl.Name || !cert.NotAfter.Equal(sl.ValidTo) {
			t.Fatalf("certificate %s, key match %v", cert.Subject, bytes.Equal(pkix, sl.PublicKey))
		}

		// One seal in force per department and purpose; a special seal is another purpose.
		_, err = f.svc.Create(f.ctx, f.tyAdmin, seal.CreateInput{DeptID: ty.ID})
		wantErr(t, "second official seal", err, seal.ErrExists)
		_, err = f.svc.Create(f.ctx, f.tyAdmin, seal.CreateInput{DeptID: ty.ID, Purpose: "行政审批"})
		wantErr(t, "purpose without 章", err, i18n.New("seal.purpose", "", ""))
		sp := must[seal.Seal](t, "special")(f.svc.Create(f.ctx, f.provAdmin, seal.CreateInput{DeptID: ty.ID, Purpose: "行政审批专用章"}))
		if sp.Name != ty.Name+"行政审批专用章" || !bytes.Contains(sp.Picture, []byte("行政审批专用章")) {
			t.Fatalf("special seal %s", sp.Name)
		}
		prov := must[seal.Seal](t, "province")(f.svc.Create(f.ctx, f.provAdmin, seal.CreateInput{DeptID: f.dept["140000/zwfw"].ID}))
		if prov.WidthMM != seal.DiameterProvinceMM {
			t.Fatalf("provincial seal %d mm", prov.WidthMM)
		}

		// Lists follow division scope.
		list := must[[]seal.Seal](t, "list")(f.svc.List(f.ctx, f.tyOfficer, seal.Filter{}))
		if len(list) != 2 {
			t.Fatalf("太原 sees %d seals", len(list))
		}
		all := must[[]seal.Seal](t, "list")(f.svc.List(f.ctx, f.auditor, seal.Filter{}))
		if len(all) != 3 {
			t.Fatalf("the province sees %d seals", len(all))
		}
		_, err = f.svc.List(f.ctx, f.dtAdmin, seal.Filter{Division: "140100"})
		wantErr(t, "大同 lists 太原", err, i18n.ErrForbidden)
		_, err = f.svc.Get(f.ctx, f.dtAdmin, sl.ID)
		wantErr(t, "大同 reads 太原", err, i18n.ErrForbidden)
		cur := must[seal.Seal](t, "current")(f.svc.Current(f.ctx, f.tyOfficer, ty.ID, ""))
		if cur.ID != sl.ID {
			t.Fatalf("current %s, want %s", cur.ID, sl.ID)
		}
		_, err = f.svc.Current(f.ctx, f.tyOfficer, f.dept["140100/ga"].ID, "")
		wantErr(t, "no seal", err, seal.ErrNoSeal)

		if got, want := f.audits(), []string{seal.ActionMakerCreated, seal.ActionCreate, seal.ActionCreate, seal.ActionCreate}; !slices.Equal(got, want) {
			t.Fatalf("audit %v, want %v", got, want)
		}
		if got := f.events(); len(got) != 3 || got[0] != seal.EventCreated {
			t.Fatalf("events %v", got)
		}
	})
}

func TestUploadedPicture(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		ty := f.dept["140100/scjg"].ID
		pngData := seal.RasterSeal(64)
		purposes := []string{"合同专用章", "财务专用章", "业务专用章", "审批专用章", "证照专用章", "备案专用章", "公示专用章"}
		for i, tc := range []struct {
			name string
			pic  seal.Picture
			ok   bool
		}{
			{"png", seal.Picture{Type: "PNG", Data: pngData, WidthMM: 40}, true},
			{"not a png", seal.Picture{Type: "PNG", Data: []byte("GIF89a")}, false},
			{"svg with script", seal.Picture{Type: "SVG", Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)}, false},
			{"svg with handler", seal.Picture{Type: "SVG", Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`)}, false},
			{"gif", seal.Picture{Type: "GIF", Data: []byte("GIF89a")}, false},
			{"too small", seal.Picture{Type: "PNG", Data: pngData, WidthMM: 5}, false},
			{"clean svg", seal.Picture{Type: "svg", Data: []byte(`<?xml version="1.0"?><!-- c --><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle cx="5" cy="5" r="4" fill="red"/></svg>`)}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				sl, err := f.svc.Create(f.ctx, f.tyAdmin, seal.CreateInput{DeptID: ty, Purpose: purposes[i], Picture: &tc.pic})
				if tc.ok != (err == nil) {
					t.Fatalf("ok %v, err %v", tc.ok, err)
				}
				if err != nil {
					if _, isUser := i18n.As(err); !isUser {
						t.Fatalf("not a user error: %v", err)
					}
					return
				}
				if sl.PictureType != strings.ToUpper(tc.pic.Type) {
					t.Fatalf("type %s", sl.PictureType)
				}
				if sl.PictureType == "SVG" && (bytes.Contains(sl.Picture, []byte("<!--")) || bytes.Contains(sl.Picture, []byte("<?xml"))) {
					t.Fatalf("stored SVG not rewritten: %s", sl.Picture)
				}
			})
		}
	})
}

func TestSealFileAndVerify(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		sl := f.official()
		doc := []byte("%PDF-1.7\n行政许可决定书 … the whole file\n%%EOF\n")
		for _, tc := range []struct {
			name  string
			actor authz.Subject
			id    string
			want  error
		}{
			{"admin may manage, not seal", f.tyAdmin, sl.ID, i18n.ErrForbidden},
			{"officer of another department", f.tyGAOfficer, sl.ID, i18n.ErrForbidden},
			{"no seal of the officer's department", f.tyGAOfficer, "", seal.ErrNoSeal},
			{"unknown seal", f.tyOfficer, "nope", i18n.ErrNotFound},
			{"anonymous", authz.Subject{}, sl.ID, i18n.ErrUnauthorized},
		} {
			_, err := f.svc.SealFile(f.ctx, tc.actor, tc.id, "决定书.pdf", doc)
			wantErr(t, tc.name, err, tc.want)
		}

		f.now = t0.Add(time.Hour + 1500*time.Millisecond)
		sealed := must[seal.Sealed](t, "seal")(f.svc.SealFile(f.ctx, f.tyOfficer, "", "决定书.pdf", doc))
		if sealed.SealID != sl.ID || sealed.KeyID != sl.KeyID || !sealed.SignedAt.Equal(t0.Add(time.Hour+time.Second)) {
			t.Fatalf("sealed %+v", sealed)
		}
		v := must[seal.Verification](t, "verify")(f.svc.Verify(f.ctx, doc, sealed.Signature))
		if !v.Valid || !v.Known || !v.Registered || !v.ValidAtSigning || !v.SignatureIntact || !v.DocumentIntact || !v.Trusted || len(v.Problems) != 0 {
			t.Fatalf("verification %+v", v)
		}
		if v.Seal.DeptName != "太原市市场监督管理局" || v.Seal.DeptID != sl.DeptID || v.SealName != sl.Name || v.KeyID != sl.KeyID ||
			!strings.Contains(v.CertSubject, sl.Name) || !v.SignedAt.Equal(sealed.SignedAt) || v.Format != seal.FormatFile {
			t.Fatalf("who and when: %+v %+v", v.Check, v.Seal)
		}
		if !strings.HasPrefix(v.Signature.PropertyInfo, "dgov:file;name=%E5%86%B3") {
			t.Fatalf("propertyInfo %q", v.Signature.PropertyInfo)
		}

		// Any changed byte of the document fails, and says so.
		for _, i := range []int{0, len(doc) / 2, len(doc) - 1} {
			changed := bytes.Clone(doc)
			changed[i] ^= 1
			v := must[seal.Verification](t, "verify changed")(f.svc.Verify(f.ctx, changed, sealed.Signature))
			if v.Valid || v.DocumentIntact || !v.SignatureIntact || v.Problems[0].Code != "seal.document_changed" {
				t.Fatalf("changed byte %d: %+v", i, v)
			}
		}
		// A changed signature byte: malformed, or a signature that no longer verifies.
		for _, at := range []int{10, len(sealed.Signature) / 2, len(sealed.Signature) - 5} {
			bad := bytes.Clone(sealed.Signature)
			bad[at] ^= 0x40
			v, err := f.svc.Verify(f.ctx, doc, bad)
			if err == nil && v.Valid {
				t.Fatalf("signature byte %d changed, still valid", at)
			}
			if err != nil && !errors.Is(err, seal.ErrMalformed) {
				t.Fatalf("signature byte %d: %v", at, err)
			}
		}
		_, err := f.svc.Verify(f.ctx, doc, []byte("not DER"))
		wantErr(t, "garbage", err, seal.ErrMalformed)

		// Offline: the signature and the maker's certificate suffice.
		maker := must[*smx509.Certificate](t, "maker")(smx509.ParseCertificate(must[[]byte](t, "maker")(f.svc.MakerCertificate(f.ctx))))
		c := must[*seal.Check](t, "offline")(seal.CheckSignature(sealed.Signature, doc, []*smx509.Certificate{maker}))
		if !c.Verified() {
			t.Fatalf("offline %+v", c)
		}
		if c := must[*seal.Check](t, "untrusted")(seal.CheckSignature(sealed.Signature, doc, nil)); c.Trusted || c.Verified() || !c.SignatureIntact {
			t.Fatalf("without the maker: %+v", c)
		}

		uses := must[[]seal.Use](t, "uses")(f.svc.Uses(f.ctx, f.auditor, sl.ID, 0, 0))
		if len(uses) != 1 || uses[0].ID != sealed.UseID || uses[0].DocName != "决定书.pdf" || uses[0].Actor != "staff:ty_officer" {
			t.Fatalf("register %+v", uses)
		}
		if got := f.audits(); got[len(got)-1] != seal.ActionUse {
			t.Fatalf("audit %v", got)
		}
	})
}

func TestRotationKeepsOldDocumentsVerifying(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		old := f.official()
		doc1 := []byte("sealed before the rotation")
		f.now = t0.Add(24 * time.Hour)
		s1 := must[seal.Sealed](t, "seal 1")(f.svc.SealFile(f.ctx, f.tyOfficer, "", "1.txt", doc1))

		_, err := f.svc.Rotate(f.ctx, f.tyOfficer, old.ID, seal.RotateInput{})
		wantErr(t, "officer rotates", err, i18n.ErrForbidden)
		f.now = t0.Add(48 * time.Hour)
		cur := must[seal.Seal](t, "rotate")(f.svc.Rotate(f.ctx, f.tyAdmin, old.ID, seal.RotateInput{}))
		if cur.Version != 2 || cur.KeyID == old.KeyID || cur.ESID == old.ESID || !bytes.Equal(cur.Picture, old.Picture) || cur.Status != seal.StatusActive {
			t.Fatalf("rotated %+v", cur)
		}
		_, err = f.svc.Rotate(f.ctx, f.tyAdmin, old.ID, seal.RotateInput{})
		wantErr(t, "rotate a retired seal", err, seal.ErrNotInForce)
		_, err = f.svc.SealFile(f.ctx, f.tyOfficer, old.ID, "x", doc1)
		wantErr(t, "seal with the retired seal", err, seal.ErrNotInForce)

		doc2 := []byte("sealed after the rotation")
		f.now = t0.Add(72 * time.Hour)
		s2 := must[seal.Sealed](t, "seal 2")(f.svc.SealFile(f.ctx, f.tyOfficer, "", "2.txt", doc2))
		if s2.SealID != cur.ID || s2.KeyID != cur.KeyID {
			t.Fatalf("sealed with %s, want the new seal %s", s2.SealID, cur.ID)
		}

		v1 := must[seal.Verification](t, "verify old")(f.svc.Verify(f.ctx, doc1, s1.Signature))
		if !v1.Valid || v1.Seal.Status != seal.StatusRetired || v1.Seal.ReplacedBy != cur.ID || v1.KeyID != old.KeyID {
			t.Fatalf("old document after rotation: %+v %+v", v1, v1.Seal)
		}
		v2 := must[seal.Verification](t, "verify new")(f.svc.Verify(f.ctx, doc2, s2.Signature))
		if !v2.Valid || v2.Seal.ID != cur.ID {
			t.Fatalf("new document: %+v", v2)
		}
		if got := f.events(); !slices.Equal(got, []string{seal.EventCreated, seal.EventRotated}) {
			t.Fatalf("events %v", got)
		}
		got := f.audits()
		if got[len(got)-2] != seal.ActionRotate {
			t.Fatalf("audit %v", got)
		}
	})
}

func TestRevokedSealShows(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		sl := f.official()
		doc := []byte("sealed while the seal was in force")
		f.now = t0.Add(time.Hour)
		s1 := must[seal.Sealed](t, "seal")(f.svc.SealFile(f.ctx, f.tyOfficer, "", "a.txt", doc))

		_, err := f.svc.Revoke(f.ctx, f.tyAdmin, sl.ID, " ")
		wantErr(t, "no reason", err, seal.ErrReasonRequired)
		_, err = f.svc.Revoke(f.ctx, f.dtAdmin, sl.ID, "密钥泄露")
		wantErr(t, "another city", err, i18n.ErrForbidden)
		f.now = t0.Add(2 * time.Hour)
		rv := must[seal.Seal](t, "revoke")(f.svc.Revoke(f.ctx, f.tyAdmin, sl.ID, "密钥泄露"))
		if rv.Status != seal.StatusRevoked || rv.RevokedAt == nil || rv.RevokeReason != "密钥泄露" || rv.RevokedBy != "staff:ty_admin" {
			t.Fatalf("revoked %+v", rv)
		}
		_, err = f.svc.Revoke(f.ctx, f.tyAdmin, sl.ID, "again")
		wantErr(t, "revoke twice", err, seal.ErrNotInForce)

		v := must[seal.Verification](t, "verify")(f.svc.Verify(f.ctx, doc, s1.Signature))
		if !v.Valid || !v.ValidAtSigning || v.Seal.Status != seal.StatusRevoked || v.Seal.RevokeReason != "密钥泄露" ||
			len(v.Problems) != 1 || v.Problems[0].Code != "seal.revoked_later" {
			t.Fatalf("document sealed before the revocation: %+v", v)
		}

		_, err = f.svc.SealFile(f.ctx, f.tyOfficer, sl.ID, "b.txt", doc)
		wantErr(t, "seal with a revoked seal", err, seal.ErrNotInForce)
		_, err = f.svc.SealFile(f.ctx, f.tyOfficer, "", "b.txt", doc)
		wantErr(t, "no official seal left", err, seal.ErrNoSeal)
		_, err = f.svc.SignAs(f.ctx, sl.DeptID, doc)
		wantErr(t, "SignAs after revocation", err, seal.ErrNoSeal)

		// A new seal can be made after a revocation.
		again := must[seal.Seal](t, "create again")(f.svc.Create(f.ctx, f.tyAdmin, seal.CreateInput{DeptID: sl.DeptID}))
		if again.Version != 2 {
			t.Fatalf("version %d", again.Version)
		}
		if got := f.events(); !slices.Equal(got, []string{seal.EventCreated, seal.EventRevoked, seal.EventCreated}) {
			t.Fatalf("events %v", got)
		}
	})
}

func TestSignAs(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		sl := f.official()
		data := []byte(`{"license":"1.2.156.3005.2.11100000000013338W.001.1.Q"}`)
		sig := must[seal.Signature](t, "sign")(f.svc.SignAs(f.ctx, sl.DeptID, data))
		if sig.KeyID != sl.KeyID || !bytes.Equal(sig.PublicKey, sl.PublicKey) || !bytes.Equal(sig.Cert, sl.Cert) || !sig.SignedAt.Equal(t0) {
			t.Fatalf("signature %+v", sig)
		}
		if err := seal.VerifySignature(sig, data); err != nil {
			t.Fatal(err)
		}
		if err := seal.VerifySignature(sig, append(data, ' ')); err == nil {
			t.Fatal("a changed message verifies")
		}
		// SignAs reads only: it works inside the caller's write transaction (SQLite's single writer).
		err := f.d.InTx(f.ctx, func(tx *db.Tx) error {
			_, err := f.svc.SignAs(f.ctx, sl.DeptID, data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.SignAs(f.ctx, f.dept["140100/ga"].ID, data)
		wantErr(t, "department without a seal", err, seal.ErrNoSeal)

		f.now = t0.Add(time.Hour)
		cur := must[seal.Seal](t, "rotate")(f.svc.Rotate(f.ctx, f.provAdmin, sl.ID, seal.RotateInput{}))
		sig2 := must[seal.Signature](t, "sign")(f.svc.SignAs(f.ctx, sl.DeptID, data))
		if sig2.KeyID != cur.KeyID {
			t.Fatalf("signed with %s after rotation, want %s", sig2.KeyID, cur.KeyID)
		}
		oldKey := must[seal.PublicKey](t, "old key")(f.svc.KeyByID(f.ctx, sig.KeyID))
		if oldKey.Status != seal.StatusRetired || oldKey.RetiredAt == nil || !bytes.Equal(oldKey.PublicKey, sig.PublicKey) {
			t.Fatalf("old key %+v", oldKey)
		}
		keys := must[[]seal.PublicKey](t, "keys")(f.svc.PublicKeys(f.ctx))
		if len(keys) != 2 || keys[0].KeyID != sig.KeyID || keys[1].KeyID != sig2.KeyID {
			t.Fatalf("keys %+v", keys)
		}
		_, err = f.svc.KeyByID(f.ctx, "unknown")
		wantErr(t, "unknown key", err, i18n.ErrNotFound)
		// The old signature still verifies with the key it names.
		if err := seal.VerifySignature(sig, data); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStolenKeyIsCaught(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		sl := f.official()
		f.now = t0.Add(10 * time.Hour)
		must[seal.Seal](t, "revoke")(f.svc.Revoke(f.ctx, f.tyAdmin, sl.ID, "印章密钥泄露"))
		doc := []byte("forged decision")
		for _, tc := range []struct {
			name      string
			at        time.Time
			atSigning bool
			problem   string
		}{
			{"back-dated before the revocation", t0.Add(time.Hour), true, "seal.unregistered"},
			{"after the revocation", t0.Add(11 * time.Hour), false, "seal.revoked"},
		} {
			der := must[[]byte](t, "forge")(f.svc.ForgeForTest(f.ctx, sl.ID, doc, tc.at))
			v := must[seal.Verification](t, "verify")(f.svc.Verify(f.ctx, doc, der))
			codes := []string{}
			for _, p := range v.Problems {
				codes = append(codes, p.Code)
			}
			if v.Valid || v.Registered || !v.SignatureIntact || v.ValidAtSigning != tc.atSigning || !slices.Contains(codes, tc.problem) {
				t.Fatalf("%s: valid %v registered %v at signing %v problems %v", tc.name, v.Valid, v.Registered, v.ValidAtSigning, codes)
			}
		}
	})
}

func TestRotationFollowsRenamedDepartment(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		old := f.official()
		custom := must[seal.Seal](t, "special")(f.svc.Create(f.ctx, f.tyAdmin, seal.CreateInput{DeptID: old.DeptID,
			Purpose: "合同专用章", Name: "合同章"}))
		name := "太原市市场监督管理局（知识产权局）"
		sys := staff("sys", "140000", "", authz.RoleSysAdmin)
		must[org.Department](t, "rename")(f.org.UpdateDepartment(f.ctx, sys, old.DeptID, org.DepartmentPatch{Name: &name}))
		cur := must[seal.Seal](t, "rotate")(f.svc.Rotate(f.ctx, f.tyAdmin, old.ID, seal.RotateInput{}))
		if cur.DeptName != name || cur.Name != name || !bytes.Equal(cur.Picture, seal.DrawSeal(name, "", 42)) {
			t.Fatalf("rotated after rename: %s / %s", cur.DeptName, cur.Name)
		}
		cur2 := must[seal.Seal](t, "rotate special")(f.svc.Rotate(f.ctx, f.tyAdmin, custom.ID, seal.RotateInput{}))
		if cur2.Name != "合同章" || !bytes.Equal(cur2.Picture, seal.DrawSeal(name, "合同专用章", 42)) {
			t.Fatalf("a custom name stays: %s", cur2.Name)
		}
		inactive := false
		must[org.Department](t, "deactivate")(f.org.UpdateDepartment(f.ctx, sys, old.DeptID, org.DepartmentPatch{Active: &inactive}))
		_, err := f.svc.Rotate(f.ctx, f.tyAdmin, cur.ID, seal.RotateInput{})
		wantErr(t, "inactive department", err, seal.ErrInactiveDept)
	})
}
