// Package dataset builds the prompts of one run from its config: synthetic
// prompts of controlled token lengths (token IDs for random-weight models,
// text when a tokenizer is available), prompts from a JSONL file, or the AI
// Energy Score prompt set (a Hugging Face Hub dataset at a pinned commit,
// which Fetch downloads into the hub cache and Build reads from there
// only); then orders them (interleaved, grouped, shuffled,
// all seeded with random_seed) and takes n.
//
// Deliberate differences from the original llem (llem-inventory.md §8): a
// malformed JSONL line is an error naming the line, not silently skipped; a
// record without a usable prompt field is an error listing the fields it has;
// synthetic output_len is honoured (per-prompt max_tokens); and synthetic
// lengths follow the configured distribution exactly, in tokens.
package dataset

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/hfcache"
	"github.com/llenergymeasure/llem/pkg/protocol"
)

// Spec is the config's dataset section (schema/dataset.cue).
type Spec struct {
	Source string `json:"source"` // "synthetic" | "jsonl" | "aienergyscore"
	// synthetic
	InputLen     int     `json:"input_len,omitempty"`
	OutputLen    int     `json:"output_len,omitempty"`
	Distribution string  `json:"distribution,omitempty"` // "fixed" | "uniform" | "normal"
	Spread       float64 `json:"spread,omitempty"`
	// jsonl
	Path  string `json:"path,omitempty"`
	Field string `json:"field,omitempty"`
	// aienergyscore
	Name     string `json:"name,omitempty"`
	Split    string `json:"split,omitempty"`
	Revision string `json:"revision,omitempty"`
}

// UnmarshalJSON also accepts the original's string form: "aienergyscore" or
// a path to a .jsonl file.
func (s *Spec) UnmarshalJSON(b []byte) error {
	var str string
	if json.Unmarshal(b, &str) == nil {
		switch {
		case str == "aienergyscore":
			*s = Spec{Source: "aienergyscore"}
		case strings.HasSuffix(str, ".jsonl"):
			*s = Spec{Source: "jsonl", Path: str}
		default:
			return fmt.Errorf("dataset %q is neither \"aienergyscore\" nor a .jsonl path", str)
		}
		return nil
	}
	type plain Spec
	return json.Unmarshal(b, (*plain)(s))
}

// Config is the part of a run's effective config that decides its prompts.
type Config struct {
	N               int    `json:"n"`
	Dataset         Spec   `json:"dataset"`
	Order           string `json:"dataset_order"`
	MaxInputTokens  int    `json:"max_input_tokens"`
	MaxOutputTokens int    `json:"max_output_tokens"`
	RandomSeed      int64  `json:"random_seed"`
}

// ParseConfig reads the dataset-related fields of a run config (other
// fields are ignored) and fills the schema's defaults for absent ones.
func ParseConfig(raw []byte) (Config, error) {
	c := Config{N: 100, Order: "interleaved", MaxInputTokens: 512, MaxOutputTokens: 128, RandomSeed: 42,
		Dataset: Spec{Source: "aienergyscore"}}
	if err := json.Unmarshal(raw, &c); err != nil {
		return Config{}, fmt.Errorf("parse dataset config: %w", err)
	}
	return c, nil
}

// Tokenizer is what synthetic text prompts need from a tokenizer.
type Tokenizer interface {
	Encode(text string, addSpecial bool) []int
}

// Options says what the model offers for building prompts. With both a
// Tokenizer and a VocabSize, synthetic prompts are text when the tokenizer
// can make exact lengths from words, else token IDs.
type Options struct {
	// VocabSize bounds synthetic token IDs (random-weight models).
	VocabSize int
	// Reserved token IDs never drawn for synthetic prompts (BOS, EOS, pad).
	Reserved []int
	// Tokenizer, when set, makes synthetic prompts text of exact token
	// length instead of token IDs.
	Tokenizer Tokenizer
	// BaseDir resolves relative JSONL paths (the study file's directory).
	BaseDir string
	// HFHubCache overrides the Hugging Face hub cache directory.
	HFHubCache string
}

// ErrDataset is wrapped by every error this package returns, so a worker can
// report kind "dataset".
var ErrDataset = errors.New("dataset")

func fail(hint, format string, args ...any) error {
	err := fmt.Errorf("%w: "+format, append([]any{ErrDataset}, args...)...)
	if hint != "" {
		err = errs.WithHint(err, hint)
	}
	return err
}

// record is one prompt before ordering.
type record struct {
	prompt protocol.Prompt
	source string
}

