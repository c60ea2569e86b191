// Package tokenizer implements the BPE tokenizers of Hugging Face
// tokenizer.json files, so the native backend gives real prompts the same
// token IDs as the model's own tokenizer without Python.
//
// Byte-level BPE (GPT-2, SmolLM, Llama 3, Qwen2): the ByteLevel pre-tokenizer
// (with its GPT-2 regex, hand-written since Go's regexp has no lookahead),
// Split with the GPT-2, Llama 3 or Qwen2 pattern, Digits, Sequence; the
// ByteLevel decoder.
//
// SentencePiece-style BPE (Llama 2, TinyLlama, Mistral 7B): Prepend/Replace
// normalizers or the Metaspace pre-tokenizer, byte_fallback to <0xXX>
// tokens, fuse_unk; the Replace/ByteFallback/Fuse/Strip or Metaspace
// decoders. A whole prompt is one word there, so BPE runs with a heap over
// token ids (O(n log n)), as HF's does.
//
// Common to both: merges in either form ("a b" strings or ["a","b"] pairs),
// ignore_merges, unk_token; added/special tokens split out first (longest
// match, lstrip/rstrip); Unicode normalizers (NFC as in Qwen2, NFD, NFKC,
// NFKD) applied between added tokens; post-processors ByteLevel and
// TemplateProcessing (BOS insertion). Anything else is ErrUnsupported.
package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// ErrUnsupported is wrapped by errors about a tokenizer.json this package
// understands but cannot reproduce exactly.
var ErrUnsupported = errors.New("unsupported tokenizer")

// Tokenizer is a loaded byte-level BPE tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	vocab   map[string]int
	idToTok map[int]string // a map: ids may be sparse
	nIDs    int            // largest id + 1
	ranks   map[pair]int
	// fast holds the merges by token id (key a<<32|b), used when every
	// merge's parts and result are in the vocabulary (true of every real
	// tokenizer.json; HF refuses others): BPE then runs on ints.
	fast     map[uint64]fastMerge
	unk      int // -1: none
	ignoreMg bool

	normalize func(string) string // nil: no normalizer
	// SentencePiece style: byte_fallback to <0xXX> tokens, fuse_unk.
	byteFallback bool
	byteIDs      map[byte]int
	fuseUnk      bool
	dec          decoderSpec
	steps        []preStep // pre-tokenizer pipeline, in order

	added       []addedToken
	addedByByte map[byte][]int // first byte of content → indices into added, longest first
	addedByID   map[int]*addedToken

	prefix, suffix []int // post-processor template ids around the sequence

	mu    sync.Mutex
	cache map[string][]int
}

type pair struct{ a, b string }

type fastMerge struct{ rank, id int }

type addedToken struct {
	ID      int    `json:"id"`
	Content string `json:"content"`
	LStrip  bool   `json:"lstrip"`
	RStrip  bool   `json:"rstrip"`
	Special bool   `json:"special"`
}

// preStep is one step of the pre-tokenizer pipeline: a split, ByteLevel's
// prefix space, or ByteLevel's byte-to-unicode encoding.
type preStep struct {
	meta        *metaspace
	split       splitFunc
	prefixSpace bool
	byteLevel   bool
}

// maxCache bounds the per-word cache; a long run over a large corpus must
// not grow memory without limit.
const maxCache = 1 << 16

// maxCachedWord: longer words (a whole SentencePiece prompt is one word)
// are not cached.
const maxCachedWord = 256

type fileJSON struct {
	AddedTokens   []addedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         struct {
		Type                    string          `json:"type"`
		Vocab                   map[string]int  `json:"vocab"`
		Merges                  json.RawMessage `json:"merges"`
		UnkToken                *string         `json:"unk_token"`
		ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
		ByteFallback            bool            `json:"byte_fallback"`
		FuseUnk                 bool            `json:"fuse_unk"`
		IgnoreMerges            bool            `json:"ignore_merges"`
	} `json:"model"`
}

// LoadFile reads a tokenizer.json.
func LoadFile(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tokenizer: %w", err)
	}
	t, err := Load(data)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return t, nil
}

