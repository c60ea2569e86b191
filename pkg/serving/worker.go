package serving

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/llenergymeasure/llem/internal/version"
	"github.com/llenergymeasure/llem/pkg/clock"
	"github.com/llenergymeasure/llem/pkg/dataset"
	"github.com/llenergymeasure/llem/pkg/engine"
	"github.com/llenergymeasure/llem/pkg/loadgen"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner/docker"
	"github.com/llenergymeasure/llem/pkg/study"
	"github.com/llenergymeasure/llem/pkg/tokenizer"
)

// ReportFile is the worker's report, in the slot's work directory: the
// parent reads it to fill the record's serving section.
const ReportFile = "serving.json"

// ServerFile is written in the work directory once the server is healthy:
// its pid and URL (tests use it to kill the server mid-run).
const ServerFile = "server.json"

// Report is what the worker hands the parent.
type Report struct {
	Server        ServerInfo            `json:"server"`
	Load          LoadInfo              `json:"load"`
	Traces        []Trace               `json:"traces"`
	Window        *Window               `json:"window,omitempty"`
	NoSteadyState string                `json:"no_steady_state,omitempty"`
	FirstSendNs   int64                 `json:"first_send_ns"`
	LastEndNs     int64                 `json:"last_end_ns"`
	Lag           loadgen.Lag           `json:"lag"`
	SLO           study.SLO             `json:"slo"`
	Rule          study.SteadyStateRule `json:"rule"`
}

// ServerInfo is the server under load.
type ServerInfo struct {
	Kind    string   `json:"kind"`
	URL     string   `json:"url"`
	Command []string `json:"command,omitempty"`
	PID     int      `json:"pid,omitempty"`
	StartS  float64  `json:"start_s"`
	// Image and Container, for a server started in Docker: the image it
	// ran and the container's ID (PID is then its init's host PID).
	Image     string `json:"image,omitempty"`
	Container string `json:"container,omitempty"`
}

// LoadInfo is the offered load.
type LoadInfo struct {
	Mode        string  `json:"mode"`
	Arrivals    string  `json:"arrivals,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	Burstiness  float64 `json:"burstiness,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	DurationS   float64 `json:"duration_s"`
}

// LoadStartedFile appears in the work directory when the measured load
// starts (after the warm-up).
const LoadStartedFile = "load.started"

// ErrKindServer is the error kind of a server that failed to start, or
// crashed or stopped answering mid-run.
const ErrKindServer = protocol.ErrKindServer

// WorkerOptions configure RunWorker.
type WorkerOptions struct {
	Dir        string // the slot's work directory (report, server log)
	Executable string // llem, for the native server (default: this executable)
	// Docker, when set, starts the server as a container of the backend's
	// image instead of a child process (the worker itself, its load and
	// the measurement stay on this machine).
	Docker *DockerServer
}

// DockerServer places a run's server in a container of its backend's
// image: the image and GPUs the backend's Docker runner uses, with host
// networking so the server's --host 127.0.0.1 --port P is this machine's.
type DockerServer struct {
	// Host is the daemon address; "" uses DOCKER_HOST or the default.
	Host string `json:"host,omitempty"`
	// Image is the image ID (as pinned by the pipeline) to create it from.
	Image string `json:"image"`
	// GPUs are the UUIDs of the GPUs llem measures, exposed to it.
	GPUs []string `json:"gpus,omitempty"`
	// ShmSize of its /dev/shm in bytes (0: Docker's default).
	ShmSize int64 `json:"shm_size,omitempty"`
	// Name is the container's name, one per slot (ContainerName).
	Name string `json:"name,omitempty"`
	// HubCache is the host's hub cache the container mounts
	// (docker.ContainerHubCache); "" for none.
	HubCache string `json:"hub_cache,omitempty"`
}

// ContainerEnv are the variables passed from the worker's environment into
// a server container: Hub credentials, endpoint and offline switches. Host
// paths (HF_HOME, HF_HUB_CACHE) and CUDA_VISIBLE_DEVICES are not: the
// host's hub cache is mounted at docker.ContainerHubCache (HubCache), and
// the container sees exactly the measured GPUs (requested by UUID),
// numbered from 0.
var ContainerEnv = []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}

// ContainerStopGrace is how long a stopped server container gets between
// SIGTERM and removal: short enough to finish inside the runner's grace,
// after which the worker itself is killed.
const ContainerStopGrace = 2 * time.Second

type workerErr struct {
	kind, hint string
	err        error
}

