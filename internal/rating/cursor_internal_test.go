package rating

import (
	"errors"
	"testing"
	"time"
)

// FuzzParseCursor: a list cursor comes back in a URL; anything but one we made is refused,
// and ours round-trip.
func FuzzParseCursor(f *testing.F) {
	f.Add(cursor(time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC), "0195f0a2-7c1e-7b1a-9c1e-1a2b3c4d5e6f"))
	f.Add("")
	f.Add("x")
	f.Add("MTIzLiE")
	f.Add("LTEuYQ")
	f.Fuzz(func(t *testing.T, s string) {
		at, id, err := parseCursor(s)
		if err != nil {
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("parseCursor(%q): %v is not ErrBadCursor", s, err)
			}
			return
		}
		if id == "" || !idChars(id) || at.UnixMicro() < 0 || at.UnixMicro() > maxMicros {
			t.Fatalf("parseCursor(%q) = %v %q", s, at, id)
		}
		at2, id2, err := parseCursor(cursor(at, id))
		if err != nil || !at2.Equal(at) || id2 != id {
			t.Fatalf("round trip of %v %q: %v %q %v", at, id, at2, id2, err)
		}
	})
}
