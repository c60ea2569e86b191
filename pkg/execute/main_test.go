package execute

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/internal/testworker"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
)

// The test binary plays three roles besides running tests:
//
//   - `<test> worker` with LLEM_EXEC_TEST_NATIVE=1: the real native worker
//     (what `llem worker` runs), so end-to-end tests need no llem build;
//   - LLEM_EXEC_TEST_ROLE=fakeworker: a worker that misbehaves on demand
//     (crash, hang, garbage), chosen by the run's n;
//   - LLEM_EXEC_TEST_ROLE=eval: an llem eval process for the kill tests,
//     which run it in a subprocess and kill it at chosen moments.
func TestMain(m *testing.M) {
	testworker.RunIfWorker("LLEM_EXEC_TEST_NATIVE")
	switch os.Getenv("LLEM_EXEC_TEST_ROLE") {
	case "fakeworker":
		os.Exit(fakeWorker())
	case "eval":
		os.Exit(childEval())
	}
	os.Setenv("LLEM_EXEC_TEST_NATIVE", "1")
	os.Exit(m.Run())
}

// fakeWorkerJob runs this test binary as a fake worker.
func fakeWorkerJob(sleepMs int) JobFunc {
	return func(r JobRequest) (runner.Job, error) {
		exe, err := os.Executable()
		if err != nil {
			return runner.Job{}, err
		}
		return runner.Job{
			Backend: r.Run.Backend,
			Spec:    protocol.RunSpec{ProtocolVersion: protocol.ProtocolVersion, RunID: r.Run.ID, Cycle: r.Cycle, Config: r.Run.ConfigJSON, Prompts: r.Prompts},
			Command: []string{exe},
			Env:     map[string]string{"LLEM_EXEC_TEST_ROLE": "fakeworker", "LLEM_FAKE_SLEEP_MS": strconv.Itoa(sleepMs)},
			Dir:     r.Dir, Timeout: r.Timeout, Grace: 500 * time.Millisecond,
		}, nil
	}
}

// Fake worker behaviours, chosen by the run's config n.
const (
	fakeOK       = 1
	fakeCrash    = 2
	fakeHang     = 3
	fakeGarbage  = 4
	fakeErrEvent = 5
	// fakePrefillPass speaks like the vLLM harness: a prefill-only pass
	// (1 pause), then the full generation (3 pauses), phase_split_method
	// prefill-pass.
	fakePrefillPass = 6
	// fakePrompts fails unless the RunSpec carries the 7 prompts of the
	// test's JSONL file (p0 … p6), then behaves like fakeOK.
	fakePrompts = 7
)