func (e *workerErr) Error() string { return e.err.Error() }

func fail(kind string, err error, hint string) error { return &workerErr{kind, hint, err} }

// RunWorker is `llem serving-worker`: it reads one RunSpec, starts the
// server (or checks the url), warms it, sends the load, finds the steady
// state, writes the report and speaks the worker protocol on events: the
// measured window it reports (warmup_done … done) is the steady state.
func RunWorker(ctx context.Context, spec io.Reader, events io.Writer, o WorkerOptions) error {
	bw := bufio.NewWriter(events)
	enc := protocol.NewEncoder(flushWriter{bw})
	err := runWorker(ctx, spec, enc, o)
	if err != nil {
		var we *workerErr
		kind, hint := protocol.ErrKindInternal, ""
		if errors.As(err, &we) {
			kind, hint = we.kind, we.hint
		}
		if ctx.Err() != nil {
			kind = protocol.ErrKindInterrupted
		}
		_ = enc.Emit(protocol.Error{Kind: kind, Message: err.Error(), Hint: hint})
	}
	bw.Flush()
	return err
}

type flushWriter struct{ w *bufio.Writer }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}

func runWorker(ctx context.Context, specR io.Reader, enc *protocol.Encoder, o WorkerOptions) error {
	if err := enc.Emit(protocol.Hello{Backend: "serving", ProtocolVersion: protocol.ProtocolVersion,
		Versions: map[string]string{"llem": version.Version}, PID: os.Getpid()}); err != nil {
		return err
	}
	var spec protocol.RunSpec
	if err := json.NewDecoder(specR).Decode(&spec); err != nil {
		return fail(protocol.ErrKindProtocol, fmt.Errorf("read run spec: %w", err), "")
	}
	var cfg study.Config
	if err := json.Unmarshal(spec.Config, &cfg); err != nil {
		return fail(protocol.ErrKindConfig, fmt.Errorf("run config: %w", err), "")
	}
	sv := cfg.Serving
	if sv == nil {
		return fail(protocol.ErrKindConfig, errors.New("the run has no serving section"), "")
	}
	prompts, err := buildPrompts(cfg, spec)
	if err != nil {
		return err
	}
	t0 := clock.Now()
	srv, err := startServer(ctx, cfg, spec, o)
	if err != nil {
		return err
	}
	defer srv.stop()
	info := ServerInfo{Kind: srv.kind, URL: srv.url, Command: srv.command, PID: srv.pid(), StartS: float64(clock.Now()-t0) / 1e9}
	if srv.ctr != nil {
		info.Image, info.Container = o.Docker.Image, srv.ctr.ID()
	}
	if o.Dir != "" {
		b, _ := json.Marshal(info)
		if err := writeFileAtomic(filepath.Join(o.Dir, ServerFile), b); err != nil {
			return err
		}
	}
	if err := enc.Emit(protocol.Loaded{Model: cfg.Model, DType: cfg.Precision, LoadTimeNs: clock.Now() - t0}); err != nil {
		return err
	}
	model := srv.model
	// One client for the warm-up and the load: the load starts on the
	// warm-up's open connection instead of dialing it on its schedule.
	client := loadgen.NewClient()
	defer client.CloseIdleConnections()
	base := loadgen.Config{BaseURL: srv.url, API: loadAPI(sv.API), Model: model, Prompts: prompts,
		Timeout: time.Duration(sv.Load.TimeoutSeconds * float64(time.Second)), IgnoreEOS: isSynthetic(cfg), Client: client}
	// Warm-up: closed loop, one at a time, not measured.
	if sv.Load.WarmupRequests > 0 {
		w := base
		w.Concurrency, w.Requests = 1, sv.Load.WarmupRequests
		if _, err := srv.during(ctx, func(ctx context.Context) (*loadgen.Report, error) { return loadgen.Run(ctx, w) }); err != nil {
			return err
		}
	}
	lc := base
	li := LoadInfo{Mode: "closed", Concurrency: sv.Load.Concurrency}
	if sv.Load.Rate > 0 {
		li = LoadInfo{Mode: "open", Arrivals: sv.Load.Arrivals, Rate: sv.Load.Rate, Burstiness: sv.Load.Burstiness, Concurrency: sv.Load.Concurrency}
		lc.Arrivals = &loadgen.Arrivals{Process: sv.Load.Arrivals, Rate: sv.Load.Rate, Burstiness: sv.Load.Burstiness, Seed: uint64(cfg.RandomSeed)}
	}
	lc.Concurrency = sv.Load.Concurrency
	lc.Requests, lc.Duration = sv.Load.Requests, time.Duration(sv.Load.DurationSeconds*float64(time.Second))
	if lc.Requests == 0 && lc.Duration == 0 {
		lc.Requests = cfg.N
	}
	if o.Dir != "" {
		if err := writeFileAtomic(filepath.Join(o.Dir, LoadStartedFile), nil); err != nil {
			return err
		}
	}
	rep, err := srv.during(ctx, func(ctx context.Context) (*loadgen.Report, error) { return loadgen.Run(ctx, lc) })
	if err != nil {
		return err
	}
	li.DurationS = rep.Elapsed.Seconds()
	r := Report{Server: info, Load: li, Traces: traces(rep), Lag: rep.Lag, SLO: ptrOr(sv.SLO), Rule: sv.SteadyState}
	for i, t := range r.Traces {
		if i == 0 || t.SentNs < r.FirstSendNs {
			r.FirstSendNs = t.SentNs
		}
		r.LastEndNs = max(r.LastEndNs, t.EndNs)
	}
	w, derr := Detect(r.Traces, SteadyParams{BinNs: int64(sv.SteadyState.BinSeconds * 1e9), Tolerance: sv.SteadyState.Tolerance, MinSpanNs: int64(sv.SteadyState.MinSpanSeconds * 1e9)})
	start, end := r.FirstSendNs, r.LastEndNs
	var nss *NoSteadyState
	switch {
	case derr == nil:
		r.Window = &w
		start, end = w.StartNs, w.EndNs
	case errors.As(derr, &nss):
		r.NoSteadyState = nss.Reason
	default:
		return fail(protocol.ErrKindConfig, derr, "")
	}
	if end <= start {
		return fail(ErrKindServer, fmt.Errorf("no request got an answer (%d sent, %d failed)", rep.Failed+len(rep.Results)-rep.Failed, rep.Failed), "see the server log in the work directory")
	}
	if o.Dir != "" {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(o.Dir, ReportFile), b); err != nil {
			return err
		}
	}
	if r.NoSteadyState != "" {
		_ = enc.Emit(protocol.Log{Level: "warn", Message: "no steady state: " + r.NoSteadyState + "; measured over the whole load"})
	}
	// The measured window is the steady state (or, flagged, the whole load).
	if err := enc.EmitAt(start, protocol.WarmupDone{Prompts: sv.Load.WarmupRequests}); err != nil {
		return err
	}
	return enc.EmitAt(end, protocol.Done{})
}

