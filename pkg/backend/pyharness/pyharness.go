// Package pyharness is the shared Go side of llem's Python harnesses
// (pytorch, vllm, tensorrt): it embeds llem_common.py, the Python code
// every harness imports (protocol encoder, spec reading, datasets,
// batching, token counting, error hints), writes a harness and its common
// module to a cache directory keyed by their content hash, and builds the
// runner.Job that starts it.
//
// Why a content-addressed cache instead of the run's exchange directory: a
// study starts hundreds of workers; writing the same files once per llem
// version is enough, and a directory named by the hash can never hold a
// stale harness. Files are written to a temporary directory and renamed
// into place, so concurrent llem processes never see half-written files.
package pyharness

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/backend"
	"github.com/llenergymeasure/llem/pkg/params"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
)

// Common is llem_common.py, imported by every harness.
//
//go:embed llem_common.py
var Common []byte

// CommonName is the file name the harnesses import (import llem_common).
const CommonName = "llem_common.py"

// Harness describes one backend's Python worker.
type Harness struct {
	Backend string // the registered backend name, e.g. "pytorch"
	Script  string // file name of the entry point, e.g. "harness_pytorch.py"
	Source  []byte // its content (embedded by the backend's package)
}

// Files returns every file the harness needs, by name.
func (h Harness) Files() map[string][]byte {
	return map[string][]byte{h.Script: h.Source, CommonName: Common}
}

// Hash is the sha256 of the harness's files (names and contents, in name
// order): the cache key of its directory.
func Hash(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CacheRoot is where harness directories live: $LLEM_CACHE_DIR/harness, or
// the user cache directory (~/.cache/llem/harness on Linux), beside the
// baseline cache (pkg/measure) and TensorRT-LLM engines.
func CacheRoot() (string, error) {
	if d := os.Getenv("LLEM_CACHE_DIR"); d != "" {
		return filepath.Join(d, "harness"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", errs.WithHint(fmt.Errorf("find cache directory: %w", err),
			"set LLEM_CACHE_DIR to a writable directory")
	}
	return filepath.Join(d, "llem", "harness"), nil
}

// Materialize writes files into root/<backend>-<hash12> unless that
// directory already exists, and returns it. The write is atomic: a
// temporary sibling directory is filled, then renamed.
func Materialize(root, backend string, files map[string][]byte) (string, error) {
	dir := filepath.Join(root, backend+"-"+Hash(files)[:12])
	if complete(dir, files) {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", errs.WithHint(fmt.Errorf("create harness cache: %w", err),
			"set LLEM_CACHE_DIR to a writable directory")
	}
	tmp, err := os.MkdirTemp(root, ".tmp-"+backend+"-")
	if err != nil {
		return "", fmt.Errorf("create harness directory: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op after a successful rename
	if err := writeFiles(tmp, files); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another llem process won the race: its directory has the same
		// content by construction.
		if complete(dir, files) {
			return dir, nil
		}
		// A damaged directory (a file truncated or deleted by hand): replace it.
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			return "", fmt.Errorf("replace damaged harness directory: %w", rmErr)
		}
		if err := os.Rename(tmp, dir); err != nil && !complete(dir, files) {
			return "", fmt.Errorf("install harness directory: %w", err)
		}
	}
	return dir, nil
}

// writeFiles writes files (plain names, no paths) into dir.
func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create harness directory: %w", err)
	}
	for name, body := range files {
		if filepath.Base(name) != name {
			return fmt.Errorf("write harness file %q: name must not contain a path", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			return fmt.Errorf("write harness file: %w", err)
		}
	}
	return nil
}

// complete reports whether dir holds every file with its size (content is
// implied by the hash in the directory's name).
func complete(dir string, files map[string][]byte) bool {
	for name, body := range files {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Size() != int64(len(body)) {
			return false
		}
	}
	return true
}

// ErrNoPython is returned when a Job is requested without an interpreter.
var ErrNoPython = errors.New("no Python interpreter given")

// JobOptions are the optional parts of a harness Job.
type JobOptions struct {
	// CacheRoot overrides CacheRoot() (tests use a temporary directory).
	CacheRoot string
	// Dir is the run's exchange directory, passed on to the runner.
	Dir string
	// HarnessInDir writes the harness files into Dir instead of the shared
	// cache, for runners that only mount the exchange directory (the Docker
	// runner rewrites paths under Dir to its mount point). Then python is
	// the interpreter inside the container, e.g. "python3".
	HarnessInDir bool
	Timeout      time.Duration
	Grace        time.Duration
	// Getenv reads the parent's environment for forwarded variables
	// (default os.Getenv).
	Getenv func(string) string
}

