package pipeline

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/hfcache"
	"github.com/llenergymeasure/llem/pkg/backend/pyharness"
	"github.com/llenergymeasure/llem/pkg/execute"
	"github.com/llenergymeasure/llem/pkg/pyenv"
	"github.com/llenergymeasure/llem/pkg/quality"
	"github.com/llenergymeasure/llem/pkg/runner"
)

// scoredBackends lists the backends with at least one scored run
// (quality: with a source other than none).
func (r *Resolution) scoredBackends() map[string]bool {
	out := map[string]bool{}
	for _, run := range r.in.Plan.Runs {
		if run.Config.Scored() {
			out[run.Backend] = true
		}
	}
	return out
}

// prepareQuality finds, for every backend with scored runs that runs
// locally, the Python that has lm-eval: the backend's own interpreter for
// a Python backend (lm-eval's hf and vllm models import the same torch),
// else the one --python, the user config, LLEM_PYTHON or PATH give. In a
// container the image's python3 must have it (the scoring then fails with
// missing_package, recorded like any failure). With HF_HUB_OFFLINE=1 it
// also checks that every task's data is in the local cache.
func (r *Resolution) prepareQuality(ctx context.Context) error {
	scored := r.scoredBackends()
	if len(scored) == 0 {
		return nil
	}
	r.lmevalPython = map[string]string{}
	for _, b := range r.Backends {
		if !scored[b.Backend] || b.Kind == runner.KindDocker {
			continue
		}
		var p pyenv.Python
		var err error
		if b.Python != "" {
			p, err = pyenv.Probe(ctx, b.Python, pyenv.LMEval, 20*time.Second)
			if err == nil && !p.OK() {
				err = errs.BadInput(fmt.Errorf("quality: backend %s's Python %s cannot import lm_eval", b.Backend, b.Python),
					"install lm-eval into it: "+b.Python+" -m pip install lm-eval; or set quality.source: \"none\"")
			}
		} else {
			p, err = pyenv.FindTool(ctx, pyenv.LMEval, pyenv.Options{Flag: r.in.PythonFlag, Config: r.in.UserPython, Timeout: 20 * time.Second})
			if err != nil {
				err = errs.BadInput(fmt.Errorf("quality: backend %s's runs are scored with lm-eval: %w", b.Backend, err),
					"pip install lm-eval into a Python and pass it with --python PATH (or LLEM_PYTHON); or set quality.source: \"none\"")
			}
		}
		if err != nil {
			return err
		}
		r.lmevalPython[b.Backend] = p.Path
	}
	return r.checkOfflineData(ctx)
}

// qualityFunc builds b's scoring jobs: lm-eval with the run's model,
// revision, precision and backend settings, in b's runner; for native,
// lm-eval's local-completions against `llem serve` started beside it.
func (r *Resolution) qualityFunc(b *Backend) execute.QualityFunc {
	inDocker := b.Kind == runner.KindDocker
	python := r.lmevalPython[b.Backend]
	if inDocker {
		python = pyharness.ContainerPython
	}
	exe := r.in.NativeExecutable
	if inDocker {
		exe = "llem"
	}
	return func(req execute.QualityRequest) (execute.QualityJob, error) {
		c := &req.Run.Config
		model, err := quality.Model(c.Backend, c.Quality.Source)
		if err != nil {
			return execute.QualityJob{}, err
		}
		if model == "" {
			return execute.QualityJob{}, fmt.Errorf("quality: run %s is not scored (source none)", req.Run.ID)
		}
		out := quality.OutputDir(req.Dir)
		args, err := quality.Args(model, c, out)
		if err != nil {
			return execute.QualityJob{}, err
		}
		var serve []string
		if model == quality.ModelLocalCompletions {
			if c.Backend != "native" {
				return execute.QualityJob{}, fmt.Errorf("quality: local-completions scores through llem serve, which serves the native engine, not %s", c.Backend)
			}
			if exe == "" {
				if exe, err = os.Executable(); err != nil {
					return execute.QualityJob{}, err
				}
			}
			serve = serveArgs(exe, req.Run.Config.Model, c.Precision, c.RandomSeed, c.Native)
		}
		job, err := quality.Job(b.Backend, args, quality.JobOptions{
			Python: python, Dir: req.Dir, InDocker: inDocker, Serve: serve, Timeout: req.Timeout, Grace: req.Grace,
		})
		if err != nil {
			return execute.QualityJob{}, err
		}
		return execute.QualityJob{Job: job, Source: model, Command: quality.Command(python, args), OutputDir: out}, nil
	}
}

// serveArgs is `llem serve` for a native run: its model, weight storage,
// seed and threads, on a free loopback port.
func serveArgs(exe, model, precision string, seed int64, native map[string]any) []string {
	args := []string{exe, "serve", model, "--host", "127.0.0.1", "--port", "0", "--dtype", precision,
		"--seed", strconv.FormatInt(seed, 10)}
	if t, ok := native["threads"].(float64); ok && t > 0 {
		args = append(args, "--threads", strconv.Itoa(int(t)))
	}
	return args
}

// checkOfflineData fails before the study starts when the Hugging Face
// libraries are offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) and a scored
// task's data is not in the local caches, or lm-eval knows no such task.
// It asks lm-eval's own task index (quality.TaskDataProbe, with the
// interpreter that will score) where each task's data comes from. Only
// locally run backends are checked: a container has its own caches.
func (r *Resolution) checkOfflineData(ctx context.Context) error {
	if !quality.Offline(os.Getenv) {
		return nil
	}
	hub, ds := hfcache.HubDir(), quality.DatasetsDir(os.Getenv)
	var problems []string
	checked := map[string]bool{}
	for _, run := range r.in.Plan.Runs {
		py := r.lmevalPython[run.Backend]
		if !run.Config.Scored() || py == "" {
			continue
		}
		var tasks []string
		for _, t := range run.Config.Quality.Tasks {
			if !checked[py+"\x00"+t] {
				checked[py+"\x00"+t] = true
				tasks = append(tasks, t)
			}
		}
		if len(tasks) == 0 {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		out, err := exec.CommandContext(pctx, py, append([]string{"-c", quality.TaskDataProbe}, tasks...)...).Output()
		cancel()
		if err != nil {
			return fmt.Errorf("quality: ask lm-eval (%s) where its tasks' data lives: %w", py, err)
		}
		data, err := quality.ParseTaskData(out)
		if err != nil {
			return err
		}
		for _, t := range tasks {
			d := data[t]
			switch {
			case d.Unknown:
				problems = append(problems, fmt.Sprintf("lm-eval (%s) knows no task %q", py, t))
			case d.Skipped != "" || d.DatasetPath == "":
			case !quality.DatasetCached(d.DatasetPath, hub, ds):
				problems = append(problems, fmt.Sprintf("task %s needs dataset %s, which is in neither %s nor %s", t, d.DatasetPath, hub, ds))
			}
		}
	}
	if len(problems) > 0 {
		return errs.BadInput(fmt.Errorf("quality: HF_HUB_OFFLINE is set and %s", strings.Join(problems, "; ")),
			"fetch the data once online (run the study without HF_HUB_OFFLINE=1, or `python -c \"import datasets; datasets.load_dataset('<dataset>')\"`), or fix the task name (lm-eval --tasks list)")
	}
	return nil
}
