// Package native is the worker of the native backend: it reads one run spec,
// runs it on llem's pure-Go engine (pkg/engine) and speaks the worker
// protocol (docs/worker-protocol.md) on its output. `llem worker` is a thin
// wrapper around Run; tests call Run in-process.
package native

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/version"
	"github.com/llenergymeasure/llem/pkg/clock"
	"github.com/llenergymeasure/llem/pkg/dataset"
	"github.com/llenergymeasure/llem/pkg/engine"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/tokenizer"
)

// Backend is the name the worker announces in hello.
const Backend = "native"

// RandomPrefix marks a built-in random-weight preset model ("random:llama-15m").
const RandomPrefix = "random:"

// Option adjusts Run, for tests.
type Option func(*workerRun)

// WithAvailableMemory replaces the host memory probe (MemAvailable and the
// cgroup limit), so the out-of-memory pre-check can be tested without
// exhausting memory.
func WithAvailableMemory(f func() (int64, error)) Option {
	return func(r *workerRun) { r.available = f }
}

// Failure is the error Run returns after it emitted an error event; Kind is
// the event's kind.
type Failure struct {
	Kind string
	Err  error
}

func (f *Failure) Error() string { return f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

type workerRun struct {
	enc       *protocol.Encoder
	available func() (int64, error)
}

// Run executes the run spec read from spec and writes protocol events to
// events. On failure it emits an error event and returns an error whose exit
// code (internal/errs) is 2 for config/protocol errors, 130 when ctx was
// cancelled, else 1; hints are attached for the user.
func Run(ctx context.Context, spec io.Reader, events io.Writer, opts ...Option) error {
	bw := &flushWriter{w: bufio.NewWriter(events)}
	r := &workerRun{enc: protocol.NewEncoder(bw), available: availableMemory}
	for _, o := range opts {
		o(r)
	}
	if err := r.enc.Emit(protocol.Hello{
		Backend:         Backend,
		ProtocolVersion: protocol.ProtocolVersion,
		Versions:        map[string]string{"llem": version.Version, "go": runtime.Version(), "commit": version.Commit()},
		PID:             os.Getpid(),
	}); err != nil {
		return fmt.Errorf("write hello: %w", err)
	}
	err := r.run(ctx, spec)
	if err == nil {
		return nil
	}
	var f *Failure
	if !errors.As(err, &f) {
		f = &Failure{Kind: protocol.ErrKindInternal, Err: err}
	}
	if ctx.Err() != nil {
		f = &Failure{Kind: protocol.ErrKindInterrupted, Err: fmt.Errorf("run interrupted: %w", ctx.Err())}
	}
	ev := protocol.Error{Kind: f.Kind, Message: f.Err.Error(), Hint: errs.Hint(err)}
	if emitErr := r.enc.Emit(ev); emitErr != nil {
		return errors.Join(err, fmt.Errorf("write error event: %w", emitErr))
	}
	var out error = f
	if ev.Hint != "" {
		out = errs.WithHint(out, ev.Hint)
	}
	switch f.Kind {
	case protocol.ErrKindConfig, protocol.ErrKindProtocol:
		return errs.WithExitCode(out, errs.ExitBadInput)
	case protocol.ErrKindInterrupted:
		return errs.WithExitCode(out, errs.ExitInterrupted)
	}
	return errs.WithExitCode(out, errs.ExitFailure)
}

// flushWriter flushes after every event line, so the parent sees events as
// they happen (bufio only to make each line a single write).
type flushWriter struct{ w *bufio.Writer }

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	return n, f.w.Flush()
}

// fail wraps err as a Failure of kind, keeping any hint err carries and
// adding hint when it has none.
func fail(kind string, err error, hint string) error {
	if errs.Hint(err) == "" && hint != "" {
		err = errs.WithHint(err, hint)
	}
	return &Failure{Kind: kind, Err: err}
}

// resolved is a model located and checked but not yet in memory.
type resolved struct {
	cfg engine.Config
	dir string               // "" for a random preset
	tok *tokenizer.Tokenizer // nil for random presets and checkpoints without tokenizer.json
}