func ptrOr(s *study.SLO) study.SLO {
	if s == nil {
		return study.SLO{}
	}
	return *s
}

func loadAPI(api string) string {
	if api == "chat" {
		return loadgen.Chat
	}
	return loadgen.Completions
}

func isSynthetic(cfg study.Config) bool { return cfg.Dataset.Source == "synthetic" }

// traces converts the load generator's results to the monotonic clock.
func traces(rep *loadgen.Report) []Trace {
	out := make([]Trace, len(rep.Results))
	for i, r := range rep.Results {
		t := Trace{Index: r.Index, ScheduledNs: rep.StartNs + int64(r.Scheduled), SentNs: rep.StartNs + int64(r.Sent),
			EndNs: rep.StartNs + int64(r.End), PromptTokens: r.PromptTokens, OutputTokens: r.OutputTokens, Err: r.Err, TimedOut: r.TimedOut}
		if r.Sent == 0 && r.End == 0 && !r.OK() {
			t.SentNs, t.EndNs = 0, 0 // never sent
		}
		for _, tk := range r.Tokens {
			t.TokenNs = append(t.TokenNs, rep.StartNs+int64(tk))
		}
		out[i] = t
	}
	return out
}

// buildPrompts resolves the run's dataset into load-generator prompts,
// capped at max_input_tokens (token ids) and asking max_output_tokens.
func buildPrompts(cfg study.Config, spec protocol.RunSpec) ([]loadgen.Prompt, error) {
	ps := spec.Prompts
	if len(ps) == 0 {
		dc, err := dataset.ParseConfig(spec.Config)
		if err != nil {
			return nil, fail(protocol.ErrKindConfig, err, "")
		}
		var opts dataset.Options
		if name, ok := strings.CutPrefix(cfg.Model, engine.RandomPrefix); ok {
			mc, ok := engine.Preset(name)
			if !ok {
				return nil, fail(protocol.ErrKindModelNotFound, fmt.Errorf("no native preset %q", cfg.Model), "presets: random:"+strings.Join(engine.Presets(), ", random:"))
			}
			opts.VocabSize, opts.Reserved = mc.VocabSize, append(append([]int(nil), mc.BOSTokenID...), mc.EOSTokenIDs...)
		} else if dir, err := engine.ResolveModelDir(cfg.Model); err == nil {
			if tok, err := tokenizer.LoadFile(filepath.Join(dir, "tokenizer.json")); err == nil {
				opts.Tokenizer = tok
			}
		}
		if ps, err = dataset.Build(dc, opts); err != nil {
			return nil, fail(protocol.ErrKindDataset, err, "")
		}
	}
	out := make([]loadgen.Prompt, len(ps))
	for i, p := range ps {
		ids := p.TokenIDs
		if len(ids) > cfg.MaxInputTokens {
			ids = ids[:cfg.MaxInputTokens]
		}
		mt := cfg.MaxOutputTokens
		if p.MaxTokens > 0 {
			mt = min(mt, p.MaxTokens)
		}
		out[i] = loadgen.Prompt{Text: p.Text, Tokens: ids, MaxTokens: mt}
	}
	if len(out) == 0 {
		return nil, fail(protocol.ErrKindDataset, errors.New("the dataset has no prompts"), "")
	}
	return out, nil
}