// Build returns the run's prompts, ordered, exactly c.N of them.
func Build(c Config, o Options) ([]protocol.Prompt, error) {
	if c.N < 1 {
		return nil, fail("set n to at least 1", "n is %d", c.N)
	}
	var recs []record
	var err error
	switch c.Dataset.Source {
	case "synthetic":
		recs, err = synthetic(c, o)
	case "jsonl":
		path := c.Dataset.Path
		if path == "" {
			return nil, fail(`set dataset.path to a .jsonl file`, "jsonl dataset without a path")
		}
		if !filepath.IsAbs(path) && o.BaseDir != "" {
			path = filepath.Join(o.BaseDir, path)
		}
		recs, err = readJSONL(path, c.Dataset.Field)
	case "aienergyscore":
		recs, err = aiEnergyScore(c.Dataset, o.HFHubCache)
	default:
		return nil, fail(`use source "synthetic", "jsonl" or "aienergyscore"`, "unknown dataset source %q", c.Dataset.Source)
	}
	if err != nil {
		return nil, err
	}
	recs, err = order(recs, c.Order, c.RandomSeed)
	if err != nil {
		return nil, err
	}
	if len(recs) < c.N {
		return nil, fail(fmt.Sprintf("lower n to %d or use a larger dataset", len(recs)),
			"dataset has only %d prompts but n = %d were requested", len(recs), c.N)
	}
	out := make([]protocol.Prompt, c.N)
	for i := range out {
		out[i] = recs[i].prompt
	}
	return out, nil
}

// order applies dataset_order. interleaved: round-robin over sources in
// order of first appearance (file order when there are no sources); grouped:
// stable by source name; shuffled: a seeded permutation.
func order(recs []record, mode string, seed int64) ([]record, error) {
	switch mode {
	case "", "interleaved":
		var names []string
		by := map[string][]record{}
		for _, r := range recs {
			if _, ok := by[r.source]; !ok {
				names = append(names, r.source)
			}
			by[r.source] = append(by[r.source], r)
		}
		out := make([]record, 0, len(recs))
		for i := 0; len(out) < len(recs); i++ {
			for _, n := range names {
				if i < len(by[n]) {
					out = append(out, by[n][i])
				}
			}
		}
		return out, nil
	case "grouped":
		out := slices.Clone(recs)
		sort.SliceStable(out, func(i, j int) bool { return out[i].source < out[j].source })
		return out, nil
	case "shuffled":
		out := slices.Clone(recs)
		rng := rand.New(rand.NewPCG(uint64(seed), 0x6c6c656d)) // "llem"
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out, nil
	}
	return nil, fail(`use "interleaved", "grouped" or "shuffled"`, "unknown dataset_order %q", mode)
}

// lengths draws n lengths around mean. fixed: all mean; uniform: integers in
// [mean·(1−spread), mean·(1+spread)]; normal: mean + N(0, (spread·mean)²),
// rounded. All are clipped to [1, max].
func lengths(rng *rand.Rand, n, mean int, dist string, spread float64, max int) ([]int, error) {
	out := make([]int, n)
	for i := range out {
		var l float64
		switch dist {
		case "", "fixed":
			l = float64(mean)
		case "uniform":
			lo := math.Round(float64(mean) * (1 - spread))
			hi := math.Round(float64(mean) * (1 + spread))
			l = lo + float64(rng.IntN(int(hi-lo)+1))
		case "normal":
			l = math.Round(float64(mean) + rng.NormFloat64()*spread*float64(mean))
		default:
			return nil, fail(`use "fixed", "uniform" or "normal"`, "unknown dataset.distribution %q", dist)
		}
		out[i] = int(math.Min(math.Max(l, 1), float64(max)))
	}
	return out, nil
}

// synthetic makes n prompts of drawn lengths. Input and output lengths and
// the token IDs come from one generator seeded with random_seed, so a run is
// reproducible and two runs differing only in, say, batch size get the same
// prompts.
func synthetic(c Config, o Options) ([]record, error) {
	d := c.Dataset
	if d.InputLen < 1 || d.OutputLen < 1 {
		return nil, fail("set dataset.input_len and dataset.output_len ≥ 1", "synthetic dataset needs input_len and output_len ≥ 1 (got %d, %d)", d.InputLen, d.OutputLen)
	}
	if d.Spread < 0 || d.Spread > 1 {
		return nil, fail("use a spread between 0 and 1", "dataset.spread %g is outside [0, 1]", d.Spread)
	}
	if o.Tokenizer == nil && o.VocabSize < 2 {
		return nil, fail("", "synthetic dataset needs the model's vocabulary size or tokenizer")
	}
	rng := rand.New(rand.NewPCG(uint64(c.RandomSeed), 0x73796e74)) // "synt"
	maxIn := c.MaxInputTokens
	if maxIn < 1 {
		maxIn = math.MaxInt32
	}
	maxOut := c.MaxOutputTokens
	if maxOut < 1 {
		maxOut = math.MaxInt32
	}
	ins, err := lengths(rng, c.N, d.InputLen, d.Distribution, d.Spread, maxIn)
	if err != nil {
		return nil, err
	}
	outs, _ := lengths(rng, c.N, d.OutputLen, d.Distribution, d.Spread, maxOut)
	var single []string
	useText := o.Tokenizer != nil
	if useText {
		single = singleTokenWords(o.Tokenizer)
		// A vocabulary without single-token English words (a toy or a
		// non-English tokenizer) cannot give exact lengths as text: token IDs
		// can, when the caller accepts them.
		useText = len(single) > 0 || o.VocabSize < 2
	}
	recs := make([]record, c.N)
	for i := range recs {
		p := protocol.Prompt{MaxTokens: outs[i]}
		if useText {
			p.Text, err = textOfLength(o.Tokenizer, single, rng, ins[i])
			if err != nil {
				return nil, err
			}
		} else {
			p.TokenIDs = randomIDs(rng, ins[i], o.VocabSize, o.Reserved)
		}
		recs[i] = record{prompt: p}
	}
	return recs, nil
}

