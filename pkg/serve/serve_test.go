package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/internal/testmodel"
	"github.com/llenergymeasure/llem/pkg/loadgen"
)

// start serves model over real HTTP with its scheduler running.
func start(t *testing.T, model string) (*Server, string) {
	t.Helper()
	m, tok, err := Load(model, LoadOptions{Threads: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Name: "m", Model: m, Tokenizer: tok})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return s, srv.URL
}

func post(t *testing.T, url string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return resp.StatusCode, out
}

// TestLoglikelihoodShape sends exactly what lm-eval's local-completions
// model sends to score a continuation (echo, logprobs 1, max_tokens 1,
// token-id prompts, several per request) and reads the answer the way its
// parse_logprobs does.
func TestLoglikelihoodShape(t *testing.T) {
	_, url := start(t, "random:llama-15m")
	prompts := [][]int{{1, 450, 4996, 17354}, {1, 306, 763}}
	code, out := post(t, url+"/v1/completions", map[string]any{"model": "m", "prompt": prompts, "temperature": 0,
		"max_tokens": 1, "logprobs": 1, "seed": 1234, "echo": true})
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	choices := out["choices"].([]any)
	if len(choices) != 2 {
		t.Fatalf("%d choices", len(choices))
	}
	for i, c := range choices {
		c := c.(map[string]any)
		lp := c["logprobs"].(map[string]any)
		tl := lp["token_logprobs"].([]any)
		top := lp["top_logprobs"].([]any)
		if int(c["index"].(float64)) != i || len(tl) != len(prompts[i])+1 || tl[0] != nil || len(top) != len(tl) {
			t.Fatalf("choice %d: %v", i, c)
		}
		// parse_logprobs: sum(token_logprobs[ctxlen:-1]), greedy when each
		// equals the max of its top_logprobs.
		for k := 1; k < len(tl); k++ {
			v := tl[k].(float64)
			mx := -1e300
			for _, x := range top[k].(map[string]any) {
				mx = max(mx, x.(float64))
			}
			if v > 0 || v > mx {
				t.Errorf("choice %d token %d: logprob %v, top max %v", i, k, v, mx)
			}
		}
		if !strings.HasPrefix(c["text"].(string), "[1][450]"[:len("[1]")]) {
			t.Errorf("echo text %q", c["text"])
		}
	}
	u := out["usage"].(map[string]any)
	if u["prompt_tokens"].(float64) != 7 || u["completion_tokens"].(float64) != 2 {
		t.Errorf("usage %v", u)
	}
	// Score only (max_tokens 0): the prompt's logprobs, nothing generated.
	code, out = post(t, url+"/v1/completions", map[string]any{"prompt": prompts[0], "max_tokens": 0, "logprobs": 0, "echo": true})
	if code != 200 || len(out["choices"].([]any)[0].(map[string]any)["logprobs"].(map[string]any)["tokens"].([]any)) != 4 {
		t.Fatalf("score only: %d %v", code, out)
	}
}

func TestBadRequests(t *testing.T) {
	_, url := start(t, "random:llama-15m")
	for name, c := range map[string]struct {
		body any
		code int
		want string
	}{
		"not json":     {"{", 400, "bad request body"},
		"other model":  {map[string]any{"model": "gpt-4", "prompt": []int{1}}, 404, "not served"},
		"text, no tok": {map[string]any{"prompt": "hello"}, 400, "no tokenizer"},
		"too long":     {map[string]any{"prompt": []int{1, 2}, "max_tokens": 5000}, 400, "positions"},
		"bad token":    {map[string]any{"prompt": []int{1, 99999}}, 400, "vocabulary"},
		"temperature":  {map[string]any{"prompt": []int{1}, "temperature": -1}, 400, "temperature"},
		"logprobs":     {map[string]any{"prompt": []int{1}, "logprobs": 50}, 400, "logprobs"},
		"stream many":  {map[string]any{"prompt": [][]int{{1}, {1}}, "stream": true}, 400, "stream one prompt"},
		"max_tokens 0": {map[string]any{"prompt": []int{1}, "max_tokens": 0}, 400, "echo"},
		"n":            {map[string]any{"prompt": []int{1}, "n": 2}, 400, "n=2"},
		"no prompt":    {map[string]any{"max_tokens": 1}, 400, "no prompt"},
		"chat, no tok": {map[string]any{"messages": []any{map[string]any{"role": "user", "content": "hi"}}}, 400, "tokenizer"},
	} {
		var b []byte
		if s, ok := c.body.(string); ok {
			b = []byte(s)
		} else {
			b, _ = json.Marshal(c.body)
		}
		p := "/v1/completions"
		if strings.HasPrefix(name, "chat") {
			p = "/v1/chat/completions"
		}
		resp, err := http.Post(url+p, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(raw), c.want) || !strings.Contains(string(raw), "(") {
			t.Errorf("%s: %d %s; want %d mentioning %q with a hint", name, resp.StatusCode, raw, c.code, c.want)
		}
	}
	resp, err := http.Get(url + "/v1/completions")
	if err != nil || resp.StatusCode != 405 {
		t.Errorf("GET completions: %v %v", err, resp.Status)
	}
	for _, p := range []string{"/health", "/v1/models"} {
		resp, err := http.Get(url + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", p, err, resp.Status)
		}
		resp.Body.Close()
	}
}