// server is a server under load: one llem started, or an existing url.
type server struct {
	kind, url, model string
	command          []string
	cmd              *exec.Cmd
	ctr              *docker.Service // the server's container (Docker placement)
	exited           chan struct{}
	waitErr          error
	log              *tailBuffer
	files            []string // temporary files of its command, removed at stop
}

func (s *server) pid() int {
	if s.ctr != nil {
		return s.ctr.PID()
	}
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// during runs f while watching the server: if the server process exits,
// f's context is cancelled and the crash is the error.
func (s *server) during(ctx context.Context, f func(context.Context) (*loadgen.Report, error)) (*loadgen.Report, error) {
	if s.exited == nil {
		return f(ctx)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var crashed bool
	var mu sync.Mutex
	go func() {
		select {
		case <-s.exited:
			mu.Lock()
			crashed = true
			mu.Unlock()
			cancel()
		case <-cctx.Done():
		}
	}()
	rep, err := f(cctx)
	mu.Lock()
	c := crashed
	mu.Unlock()
	if !c {
		select {
		case <-s.exited:
			c = true
		default:
		}
	}
	if c {
		return nil, s.crashError()
	}
	return rep, err
}

func (s *server) crashError() error {
	msg := "the server exited mid-run"
	if s.waitErr != nil {
		msg = fmt.Sprintf("the server exited mid-run: %v", s.waitErr)
	}
	return fail(ErrKindServer, fmt.Errorf("%s; its last output:\n%s", msg, s.log.String()), "see the server's output in error.stderr_tail and server.log in the work directory")
}

func (s *server) stop() {
	defer func() {
		for _, f := range s.files {
			os.Remove(f)
		}
	}()
	if s.ctr != nil {
		s.ctr.Stop(ContainerStopGrace)
		return
	}
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

var listenRe = regexp.MustCompile(`on (http://[^\s/]+)/v1`)

// startServer starts the run's backend as a server, or checks the url.
func startServer(ctx context.Context, cfg study.Config, spec protocol.RunSpec, o WorkerOptions) (*server, error) {
	sv := cfg.Serving
	timeout := time.Duration(sv.Server.StartTimeoutSeconds * float64(time.Second))
	if sv.Server.URL != "" {
		s := &server{kind: "url", url: strings.TrimSuffix(sv.Server.URL, "/"), log: &tailBuffer{max: 4096}}
		if err := waitHealthy(ctx, s, timeout); err != nil {
			return nil, err
		}
		s.model = servedModel(ctx, s.url, cfg.Model)
		return s, nil
	}
	exe := o.Executable
	if o.Docker != nil {
		exe = "llem" // the native server: the image's llem, on its PATH
	}
	argv, files, err := serverCommand(cfg, spec.BackendArgs, exe)
	if err != nil {
		return nil, fail(protocol.ErrKindConfig, err, "")
	}
	s := &server{kind: cfg.Backend, command: argv, exited: make(chan struct{}), log: &tailBuffer{max: 4096}, files: files}
	var logW io.Writer = os.Stderr
	if o.Dir != "" {
		if f, err := os.Create(filepath.Join(o.Dir, "server.log")); err == nil {
			defer func() { go func() { <-s.exited; f.Close() }() }()
			logW = io.MultiWriter(os.Stderr, f)
		}
	}
	pr, pw := io.Pipe()
	stdout, stderr := io.MultiWriter(logW, s.log), io.MultiWriter(logW, s.log, pw)
	if o.Docker != nil {
		d := o.Docker
		env := map[string]string{}
		for _, k := range ContainerEnv {
			if v := os.Getenv(k); v != "" {
				env[k] = v
			}
		}
		labels := map[string]string{docker.Label + ".backend": cfg.Backend}
		if spec.RunID != "" {
			labels[docker.Label+".run_id"] = spec.RunID
		}
		ctr, err := docker.StartService(ctx, docker.ServiceOptions{Host: d.Host, Image: d.Image, Name: d.Name, Command: argv,
			Env: env, GPUs: d.GPUs, ShmSize: d.ShmSize, Network: docker.NetworkHost, Files: files, Labels: labels,
			HubCache: d.HubCache, Model: cfg.Model,
			Stdout: stdout, Stderr: stderr})
		if err != nil {
			pw.Close()
			s.stop()
			close(s.exited)
			return nil, fail(ErrKindServer, fmt.Errorf("start the server %s in image %s: %w", argv[0], d.Image, err), "check the image has `"+argv[0]+"` on its PATH (docs/serving.md), or give serving.server.url")
		}
		s.ctr = ctr
		go func() { <-ctr.Exited(); s.waitErr = ctr.ExitErr(); pw.Close(); close(s.exited) }()
	} else {
		cmd := exec.Command(argv[0], argv[1:]...)
		// No Pdeathsig: it fires when the starting OS thread exits, and the
		// load generator's dispatcher locks and retires threads. The runner
		// kills the worker's process group, the server with it.
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if err := cmd.Start(); err != nil {
			pw.Close()
			s.stop()
			close(s.exited)
			return nil, fail(ErrKindServer, fmt.Errorf("start the server %s: %w", argv[0], err), serverHint(cfg.Backend))
		}
		s.cmd = cmd
		go func() { s.waitErr = cmd.Wait(); pw.Close(); close(s.exited) }()
	}
	// The native server prints its address (port 0: any free port).
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listenRe.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	if cfg.Backend == "native" {
		select {
		case s.url = <-found:
		case <-s.exited:
			return nil, fail(ErrKindServer, fmt.Errorf("the server exited before listening (%v); its last output:\n%s", s.waitErr, s.log.String()), serverHint(cfg.Backend))
		case <-deadline.C:
			s.stop()
			return nil, fail(ErrKindServer, fmt.Errorf("the server did not start listening within %s", timeout), "raise serving.server.start_timeout_seconds")
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		}
	} else {
		s.url = fmt.Sprintf("http://127.0.0.1:%d", serverPort(argv))
	}
	if err := waitHealthy(ctx, s, timeout); err != nil {
		s.stop()
		return nil, err
	}
	s.model = servedModel(ctx, s.url, cfg.Model)
	return s, nil
}

func serverHint(backend string) string {
	switch backend {
	case "vllm":
		return "install vLLM (`vllm serve` on PATH), or give serving.server.url"
	case "tensorrt":
		return "install TensorRT-LLM (`trtllm-serve` on PATH), or give serving.server.url"
	}
	return ""
}

// waitHealthy polls GET /health until 200, the server's exit, or timeout.
func waitHealthy(ctx context.Context, s *server, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	delay := 10 * time.Millisecond
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/health", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if s.exited != nil {
			select {
			case <-s.exited:
				return fail(ErrKindServer, fmt.Errorf("the server exited while starting (%v); its last output:\n%s", s.waitErr, s.log.String()), "")
			default:
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			why := "no answer"
			if err != nil {
				why = err.Error()
			} else {
				why = resp.Status
			}
			return fail(ErrKindServer, fmt.Errorf("the server at %s was not healthy within %s (%s)", s.url, timeout, why), "check the server, or raise serving.server.start_timeout_seconds")
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// servedModel is the model name the server lists first (/v1/models), else
// the run's model.
func servedModel(ctx context.Context, url, fallback string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/models", nil)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return fallback
	}
	defer resp.Body.Close()
	var m struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&m) != nil || len(m.Data) == 0 {
		return fallback
	}
	return m.Data[0].ID
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