func randomIDs(rng *rand.Rand, n, vocab int, reserved []int) []int {
	ids := make([]int, n)
	for i := range ids {
		for {
			id := rng.IntN(vocab)
			if !slices.Contains(reserved, id) {
				ids[i] = id
				break
			}
		}
	}
	return ids
}

// words are common English words; with a byte-level BPE each " word" is one
// pre-token of (nearly always) one token.
var words = strings.Fields(`the of and to in is it that for on with as was at by be this from or
an are not but have had his her they you we can one all were their there been has more will
would about which when time people some what into other than then its only also new first
world after year work day way may use most long made over just many through back much good`)

// textOfLength returns text of exactly n tokens (without special tokens):
// n words that are each one token, at the start and after a space, so the
// count is exact by construction; the whole text is encoded once to check.
func textOfLength(tok Tokenizer, single []string, rng *rand.Rand, n int) (string, error) {
	if len(single) == 0 {
		return "", fail("use a synthetic dataset without a tokenizer (token IDs)", "the tokenizer has no single-token English words to build synthetic text from")
	}
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(single[rng.IntN(len(single))])
	}
	text := b.String()
	if got := len(tok.Encode(text, false)); got != n {
		return "", fail("use a synthetic dataset without a tokenizer (token IDs)", "synthetic text came out at %d tokens, wanted %d", got, n)
	}
	return text, nil
}

// singleTokenWords filters words to those that are one token.
func singleTokenWords(tok Tokenizer) []string {
	var single []string
	for _, w := range words {
		// One token alone and one more after another word: " w" in
		// byte-level BPE, "▁w" in SentencePiece style.
		if len(tok.Encode(w, false)) == 1 && len(tok.Encode(w+" "+w, false)) == 2 {
			single = append(single, w)
		}
	}
	return single
}

// promptFields is the auto-detect order for the prompt field: the first
// non-empty string among them is the prompt. It is the Python original's
// order (llem-inventory.md §8, Datasets), and the same list is in the schema's
// #JSONL doc comment and in the Python harnesses' PROMPT_FIELDS
// (pkg/backend/pyharness/llem_common.py); TestPromptFieldOrderAgrees fails
// when they diverge.
var promptFields = []string{"prompt", "text", "instruction", "input", "question"}

// readJSONL reads one prompt per JSON object line. Lines whose object has a
// key starting with "_" (a provenance header) are skipped; an optional
// "source" string groups records for dataset_order, and an optional
// "max_new_tokens" (or "max_tokens") sets that prompt's output length.
func readJSONL(path, field string) ([]record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fail("check dataset.path (relative paths are relative to the study file)", "read %s: %v", path, err)
	}
	var recs []record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return nil, fail("each line must be one JSON object", "%s:%d: not a JSON object", path, line)
		}
		if slices.ContainsFunc(keys(obj), func(k string) bool { return strings.HasPrefix(k, "_") }) {
			continue
		}
		r, err := recordOf(obj, field)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fail("", "read %s: %v", path, err)
	}
	if len(recs) == 0 {
		return nil, fail("", "%s has no prompts", path)
	}
	return recs, nil
}

func recordOf(obj map[string]any, field string) (record, error) {
	var r record
	if s, ok := obj["source"].(string); ok {
		r.source = s
	}
	// A per-record output length (the original's planned BYO-JSONL
	// override): max_new_tokens, or max_tokens, a positive integer.
	for _, k := range []string{"max_new_tokens", "max_tokens"} {
		if v, ok := obj[k]; ok {
			f, isNum := v.(float64)
			if !isNum || f < 1 || f != math.Trunc(f) {
				return r, fail("use a positive integer", "%q is %v, not a positive integer", k, v)
			}
			r.prompt.MaxTokens = int(f)
			break
		}
	}
	if field != "" {
		s, ok := obj[field].(string)
		if !ok || strings.TrimSpace(s) == "" {
			return r, fail(fmt.Sprintf("set dataset.field to one of: %s", strings.Join(keys(obj), ", ")),
				"field %q is missing or not a non-empty string (fields: %s)", field, strings.Join(keys(obj), ", "))
		}
		r.prompt.Text = strings.TrimSpace(s)
		return r, nil
	}
	for _, f := range promptFields {
		if s, ok := obj[f].(string); ok && strings.TrimSpace(s) != "" {
			r.prompt.Text = strings.TrimSpace(s)
			return r, nil
		}
	}
	return r, fail("set dataset.field to the field holding the prompt",
		"no prompt field found (looked for %s; the record has %s)", strings.Join(promptFields, ", "), strings.Join(keys(obj), ", "))
}

func keys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// HubCacheDir is the Hugging Face hub cache (hfcache.HubDir).
func HubCacheDir() string { return hfcache.HubDir() }
