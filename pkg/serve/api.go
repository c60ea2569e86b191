package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/engine"
)

// maxTopLogprobs is the OpenAI API's limit on logprobs (completions).
const maxTopLogprobs = 20

// apiError is a request the server refuses: an HTTP status and a message
// with a hint.
type apiError struct {
	status int
	msg    string
	hint   string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(hint, format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, a...), hint: hint}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers in the OpenAI error shape; the hint is appended to the
// message so every client shows it.
func writeError(w http.ResponseWriter, status int, msg, hint string) {
	if hint != "" {
		msg += " (" + hint + ")"
	}
	typ := "invalid_request_error"
	if status >= 500 {
		typ = "server_error"
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": status}})
}

func writeErr(w http.ResponseWriter, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		writeError(w, ae.status, ae.msg, ae.hint)
	case errs.ExitCode(err) == errs.ExitBadInput:
		writeError(w, http.StatusBadRequest, err.Error(), errs.Hint(err))
	default:
		writeError(w, http.StatusInternalServerError, err.Error(), "")
	}
}

// params are the request fields both APIs share (OpenAI's, plus vLLM's
// top_k, min_p, repetition_penalty, ignore_eos and min_tokens).
type params struct {
	Model         string          `json:"model"`
	MaxTokens     *int            `json:"max_tokens"`
	MaxCompletion *int            `json:"max_completion_tokens"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	TopK          *int            `json:"top_k"`
	MinP          *float64        `json:"min_p"`
	Repetition    *float64        `json:"repetition_penalty"`
	Seed          *int64          `json:"seed"`
	Stop          json.RawMessage `json:"stop"`
	Stream        bool            `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	N         *int `json:"n"`
	IgnoreEOS bool `json:"ignore_eos"`
	MinTokens int  `json:"min_tokens"`
}

type completionRequest struct {
	params
	Prompt   json.RawMessage `json:"prompt"`
	Echo     bool            `json:"echo"`
	Logprobs *int            `json:"logprobs"`
}

type chatRequest struct {
	params
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Logprobs bool `json:"logprobs"`
}

func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 32<<20))
	if err != nil {
		return badRequest("send at most 32 MiB", "read request body: %v", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("send a JSON object in the OpenAI API's shape", "bad request body: %v", err)
	}
	return nil
}

// common checks the shared fields and builds the sampling settings and
// stop strings.
func (s *Server) common(p *params) (engine.SeqRequest, []string, error) {
	var req engine.SeqRequest
	if p.Model != "" && p.Model != s.o.Name {
		return req, nil, &apiError{status: http.StatusNotFound, msg: fmt.Sprintf("model %q not served", p.Model), hint: fmt.Sprintf("this server serves %q (GET /v1/models)", s.o.Name)}
	}
	if p.N != nil && *p.N != 1 {
		return req, nil, badRequest("llem serve returns one choice per prompt: send n=1", "n=%d", *p.N)
	}
	req.MaxNewTokens = 16 // OpenAI's default for completions
	for _, m := range []*int{p.MaxTokens, p.MaxCompletion} {
		if m != nil {
			req.MaxNewTokens = *m
		}
	}
	if req.MaxNewTokens < 0 {
		return req, nil, badRequest("use max_tokens >= 0", "max_tokens %d", req.MaxNewTokens)
	}
	smp := engine.Sampling{Temperature: 1, IgnoreEOS: p.IgnoreEOS, MinNewTokens: p.MinTokens}
	if p.Temperature != nil {
		if *p.Temperature < 0 || *p.Temperature > 2 {
			return req, nil, badRequest("use a temperature in [0, 2]", "temperature %g", *p.Temperature)
		}
		smp.Temperature = float32(*p.Temperature)
	}
	if p.TopP != nil {
		smp.TopP = float32(*p.TopP)
	}
	if p.TopK != nil && *p.TopK > 0 { // vLLM: -1 or 0 is off
		smp.TopK = *p.TopK
	}
	if p.MinP != nil {
		smp.MinP = float32(*p.MinP)
	}
	if p.Repetition != nil {
		smp.RepetitionPenalty = float32(*p.Repetition)
	}
	if err := smp.Validate(); err != nil {
		return req, nil, badRequest(errs.Hint(err), "%v", err)
	}
	smp.Seed = s.o.Seed
	if p.Seed != nil {
		req.Seed = *p.Seed
	} else {
		req.Seed = s.nextID.Load()
	}
	req.Sampling = smp
	var stops []string
	if len(p.Stop) > 0 && string(p.Stop) != "null" {
		var one string
		if json.Unmarshal(p.Stop, &one) == nil {
			stops = []string{one}
		} else if err := json.Unmarshal(p.Stop, &stops); err != nil {
			return req, nil, badRequest("stop is a string or a list of strings", "bad stop: %v", err)
		}
		stops = slices.DeleteFunc(stops, func(x string) bool { return x == "" })
	}
	return req, stops, nil
}

