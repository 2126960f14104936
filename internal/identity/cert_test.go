package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dgov/dgov/internal/identity"
	"github.com/dgov/dgov/internal/platform/db"
	"github.com/dgov/dgov/internal/platform/db/dbtest"
	"github.com/dgov/dgov/internal/platform/i18n"
)

func sm2Key(t *testing.T) *sm2.PrivateKey {
	t.Helper()
	k, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubPEM(t *testing.T, k *sm2.PrivateKey) string {
	t.Helper()
	p, err := identity.MarshalSM2PublicKeyPEM(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// certLogin asks for a challenge, signs it with key and logs in with cert.
func (f *fixture) certLogin(cert string, key *sm2.PrivateKey, binding string) (identity.Account, identity.Certificate, error) {
	f.t.Helper()
	ch, err := f.svc.CertificateChallenge(f.ctx, binding)
	if err != nil {
		f.t.Fatalf("challenge: %v", err)
	}
	sig, err := identity.SignCertificateChallenge(key, ch)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.svc.CertificateLogin(f.ctx, cert, ch, sig, binding)
}

// foreignCert is a certificate for key that looks like ours (same subject) but comes from
// another SM2 CA.
func foreignCert(t *testing.T, key *sm2.PrivateKey, accountID string, now time.Time) string {
	t.Helper()
	caKey := sm2Key(t)
	name := pkix.Name{CommonName: "山西省数字政府 统一身份认证 CA", Organization: []string{"山西省数字政府"}, Country: []string{"CN"}, Province: []string{"山西省"}}
	caTmpl := &smx509.Certificate{SerialNumber: big.NewInt(7), Subject: name, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: smx509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	caDER, err := smx509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := smx509.ParseCertificate(caDER)
	tmpl := &smx509.Certificate{SerialNumber: big.NewInt(8), Subject: pkix.Name{CommonName: "张伟", SerialNumber: accountID},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: smx509.KeyUsageDigitalSignature,
		ExtKeyUsage: []smx509.ExtKeyUsage{smx509.ExtKeyUsageClientAuth}}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestCertificates(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		plain := f.register("13700000001", "")
		zw := f.verified("13812345678", "张伟", zhang)
		ln := f.verified("13912345678", "李娜", li)
		key := sm2Key(t)

		// Issuing needs real-name verification and an SM2 key.
		_, err := f.svc.IssueCertificate(f.ctx, plain.ID, pubPEM(t, key))
		wantErr(t, "L1 account", err, identity.ErrLevelTooLow)
		_, err = f.svc.IssueCertificate(f.ctx, zw.ID, "not a key")
		wantErr(t, "garbage", err, identity.ErrBadPublicKey)
		p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		p256DER, _ := smx509.MarshalPKIXPublicKey(&p256.PublicKey)
		_, err = f.svc.IssueCertificate(f.ctx, zw.ID, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: p256DER})))
		wantErr(t, "NIST key", err, identity.ErrBadPublicKey)

		cert, err := f.svc.IssueCertificate(f.ctx, zw.ID, pubPEM(t, key))
		if err != nil {
			t.Fatalf("issue: %v", err)
		}
		caPEM, err := f.svc.CACertificatePEM(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		caBlock, _ := pem.Decode([]byte(caPEM))
		ca, err := smx509.ParseCertificate(caBlock.Bytes)
		if err != nil || !ca.IsCA {
			t.Fatalf("CA: %v", err)
		}
		b, _ := pem.Decode([]byte(cert.PEM))
		x, err := smx509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.CheckSignatureFrom(ca); err != nil {
			t.Fatalf("not signed by the CA: %v", err)
		}
		if x.Subject.CommonName != "张伟" || x.Subject.SerialNumber != zw.ID || strings.Contains(x.Subject.String(), zhang) ||
			strings.Contains(cert.PEM, zhang) || !x.NotAfter.Equal(f.now.Add(identity.CertValidity).Truncate(time.Second)) {
			t.Fatalf("subject %q, not after %v", x.Subject.String(), x.NotAfter)
		}
		if x.SignatureAlgorithm != smx509.SM2WithSM3 {
			t.Fatalf("signature algorithm %v", x.SignatureAlgorithm)
		}
		// A CSR works as well; its own signature must verify.
		key2 := sm2Key(t)
		csr, err := smx509.CreateCertificateRequest(rand.Reader, &smx509.CertificateRequest{Subject: pkix.Name{CommonName: "whatever"}}, key2)
		if err != nil {
			t.Fatal(err)
		}
		cert2, err := f.svc.IssueCertificate(f.ctx, zw.ID, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})))
		if err != nil {
			t.Fatalf("issue from CSR: %v", err)
		}
		if list, err := f.svc.ListCertificates(f.ctx, zw.ID); err != nil || len(list) != 2 || list[0].Subject != "张伟" {
			t.Fatalf("list: %+v %v", list, err)
		}

		// Login: the account becomes L3 and may open a level-3 session.
		acc, c, err := f.certLogin(cert.PEM, key, "browser-1")
		if err != nil || acc.ID != zw.ID || acc.Level != identity.LevelStrong || c.Serial != cert.Serial || c.LastUsedAt == nil {
			t.Fatalf("certificate login: %+v %+v %v", acc, c, err)
		}
		if _, ses, err := f.svc.CreateSession(f.ctx, acc.ID, identity.LevelStrong, []string{identity.AMRSM2}, "", ""); err != nil || ses.Level != 3 {
			t.Fatalf("level-3 session: %+v %v", ses, err)
		}

		// The challenge answers once, for the binding it was given to, within its time.
		ch, _ := f.svc.CertificateChallenge(f.ctx, "browser-1")
		sig, _ := identity.SignCertificateChallenge(key, ch)
		_, _, err = f.svc.CertificateLogin(f.ctx, cert.PEM, ch, sig, "browser-2")
		wantErr(t, "other binding", err, identity.ErrChallenge)
		_, _, err = f.svc.CertificateLogin(f.ctx, cert.PEM, ch, sig, "browser-1")
		wantErr(t, "used challenge", err, identity.ErrChallenge)
		ch, _ = f.svc.CertificateChallenge(f.ctx, "")
		sig, _ = identity.SignCertificateChallenge(key, ch)
		f.now = f.now.Add(identity.CeremonyTTL + time.Second)
		_, _, err = f.svc.CertificateLogin(f.ctx, cert.PEM, ch, sig, "")
		wantErr(t, "expired challenge", err, identity.ErrChallenge)
		_, _, err = f.svc.CertificateLogin(f.ctx, cert.PEM, "dgov-sm2-login:made-up", sig, "")
		wantErr(t, "invented challenge", err, identity.ErrChallenge)

		// A signature by another key, or over another text.
		_, _, err = f.certLogin(cert.PEM, key2, "")
		wantErr(t, "other key", err, identity.ErrCertSignature)
		ch, _ = f.svc.CertificateChallenge(f.ctx, "")
		sig, _ = identity.SignCertificateChallenge(key, ch+"x")
		_, _, err = f.svc.CertificateLogin(f.ctx, cert.PEM, ch, sig, "")
		wantErr(t, "other text", err, identity.ErrCertSignature)
		ch, _ = f.svc.CertificateChallenge(f.ctx, "")
		_, _, err = f.svc.CertificateLogin(f.ctx, cert.PEM, ch, []byte{1, 2, 3}, "")
		wantErr(t, "junk signature", err, identity.ErrCertSignature)

		// A certificate from another CA, even with our subject and a valid signature.
		_, _, err = f.certLogin(foreignCert(t, key, zw.ID, f.now), key, "")
		wantErr(t, "foreign CA", err, identity.ErrCertInvalid)
		_, _, err = f.certLogin("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", key, "")
		wantErr(t, "malformed", err, identity.ErrCertInvalid)

		// Revocation: only by the owner; then the certificate logs in no more, the other one does.
		wantErr(t, "revoke someone else's", f.svc.RevokeCertificate(f.ctx, ln.ID, cert.Serial, ""), i18n.ErrNotFound)
		if err := f.svc.RevokeCertificate(f.ctx, zw.ID, cert.Serial, "USB key lost"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "revoke twice", f.svc.RevokeCertificate(f.ctx, zw.ID, cert.Serial, ""), i18n.ErrNotFound)
		_, _, err = f.certLogin(cert.PEM, key, "")
		wantErr(t, "revoked", err, identity.ErrCertRevoked)
		if _, _, err := f.certLogin(cert2.PEM, key2, ""); err != nil {
			t.Fatalf("second certificate: %v", err)
		}
		list, _ := f.svc.ListCertificates(f.ctx, zw.ID)
		for _, c := range list {
			if (c.Serial == cert.Serial) != (c.RevokedAt != nil) || c.Valid(f.now) == (c.Serial == cert.Serial) {
				t.Fatalf("list after revocation: %+v", c)
			}
		}

		// Expiry, with the clock moved past the end of the validity period.
		f.now = f.now.Add(identity.CertValidity + 24*time.Hour)
		_, _, err = f.certLogin(cert2.PEM, key2, "")
		wantErr(t, "expired", err, identity.ErrCertExpired)
		// A new certificate then works again; the CA is still the same.
		cert3, err := f.svc.IssueCertificate(f.ctx, zw.ID, pubPEM(t, key2))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.certLogin(cert3.PEM, key2, ""); err != nil {
			t.Fatalf("renewed certificate: %v", err)
		}
		if again, _ := f.svc.CACertificatePEM(f.ctx); again != caPEM {
			t.Fatal("the CA changed")
		}
		var sealed []byte
		if err := d.QueryRow(f.ctx, `SELECT key_enc FROM identity_ca`).Scan(&sealed); err != nil || strings.Contains(string(sealed), "PRIVATE") {
			t.Fatalf("CA key not sealed: %v", err)
		}

		// A disabled account cannot log in with its certificate.
		if _, err := d.Exec(f.ctx, `UPDATE accounts SET status = 'disabled' WHERE id = ?`, zw.ID); err != nil {
			t.Fatal(err)
		}
		_, _, err = f.certLogin(cert3.PEM, key2, "")
		wantErr(t, "disabled", err, identity.ErrInactive)

		acts := f.actions()
		for _, want := range []string{identity.ActionCACreated, identity.ActionCertIssued, identity.ActionCertRevoked, identity.ActionLogin, identity.ActionLoginFailed} {
			if !slices.Contains(acts, want) {
				t.Errorf("audit lacks %s: %v", want, acts)
			}
		}
	}, sources...)
}