// fakeWorker reads the spec and emits a valid stream of one batch of two
// requests (or misbehaves, by n).
func fakeWorker() int {
	var spec protocol.RunSpec
	if err := json.NewDecoder(os.Stdin).Decode(&spec); err != nil {
		fmt.Fprintln(os.Stderr, "fake worker: read spec:", err)
		return 2
	}
	var cfg struct {
		N int `json:"n"`
	}
	json.Unmarshal(spec.Config, &cfg)
	sleepMs, _ := strconv.Atoi(os.Getenv("LLEM_FAKE_SLEEP_MS"))
	pause := func() { time.Sleep(time.Duration(sleepMs) * time.Millisecond) }
	enc := protocol.NewEncoder(os.Stdout)
	enc.Emit(protocol.Hello{Backend: "native", ProtocolVersion: protocol.ProtocolVersion, Versions: map[string]string{"fake": "1"}})
	if cfg.N == fakePrompts && (len(spec.Prompts) != 7 || spec.Prompts[0].Text != "p0" || spec.Prompts[6].Text != "p6") {
		enc.Emit(protocol.Error{Kind: protocol.ErrKindDataset, Message: fmt.Sprintf("spec carried %d prompts: %+v", len(spec.Prompts), spec.Prompts)})
		return 1
	}
	switch cfg.N {
	case fakeCrash:
		fmt.Fprintln(os.Stderr, "fatal: simulated segfault in the fake worker")
		return 139
	case fakeHang:
		time.Sleep(time.Hour)
	case fakeGarbage:
		fmt.Println("Loading checkpoint shards: 100%|██████████|")
	case fakeErrEvent:
		enc.Emit(protocol.Error{Kind: protocol.ErrKindOOM, Message: "out of memory allocating the KV cache", Hint: "use a smaller batch_size"})
		return 1
	}
	enc.Emit(protocol.Loaded{Model: "fake", Parameters: 1000, Layers: 1, DType: "fp32", LoadTimeNs: 1000})
	pause()
	enc.Emit(protocol.WarmupDone{Prompts: 1})
	if cfg.N == fakePrefillPass {
		enc.Emit(protocol.Phase{Name: protocol.PhasePrefill, State: "start", Batch: 0, BatchSize: 2})
		pause()
		enc.Emit(protocol.Phase{Name: protocol.PhasePrefill, State: "end", Batch: 0, BatchSize: 2, InputTokens: 8, OutputTokens: 2})
		t0 := time.Now()
		enc.Emit(protocol.Phase{Name: protocol.PhaseDecode, State: "start", Batch: 0, BatchSize: 2})
		pause()
		pause()
		pause()
		enc.Emit(protocol.Phase{Name: protocol.PhaseDecode, State: "end", Batch: 0, BatchSize: 2, OutputTokens: 4})
		el := time.Since(t0).Nanoseconds()
		for i := range 2 {
			enc.Emit(protocol.Request{Index: i, Batch: 0, InputTokens: 4, OutputTokens: 3, StartNs: 1, TTFTNs: el / 3, EndNs: 1 + el, FinishReason: "length"})
		}
		enc.Emit(protocol.Done{Requests: 2, InputTokens: 8, OutputTokens: 6, PhaseSplitMethod: protocol.PhaseSplitPrefillPass})
		return 0
	}
	t0 := time.Now()
	enc.Emit(protocol.Phase{Name: protocol.PhasePrefill, State: "start", Batch: 0, BatchSize: 2})
	pause()
	enc.Emit(protocol.Phase{Name: protocol.PhasePrefill, State: "end", Batch: 0, BatchSize: 2, InputTokens: 8, OutputTokens: 2})
	enc.Emit(protocol.Phase{Name: protocol.PhaseDecode, State: "start", Batch: 0, BatchSize: 2})
	pause()
	enc.Emit(protocol.Phase{Name: protocol.PhaseDecode, State: "end", Batch: 0, BatchSize: 2, OutputTokens: 4})
	el := time.Since(t0).Nanoseconds()
	for i := range 2 {
		enc.Emit(protocol.Request{Index: i, Batch: 0, InputTokens: 4, OutputTokens: 3, StartNs: 1, TTFTNs: el / 3, EndNs: 1 + el, ITLNs: []int64{el / 3, el / 3}, FinishReason: "length"})
	}
	enc.Emit(protocol.Done{Requests: 2, InputTokens: 8, OutputTokens: 6})
	return 0
}

// childEval runs (or resumes) the study LLEM_EVAL_STUDY under LLEM_EVAL_OUT
// and prints each event kind on stdout, so the parent can kill it at a
// chosen moment. LLEM_KILL_AT_WRITE=N kills it (SIGKILL) in the middle of
// its Nth manifest write.
func childEval() int {
	plan, err := study.Load(context.Background(), os.Getenv("LLEM_EVAL_STUDY"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// LLEM_KILL_AT_WRITE=N dies inside the Nth write of study state: a
	// manifest snapshot or summary.json (between its fsync and its rename)
	// or a journal line (half written).
	if n, _ := strconv.Atoi(os.Getenv("LLEM_KILL_AT_WRITE")); n > 0 {
		writes := 0
		die := func(string) {
			if writes++; writes == n {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				time.Sleep(time.Second)
			}
		}
		result.TestHookBeforeRename = func(path string) {
			if b := filepath.Base(path); b == result.ManifestFile || b == result.SummaryFile {
				die(path)
			}
		}
		result.TestHookMidAppend = die
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sleepMs, _ := strconv.Atoi(os.Getenv("LLEM_FAKE_SLEEP_MS"))
	opt := Options{
		Plan: plan, OutRoot: os.Getenv("LLEM_EVAL_OUT"),
		Routes: LocalRoutes(map[string]JobFunc{"native": fakeWorkerJob(sleepMs)}),
		OnEvent: func(ev Event) {
			fmt.Printf("%s %s\n", ev.Kind, ev.Phase)
		},
	}
	var rep *Report
	if dirs, _ := filepath.Glob(filepath.Join(opt.OutRoot, "*", result.ManifestFile)); len(dirs) > 0 {
		rep, err = Resume(ctx, filepath.Dir(dirs[0]), opt)
	} else {
		rep, err = Run(ctx, opt)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if rep.Interrupted {
		return 130
	}
	if rep.Failed > 0 {
		return 1
	}
	return 0
}

// loadMu serialises study.Load across parallel tests: loading is cheap, and
// it keeps CUE evaluation out of the concurrency these tests exercise (one
// early -race report had CUE frames; it did not reproduce once progress
// events were serialised, so no bug is claimed against pkg/study).
var loadMu sync.Mutex

// writeStudy writes a study file and loads it.
func writeStudy(t testing.TB, src string) (string, *study.Plan) {
	t.Helper()
	loadMu.Lock()
	defer loadMu.Unlock()
	path := filepath.Join(t.TempDir(), "study.cue")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := study.Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return path, p
}