// TestContinuousBatching streams requests with llem's load generator,
// open-loop, into the server: requests that arrive while others decode join
// the running batch, and every client sees every token it asked for.
func TestContinuousBatching(t *testing.T) {
	s, url := start(t, "random:llama-15m")
	rep, err := loadgen.Run(context.Background(), loadgen.Config{BaseURL: url, Model: "m", IgnoreEOS: true, Timeout: time.Minute,
		Prompts:  []loadgen.Prompt{{Tokens: []int{1, 450, 4996}, MaxTokens: 24}, {Tokens: []int{1, 306}, MaxTokens: 16}},
		Requests: 16, Arrivals: &loadgen.Arrivals{Rate: 40, Seed: 2}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		want := []int{24, 16}[r.Prompt]
		if !r.OK() || r.OutputTokens != want || len(r.Tokens) != want || r.PromptTokens != []int{3, 2}[r.Prompt] {
			t.Fatalf("request %d: %+v", r.Index, r)
		}
	}
	st := s.Stats()
	if st.Admitted != 16 || st.JoinedRun == 0 || st.MaxBatch < 2 {
		t.Errorf("stats %+v: want requests joining a running batch", st)
	}
	sum := loadgen.Summarise(rep, loadgen.SLO{})
	t.Logf("16 requests at 40/s: %+v; TTFT p50 %.3fs TPOT p50 %.4fs; scheduler %+v", sum.Lag, sum.TTFT.P50, sum.TPOT.P50, st)
}

// TestTextAndChat uses a real checkpoint with a tokenizer: text prompts,
// stop strings, chat completions streamed and whole.
func TestTextAndChat(t *testing.T) {
	dir := testmodel.TinyCheckpoint(t)
	_, url := start(t, dir)
	code, out := post(t, url+"/v1/completions", map[string]any{"prompt": "hello", "max_tokens": 20, "temperature": 0, "ignore_eos": true})
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	text := out["choices"].([]any)[0].(map[string]any)["text"].(string)
	if len(text) == 0 {
		t.Fatalf("no text: %v", out)
	}
	// Stop at a piece of the greedy text: the same prompt stops there.
	stop := text[len(text)/2 : len(text)/2+1]
	code, out = post(t, url+"/v1/completions", map[string]any{"prompt": "hello", "max_tokens": 20, "temperature": 0, "ignore_eos": true, "stop": []string{stop}})
	c := out["choices"].([]any)[0].(map[string]any)
	if code != 200 || c["finish_reason"] != "stop" || c["text"] != text[:strings.Index(text, stop)] {
		t.Errorf("stop %q in %q: %d %v", stop, text, code, c)
	}
	code, out = post(t, url+"/v1/chat/completions", map[string]any{"messages": []any{map[string]any{"role": "user", "content": "hi"}}, "max_tokens": 5, "ignore_eos": true})
	if code != 200 || out["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["role"] != "assistant" {
		t.Fatalf("chat: %d %v", code, out)
	}
	rep, err := loadgen.Run(context.Background(), loadgen.Config{BaseURL: url, API: loadgen.Chat, IgnoreEOS: true,
		Prompts: []loadgen.Prompt{{Text: "hi", MaxTokens: 6}}, Requests: 4, Concurrency: 2})
	if err != nil || rep.Failed != 0 || rep.Results[0].OutputTokens != 6 || len(rep.Results[0].Tokens) == 0 {
		t.Fatalf("chat stream: %v %+v", err, rep.Results)
	}
}