func TestPasskeyCeremonies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		if _, err := identity.NewPasskeys(f.svc, "http://127.0.0.1:8080", ""); !errors.Is(err, identity.ErrPasskeyHost) {
			t.Fatalf("IP address as RP id: %v", err)
		}
		pk, err := identity.NewPasskeys(f.svc, "https://zwfw.shanxi.gov.cn", "")
		if err != nil || pk.RPID() != "zwfw.shanxi.gov.cn" {
			t.Fatalf("passkeys: %v", err)
		}
		plain := f.register("13700000001", "")
		zw := f.verified("13812345678", "张伟", zhang)
		_, err = pk.BeginRegistration(f.ctx, plain.ID, "b")
		wantErr(t, "L1 registers", err, identity.ErrLevelTooLow)
		c, err := pk.BeginRegistration(f.ctx, zw.ID, "b")
		if err != nil {
			t.Fatal(err)
		}
		var opts struct {
			PublicKey struct {
				RP                     struct{ ID string }
				User                   struct{ ID, Name, DisplayName string }
				AuthenticatorSelection struct{ ResidentKey, UserVerification string }
			}
		}
		if err := json.Unmarshal(c.Options, &opts); err != nil {
			t.Fatal(err)
		}
		o := opts.PublicKey
		if o.RP.ID != "zwfw.shanxi.gov.cn" || o.User.Name != "138****5678" || o.User.DisplayName != "张伟" ||
			o.AuthenticatorSelection.ResidentKey != "required" || o.AuthenticatorSelection.UserVerification != "required" {
			t.Fatalf("creation options: %+v", o)
		}
		// The ceremony is for this account, this binding, once.
		_, err = pk.FinishRegistration(f.ctx, plain.ID, c.Handle, "b", "", []byte(`{}`))
		wantErr(t, "other account", err, identity.ErrChallenge)
		_, err = pk.FinishRegistration(f.ctx, zw.ID, c.Handle, "b", "", []byte(`{}`))
		wantErr(t, "used ceremony", err, identity.ErrChallenge)
		c, _ = pk.BeginRegistration(f.ctx, zw.ID, "b")
		_, err = pk.FinishRegistration(f.ctx, zw.ID, c.Handle, "other", "", []byte(`{}`))
		wantErr(t, "other binding", err, identity.ErrChallenge)
		c, _ = pk.BeginRegistration(f.ctx, zw.ID, "b")
		_, err = pk.FinishRegistration(f.ctx, zw.ID, c.Handle, "b", "", []byte(`{"id":"x"}`))
		wantErr(t, "garbage answer", err, identity.ErrPasskeyFailed)
		c, _ = pk.BeginLogin(f.ctx, "", "b")
		f.now = f.now.Add(identity.CeremonyTTL + time.Second)
		_, _, err = pk.FinishLogin(f.ctx, c.Handle, "b", []byte(`{}`))
		wantErr(t, "expired login ceremony", err, identity.ErrChallenge)
		// An unknown mobile gets a discoverable login, like no mobile at all.
		c, err = pk.BeginLogin(f.ctx, "13600000000", "b")
		if err != nil || strings.Contains(string(c.Options), "allowCredentials") {
			t.Fatalf("unknown mobile: %s %v", c.Options, err)
		}
		wantErr(t, "delete unknown", pk.DeletePasskey(f.ctx, zw.ID, "nope"), i18n.ErrNotFound)
		if list, err := pk.ListPasskeys(f.ctx, zw.ID); err != nil || len(list) != 0 {
			t.Fatalf("list: %v %v", list, err)
		}
	}, sources...)
}
