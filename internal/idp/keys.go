package idp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/dgov/dgov/internal/platform/db"
)

// RS256 with 2048-bit keys: what go-oidc and every relying party library support. (SM2 would
// be ours of choice, but no RP stack verifies it; the keys are sealed with SM4 at rest.)
const (
	signingAlg  = jose.RS256
	rsaKeyBits  = 2048
	keyAADLabel = "idp.signing_keys:"
)

type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return signingAlg }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct {
	id  string
	key *rsa.PublicKey
}

func (k *publicKey) ID() string                         { return k.id }
func (k *publicKey) Algorithm() jose.SignatureAlgorithm { return signingAlg }
func (k *publicKey) Use() string                        { return "sig" }
func (k *publicKey) Key() any                           { return k.key }

// keyCache holds the active signing key and the published keys for keyCacheTTL, so that
// signing does not open a sealed key per token; rotation on another node is seen within it.
type keyCache struct {
	p      *Provider
	mu     sync.Mutex
	at     time.Time
	active *signingKey
	public []op.Key
}

func (c *keyCache) get(ctx context.Context) (*signingKey, []op.Key, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active != nil && time.Since(c.at) < keyCacheTTL {
		return c.active, c.public, nil
	}
	if err := c.load(ctx); err != nil {
		return nil, nil, err
	}
	return c.active, c.public, nil
}

func (c *keyCache) invalidate() {
	c.mu.Lock()
	c.active = nil
	c.mu.Unlock()
}

// load reads the active key and the one retired before it (JWKS publishes both), making
// the first key when there is none.
func (c *keyCache) load(ctx context.Context) error {
	for attempt := 0; attempt < 3; attempt++ {
		rows, err := c.p.cfg.DB.Query(ctx, `SELECT id, public_pem, private_enc, active FROM idp_signing_keys
			WHERE active OR retired_at IS NOT NULL ORDER BY active DESC, retired_at DESC LIMIT 2`)
		if err != nil {
			return fmt.Errorf("load signing keys: %w", err)
		}
		var active *signingKey
		var public []op.Key
		for rows.Next() {
			var id, pubPEM string
			var enc []byte
			var isActive bool
			if err := rows.Scan(&id, &pubPEM, &enc, &isActive); err != nil {
				rows.Close()
				return fmt.Errorf("load signing keys: %w", err)
			}
			if isActive {
				k, err := c.open(id, enc)
				if err != nil {
					rows.Close()
					return err
				}
				active = k
				public = append(public, &publicKey{id: id, key: &k.key.PublicKey})
				continue
			}
			if active == nil {
				break // retired keys only: make a new active one below
			}
			pub, err := parsePublicPEM(pubPEM)
			if err != nil {
				rows.Close()
				return fmt.Errorf("signing key %s: %w", id, err)
			}
			public = append(public, &publicKey{id: id, key: pub})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("load signing keys: %w", err)
		}
		if active != nil {
			c.active, c.public, c.at = active, public, time.Now()
			return nil
		}
		if err := c.p.rotateKey(ctx, false); err != nil && !db.IsUniqueViolation(err) {
			return err
		}
		// Made here, or by another node that won the race: read again.
	}
	return fmt.Errorf("load signing keys: no active key after creating one")
}

func (c *keyCache) open(id string, enc []byte) (*signingKey, error) {
	der, err := c.p.cfg.Fields.Open(enc, keyAADLabel+id+":private_key")
	if err != nil {
		return nil, fmt.Errorf("open signing key %s: %w", id, err)
	}
	k, err := x509.ParsePKCS1PrivateKey([]byte(der))
	if err != nil {
		return nil, fmt.Errorf("parse signing key %s: %w", id, err)
	}
	return &signingKey{id: id, key: k}, nil
}

func parsePublicPEM(s string) (*rsa.PublicKey, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("not an RSA key")
	}
	return pub, nil
}

// rotateKey makes a new active signing key; with retire, the current one is retired (it
// stays published until the next rotation).
func (p *Provider) rotateKey(ctx context.Context, retire bool) error {
	k, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return err
	}
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	id := db.NewID()
	enc, err := p.cfg.Fields.Seal(string(x509.MarshalPKCS1PrivateKey(k)), keyAADLabel+id+":private_key")
	if err != nil {
		return fmt.Errorf("seal signing key: %w", err)
	}
	now := p.now()
	return p.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if retire {
			if _, err := tx.Exec(ctx, `UPDATE idp_signing_keys SET active = ?, retired_at = ? WHERE active`, false, now); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO idp_signing_keys (id, alg, public_pem, private_enc, created_at, active)
			VALUES (?, ?, ?, ?, ?, ?)`, id, string(signingAlg), pubPEM, enc, now, true)
		return err
	})
}

// RotateSigningKey makes a new signing key. The previous key stays in the JWKS until the next
// rotation, so tokens signed with it keep verifying; other nodes switch within a minute.
func (p *Provider) RotateSigningKey(ctx context.Context, actor string) error {
	if err := p.rotateKey(ctx, true); err != nil {
		return fmt.Errorf("rotate signing key: %w", err)
	}
	p.keys.invalidate()
	return p.cfg.Audit(ctx, actor, "oidc.key.rotate", "oidc_signing_key", nil)
}
