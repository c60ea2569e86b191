package quality

import (
	_ "embed"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
)

// wrapper is llem_lmeval.py: it speaks the worker protocol around one
// lm-eval process (and the server it scores), so every runner supervises a
// scoring like a worker: timeout, SIGTERM then SIGKILL to the whole
// process group, stderr kept in worker.stderr with its tail in errors.
//
//go:embed llem_lmeval.py
var wrapper []byte

// WrapperName is the wrapper's file name in the scoring's directory.
const WrapperName = "llem_lmeval.py"

// ForwardedEnv are copied from llem's environment into lm-eval's: Hub
// credentials, endpoint and offline switches (lm-eval downloads its own
// task data through datasets and huggingface_hub), cache locations, and
// the GPU selection.
var ForwardedEnv = []string{
	"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
	"TRANSFORMERS_OFFLINE", "HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE", "CUDA_VISIBLE_DEVICES",
}

// hostPathEnv name host paths: not passed into a container.
var hostPathEnv = map[string]bool{"HF_HOME": true, "HF_HUB_CACHE": true, "HF_DATASETS_CACHE": true, "CUDA_VISIBLE_DEVICES": true}

// JobOptions say how to run one scoring.
type JobOptions struct {
	// Python is the interpreter that has lm-eval (python3 in a container).
	Python string
	// Dir is the scoring's exchange directory; the wrapper and lm-eval's
	// output go there.
	Dir string
	// InDocker drops host-path variables (the image has its own).
	InDocker bool
	// Serve, when set, is the server to start first (argv; `llem serve
	// MODEL --port 0 …`): lm-eval's BaseURLPlaceholder becomes its URL.
	Serve   []string
	Timeout time.Duration
	Grace   time.Duration
	Getenv  func(string) string
}

// OutputDir is lm-eval's --output_path inside dir.
func OutputDir(dir string) string { return filepath.Join(dir, "lm-eval") }

// Command is the lm-eval command line a job runs, interpreter first: what
// the record keeps as the exact command.
func Command(python string, args []string) []string {
	return append([]string{python, "-m", "lm_eval"}, args...)
}

// Job builds the runner.Job of one scoring: the wrapper (written into
// o.Dir) around `python -m lm_eval args`.
func Job(backendName string, args []string, o JobOptions) (runner.Job, error) {
	if o.Python == "" {
		return runner.Job{}, errors.New("quality: no Python with lm-eval")
	}
	if o.Dir == "" {
		return runner.Job{}, errors.New("quality: no work directory")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return runner.Job{}, err
	}
	script := filepath.Join(o.Dir, WrapperName)
	if err := os.WriteFile(script, wrapper, 0o644); err != nil {
		return runner.Job{}, err
	}
	cmd := []string{o.Python, "-u", script}
	if len(o.Serve) > 0 {
		b, _ := json.Marshal(o.Serve)
		cmd = append(cmd, "--serve-json", string(b))
	}
	cmd = append(cmd, "--")
	cmd = append(cmd, Command(o.Python, args)...)
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	env := map[string]string{"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", "TOKENIZERS_PARALLELISM": "false"}
	for _, k := range ForwardedEnv {
		if v := getenv(k); v != "" && !(o.InDocker && hostPathEnv[k]) {
			env[k] = v
		}
	}
	return runner.Job{
		Backend: backendName,
		Spec:    protocol.RunSpec{ProtocolVersion: protocol.ProtocolVersion, RunID: "quality"},
		Command: cmd,
		Env:     env,
		Dir:     o.Dir,
		Timeout: o.Timeout,
		Grace:   o.Grace,
	}, nil
}