// Load parses the contents of a tokenizer.json.
func Load(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	m := &f.Model
	if m.Type != "" && m.Type != "BPE" {
		return nil, fmt.Errorf("%w: model type %q (only BPE)", ErrUnsupported, m.Type)
	}
	if len(m.Vocab) == 0 {
		return nil, errors.New("parse tokenizer.json: model.vocab is empty")
	}
	if (m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "") || (m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "") {
		return nil, fmt.Errorf("%w: continuing_subword_prefix/end_of_word_suffix", ErrUnsupported)
	}
	t := &Tokenizer{
		vocab:       m.Vocab,
		ranks:       map[pair]int{},
		unk:         -1,
		ignoreMg:    m.IgnoreMerges,
		fuseUnk:     m.FuseUnk,
		addedByByte: map[byte][]int{},
		addedByID:   map[int]*addedToken{},
		cache:       map[string][]int{},
	}
	maxID := -1
	for tok, id := range m.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("parse tokenizer.json: token %q has negative id %d", tok, id)
		}
		maxID = max(maxID, id)
	}
	for _, a := range f.AddedTokens {
		if a.ID < 0 || a.Content == "" {
			return nil, fmt.Errorf("parse tokenizer.json: added token %q with id %d", a.Content, a.ID)
		}
		maxID = max(maxID, a.ID)
	}
	if maxID >= 1<<24 {
		return nil, fmt.Errorf("parse tokenizer.json: token id %d is implausibly large", maxID)
	}
	t.nIDs = maxID + 1
	t.idToTok = make(map[int]string, len(m.Vocab)+len(f.AddedTokens))
	for tok, id := range m.Vocab {
		t.idToTok[id] = tok
	}
	if m.UnkToken != nil && *m.UnkToken != "" {
		id, ok := m.Vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("parse tokenizer.json: unk_token %q is not in the vocabulary", *m.UnkToken)
		}
		t.unk = id
	}
	if err := t.loadMerges(m.Merges); err != nil {
		return nil, err
	}
	t.fast = make(map[uint64]fastMerge, len(t.ranks))
	for p, r := range t.ranks {
		a, okA := t.vocab[p.a]
		b, okB := t.vocab[p.b]
		ab, okAB := t.vocab[p.a+p.b]
		if !okA || !okB || !okAB {
			t.fast = nil
			break
		}
		t.fast[uint64(a)<<32|uint64(b)] = fastMerge{rank: r, id: ab}
	}
	if m.ByteFallback {
		t.byteFallback = true
		t.byteIDs = map[byte]int{}
		for b := range 256 {
			if id, ok := t.vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
				t.byteIDs[byte(b)] = id
			}
		}
	}
	var err error
	t.added = f.AddedTokens
	for i := range t.added {
		a := &t.added[i]
		t.idToTok[a.ID] = a.Content
		t.addedByID[a.ID] = a
		t.addedByByte[a.Content[0]] = append(t.addedByByte[a.Content[0]], i)
	}
	for _, idx := range t.addedByByte {
		slices.SortStableFunc(idx, func(x, y int) int { return len(t.added[y].Content) - len(t.added[x].Content) })
	}
	if t.normalize, err = parseNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	steps, err := parsePre(f.PreTokenizer)
	if err != nil {
		return nil, err
	}
	t.steps = steps
	byteLevel := slices.ContainsFunc(steps, func(s preStep) bool { return s.byteLevel })
	if !byteLevel && t.fast == nil {
		// SentencePiece-style BPE runs on ids only.
		return nil, fmt.Errorf("%w: BPE without a ByteLevel pre-tokenizer whose merges are not all in the vocabulary", ErrUnsupported)
	}
	if err := parseDecoder(f.Decoder, &t.dec); err != nil {
		return nil, err
	}
	if len(f.Decoder) == 0 || string(f.Decoder) == "null" {
		t.dec.byteLevel = byteLevel
	}
	if t.dec.byteLevel != byteLevel {
		return nil, fmt.Errorf("%w: a ByteLevel decoder needs the ByteLevel pre-tokenizer and vice versa", ErrUnsupported)
	}
	if t.prefix, t.suffix, err = parsePost(f.PostProcessor); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tokenizer) loadMerges(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return fmt.Errorf("parse tokenizer.json: model.merges is not a list: %w", err)
	}
	for i, it := range items {
		var p pair
		var s string
		var arr []string
		switch {
		case json.Unmarshal(it, &s) == nil:
			a, b, ok := strings.Cut(s, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return fmt.Errorf("parse tokenizer.json: merge %d %q is not \"a b\"", i, s)
			}
			p = pair{a, b}
		case json.Unmarshal(it, &arr) == nil && len(arr) == 2:
			p = pair{arr[0], arr[1]}
		default:
			return fmt.Errorf("parse tokenizer.json: merge %d is neither \"a b\" nor [\"a\", \"b\"]: %s", i, it)
		}
		if _, dup := t.ranks[p]; !dup {
			t.ranks[p] = i
		}
	}
	return nil
}

