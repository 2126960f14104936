package crypto

import (
	"bytes"
	"crypto/cipher"
	"testing"

	"github.com/emmansun/gmsm/sm4"
)

// The assembly SM4-GCM that gmsm offers must be interchangeable with the generic GCM
// construction over the same block, in both directions.
func TestSM4GCMInterop(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 16)
	fast, err := newSM4GCM(key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := sm4.NewCipher(key)
	generic, err := cipher.NewGCM(blockOnly{b})
	if err != nil {
		t.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{1}, gcmNonceSize)
	for _, n := range []int{0, 1, 15, 16, 17, 64, 1000} {
		pt := bytes.Repeat([]byte{0xab}, n)
		ad := []byte("ad")
		c1 := fast.Seal(nil, nonce, pt, ad)
		c2 := generic.Seal(nil, nonce, pt, ad)
		if !bytes.Equal(c1, c2) {
			t.Fatalf("%d bytes: fast and generic GCM disagree", n)
		}
		if got, err := generic.Open(nil, nonce, c1, ad); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes: generic cannot open fast: %v", n, err)
		}
	}
}

// blockOnly hides every optional method of a block, forcing Go's generic GCM.
type blockOnly struct{ cipher.Block }

func TestDerivedKeysDiffer(t *testing.T) {
	m := bytes.Repeat([]byte{3}, MasterKeySize)
	a := deriveKey(m, kekLabel, 16)
	b := deriveKey(m, "dgov something-else v1", 16)
	if bytes.Equal(a, b) || bytes.Equal(a, deriveKey(bytes.Repeat([]byte{4}, MasterKeySize), kekLabel, 16)) {
		t.Fatal("derived keys must depend on label and master")
	}
	if !bytes.Equal(a, deriveKey(m, kekLabel, 16)) {
		t.Fatal("derivation must be deterministic")
	}
}
