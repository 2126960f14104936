package jsontext

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// Whatever the input, the output is a JSON string that decodes back to it.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "户籍人口", "a\"b\\c\n\t\r\x01<&>", "\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // the contract: callers pass valid UTF-8 (validated input)
		}
		var back string
		if err := json.Unmarshal(AppendString(nil, s), &back); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if back != s {
			t.Fatalf("round trip %q → %q", s, back)
		}
	})
}
