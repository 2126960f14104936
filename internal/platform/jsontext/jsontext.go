// Package jsontext writes JSON text fast for streams of rows (dataset storage, backups), where
// encoding/json's reflection per value would dominate.
package jsontext

const hexDigits = "0123456789abcdef"

// AppendString appends s, valid UTF-8, as a JSON string. Unlike encoding/json it leaves <, >
// and & alone, so Chinese and HTML-ish text stays readable.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
