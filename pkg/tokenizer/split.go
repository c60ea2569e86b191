package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Go's regexp has no lookahead, and the pre-tokenizer regexes of byte-level
// BPE tokenizers use one (`\s+(?!\S)`), so the splits are written by hand.
// Each splitter walks the text and, at every position, tries the regex's
// alternatives in order (leftmost-first, as Oniguruma and fancy-regex do),
// which reproduces find_iter exactly; testdata/splits.json holds expected
// splits made with Python's `regex` module.

// splitFunc returns the length in bytes of the match starting at s[0:],
// never 0 for a non-empty s (every character is matched by some alternative).
type splitFunc func(s string) int

// splitAll cuts text into consecutive matches of f.
func splitAll(text string, f splitFunc) []string {
	var out []string
	for len(text) > 0 {
		n := f(text)
		if n <= 0 { // defensive: take one rune rather than loop forever
			_, n = utf8.DecodeRuneInString(text)
		}
		out = append(out, text[:n])
		text = text[n:]
	}
	return out
}

func isL(r rune) bool { return unicode.IsLetter(r) }
func isN(r rune) bool { return unicode.IsNumber(r) }

// isS is \s in Unicode mode: the White_Space property.
func isS(r rune) bool { return unicode.IsSpace(r) }

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !isS(r) && !isL(r) && !isN(r) }

// run returns the byte length of the longest prefix of s whose runes satisfy
// f, and how many runes that is, stopping after max runes (max < 0: no limit).
func run(s string, f func(rune) bool, max int) (n, count int) {
	for n < len(s) && (max < 0 || count < max) {
		r, size := utf8.DecodeRuneInString(s[n:])
		if !f(r) {
			break
		}
		n += size
		count++
	}
	return n, count
}

// contraction matches 's|'t|'re|'ve|'m|'ll|'d (fold: case-insensitively).
func contraction(s string, fold bool) int {
	if len(s) < 2 || s[0] != '\'' {
		return 0
	}
	lower := func(b byte) byte {
		if fold && b >= 'A' && b <= 'Z' {
			return b + 'a' - 'A'
		}
		return b
	}
	switch lower(s[1]) {
	case 's', 't', 'm', 'd':
		return 2
	}
	if len(s) >= 3 {
		switch string([]byte{lower(s[1]), lower(s[2])}) {
		case "re", "ve", "ll":
			return 3
		}
	}
	return 0
}

// spaceTail matches \s+(?!\S) then \s+: a whitespace run, minus its last
// character when a non-space follows and the run is longer than one.
func spaceTail(s string) int {
	n, count := run(s, isS, -1)
	if n == 0 {
		return 0
	}
	if n == len(s) || count == 1 {
		return n // end of text, or \s+ alone
	}
	_, last := utf8.DecodeLastRuneInString(s[:n])
	return n - last
}

// gpt2Split is the GPT-2 ByteLevel regex:
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func gpt2Split(s string) int {
	if n := contraction(s, false); n > 0 {
		return n
	}
	sp := 0
	if s[0] == ' ' {
		sp = 1
	}
	for _, f := range []func(rune) bool{isL, isN, isOther} {
		if n, _ := run(s[sp:], f, -1); n > 0 {
			return sp + n
		}
	}
	return spaceTail(s)
}

// llama3Split is Llama 3's (digits = 3) and Qwen2's (digits = 1) regex:
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//	 ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func llama3Split(digits int) splitFunc {
	return func(s string) int {
		if n := contraction(s, true); n > 0 {
			return n
		}
		// [^\r\n\p{L}\p{N}]?\p{L}+
		r, size := utf8.DecodeRuneInString(s)
		if r != '\r' && r != '\n' && !isL(r) && !isN(r) {
			if n, _ := run(s[size:], isL, -1); n > 0 {
				return size + n
			}
		}
		if n, _ := run(s, isL, -1); n > 0 {
			return n
		}
		if n, _ := run(s, isN, digits); n > 0 {
			return n
		}
		// ?[^\s\p{L}\p{N}]+[\r\n]*
		sp := 0
		if s[0] == ' ' {
			sp = 1
		}
		if n, _ := run(s[sp:], isOther, -1); n > 0 {
			nl, _ := run(s[sp+n:], func(r rune) bool { return r == '\r' || r == '\n' }, -1)
			return sp + n + nl
		}
		// \s*[\r\n]+: the whitespace run up to and including its last newline.
		ws, _ := run(s, isS, -1)
		for i := ws - 1; i >= 0; i-- {
			if s[i] == '\r' || s[i] == '\n' {
				return i + 1
			}
		}
		return spaceTail(s)
	}
}

// digitsSplit is the Digits pre-tokenizer: with individual set every digit
// is its own piece, otherwise each run of digits is; other text stays whole.
func digitsSplit(individual bool) splitFunc {
	return func(s string) int {
		r, size := utf8.DecodeRuneInString(s)
		if isN(r) {
			if individual {
				return size
			}
			n, _ := run(s, isN, -1)
			return n
		}
		n, _ := run(s, func(r rune) bool { return !isN(r) }, -1)
		return n
	}
}
