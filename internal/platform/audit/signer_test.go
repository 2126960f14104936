package audit_test

import (
	"crypto/rand"
	"errors"
	"sync"
	"testing"

	"github.com/emmansun/gmsm/sm2"
)

// sm2Signer stands in for the node keyring: real SM2 (GB/T 32918.2, default user ID), keys by id.
type sm2Signer struct {
	mu      sync.Mutex
	current string
	keys    map[string]*sm2.PrivateKey
	fail    error // when set, Sign fails (a locked keyring)
}

func newSigner(t testing.TB) *sm2Signer {
	t.Helper()
	s := &sm2Signer{keys: map[string]*sm2.PrivateKey{}}
	s.rotate(t, "node-1")
	return s
}

// rotate makes a new key the current one; the old ones still verify.
func (s *sm2Signer) rotate(t testing.TB, id string) {
	t.Helper()
	k := newKey(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[id], s.current = k, id
}

func newKey(t testing.TB) *sm2.PrivateKey {
	t.Helper()
	k, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (s *sm2Signer) Sign(msg []byte) ([]byte, string, error) {
	s.mu.Lock()
	id, k, fail := s.current, s.keys[s.current], s.fail
	s.mu.Unlock()
	if fail != nil {
		return nil, "", fail
	}
	sig, err := signWith(k, msg)
	return sig, id, err
}

func signWith(k *sm2.PrivateKey, msg []byte) ([]byte, error) {
	// DefaultSM2SignerOpts: msg is the raw message, hashed with Z_A as the standard says.
	return sm2.SignASN1(rand.Reader, k, msg, sm2.DefaultSM2SignerOpts)
}

func (s *sm2Signer) Verify(keyID string, msg, sig []byte) error {
	s.mu.Lock()
	k := s.keys[keyID]
	s.mu.Unlock()
	if k == nil {
		return errors.New("unknown key " + keyID)
	}
	if !sm2.VerifyASN1WithSM2(&k.PublicKey, nil, msg, sig) {
		return errors.New("bad signature")
	}
	return nil
}

func (s *sm2Signer) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func TestSignerRoundTrip(t *testing.T) {
	s := newSigner(t)
	sig, id, err := s.Sign([]byte("head"))
	if err != nil || id != "node-1" {
		t.Fatal(id, err)
	}
	if err := s.Verify(id, []byte("head"), sig); err != nil {
		t.Fatal(err)
	}
	if s.Verify(id, []byte("heae"), sig) == nil || s.Verify("node-2", []byte("head"), sig) == nil {
		t.Fatal("a wrong message or key must not verify")
	}
}
