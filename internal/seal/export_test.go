package seal

import (
	"context"
	"time"
)

// ForgeForTest signs content with a seal's private key outside the service — no register
// entry, any time — as someone who stole the key would.
func (s *Service) ForgeForTest(ctx context.Context, sealID string, content []byte, at time.Time) ([]byte, error) {
	r, err := getSigning(ctx, s.d, `id = ?`, sealID)
	if err != nil {
		return nil, err
	}
	key, err := s.privateKey(r)
	if err != nil {
		return nil, err
	}
	d := sm3Sum(content)
	return encodeSignature(r.ESeal, at, d[:], "forged", r.Cert, sm2Signer(key))
}
