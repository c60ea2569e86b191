package tokenizer

import (
	"container/heap"
	"fmt"
	"strings"
)

// SentencePiece-style BPE (Llama 2, Mistral 7B, TinyLlama) as HF's
// tokenizer.json expresses it: spaces become "▁" (a Replace normalizer with
// a Prepend, or a Metaspace pre-tokenizer), BPE runs on Unicode characters,
// and a character missing from the vocabulary falls back to its UTF-8 bytes
// as <0xXX> tokens (byte_fallback). Decoding reverses it with Replace,
// ByteFallback, Fuse and Strip (or a Metaspace decoder).

// metaspace is the Metaspace pre-tokenizer.
type metaspace struct {
	repl    string // usually "▁"
	prepend string // "always" | "first" | "never"
	split   bool   // split before every repl (MergedWithNext)
}

func parseMetaspace(c *component) *metaspace {
	m := &metaspace{repl: c.Replacement, prepend: c.PrependScheme, split: c.Split == nil || *c.Split}
	if m.repl == "" {
		m.repl = "▁"
	}
	if m.prepend == "" {
		m.prepend = "always"
		if c.AddPrefixSpace != nil && !*c.AddPrefixSpace {
			m.prepend = "never"
		}
	}
	return m
}

// apply replaces spaces, prepends the replacement where the scheme says
// (atStart: this text begins the input, HF's "offset 0"), and splits.
func (m *metaspace) apply(p string, atStart bool) []string {
	p = strings.ReplaceAll(p, " ", m.repl)
	if (m.prepend == "always" || (m.prepend == "first" && atStart)) && !strings.HasPrefix(p, m.repl) {
		p = m.repl + p
	}
	if !m.split {
		return []string{p}
	}
	// MergedWithNext: cut before every replacement except at the start.
	var out []string
	start := 0
	for i := 1; i < len(p); {
		k := strings.Index(p[i:], m.repl)
		if k < 0 {
			break
		}
		cut := i + k
		out = append(out, p[start:cut])
		start, i = cut, cut+len(m.repl)
	}
	return append(out, p[start:])
}

// decoderSpec is a supported HF decoder pipeline.
type decoderSpec struct {
	byteLevel    bool
	replaceFrom  string // per token, e.g. "▁" → " "
	replaceTo    string
	byteFallback bool // <0xXX> tokens are bytes
	stripStart   int  // leading spaces removed from the decoded text
}

func parseDecoder(raw []byte, d *decoderSpec) error {
	c, err := parseComponent(raw, "decoder")
	if err != nil || c == nil {
		return err
	}
	switch c.Type {
	case "ByteLevel":
		d.byteLevel = true
	case "Sequence":
		for _, s := range c.Decoders {
			if err := parseDecoder(s, d); err != nil {
				return err
			}
		}
	case "Replace":
		if c.Pattern["String"] == "" {
			return fmt.Errorf("%w: Replace decoder with pattern %v", ErrUnsupported, c.Pattern)
		}
		d.replaceFrom, d.replaceTo = c.Pattern["String"], c.Content
	case "ByteFallback":
		d.byteFallback = true
	case "Fuse":
	case "Strip":
		if c.Content != " " || c.Stop != 0 {
			return fmt.Errorf("%w: Strip decoder %q start %d stop %d", ErrUnsupported, c.Content, c.Start, c.Stop)
		}
		d.stripStart = c.Start
	case "Metaspace":
		m := parseMetaspace(c)
		d.replaceFrom, d.replaceTo = m.repl, " "
		if m.prepend != "never" {
			d.stripStart = 1
		}
	default:
		return fmt.Errorf("%w: decoder %q", ErrUnsupported, c.Type)
	}
	return nil
}