type component struct {
	Type              string            `json:"type"`
	AddPrefixSpace    *bool             `json:"add_prefix_space"`
	UseRegex          *bool             `json:"use_regex"`
	IndividualDigits  bool              `json:"individual_digits"`
	Behavior          string            `json:"behavior"`
	Invert            bool              `json:"invert"`
	Pattern           map[string]string `json:"pattern"`
	PreTokenizers     []json.RawMessage `json:"pretokenizers"`
	Prepend           string            `json:"prepend"`
	Content           string            `json:"content"`
	Replacement       string            `json:"replacement"`
	PrependScheme     string            `json:"prepend_scheme"`
	Split             *bool             `json:"split"`
	Start             int               `json:"start"`
	Stop              int               `json:"stop"`
	Normalizers       []json.RawMessage `json:"normalizers"`
	Processors        []json.RawMessage `json:"processors"`
	Decoders          []json.RawMessage `json:"decoders"`
	Single            []json.RawMessage `json:"single"`
	SpecialTokensJSON map[string]struct {
		IDs []int `json:"ids"`
	} `json:"special_tokens"`
}

func parseComponent(raw json.RawMessage, what string) (*component, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json %s: %w", what, err)
	}
	return &c, nil
}

// parseNormalizer returns the normalizer as a function (nil: none). Unicode
// normalization forms are supported; other normalizers change text in ways
// byte-level BPE models do not use and are rejected.
func parseNormalizer(raw json.RawMessage) (func(string) string, error) {
	c, err := parseComponent(raw, "normalizer")
	if err != nil || c == nil {
		return nil, err
	}
	switch c.Type {
	case "NFC":
		return norm.NFC.String, nil
	case "NFD":
		return norm.NFD.String, nil
	case "NFKC":
		return norm.NFKC.String, nil
	case "NFKD":
		return norm.NFKD.String, nil
	case "Prepend":
		p := c.Prepend
		return func(s string) string {
			if s == "" {
				return s
			}
			return p + s
		}, nil
	case "Replace":
		from, ok := c.Pattern["String"]
		if !ok || from == "" {
			return nil, fmt.Errorf("%w: Replace normalizer with pattern %v (only String)", ErrUnsupported, c.Pattern)
		}
		to := c.Content
		return func(s string) string { return strings.ReplaceAll(s, from, to) }, nil
	case "Sequence":
		var fs []func(string) string
		for _, n := range c.Normalizers {
			f, err := parseNormalizer(n)
			if err != nil {
				return nil, err
			}
			if f != nil {
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 {
			return nil, nil
		}
		return func(s string) string {
			for _, f := range fs {
				s = f(s)
			}
			return s
		}, nil
	}
	return nil, fmt.Errorf("%w: normalizer %q", ErrUnsupported, c.Type)
}

// Known Split patterns, matched literally.
const (
	gpt2Pattern   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

func parsePre(raw json.RawMessage) ([]preStep, error) {
	c, err := parseComponent(raw, "pre_tokenizer")
	if err != nil || c == nil {
		return nil, err
	}
	switch c.Type {
	case "Sequence":
		var steps []preStep
		for _, p := range c.PreTokenizers {
			s, err := parsePre(p)
			if err != nil {
				return nil, err
			}
			steps = append(steps, s...)
		}
		return steps, nil
	case "ByteLevel":
		// ByteLevel adds the prefix space, splits with the GPT-2 regex, then
		// maps bytes to printable characters, in that order.
		var steps []preStep
		if c.AddPrefixSpace != nil && *c.AddPrefixSpace {
			steps = append(steps, preStep{prefixSpace: true})
		}
		if c.UseRegex == nil || *c.UseRegex {
			steps = append(steps, preStep{split: gpt2Split})
		}
		return append(steps, preStep{byteLevel: true}), nil
	case "Digits":
		return []preStep{{split: digitsSplit(c.IndividualDigits)}}, nil
	case "Split":
		if c.Invert || c.Behavior != "Isolated" {
			return nil, fmt.Errorf("%w: Split pre-tokenizer with behavior %q invert %v", ErrUnsupported, c.Behavior, c.Invert)
		}
		switch c.Pattern["Regex"] {
		case gpt2Pattern:
			return []preStep{{split: gpt2Split}}, nil
		case llama3Pattern:
			return []preStep{{split: llama3Split(3)}}, nil
		case qwen2Pattern:
			return []preStep{{split: llama3Split(1)}}, nil
		}
		return nil, fmt.Errorf("%w: Split pre-tokenizer pattern %v (known: GPT-2, Llama 3, Qwen2)", ErrUnsupported, c.Pattern)
	case "Metaspace":
		return []preStep{{meta: parseMetaspace(c)}}, nil
	}
	return nil, fmt.Errorf("%w: pre-tokenizer %q", ErrUnsupported, c.Type)
}

// parsePost returns the ids a TemplateProcessing puts before and after the
// single sequence "A".
func parsePost(raw json.RawMessage) (prefix, suffix []int, err error) {
	c, err := parseComponent(raw, "post_processor")
	if err != nil || c == nil {
		return nil, nil, err
	}
	switch c.Type {
	case "ByteLevel":
		return nil, nil, nil
	case "Sequence":
		for _, p := range c.Processors {
			pre, suf, err := parsePost(p)
			if err != nil {
				return nil, nil, err
			}
			prefix, suffix = append(prefix, pre...), append(suffix, suf...)
		}
		return prefix, suffix, nil
	case "TemplateProcessing":
		seen := false
		for _, item := range c.Single {
			var it struct {
				SpecialToken *struct{ ID string } `json:"SpecialToken"`
				Sequence     *struct{ ID string } `json:"Sequence"`
			}
			if err := json.Unmarshal(item, &it); err != nil {
				return nil, nil, fmt.Errorf("parse tokenizer.json post_processor: %w", err)
			}
			switch {
			case it.Sequence != nil:
				seen = true
			case it.SpecialToken != nil:
				st, ok := c.SpecialTokensJSON[it.SpecialToken.ID]
				if !ok {
					return nil, nil, fmt.Errorf("parse tokenizer.json post_processor: special token %q is not defined", it.SpecialToken.ID)
				}
				if seen {
					suffix = append(suffix, st.IDs...)
				} else {
					prefix = append(prefix, st.IDs...)
				}
			}
		}
		return prefix, suffix, nil
	}
	return nil, nil, fmt.Errorf("%w: post-processor %q", ErrUnsupported, c.Type)
}

// VocabSize is one more than the largest token id (vocabulary and added tokens).
func (t *Tokenizer) VocabSize() int { return t.nIDs }

// TokenID returns the id of a token string (as stored in the vocabulary or an
// added token's content).
func (t *Tokenizer) TokenID(tok string) (int, bool) {
	for _, a := range t.added {
		if a.Content == tok {
			return a.ID, true
		}
	}
	id, ok := t.vocab[tok]
	return id, ok
}

// Token returns the vocabulary string of id ("" if unused or out of range).
func (t *Tokenizer) Token(id int) string {
	return t.idToTok[id]
}

// Encode returns the token ids of text. Added and special tokens written in
// the text become their ids. With addSpecial, the post-processor's template
// tokens (e.g. Llama 3's <|begin_of_text|>) are added, as HF's
// tokenizer.encode(text) does by default.
func (t *Tokenizer) Encode(text string, addSpecial bool) []int {
	var ids []int
	if addSpecial {
		ids = append(ids, t.prefix...)
	}
	for _, seg := range t.splitAdded(text) {
		if seg.added != nil {
			ids = append(ids, seg.added.ID)
			continue
		}
		text := seg.text
		if t.normalize != nil {
			text = t.normalize(text)
		}
		for _, piece := range t.preTokenize(text, seg.start == 0) {
			ids = append(ids, t.bpe(piece)...)
		}
	}
	if addSpecial {
		ids = append(ids, t.suffix...)
	}
	return ids
}

type segment struct {
	text  string
	start int // byte offset in the input
	added *addedToken
}

// splitAdded cuts text at added tokens (leftmost, then longest), honouring
// lstrip/rstrip (the token absorbs the whitespace on that side).
func (t *Tokenizer) splitAdded(text string) []segment {
	if len(t.added) == 0 {
		return []segment{{text: text}}
	}
	var segs []segment
	start := 0
	for i := 0; i < len(text); {
		var hit *addedToken
		for _, k := range t.addedByByte[text[i]] {
			if strings.HasPrefix(text[i:], t.added[k].Content) {
				hit = &t.added[k]
				break
			}
		}
		if hit == nil {
			i++
			continue
		}
		left, right := i, i+len(hit.Content)
		if hit.LStrip {
			for left > start {
				r, size := utf8.DecodeLastRuneInString(text[start:left])
				if !isS(r) {
					break
				}
				left -= size
			}
		}
		if hit.RStrip {
			n, _ := run(text[right:], isS, -1)
			right += n
		}
		if left > start {
			segs = append(segs, segment{text: text[start:left], start: start})
		}
		segs = append(segs, segment{added: hit})
		start, i = right, right
	}
	if start < len(text) {
		segs = append(segs, segment{text: text[start:], start: start})
	}
	return segs
}

// preTokenize runs the pre-tokenizer pipeline; the result is the pieces
// BPE encodes (byte-level encoded for byte-level tokenizers). atStart says
// the text begins the input (Metaspace's prepend_scheme "first").
func (t *Tokenizer) preTokenize(text string, atStart bool) []string {
	pieces := []string{text}
	for _, st := range t.steps {
		var next []string
		for i, p := range pieces {
			switch {
			case st.meta != nil:
				next = append(next, st.meta.apply(p, atStart && i == 0)...)
			case st.split != nil:
				next = append(next, splitAll(p, st.split)...)
			case st.prefixSpace && !strings.HasPrefix(p, " "):
				next = append(next, " "+p)
			case st.byteLevel:
				next = append(next, byteEncode(p))
			default:
				next = append(next, p)
			}
		}
		pieces = next
	}
	return pieces
}

// bpe encodes one byte-level piece, lowest-rank merge first (as GPT-2 and HF
// tokenizers do), with a bounded cache.
func (t *Tokenizer) bpe(word string) []int {
	if word == "" {
		return nil
	}
	t.mu.Lock()
	ids, ok := t.cache[word]
	t.mu.Unlock()
	if ok {
		return ids
	}
	if id, ok := t.vocab[word]; ok && (t.ignoreMg || utf8.RuneCountInString(word) == 1) {
		ids = []int{id}
	} else if ids, ok = t.bpeIDs(word); !ok {
		ids = t.bpeStrings(word)
	}
	if len(word) > maxCachedWord {
		return ids
	}
	t.mu.Lock()
	if len(t.cache) >= maxCache {
		clear(t.cache)
	}
	t.cache[word] = ids
	t.mu.Unlock()
	return ids
}

// bpeStrings is BPE on strings, GPT-2's original algorithm: merge every
// occurrence of the lowest-rank pair, repeat. It serves tokenizers whose
// merges are not all in the vocabulary; characters without a token become
// unk or are dropped.
func (t *Tokenizer) bpeStrings(word string) []int {
	syms := make([]string, 0, len(word))
	for _, r := range word {
		syms = append(syms, string(r))
	}
	for len(syms) > 1 {
		best, at := -1, -1
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := t.ranks[pair{syms[i], syms[i+1]}]; ok && (best < 0 || r < best) {
				best, at = r, i
			}
		}
		if at < 0 {
			break
		}
		a, b := syms[at], syms[at+1]
		merged := syms[:0]
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == a && syms[i+1] == b {
				merged = append(merged, a+b)
				i++
			} else {
				merged = append(merged, syms[i])
			}
		}
		syms = merged
	}
	ids := make([]int, 0, len(syms))
	for _, s := range syms {
		if id, ok := t.vocab[s]; ok {
			ids = append(ids, id)
		} else if t.unk >= 0 {
			ids = append(ids, t.unk)
		} // else dropped, as HF does without an unk token
	}
	return ids
}

// bpeIDs is bpe on token ids (see mergeIDs); ok is false when it cannot be
// used (no id merge table, or a character without a token or fallback).
func (t *Tokenizer) bpeIDs(word string) (ids []int, ok bool) {
	if t.fast == nil {
		return nil, false
	}
	if ids, ok = t.initialIDs(word); !ok {
		return nil, false
	}
	return t.mergeIDs(ids), true
}

// Decode turns ids back into text as HF tokenizers' Tokenizer::decode does
// (tokenizers/src/tokenizer/mod.rs): every id becomes its token string, an
// added token's content included (special ones dropped with skipSpecial),
// and the strings go through the decoder. Bytes that do not form valid
// UTF-8 become U+FFFD exactly as there:
//
//   - ByteLevel decoder (pre_tokenizers/byte_level.rs, decode_chain): each
//     token maps back to bytes (a token with a character outside the byte
//     table is taken as its own UTF-8), all tokens' bytes are joined and
//     converted with String::from_utf8_lossy: one U+FFFD per maximal invalid
//     subpart (see lossyUTF8);
//   - ByteFallback decoder (decoders/byte_fallback.rs): each run of <0xXX>
//     tokens that is valid UTF-8 as a whole becomes its text; a run that is
//     not becomes one U+FFFD per byte token, its valid bytes included.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if a, ok := t.addedByID[id]; ok {
			if !(skipSpecial && a.Special) {
				toks = append(toks, a.Content)
			}
			continue
		}
		if tok, ok := t.idToTok[id]; ok {
			toks = append(toks, tok)
		}
	}
	var text string
	if t.dec.byteLevel {
		var b []byte
		for _, tok := range toks {
			b = appendByteDecoded(b, tok)
		}
		text = lossyUTF8(b)
	} else {
		text = t.decodePieces(toks)
	}
	for range t.dec.stripStart {
		text = strings.TrimPrefix(text, " ")
	}
	return text
}

// decodePieces is the SentencePiece-style decoder chain: Replace on each
// token (it comes first in the Llama/Mistral Sequence, and leaves <0xXX>
// tokens alone), ByteFallback, then Fuse (concatenation).
func (t *Tokenizer) decodePieces(toks []string) string {
	var out strings.Builder
	var run []byte // consecutive byte-fallback tokens
	flush := func() {
		if utf8.Valid(run) {
			out.Write(run)
		} else {
			for range run {
				out.WriteString("\uFFFD")
			}
		}
		run = run[:0]
	}
	for _, tok := range toks {
		if t.dec.replaceFrom != "" {
			tok = strings.ReplaceAll(tok, t.dec.replaceFrom, t.dec.replaceTo)
		}
		if t.dec.byteFallback {
			if b, ok := byteToken(tok); ok {
				run = append(run, b)
				continue
			}
		}
		flush()
		out.WriteString(tok)
	}
	flush()
	return out.String()
}
