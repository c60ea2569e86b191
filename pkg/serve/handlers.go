package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// sequence runs one job and collects its output. onText, when set, gets
// each piece of text as soon as it is safe to emit (streaming).
type outcome struct {
	tokens []int
	text   string
	finish string
	lp     *logprobs
}

// run submits j and waits for its events. The first event decides whether
// the request was accepted: a validation error comes back before anything
// was written, so the handler can still answer 400.
func (s *Server) run(ctx context.Context, j *job, stops []string, echoText string, echo bool, first func() error, onText func(string) error) (*outcome, error) {
	if err := s.submit(ctx, j); err != nil {
		return nil, err
	}
	defer j.cancel.Store(true) // a client that went away frees its slot
	d := newDetok(s, stops)
	out := &outcome{}
	wantLP := j.req.Logprobs || j.req.PromptLogprobs
	offset := 0
	if wantLP {
		out.lp = &logprobs{}
	}
	started := false
	for {
		var ev event
		var ok bool
		select {
		case ev, ok = <-j.events:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if !ok {
			return nil, fmt.Errorf("request dropped by the scheduler")
		}
		if ev.err != nil {
			return nil, ev.err
		}
		if !started {
			started = true
			if echo && j.req.PromptLogprobs {
				lps, tops := j.seq.PromptLogprobs()
				for i, x := range lps {
					s.addLogprob(out.lp, x.Token, x.Logprob, tops[i], &offset)
				}
			}
			if first != nil {
				if err := first(); err != nil {
					return nil, err
				}
			}
			if echo && onText != nil && echoText != "" {
				if err := onText(echoText); err != nil {
					return nil, err
				}
			}
		}
		e := ev.e
		final := e.Finish != ""
		var piece string
		if e.Token >= 0 {
			out.tokens = append(out.tokens, e.Token)
			if j.req.Logprobs && !d.stopped {
				s.addLogprob(out.lp, e.Token, e.Logprob, e.Top, &offset)
			}
			piece = d.add(e.Token, final)
		} else {
			piece = d.add(-1, true)
		}
		if piece != "" && onText != nil {
			if err := onText(piece); err != nil {
				return nil, err
			}
		}
		if final || d.stopped {
			out.text = d.text
			out.finish = finishReason(e, d.stopped)
			if echo {
				out.text = echoText + out.text
			}
			return out, nil
		}
	}
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	base, stops, err := s.common(&req.params)
	if err != nil {
		writeErr(w, err)
		return
	}
	if req.Logprobs != nil && (*req.Logprobs < 0 || *req.Logprobs > maxTopLogprobs) {
		writeErr(w, badRequest(fmt.Sprintf("use logprobs between 0 and %d", maxTopLogprobs), "logprobs %d", *req.Logprobs))
		return
	}
	if base.MaxNewTokens == 0 && !(req.Echo && req.Logprobs != nil) {
		writeErr(w, badRequest("max_tokens 0 only scores the prompt: send echo=true with logprobs", "max_tokens 0"))
		return
	}
	prompts, texts, err := s.prompts(req.Prompt)
	if err != nil {
		writeErr(w, err)
		return
	}
	if req.Stream && len(prompts) > 1 {
		writeErr(w, badRequest("stream one prompt per request", "streaming %d prompts", len(prompts)))
		return
	}
	jobs := make([]*job, len(prompts))
	for i, p := range prompts {
		sr := base
		sr.Prompt = p
		sr.Seed += int64(i)
		if req.Logprobs != nil {
			sr.Logprobs, sr.TopLogprobs = true, *req.Logprobs
			sr.PromptLogprobs = req.Echo
		}
		jobs[i] = newJob(sr)
	}
	id, model := s.id("cmpl"), s.o.Name
	if req.Stream {
		s.streamCompletion(w, r, jobs[0], stops, texts[0], req.Echo, req.StreamOptions != nil && req.StreamOptions.IncludeUsage, id)
		return
	}
	// Every prompt runs concurrently: they share the batch.
	outs := make([]*outcome, len(jobs))
	errc := make(chan error, len(jobs))
	for i, j := range jobs {
		go func() {
			var err error
			outs[i], err = s.run(r.Context(), j, stops, texts[i], req.Echo, nil, nil)
			errc <- err
		}()
	}
	var firstErr error
	for range jobs {
		if err := <-errc; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		writeErr(w, firstErr)
		return
	}
	choices := make([]map[string]any, len(outs))
	promptTokens, completionTokens := 0, 0
	for i, o := range outs {
		c := map[string]any{"index": i, "text": o.text, "finish_reason": o.finish, "logprobs": nil}
		if o.lp != nil {
			c["logprobs"] = o.lp
		}
		choices[i] = c
		promptTokens += len(prompts[i])
		completionTokens += len(o.tokens)
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "text_completion", "created": s.created, "model": model,
		"choices": choices, "usage": usage(promptTokens, completionTokens)})
}