// byteToken parses a byte-fallback token as HF's ByteFallback decoder does:
// six bytes, "<0x" ... ">", and the middle two parsed by Rust's
// u8::from_str_radix(_, 16), which takes either case and a leading "+".
func byteToken(tok string) (byte, bool) {
	if len(tok) != 6 || !strings.HasPrefix(tok, "<0x") || tok[5] != '>' {
		return 0, false
	}
	digits := tok[3:5]
	if digits[0] == '+' {
		digits = digits[1:]
	}
	var b byte
	for _, c := range []byte(digits) {
		switch {
		case c >= '0' && c <= '9':
			b = b<<4 | (c - '0')
		case c >= 'A' && c <= 'F':
			b = b<<4 | (c - 'A' + 10)
		case c >= 'a' && c <= 'f':
			b = b<<4 | (c - 'a' + 10)
		default:
			return 0, false
		}
	}
	return b, true
}

// initialIDs maps each character of word to its token, falling back to its
// UTF-8 bytes (byte_fallback) or unk (fused when fuse_unk); ok is false
// when a character has no token and there is no fallback (the string BPE
// path then handles the word).
func (t *Tokenizer) initialIDs(word string) (ids []int, ok bool) {
	ids = make([]int, 0, len(word))
	prevUnk := false
	for _, r := range word {
		if id, found := t.vocab[string(r)]; found {
			ids = append(ids, id)
			prevUnk = false
			continue
		}
		if t.byteFallback {
			var buf [4]byte
			n := copy(buf[:], string(r))
			all := true
			start := len(ids)
			for _, b := range buf[:n] {
				id, found := t.byteIDs[b]
				if !found {
					all = false
					break
				}
				ids = append(ids, id)
			}
			if all {
				prevUnk = false
				continue
			}
			ids = ids[:start]
		}
		if t.unk < 0 {
			return nil, false
		}
		if !(prevUnk && t.fuseUnk) {
			ids = append(ids, t.unk)
		}
		prevUnk = true
	}
	return ids, true
}

// mergeIDs applies the merges to ids, lowest rank first and leftmost first
// among equal ranks, with a heap over a linked list of symbols, as HF's BPE
// does: O(n log n), so a SentencePiece prompt of 100k characters, which is
// one word, stays fast.
func (t *Tokenizer) mergeIDs(ids []int) []int {
	if len(ids) < 2 {
		return ids
	}
	n := len(ids)
	next := make([]int, n)
	prev := make([]int, n)
	alive := make([]bool, n)
	for i := range ids {
		next[i], prev[i], alive[i] = i+1, i-1, true
	}
	next[n-1] = -1
	h := &candHeap{}
	push := func(i int) {
		j := next[i]
		if i < 0 || j < 0 {
			return
		}
		if m, ok := t.fast[uint64(ids[i])<<32|uint64(ids[j])]; ok {
			heap.Push(h, cand{rank: m.rank, pos: i, left: ids[i], right: ids[j], id: m.id})
		}
	}
	for i := 0; i+1 < n; i++ {
		push(i)
	}
	for h.Len() > 0 {
		c := heap.Pop(h).(cand)
		i := c.pos
		j := next[i]
		if !alive[i] || j < 0 || ids[i] != c.left || ids[j] != c.right {
			continue // stale: a neighbour merged first
		}
		ids[i] = c.id
		alive[j] = false
		next[i] = next[j]
		if next[j] >= 0 {
			prev[next[j]] = i
		}
		if prev[i] >= 0 {
			push(prev[i])
		}
		push(i)
	}
	out := make([]int, 0, n)
	for i := 0; i >= 0; i = next[i] {
		out = append(out, ids[i])
	}
	return out
}

type cand struct{ rank, pos, left, right, id int }

type candHeap []cand

func (h candHeap) Len() int { return len(h) }
func (h candHeap) Less(a, b int) bool {
	if h[a].rank != h[b].rank {
		return h[a].rank < h[b].rank
	}
	return h[a].pos < h[b].pos
}
func (h candHeap) Swap(a, b int) { h[a], h[b] = h[b], h[a] }
func (h *candHeap) Push(x any)   { *h = append(*h, x.(cand)) }
func (h *candHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