func (r *workerRun) run(ctx context.Context, specR io.Reader) error {
	raw, err := io.ReadAll(specR)
	if err != nil {
		return fail(protocol.ErrKindProtocol, fmt.Errorf("read run spec: %w", err), "")
	}
	var spec protocol.RunSpec
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err = dec.Decode(&spec)
	if err == nil {
		if _, tail := dec.Token(); tail != io.EOF {
			err = errors.New("data after the spec object")
		}
	}
	if err != nil {
		return fail(protocol.ErrKindProtocol, fmt.Errorf("parse run spec: %w", err), "the parent must send one RunSpec JSON object on stdin (docs/worker-protocol.md)")
	}
	if spec.ProtocolVersion != protocol.ProtocolVersion {
		return fail(protocol.ErrKindProtocol,
			fmt.Errorf("run spec speaks protocol %d, this worker speaks %d", spec.ProtocolVersion, protocol.ProtocolVersion),
			"use an llem worker of the same version as the parent")
	}
	cfg, err := parseConfig(spec.Config)
	if err != nil {
		return fail(protocol.ErrKindConfig, err, "check the experiment config against schema/native.cue")
	}
	storage, err := cfg.storage()
	if err != nil {
		return fail(protocol.ErrKindConfig, err, `set precision to "fp32" or "bf16" (or native.storage)`)
	}
	r.enc.Emit(protocol.Log{Level: "info", Message: fmt.Sprintf("run %s cycle %d: model=%s storage=%s batch_size=%d threads=%d",
		spec.RunID, spec.Cycle, cfg.Model, storage, cfg.Native.BatchSize, cfg.Native.Threads)})

	// Everything that can be checked without the weights is checked first,
	// so a bad dataset or an oversized model fails in milliseconds.
	res, err := r.resolve(cfg)
	if err != nil {
		return err
	}
	reqs, synthetic, err := r.requests(cfg, spec, res)
	if err != nil {
		return err
	}
	sampling := cfg.sampling(synthetic)
	if err := sampling.Validate(); err != nil {
		return fail(protocol.ErrKindConfig, err, "")
	}
	if err := r.checkMemory(res.cfg, storage, cfg); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	t0 := clock.Now()
	m, err := r.build(res, cfg, storage)
	if err != nil {
		return err
	}
	mc := m.Config()
	if err := r.enc.Emit(protocol.Loaded{
		Model: cfg.Model, Architecture: mc.Architecture, Parameters: m.NumParams(), Layers: mc.NumLayers,
		DType: m.DType(), MemoryBytes: m.MemoryBytes(), LoadTimeNs: clock.Now() - t0,
	}); err != nil {
		return err
	}

	// Warmup: the first n_warmup prompts (cycled), batched like the
	// measured run, no events.
	enabled, nWarm := cfg.warmup()
	if enabled && nWarm > 0 {
		warm := make([]engine.Request, nWarm)
		for i := range warm {
			warm[i] = reqs[i%len(reqs)]
		}
		for lo := 0; lo < len(warm); lo += cfg.Native.BatchSize {
			hi := min(lo+cfg.Native.BatchSize, len(warm))
			if _, err := m.Generate(ctx, warm[lo:hi], sampling, engine.Hooks{}); err != nil {
				return classifyGenerate(err)
			}
		}
	}
	if err := r.enc.Emit(protocol.WarmupDone{Prompts: nWarm}); err != nil {
		return err
	}
	if floor := cfg.thermalFloor(); floor > 0 {
		r.enc.Emit(protocol.Log{Level: "info", Message: fmt.Sprintf("thermal floor: waiting %s before the measured prompts", floor)})
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(floor):
		}
	}

	var done protocol.Done
	var kvPeak int64
	for b, lo := 0, 0; lo < len(reqs); b, lo = b+1, lo+cfg.Native.BatchSize {
		hi := min(lo+cfg.Native.BatchSize, len(reqs))
		kvPeak = max(kvPeak, batchKVBytes(m, reqs[lo:hi]))
		if err := r.batch(ctx, m, b, lo, reqs[lo:hi], sampling, &done); err != nil {
			return err
		}
	}
	// The engine holds its weights for the whole run and allocates each
	// batch's KV cache (fp32, in host memory) for that batch alone.
	done.Memory = &protocol.Memory{KVCacheBytes: kvPeak, WeightsBytes: m.MemoryBytes(), Reporter: "llem engine (host memory)"}
	return r.enc.Emit(done)
}

