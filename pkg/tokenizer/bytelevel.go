package tokenizer

import (
	"strings"
	"unicode/utf8"
)

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

// appendByteDecoded appends the bytes of one byte-level token: each
// character mapped back through the byte table, or, when any character is
// outside it (an added token such as "<|im_start|>" maps, one like "▁x"
// would not), the token's own UTF-8, whole, as the ByteLevel decoder does.
func appendByteDecoded(dst []byte, tok string) []byte {
	n := len(dst)
	for _, r := range tok {
		c, ok := runeToByte[r]
		if !ok {
			return append(dst[:n], tok...)
		}
		dst = append(dst, c)
	}
	return dst
}

// lossyUTF8 converts b to text the way Rust's String::from_utf8_lossy does,
// which HF's ByteLevel decoder uses: valid UTF-8 is kept and each maximal
// subpart of an ill-formed sequence becomes one U+FFFD (the Unicode
// Standard's "substitution of maximal subparts", ch. 3 §3.9, and WHATWG's
// UTF-8 decoder; Rust's core/src/str/lossy.rs, Utf8Chunks). A maximal
// subpart is the longest prefix of a well-formed sequence (Unicode table
// 3-7) that the bytes start, or else one byte. So a truncated character is
// one U+FFFD, an overlong form, a surrogate (ED A0..BF) or a code point
// above U+10FFFF is one U+FFFD per byte, and so is each lone continuation
// byte. Go's strings.ToValidUTF8 (one U+FFFD per run of bad bytes) and
// []rune conversion (one per byte) both differ.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var out strings.Builder
	out.Grow(len(b) + 8)
	for len(b) > 0 {
		n, ok := utf8Prefix(b)
		if ok {
			out.Write(b[:n])
		} else {
			out.WriteRune(utf8.RuneError)
		}
		b = b[n:]
	}
	return out.String()
}

// utf8Prefix returns the length of the well-formed character at the start
// of b (ok), or of the maximal subpart of an ill-formed one (not ok, at
// least 1), following the byte ranges of Unicode table 3-7 as lossy.rs
// does.
func utf8Prefix(b []byte) (n int, ok bool) {
	at := func(i int) byte {
		if i < len(b) {
			return b[i]
		}
		return 0 // past the end: never a continuation byte
	}
	cont := func(c byte) bool { return c&0xC0 == 0x80 }
	c := b[0]
	lo, hi := byte(0x80), byte(0xBF) // range of the second byte
	switch {
	case c < 0x80:
		return 1, true
	case c >= 0xC2 && c <= 0xDF:
		if !cont(at(1)) {
			return 1, false
		}
		return 2, true
	case c >= 0xE0 && c <= 0xEF:
		switch c {
		case 0xE0:
			lo = 0xA0 // no overlong forms
		case 0xED:
			hi = 0x9F // no surrogates
		}
		if x := at(1); x < lo || x > hi {
			return 1, false
		}
		if !cont(at(2)) {
			return 2, false
		}
		return 3, true
	case c >= 0xF0 && c <= 0xF4:
		switch c {
		case 0xF0:
			lo = 0x90 // no overlong forms
		case 0xF4:
			hi = 0x8F // nothing above U+10FFFF
		}
		if x := at(1); x < lo || x > hi {
			return 1, false
		}
		if !cont(at(2)) {
			return 2, false
		}
		if !cont(at(3)) {
			return 3, false
		}
		return 4, true
	}
	return 1, false // 80..C1 (continuation or overlong lead), F5..FF
}
