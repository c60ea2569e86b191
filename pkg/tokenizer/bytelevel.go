package tokenizer

import "strings"

// GPT-2's bytes_to_unicode: every byte maps to a printable character, so BPE
// works on strings without whitespace or control characters. Printable
// Latin-1 bytes map to themselves; the other 68 map to U+0100 onwards in
// byte order (space → 'Ġ' U+0120, newline → 'Ċ' U+010A).
var (
	byteToRune [256]rune
	runeToByte = map[rune]byte{}
)

func init() {
	n := 0
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// byteEncode maps each byte of s to its printable character.
func byteEncode(s string) string {
	var b strings.Builder
	b.Grow(len(s) * 2)
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteToRune[s[i]])
	}
	return b.String()
}

// byteDecode inverts byteEncode; characters outside the table (from a
// vocabulary entry that is not byte-level) are kept as UTF-8.
func byteDecode(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if c, ok := runeToByte[r]; ok {
			b = append(b, c)
		} else {
			b = append(b, string(r)...)
		}
	}
	return string(b)
}