// batchKVBytes is the KV cache Generate allocates for a batch: one
// sequence per request of its prompt plus all but the last output token
// (engine.Model.Generate's NewSequence capacity).
func batchKVBytes(m *engine.Model, reqs []engine.Request) int64 {
	var n int64
	for _, q := range reqs {
		n += m.KVCacheBytes(len(q.Prompt) + q.MaxNewTokens - 1)
	}
	return n
}

// batch runs one measured batch, emitting its phase pairs and then one
// request event per request; token counts come from the engine's Token hook
// and are checked against its results.
func (r *workerRun) batch(ctx context.Context, m *engine.Model, b, first int, reqs []engine.Request, s engine.Sampling, done *protocol.Done) error {
	n := len(reqs)
	times := make([][]int64, n) // per request: the time of every token
	var emitErr error
	emit := func(t int64, p any) {
		if emitErr == nil {
			emitErr = r.enc.EmitAt(t, p)
		}
	}
	inTokens := 0
	for _, q := range reqs {
		inTokens += len(q.Prompt)
	}
	var start int64
	prefillOut := 0
	total := func() int {
		c := 0
		for _, ts := range times {
			c += len(ts)
		}
		return c
	}
	hooks := engine.Hooks{
		PrefillStart: func(t int64) {
			start = t
			emit(t, protocol.Phase{Name: protocol.PhasePrefill, State: protocol.StateStart, Batch: b, BatchSize: n})
		},
		PrefillEnd: func(t int64) {
			prefillOut = total()
			emit(t, protocol.Phase{Name: protocol.PhasePrefill, State: protocol.StateEnd, Batch: b, BatchSize: n, InputTokens: inTokens, OutputTokens: prefillOut})
		},
		DecodeStart: func(t int64) {
			emit(t, protocol.Phase{Name: protocol.PhaseDecode, State: protocol.StateStart, Batch: b, BatchSize: n})
		},
		DecodeEnd: func(t int64) {
			emit(t, protocol.Phase{Name: protocol.PhaseDecode, State: protocol.StateEnd, Batch: b, BatchSize: n, OutputTokens: total() - prefillOut})
		},
		Token: func(req, _ int, t int64) { times[req] = append(times[req], t) },
	}
	results, err := m.Generate(ctx, reqs, s, hooks)
	if err != nil {
		return classifyGenerate(err)
	}
	if emitErr != nil {
		return emitErr
	}
	for i, res := range results {
		ts := times[i]
		if len(ts) != len(res.Tokens) || len(ts) == 0 {
			return fmt.Errorf("request %d: engine reported %d token times for %d tokens", first+i, len(ts), len(res.Tokens))
		}
		itl := make([]int64, len(ts)-1)
		for k := 1; k < len(ts); k++ {
			itl[k-1] = ts[k] - ts[k-1]
		}
		if err := r.enc.Emit(protocol.Request{
			Index: first + i, Batch: b, InputTokens: res.PromptTokens, OutputTokens: len(res.Tokens),
			StartNs: start, TTFTNs: ts[0] - start, EndNs: ts[len(ts)-1], ITLNs: itl, FinishReason: res.FinishReason,
		}); err != nil {
			return err
		}
		done.Requests++
		done.InputTokens += res.PromptTokens
		done.OutputTokens += len(res.Tokens)
	}
	return nil
}

// classifyGenerate maps an engine error to an error kind.
func classifyGenerate(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fail(protocol.ErrKindInterrupted, err, "")
	}
	if errs.ExitCode(err) == errs.ExitBadInput {
		return fail(protocol.ErrKindConfig, err, "")
	}
	return fail(protocol.ErrKindInternal, err, "")
}

