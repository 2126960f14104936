package seal

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"math/big"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dgov/dgov/internal/platform/authz"
	"github.com/dgov/dgov/internal/platform/db"
)

// makerValidity is the life of the seal maker's certificate.
const makerValidity = 30 * 365 * 24 * time.Hour

const makerRowID = "maker"

// maker is the seal maker (制章者): the node's seal CA.
type maker struct {
	cert *smx509.Certificate
	der  []byte
	key  *sm2.PrivateKey
}

// aad binds a sealed private key to its row and column, so it cannot be moved elsewhere.
func aad(table, id, column string) string { return table + ":" + id + ":" + column }

// sealKey seals a private key with the field cipher as PKCS#8 in base64.
func (s *Service) sealKey(key *sm2.PrivateKey, ad string) ([]byte, error) {
	pkcs8, err := smx509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal SM2 key: %w", err)
	}
	enc, err := s.fc.Seal(base64.StdEncoding.EncodeToString(pkcs8), ad)
	if err != nil {
		return nil, fmt.Errorf("seal SM2 key: %w", err)
	}
	return enc, nil
}

// openKey opens a key sealed by sealKey and checks it is the private half of pub (a PKIX DER
// the row stores in the clear, which the sealing does not authenticate).
func (s *Service) openKey(enc []byte, ad string, pub []byte) (*sm2.PrivateKey, error) {
	b64, err := s.fc.Open(enc, ad)
	if err != nil {
		return nil, fmt.Errorf("open SM2 key: %w", err)
	}
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("SM2 key: %w", err)
	}
	k, err := smx509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("SM2 key: %w", err)
	}
	key, ok := k.(*sm2.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("SM2 key: %T: %w", k, errNotSM2)
	}
	if pub != nil {
		mine, err := smx509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil || string(mine) != string(pub) {
			return nil, fmt.Errorf("SM2 key of %s does not match the stored public key", ad)
		}
	}
	return key, nil
}

// getMaker returns the seal maker, creating it at first use. Nodes racing to create it agree
// on the first row written. It must not be called inside a transaction (it may write).
func (s *Service) getMaker(ctx context.Context) (*maker, error) {
	s.makerMu.Lock()
	defer s.makerMu.Unlock()
	if s.maker != nil {
		return s.maker, nil
	}
	m, err := s.readMaker(ctx)
	if isNoRow(err) {
		err = s.createMaker(ctx)
		if err == nil {
			m, err = s.readMaker(ctx)
		}
	}
	if err != nil {
		return nil, err
	}
	s.maker = m
	return m, nil
}

func (s *Service) createMaker(ctx context.Context) error {
	key, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("seal maker key: %w", err)
	}
	now := s.clock()
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	tmpl := &smx509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{CommonName: s.opts.MakerName, Organization: []string{s.opts.MakerName}, Country: []string{"CN"},
			Province: []string{s.opts.Province}},
		NotBefore:             now.Add(-time.Hour).Truncate(time.Second),
		NotAfter:              now.Add(makerValidity).Truncate(time.Second),
		KeyUsage:              smx509.KeyUsageCertSign | smx509.KeyUsageCRLSign | smx509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("seal maker certificate: %w", err)
	}
	enc, err := s.sealKey(key, aad("seal_ca", makerRowID, "key"))
	if err != nil {
		return err
	}
	return s.d.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.Exec(ctx, `INSERT INTO seal_ca (id, cert, key_enc, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			makerRowID, der, enc, now)
		if err != nil {
			return fmt.Errorf("store seal maker: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return s.record(ctx, tx, authz.Subject{}, ActionMakerCreated, "seal_ca:"+makerRowID,
				map[string]any{"serial": fmt.Sprintf("%x", serial), "subject": s.opts.MakerName})
		}
		return nil
	})
}

func (s *Service) readMaker(ctx context.Context) (*maker, error) {
	m := &maker{}
	var enc []byte
	if err := s.d.QueryRow(ctx, `SELECT cert, key_enc FROM seal_ca WHERE id = ?`, makerRowID).Scan(&m.der, &enc); err != nil {
		if isNoRow(err) {
			return nil, err
		}
		return nil, fmt.Errorf("read seal maker: %w", err)
	}
	var err error
	if m.cert, err = smx509.ParseCertificate(m.der); err != nil {
		return nil, fmt.Errorf("seal maker certificate: %w", err)
	}
	pub, err := smx509.MarshalPKIXPublicKey(m.cert.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("seal maker certificate: %w", err)
	}
	if m.key, err = s.openKey(enc, aad("seal_ca", makerRowID, "key"), pub); err != nil {
		return nil, fmt.Errorf("seal maker: %w", err)
	}
	return m, nil
}

// makerIfAny is the seal maker if one was made, else nil; it never writes (verification
// must not, and may run inside a caller's transaction).
func (s *Service) makerIfAny(ctx context.Context) (*maker, error) {
	s.makerMu.Lock()
	defer s.makerMu.Unlock()
	if s.maker != nil {
		return s.maker, nil
	}
	m, err := s.readMaker(ctx)
	if isNoRow(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.maker = m
	return m, nil
}

// MakerCertificate is the DER certificate of the node's seal maker, the root a verifier
// trusts to check this node's sealings offline (CheckSignature). It is created at first use.
func (s *Service) MakerCertificate(ctx context.Context) ([]byte, error) {
	m, err := s.getMaker(ctx)
	if err != nil {
		return nil, err
	}
	return m.der, nil
}

// oidSerialNumberAttr is the subject's serialNumber attribute (X.520), which carries the
// seal's esID in its key's certificate, tying the certificate to one seal.
var oidSerialNumberAttr = asn1.ObjectIdentifier{2, 5, 4, 5}

// issueCert certifies a seal's key: an X.509 SM2 certificate issued by the maker, valid for
// the seal's period, for digital signatures and non-repudiation (a seal commits its department).
func (m *maker) issueCert(pub *ecdsa.PublicKey, sl Seal, province string) ([]byte, *big.Int, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &smx509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{CommonName: sl.Name, Organization: []string{sl.DeptName}, Country: []string{"CN"},
			Province: []string{province}, Locality: []string{sl.Division},
			ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidSerialNumberAttr, Value: sl.ESID}}},
		NotBefore:             sl.ValidFrom,
		NotAfter:              sl.ValidTo,
		KeyUsage:              smx509.KeyUsageDigitalSignature | smx509.KeyUsageContentCommitment,
		BasicConstraintsValid: true,
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, m.cert, pub, m.key)
	if err != nil {
		return nil, nil, fmt.Errorf("seal certificate: %w", err)
	}
	return der, serial, nil
}

func randomSerial() (*big.Int, error) {
	// 128 random bits, positive and non-zero (RFC 5280 allows up to 20 octets).
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