// ForwardedEnv lists variables copied from llem's environment into the
// worker's, so a container runner passes them as well: Hub credentials and
// cache locations, offline switches, and the GPU selection.
var ForwardedEnv = []string{
	"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE",
	"TRANSFORMERS_OFFLINE", "CUDA_VISIBLE_DEVICES", "LLEM_CACHE_DIR",
}

// Job builds the runner.Job that starts h with python on spec.
func Job(h Harness, spec protocol.RunSpec, python string, o JobOptions) (runner.Job, error) {
	if python == "" {
		return runner.Job{}, errs.WithHint(ErrNoPython, "pass --python PATH or set LLEM_PYTHON")
	}
	var dir string
	if o.HarnessInDir {
		if o.Dir == "" {
			return runner.Job{}, errors.New("harness in exchange directory: JobOptions.Dir is empty")
		}
		if err := writeFiles(o.Dir, h.Files()); err != nil {
			return runner.Job{}, err
		}
		dir = o.Dir
	} else {
		root := o.CacheRoot
		if root == "" {
			var err error
			if root, err = CacheRoot(); err != nil {
				return runner.Job{}, err
			}
		}
		var err error
		if dir, err = Materialize(root, h.Backend, h.Files()); err != nil {
			return runner.Job{}, err
		}
	}
	if spec.ProtocolVersion == 0 {
		spec.ProtocolVersion = protocol.ProtocolVersion
	}
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	env := map[string]string{
		// Unbuffered, UTF-8 I/O; no .pyc files in the shared cache.
		"PYTHONUNBUFFERED":        "1",
		"PYTHONIOENCODING":        "utf-8",
		"PYTHONDONTWRITEBYTECODE": "1",
		// Tokenizers fork warnings and progress bars are noise on stderr.
		"TOKENIZERS_PARALLELISM":       "false",
		"HF_HUB_DISABLE_PROGRESS_BARS": "1",
	}
	for _, k := range ForwardedEnv {
		if v := getenv(k); v != "" {
			env[k] = v
		}
	}
	return runner.Job{
		Backend: h.Backend,
		Spec:    spec,
		Command: []string{python, "-u", filepath.Join(dir, h.Script)},
		Env:     env,
		Dir:     o.Dir,
		Timeout: o.Timeout,
		Grace:   o.Grace,
	}, nil
}

// SpecFor builds the RunSpec of one cycle of run: its effective config,
// the backend's keyword arguments mapped from the schema
// (params.BackendArgs of the run's backend section, extra: merged), and the
// prompts the parent resolved.
func SpecFor(run study.Run, cycle int, prompts []protocol.Prompt) (protocol.RunSpec, error) {
	section := run.Config.Section()
	if section == nil {
		section = map[string]any{}
	}
	args, err := params.BackendArgs(run.Backend, section)
	if err != nil {
		return protocol.RunSpec{}, errs.BadInput(fmt.Errorf("map %s params of run %s: %w", run.Backend, run.ID, err),
			"llem params "+run.Backend+" lists the valid params")
	}
	return protocol.RunSpec{
		ProtocolVersion: protocol.ProtocolVersion,
		RunID:           run.ID,
		Cycle:           cycle,
		Config:          run.ConfigJSON,
		BackendArgs:     args,
		Prompts:         prompts,
	}, nil
}

// ContainerPython is the interpreter inside the worker images.
const ContainerPython = "python3"

// hostPathEnv are forwarded variables that name host paths or host GPU
// indices: meaningless inside a container (the image sets HF_HOME; GPUs are
// requested by UUID), so Docker jobs drop them.
var hostPathEnv = []string{"HF_HOME", "HF_HUB_CACHE", "LLEM_CACHE_DIR", "CUDA_VISIBLE_DEVICES"}

// JobFunc builds each slot's job with harness h placed as p says: locally
// under p.Python with the harness in the shared cache, or in a container
// under python3 with the harness written into the bind-mounted exchange
// directory and the host-path variables dropped. It is the Jobs of every
// Python backend's registration.
func JobFunc(h Harness, p backend.Placement) backend.JobFunc {
	inDocker := p.InDocker()
	python := p.Python
	if inDocker {
		python = ContainerPython
	}
	return func(req backend.JobRequest) (runner.Job, error) {
		spec, err := SpecFor(req.Run, req.Cycle, req.Prompts)
		if err != nil {
			return runner.Job{}, err
		}
		j, err := Job(h, spec, python, JobOptions{Dir: req.Dir, HarnessInDir: inDocker, Timeout: req.Timeout, Grace: req.Grace})
		if err != nil {
			return j, err
		}
		if inDocker {
			for _, k := range hostPathEnv {
				delete(j.Env, k)
			}
		}
		return j, nil
	}
}

// Jobs adapts JobFunc to backend.Backend.Jobs for harness h.
func (h Harness) Jobs(p backend.Placement) (backend.JobFunc, error) {
	return JobFunc(h, p), nil
}