func usage(p, c int) map[string]int {
	return map[string]int{"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
}

// sse writes Server-Sent Events.
type sse struct {
	w  http.ResponseWriter
	fl http.Flusher
}

func (e *sse) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(e.w, "data: %s\n\n", b); err != nil {
		return err
	}
	e.fl.Flush()
	return nil
}

func (e *sse) done() {
	fmt.Fprint(e.w, "data: [DONE]\n\n")
	e.fl.Flush()
}

func startSSE(w http.ResponseWriter) (*sse, error) {
	fl, ok := w.(http.Flusher)
	if !ok {
		return nil, fmt.Errorf("response writer cannot stream")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	return &sse{w: w, fl: fl}, nil
}

func (s *Server) streamCompletion(w http.ResponseWriter, r *http.Request, j *job, stops []string, promptText string, echo, withUsage bool, id string) {
	var ev *sse
	chunk := func(text string, finish any) map[string]any {
		return map[string]any{"id": id, "object": "text_completion", "created": s.created, "model": s.o.Name,
			"choices": []any{map[string]any{"index": 0, "text": text, "logprobs": nil, "finish_reason": finish}}}
	}
	out, err := s.run(r.Context(), j, stops, promptText, echo,
		func() (err error) { ev, err = startSSE(w); return err },
		func(text string) error { return ev.send(chunk(text, nil)) })
	s.endStream(w, ev, err, func() {
		_ = ev.send(chunk("", out.finish))
		if withUsage {
			_ = ev.send(map[string]any{"id": id, "object": "text_completion", "created": s.created, "model": s.o.Name,
				"choices": []any{}, "usage": usage(len(j.req.Prompt), len(out.tokens))})
		}
	})
}

// endStream finishes a stream: an error before the stream started is an
// HTTP error; after, it is an error event (vLLM's shape), then [DONE].
func (s *Server) endStream(w http.ResponseWriter, ev *sse, err error, ok func()) {
	if err != nil {
		if ev == nil {
			writeErr(w, err)
			return
		}
		_ = ev.send(map[string]any{"error": map[string]any{"message": err.Error(), "type": "server_error", "code": 500}})
		ev.done()
		return
	}
	ok()
	ev.done()
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	base, stops, err := s.common(&req.params)
	if err != nil {
		writeErr(w, err)
		return
	}
	if req.Logprobs {
		writeErr(w, badRequest("use /v1/completions with logprobs to score tokens", "chat logprobs are not supported by llem serve"))
		return
	}
	if base.MaxNewTokens == 0 {
		writeErr(w, badRequest("ask for at least one token", "max_tokens 0"))
		return
	}
	if len(req.Messages) == 0 {
		writeErr(w, badRequest("send at least one message", "no messages"))
		return
	}
	if s.o.Tokenizer == nil {
		writeErr(w, badRequest("this model has no tokenizer (random weights): use /v1/completions with token ids", "chat needs a tokenizer"))
		return
	}
	// A plain role-prefixed transcript: llem does not run the model's Jinja
	// chat template.
	var b strings.Builder
	for i, m := range req.Messages {
		var content string
		if err := json.Unmarshal(m.Content, &content); err != nil {
			var parts []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			}
			if json.Unmarshal(m.Content, &parts) != nil {
				writeErr(w, badRequest("content is a string or a list of text parts", "message %d: bad content", i))
				return
			}
			for _, p := range parts {
				if p.Type != "text" {
					writeErr(w, badRequest("llem serve takes text only", "message %d: content part of type %q", i, p.Type))
					return
				}
				content += p.Text
			}
		}
		fmt.Fprintf(&b, "%s: %s\n", m.Role, content)
	}
	b.WriteString("assistant:")
	base.Prompt = s.o.Tokenizer.Encode(b.String(), true)
	j := newJob(base)
	id := s.id("chatcmpl")
	if req.Stream {
		var ev *sse
		first := true
		chunk := func(delta map[string]any, finish any) map[string]any {
			return map[string]any{"id": id, "object": "chat.completion.chunk", "created": s.created, "model": s.o.Name,
				"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
		}
		out, err := s.run(r.Context(), j, stops, "", false,
			func() (err error) { ev, err = startSSE(w); return err },
			func(text string) error {
				d := map[string]any{"content": text}
				if first {
					d["role"], first = "assistant", false
				}
				return ev.send(chunk(d, nil))
			})
		s.endStream(w, ev, err, func() {
			_ = ev.send(chunk(map[string]any{}, out.finish))
			if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
				_ = ev.send(map[string]any{"id": id, "object": "chat.completion.chunk", "created": s.created, "model": s.o.Name,
					"choices": []any{}, "usage": usage(len(base.Prompt), len(out.tokens))})
			}
		})
		return
	}
	out, err := s.run(r.Context(), j, stops, "", false, nil, nil)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "chat.completion", "created": s.created, "model": s.o.Name,
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": out.text}, "finish_reason": out.finish}},
		"usage":   usage(len(base.Prompt), len(out.tokens))})
}
