package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/serve"
)

// serveCmd is `llem serve`: the native engine behind an OpenAI-compatible
// HTTP API, for serving studies and for lm-eval's local-completions model.
type serveCmd struct {
	Model    string `arg:"" help:"random:<preset> (seeded random weights, token-id prompts only), a checkpoint directory, or a Hugging Face model id in the local cache."`
	Host     string `default:"127.0.0.1" help:"Address to listen on."`
	Port     int    `default:"8000" help:"Port to listen on (0: any free port, printed on start)."`
	Name     string `help:"Model name clients send and /v1/models lists (default: the model argument)."`
	Threads  int    `help:"Kernel threads (default: all CPUs)."`
	DType    string `name:"dtype" default:"fp32" enum:"fp32,bf16" help:"Weight storage: fp32 or bf16."`
	Seed     int64  `help:"Seed of random weights, mixed into every request's sampling seed."`
	MaxBatch int    `default:"64" help:"Most sequences in one forward pass; later requests wait."`
}

func (c *serveCmd) Run(ctx context.Context, stdio *IO) error {
	if c.Port < 0 || c.Port > 65535 {
		return errs.BadInput(fmt.Errorf("serve: port %d", c.Port), "use a port in 0..65535")
	}
	if c.MaxBatch < 1 {
		return errs.BadInput(fmt.Errorf("serve: --max-batch %d", c.MaxBatch), "use at least 1")
	}
	m, tok, err := serve.Load(c.Model, serve.LoadOptions{Threads: c.Threads, Storage: c.DType, Seed: c.Seed})
	if err != nil {
		return fmt.Errorf("serve: load %s: %w", c.Model, err)
	}
	name := c.Name
	if name == "" {
		name = c.Model
	}
	s := serve.New(serve.Options{Name: name, Model: m, Tokenizer: tok, MaxBatch: c.MaxBatch, Seed: c.Seed})
	ln, err := net.Listen("tcp", net.JoinHostPort(c.Host, strconv.Itoa(c.Port)))
	if err != nil {
		return errs.WithHint(fmt.Errorf("serve: %w", err), "pick another --port (0 for any free one)")
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	sched := make(chan struct{})
	go func() { s.Run(runCtx); close(sched) }()
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(stdio.Stderr, "llem serve: %s (%s, %d threads) on http://%s/v1\n", name, m.DType(), m.Threads(), ln.Addr())
	select {
	case err = <-served:
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = hs.Shutdown(shut)
		cancel()
	}
	stop()
	<-sched
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