// prompts parses a completions prompt: a string, a list of strings, a list
// of token ids, or a list of lists of token ids.
func (s *Server) prompts(raw json.RawMessage) ([][]int, []string, error) {
	// Each shape is tried into a fresh value: a failed Unmarshal may have
	// filled part of its target.
	var strs []string
	var idss [][]int
	var str string
	var ids []int
	var list []string
	var lists [][]int
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, nil, badRequest("send a prompt: text or token ids", "no prompt")
	case json.Unmarshal(raw, &str) == nil:
		strs = []string{str}
	case json.Unmarshal(raw, &list) == nil:
		if len(list) == 0 {
			return nil, nil, badRequest("send at least one prompt", "empty prompt list")
		}
		strs = list
	case json.Unmarshal(raw, &ids) == nil:
		idss = [][]int{ids}
	case json.Unmarshal(raw, &lists) == nil:
		idss = lists
	default:
		return nil, nil, badRequest("prompt is a string, a list of strings, a list of token ids or a list of such lists", "bad prompt %.60s", raw)
	}
	if strs != nil {
		if s.o.Tokenizer == nil {
			return nil, nil, badRequest("this model has no tokenizer (random weights): send token ids as the prompt", "text prompt")
		}
		for _, t := range strs {
			idss = append(idss, s.o.Tokenizer.Encode(t, true))
		}
		return idss, strs, nil
	}
	if len(idss) == 0 {
		return nil, nil, badRequest("send at least one prompt", "empty prompt list")
	}
	texts := make([]string, len(idss))
	for i, p := range idss {
		texts[i] = s.text(p)
	}
	return idss, texts, nil
}

// text renders tokens: the tokenizer's decoding, or "[id]" per token
// without one. Special tokens (EOS) are skipped.
func (s *Server) text(ids []int) string {
	if s.o.Tokenizer != nil {
		return s.o.Tokenizer.Decode(ids, true)
	}
	var b strings.Builder
	eos := s.o.Model.Config().EOSTokenIDs
	for _, id := range ids {
		if !slices.Contains(eos, id) {
			fmt.Fprintf(&b, "[%d]", id)
		}
	}
	return b.String()
}

// tokenText is one token's text for logprobs ("" never: a token that
// decodes to nothing is shown by its vocabulary string).
func (s *Server) tokenText(id int) string {
	if s.o.Tokenizer == nil {
		return fmt.Sprintf("[%d]", id)
	}
	if t := s.o.Tokenizer.Decode([]int{id}, false); t != "" && utf8.ValidString(t) && !strings.ContainsRune(t, utf8.RuneError) {
		return t
	}
	return s.o.Tokenizer.Token(id)
}

// detok turns a sequence's tokens into text incrementally, holding back
// what might still change: an incomplete UTF-8 character, or the start of a
// stop string.
type detok struct {
	s       *Server
	stops   []string
	hold    int // bytes held back: longest stop - 1
	tokens  []int
	sent    int // bytes of text already handed out
	stopped bool
	text    string
}

func newDetok(s *Server, stops []string) *detok {
	d := &detok{s: s, stops: stops}
	for _, st := range stops {
		d.hold = max(d.hold, len(st)-1)
	}
	return d
}

// add appends a token and returns the new text that is safe to emit;
// stopped becomes true when a stop string appeared (the text is cut before
// it). final releases everything.
func (d *detok) add(tok int, final bool) string {
	if tok >= 0 {
		d.tokens = append(d.tokens, tok)
	}
	full := d.s.text(d.tokens)
	for _, st := range d.stops {
		if i := strings.Index(full, st); i >= 0 {
			full, d.stopped, final = full[:i], true, true
		}
	}
	d.text = full
	end := len(full)
	if !final {
		end = max(d.sent, end-d.hold)
		for end > d.sent && strings.HasSuffix(full[:end], string(utf8.RuneError)) {
			end -= len(string(utf8.RuneError))
		}
		for end > d.sent && !utf8.ValidString(full[d.sent:end]) {
			end--
		}
	}
	if end <= d.sent || end > len(full) {
		return ""
	}
	out := full[d.sent:end]
	d.sent = end
	return out
}

func finishReason(e engine.Emitted, stopped bool) string {
	if stopped || e.Finish == "eos" {
		return "stop"
	}
	return e.Finish
}

// logprobs is the completions API's logprobs object.
type logprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []*float64           `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

func (s *Server) addLogprob(lp *logprobs, tok int, logprob float64, top []engine.TokenLogprob, offset *int) {
	t := s.tokenText(tok)
	lp.Tokens = append(lp.Tokens, t)
	lp.TextOffset = append(lp.TextOffset, *offset)
	*offset += len(t)
	if math.IsNaN(logprob) {
		lp.TokenLogprobs = append(lp.TokenLogprobs, nil)
		lp.TopLogprobs = append(lp.TopLogprobs, nil)
		return
	}
	v := logprob
	lp.TokenLogprobs = append(lp.TokenLogprobs, &v)
	m := make(map[string]float64, len(top)+1)
	for _, x := range top {
		m[s.tokenText(x.Token)] = x.Logprob
	}
	// OpenAI and vLLM include the chosen token beside the top ones.
	m[t] = logprob
	lp.TopLogprobs = append(lp.TopLogprobs, m)
}