// resolve finds the model: a random preset's config, or a checkpoint's
// directory, config and tokenizer (local directory or Hugging Face cache).
func (r *workerRun) resolve(cfg runConfig) (*resolved, error) {
	res := &resolved{}
	if name, ok := strings.CutPrefix(cfg.Model, RandomPrefix); ok {
		c, ok := engine.Preset(name)
		if !ok {
			return nil, fail(protocol.ErrKindModelNotFound, fmt.Errorf("no native preset %q", cfg.Model),
				"native presets: "+RandomPrefix+strings.Join(engine.Presets(), ", "+RandomPrefix))
		}
		res.cfg = c
	} else {
		d, err := engine.ResolveModelDir(cfg.Model)
		if err != nil {
			kind := protocol.ErrKindModelNotFound
			if errors.Is(err, engine.ErrBadCheckpoint) {
				kind = protocol.ErrKindBadCheckpoint
			}
			return nil, fail(kind, err, "")
		}
		res.dir = d
		data, err := os.ReadFile(filepath.Join(d, "config.json"))
		if err != nil {
			return nil, fail(protocol.ErrKindBadCheckpoint, fmt.Errorf("read model config: %w", err), "")
		}
		if res.cfg, err = engine.ParseConfig(data); err != nil {
			return nil, loadFailure(err)
		}
		p := filepath.Join(d, "tokenizer.json")
		if _, statErr := os.Stat(p); statErr == nil {
			if res.tok, err = tokenizer.LoadFile(p); err != nil {
				kind := protocol.ErrKindBadCheckpoint
				if errors.Is(err, tokenizer.ErrUnsupported) {
					kind = protocol.ErrKindUnsupported
				}
				return nil, fail(kind, err, "use token-ID prompts (a synthetic dataset), or the pytorch backend for this tokenizer")
			}
		}
	}
	if err := res.cfg.Validate(); err != nil {
		return nil, loadFailure(err)
	}
	return res, nil
}

// build puts the weights in memory: seeded random values for a preset (the
// run's random_seed), else the checkpoint's safetensors.
func (r *workerRun) build(res *resolved, cfg runConfig, storage string) (*engine.Model, error) {
	opts := []engine.Option{engine.WithThreads(cfg.Native.Threads), engine.WithStorage(storage)}
	var m *engine.Model
	var err error
	if res.dir == "" {
		m, err = engine.NewRandom(res.cfg, cfg.RandomSeed, opts...)
	} else {
		m, err = engine.Load(res.dir, opts...)
	}
	if err != nil {
		return nil, loadFailure(err)
	}
	return m, nil
}

func loadFailure(err error) error {
	switch {
	case errors.Is(err, engine.ErrUnsupported):
		return fail(protocol.ErrKindUnsupported, err, "")
	case errors.Is(err, engine.ErrBadCheckpoint):
		return fail(protocol.ErrKindBadCheckpoint, err, "check that the download is complete (config.json and every *.safetensors shard)")
	}
	return fail(protocol.ErrKindInternal, err, "")
}

// checkMemory compares what the model will hold (weights in their storage
// dtype plus the KV cache of one full batch) with the memory available, so
// an oversized model is an "oom" error and not a killed process.
func (r *workerRun) checkMemory(mc engine.Config, storage string, cfg runConfig) error {
	bytesPer := int64(4)
	if storage == "bf16" {
		bytesPer = 2
	}
	weights := mc.NumParams() * bytesPer
	hd := mc.HeadDim
	if hd == 0 {
		hd = mc.HiddenSize / mc.NumHeads
	}
	positions := int64(cfg.Native.BatchSize) * int64(cfg.MaxInputTokens+cfg.MaxOutputTokens)
	kv := positions * int64(mc.NumLayers) * 2 * int64(mc.NumKVHeads*hd) * 4
	need := weights + kv
	avail, err := r.available()
	if err != nil {
		r.enc.Emit(protocol.Log{Level: "warn", Message: "cannot read available memory, skipping the pre-check: " + err.Error()})
		return nil
	}
	if need > avail {
		hint := "use a smaller model, lower native.batch_size or max_input_tokens/max_output_tokens"
		if storage == "fp32" {
			hint = `set precision "bf16" (half the weight memory), or ` + hint
		}
		return fail(protocol.ErrKindOOM, fmt.Errorf("model needs %s (weights %s + KV cache %s) but only %s of memory is available",
			gib(need), gib(weights), gib(kv), gib(avail)), hint)
	}
	return nil
}

