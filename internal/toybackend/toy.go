// Package toybackend is a test-only backend added the way ARCHITECTURE.md
// says a new backend is added: this one package (its worker, its schema
// file toy.cue and its registration) and one line that imports it (for a
// real backend, in pkg/pipeline/backends.go; here, in the test). Its worker
// is the test binary itself (RunIfWorker in TestMain), which answers every
// prompt with a fixed number of tokens. Only tests import it.
package toybackend

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/llenergymeasure/llem/pkg/backend"
	"github.com/llenergymeasure/llem/pkg/clock"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
)

// Name is the backend's name in studies.
const Name = "toy"

// workerEnv marks a test binary started as the toy worker.
const workerEnv = "LLEM_TOY_WORKER"

//go:embed toy.cue
var schemaFile []byte

// Info describes the toy backend to llem.
var Info = backend.Backend{
	Name: Name, Section: "#Toy", Worker: backend.WorkerEngine, Jobs: Jobs, SchemaFile: schemaFile,
	LocalReason: "the toy worker is the test binary", PhaseSplit: protocol.PhaseSplitTimestamps,
	RandomPresets: true, Builtin: "test-only toy",
}

func init() { backend.Register(Info) }

// Jobs starts this executable as `<exe> toy-worker`; the toy runs locally
// only.
func Jobs(p backend.Placement) (backend.JobFunc, error) {
	if p.InDocker() {
		return nil, fmt.Errorf("backend %s: runs locally only", Name)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return func(r backend.JobRequest) (runner.Job, error) {
		return runner.Job{
			Backend: Name, Spec: r.Spec(), Command: []string{exe, "toy-worker"},
			Env: map[string]string{workerEnv: "1"}, Dir: r.Dir, Timeout: r.Timeout, Grace: r.Grace,
		}, nil
	}, nil
}

// RunIfWorker makes the calling test binary the toy worker (then exit)
// when Jobs started it; otherwise it returns. Call it first in TestMain.
func RunIfWorker() {
	if len(os.Args) < 2 || os.Args[1] != "toy-worker" || os.Getenv(workerEnv) != "1" {
		return
	}
	if err := Work(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "toy worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Work reads a run spec from in and writes the toy's events to out: each
// of the run's n prompts is one batch of one request with the section's
// tokens output tokens and its dataset's input length as input tokens.
func Work(in io.Reader, out io.Writer) error {
	var spec protocol.RunSpec
	if err := json.NewDecoder(in).Decode(&spec); err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	var cfg struct {
		Model   string `json:"model"`
		N       int    `json:"n"`
		Dataset struct {
			InputLen int `json:"input_len"`
		} `json:"dataset"`
		Toy struct {
			Tokens int `json:"tokens"`
		} `json:"toy"`
	}
	if err := json.Unmarshal(spec.Config, &cfg); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	enc := protocol.NewEncoder(out)
	emit := func(p any) {
		if err := enc.Emit(p); err != nil {
			panic(err) // stdout gone: nothing left to report to
		}
	}
	emit(protocol.Hello{Backend: Name, ProtocolVersion: protocol.ProtocolVersion, Versions: map[string]string{"toy": "1"}, PID: os.Getpid()})
	emit(protocol.Loaded{Model: cfg.Model, Parameters: 1, DType: "fp32"})
	emit(protocol.WarmupDone{Prompts: 0})
	var done protocol.Done
	for i := range cfg.N {
		start := clock.Now()
		emit(protocol.Phase{Name: protocol.PhasePrefill, State: protocol.StateStart, Batch: i, BatchSize: 1})
		emit(protocol.Phase{Name: protocol.PhasePrefill, State: protocol.StateEnd, Batch: i, BatchSize: 1, InputTokens: cfg.Dataset.InputLen, OutputTokens: 1})
		first := clock.Now()
		emit(protocol.Phase{Name: protocol.PhaseDecode, State: protocol.StateStart, Batch: i, BatchSize: 1})
		emit(protocol.Phase{Name: protocol.PhaseDecode, State: protocol.StateEnd, Batch: i, BatchSize: 1, OutputTokens: cfg.Toy.Tokens - 1})
		end := clock.Now()
		emit(protocol.Request{Index: i, Batch: i, InputTokens: cfg.Dataset.InputLen, OutputTokens: cfg.Toy.Tokens,
			StartNs: start, TTFTNs: first - start, EndNs: end, FinishReason: "length"})
		done.Requests++
		done.InputTokens += cfg.Dataset.InputLen
		done.OutputTokens += cfg.Toy.Tokens
	}
	emit(done)
	return nil
}
