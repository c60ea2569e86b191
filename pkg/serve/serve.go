// Package serve is llem's OpenAI-compatible inference server over the
// native engine (`llem serve`): /v1/completions (logprobs and echo, as
// lm-eval's local-completions model uses them), /v1/chat/completions,
// streaming (SSE), /v1/models and /health. One scheduler goroutine owns an
// engine.Stepper and admits requests into the running batch between
// forward passes (continuous batching): a request that arrives while
// others decode joins at the next step instead of waiting for the batch.
// It makes serving studies runnable on any machine.
package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/llenergymeasure/llem/pkg/engine"
	"github.com/llenergymeasure/llem/pkg/tokenizer"
)

// Options configure a Server.
type Options struct {
	// Name is the model name clients send and /v1/models lists.
	Name  string
	Model *engine.Model
	// Tokenizer turns text into tokens and back; nil for random-weight
	// presets, which then take token-id prompts only and render generated
	// tokens as "[id]".
	Tokenizer *tokenizer.Tokenizer
	// MaxBatch caps the sequences in one step (default 64); requests beyond
	// it wait in arrival order.
	MaxBatch int
	// Seed is mixed into every request's sampling seed.
	Seed int64
}

// Stats count what the scheduler did (for tests and logs).
type Stats struct {
	Steps     int64 // forward passes
	Admitted  int64 // sequences admitted
	JoinedRun int64 // admitted while other sequences were mid-decode
	MaxBatch  int64 // most sequences in one step
}

// Server is an OpenAI-compatible server over one model.
type Server struct {
	o       Options
	pending chan *job
	created int64

	stats  struct{ steps, admitted, joined, maxBatch atomic.Int64 }
	nextID atomic.Int64
}

// New returns a Server; call Run to start its scheduler and serve Handler.
func New(o Options) *Server {
	if o.MaxBatch < 1 {
		o.MaxBatch = 64
	}
	return &Server{o: o, pending: make(chan *job, 1024), created: time.Now().Unix()}
}

// Stats returns the scheduler's counters so far.
func (s *Server) Stats() Stats {
	return Stats{Steps: s.stats.steps.Load(), Admitted: s.stats.admitted.Load(), JoinedRun: s.stats.joined.Load(), MaxBatch: s.stats.maxBatch.Load()}
}

// job is one sequence of a request, between a handler and the scheduler.
type job struct {
	req    engine.SeqRequest
	events chan event // capacity MaxNewTokens+1: the scheduler never blocks
	cancel atomic.Bool
	seq    *engine.Seq // set by the scheduler
}

type event struct {
	e   engine.Emitted
	err error
}

func newJob(req engine.SeqRequest) *job {
	return &job{req: req, events: make(chan event, req.MaxNewTokens+1)}
}

// submit queues j (or fails when ctx ends first).
func (s *Server) submit(ctx context.Context, j *job) error {
	select {
	case s.pending <- j:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run is the scheduler: until ctx ends it admits pending requests (up to
// MaxBatch) into the running batch before every step, drops requests whose
// clients went away, and hands each step's tokens to their handlers.
func (s *Server) Run(ctx context.Context) {
	st := s.o.Model.NewStepper()
	defer func() { st.Close() }()
	jobs := map[*engine.Seq]*job{}
	admit := func(j *job) {
		if j.cancel.Load() {
			close(j.events)
			return
		}
		running := st.Len()
		seq, err := st.Add(j.req)
		if err != nil {
			j.events <- event{err: err}
			close(j.events)
			return
		}
		j.seq = seq
		jobs[seq] = j
		s.stats.admitted.Add(1)
		if running > 0 {
			s.stats.joined.Add(1)
		}
	}
	failAll := func(err error) {
		for seq, j := range jobs {
			j.events <- event{err: err}
			close(j.events)
			delete(jobs, seq)
		}
	}
	defer failAll(errors.New("server shutting down"))
	for {
		if st.Len() == 0 {
			select {
			case j := <-s.pending:
				admit(j)
			case <-ctx.Done():
				return
			}
		}
	fill:
		for st.Len() < s.o.MaxBatch {
			select {
			case j := <-s.pending:
				admit(j)
			default:
				break fill
			}
		}
		for seq, j := range jobs {
			if j.cancel.Load() {
				st.Remove(seq)
				delete(jobs, seq)
				close(j.events)
			}
		}
		if st.Len() == 0 {
			continue
		}
		if n := int64(st.Len()); n > s.stats.maxBatch.Load() {
			s.stats.maxBatch.Store(n)
		}
		out, err := st.Step(ctx)
		s.stats.steps.Add(1)
		if err != nil {
			// A failed step leaves the batch's caches undefined: fail
			// every sequence in it and start afresh.
			failAll(fmt.Errorf("engine step: %w", err))
			st.Close()
			st = s.o.Model.NewStepper()
			if ctx.Err() != nil {
				return
			}
			continue
		}
		for _, e := range out {
			j := jobs[e.Seq]
			if j == nil {
				continue
			}
			j.events <- event{e: e}
			if e.Finish != "" {
				close(j.events)
				delete(jobs, e.Seq)
			}
		}
	}
}

// Handler serves the OpenAI-compatible API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/completions", s.post(s.completions))
	mux.HandleFunc("/v1/chat/completions", s.post(s.chat))
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path),
			"llem serve has POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health")
	})
	return mux
}

func (s *Server) post(h func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeError(w, http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path, "use POST")
			return
		}
		h(w, r)
	}
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []any{map[string]any{
		"id": s.o.Name, "object": "model", "created": s.created, "owned_by": "llem",
		"max_model_len": s.o.Model.Config().MaxPositionEmbeddings,
	}}})
}

func (s *Server) id(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, s.created, s.nextID.Add(1))
}