func gib(n int64) string { return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30)) }

// availableMemory is MemAvailable from /proc/meminfo, lowered to the cgroup
// v2 limit's headroom when the worker runs in a memory-limited cgroup (a
// container).
func availableMemory() (int64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read /proc/meminfo: %w", err)
	}
	avail := int64(-1)
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					avail = kb * 1024
				}
			}
		}
	}
	if avail < 0 {
		return 0, errors.New("no MemAvailable in /proc/meminfo")
	}
	limit, err1 := readInt("/sys/fs/cgroup/memory.max")
	used, err2 := readInt("/sys/fs/cgroup/memory.current")
	if err1 == nil && err2 == nil && limit-used < avail {
		avail = max(limit-used, 0)
	}
	return avail, nil
}

func readInt(p string) (int64, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64) // "max" fails: no limit
}

// requests turns the prompts (from the spec, else built from the config's
// dataset) into engine requests. Text needs the model's tokenizer; prompts
// are truncated to max_input_tokens (keeping the start, as HF truncation
// does) and asked for their max_tokens, capped by max_output_tokens.
// synthetic reports whether output lengths are forced (EOS ignored).
func (r *workerRun) requests(cfg runConfig, spec protocol.RunSpec, lm *resolved) ([]engine.Request, bool, error) {
	mc := lm.cfg
	var dsCfg dataset.Config
	dsCfg, err := dataset.ParseConfig(spec.Config)
	if err != nil {
		return nil, false, fail(protocol.ErrKindConfig, err, "")
	}
	synthetic := dsCfg.Dataset.Source == "synthetic"
	prompts := spec.Prompts
	if len(prompts) == 0 {
		opts := dataset.Options{VocabSize: mc.VocabSize, Reserved: append(append([]int(nil), mc.BOSTokenID...), mc.EOSTokenIDs...)}
		if lm.tok != nil {
			opts.Tokenizer = lm.tok
		}
		prompts, err = dataset.Build(dsCfg, opts)
		if err != nil {
			return nil, false, fail(protocol.ErrKindDataset, err, "")
		}
	}
	reqs := make([]engine.Request, len(prompts))
	for i, p := range prompts {
		ids := p.TokenIDs
		if len(ids) == 0 {
			if p.Text == "" {
				return nil, false, fail(protocol.ErrKindDataset, fmt.Errorf("prompt %d is empty", i), "")
			}
			if lm.tok == nil {
				return nil, false, fail(protocol.ErrKindConfig,
					fmt.Errorf("prompt %d is text, but model %s has no tokenizer", i, cfg.Model),
					`random-weight presets take token IDs: use dataset {source: "synthetic"}, or a checkpoint with tokenizer.json`)
			}
			ids = lm.tok.Encode(p.Text, true)
		}
		if len(ids) > cfg.MaxInputTokens {
			ids = ids[:cfg.MaxInputTokens]
		}
		for _, id := range ids {
			if id < 0 || id >= mc.VocabSize {
				return nil, false, fail(protocol.ErrKindDataset, fmt.Errorf("prompt %d has token id %d outside the vocabulary of %d", i, id, mc.VocabSize), "")
			}
		}
		maxNew := cfg.MaxOutputTokens
		if p.MaxTokens > 0 && p.MaxTokens < maxNew {
			maxNew = p.MaxTokens
		}
		if need := len(ids) + maxNew; need > mc.MaxPositionEmbeddings {
			return nil, false, fail(protocol.ErrKindConfig,
				fmt.Errorf("prompt %d needs %d positions (%d input + %d output), the model has %d", i, need, len(ids), maxNew, mc.MaxPositionEmbeddings),
				"lower max_input_tokens or max_output_tokens")
		}
		reqs[i] = engine.Request{Prompt: ids, MaxNewTokens: maxNew, Seed: int64(i)}
	}
	return reqs, synthetic, nil
}
