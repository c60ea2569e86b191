package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/version"
	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/envinfo"
	"github.com/llenergymeasure/llem/pkg/execute"
	"github.com/llenergymeasure/llem/pkg/gpuctl"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/serving"
	"github.com/llenergymeasure/llem/pkg/study"
	"github.com/llenergymeasure/llem/pkg/userconfig"
)

// Request is one `llem eval`: the study and the choices that shape its
// plan and where its workers run.
type Request struct {
	// Study is the study or experiment file (.cue).
	Study string
	// Source, when not nil, is the study's text to load instead of reading
	// Study (`--set` overrides, `llem run`); Study still names it in errors
	// and anchors relative dataset paths.
	Source []byte
	// Cycles overrides execution.cycles when > 0; negative is bad input.
	Cycles int
	// Runner is --runner ("" or "auto" defers); Python is --python.
	Runner string
	Python string
	// DryRun stops after resolving the runners: nothing is downloaded,
	// pulled or started, and Execute cannot be called.
	DryRun bool
	// Progress receives dataset download and image pull progress (nil:
	// silent).
	Progress io.Writer
	// UserConfig loads the user config; nil means userconfig.Load. It is
	// called after the study loaded, so a study error comes first.
	UserConfig func() (*userconfig.Loaded, error)
}

// Prepared is a study planned, its runners resolved and, unless dry-run,
// everything its runs need made ready: the Hub prompt sets in the cache,
// the Docker images pulled and every backend's route built.
type Prepared struct {
	// Plan is the study's plan as loaded (runners as the study wrote them).
	Plan *study.Plan
	// Resolution says where each backend runs; Resolution.Warnings are
	// Prepare's warnings that do not stop the study.
	Resolution *Resolution
	// Environment is the host snapshot every record carries.
	Environment envinfo.Snapshot
	// User is the user config in effect.
	User   *userconfig.Loaded
	routes execute.Routes
}

// Prepare loads the study, plans it, resolves every backend's runner and,
// unless req.DryRun, fetches the Hub datasets its runs use and prepares
// and builds the runners (Docker pre-flight, pulls). Study errors come as
// study.Load returns them (CUE errors with positions); problems the user
// must fix carry errs.BadInput (exit 2); a cancelled download returns
// ctx's error. Close what a successful Prepare returns.
func Prepare(ctx context.Context, req Request) (*Prepared, error) {
	var plan *study.Plan
	var err error
	if req.Source != nil {
		plan, err = study.LoadSource(ctx, req.Study, req.Source)
		if err == nil {
			err = applyCycles(plan, req.Cycles)
		}
	} else {
		plan, err = LoadPlan(ctx, req.Study, req.Cycles)
	}
	if err != nil {
		return nil, err
	}
	loadUser := req.UserConfig
	if loadUser == nil {
		loadUser = userconfig.Load
	}
	uc, err := loadUser()
	if err != nil {
		return nil, err
	}
	p := &Prepared{Plan: plan, User: uc, Environment: envinfo.Collect(envinfo.Options{NVML: energy.NVMLOptionsFromEnv()})}
	cuda, gpus := HostFacts(p.Environment.GPU.NVMLInfo)
	p.Resolution, err = Resolve(ctx, Input{
		Plan: plan, RunnerFlag: req.Runner,
		UserRunners: uc.Runners, UserImages: uc.Images,
		PythonFlag: req.Python, UserPython: uc.Python,
		LlemVersion: version.Version, HostCUDAMajor: cuda, GPUs: gpus,
	})
	if err != nil {
		return nil, err
	}
	if req.DryRun {
		return p, nil
	}
	if err := FetchDatasets(ctx, plan, req.Progress); err != nil {
		return nil, err
	}
	if err := p.Resolution.Prepare(ctx, req.Progress); err != nil {
		return nil, err
	}
	if p.routes, err = p.Resolution.Build(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// LoadPlan loads the study file and applies a --cycles override (> 0).
func LoadPlan(ctx context.Context, path string, cycles int) (*study.Plan, error) {
	plan, err := study.Load(ctx, path)
	if err != nil {
		return nil, err // CUE errors keep their positions
	}
	if err := applyCycles(plan, cycles); err != nil {
		return nil, err
	}
	return plan, nil
}

// applyCycles applies a --cycles override (> 0; negative is bad input).
func applyCycles(plan *study.Plan, cycles int) error {
	if cycles < 0 {
		return errs.BadInput(fmt.Errorf("--cycles %d: must be positive", cycles), "pass --cycles 1 or more")
	}
	if cycles > 0 {
		if err := plan.SetCycles(cycles); err != nil {
			return errs.BadInput(err, fmt.Sprintf("pass --cycles between 1 and %d (and at most %d runs × cycles)", study.MaxCycles, study.MaxExecutions))
		}
	}
	return nil
}

// Close releases the runners Prepare built.
func (p *Prepared) Close() error { return p.Resolution.Close() }

// openGPUControl takes the study's GPUs when it sets power limits or
// clocks (gpu:): it checks the plan against each GPU's allowed ranges (a
// value out of range is a study error, exit 2, with its position) and
// NVML's permission before anything runs. nil when the study sets none.
func openGPUControl(p *study.Plan) (*gpuctl.Controller, error) {
	if !p.HasGPU() {
		return nil, nil
	}
	c, err := gpuctl.Open(gpuctl.Options{Select: energy.NVMLOptionsFromEnv(), Plan: p})
	var se *study.Error
	if errors.As(err, &se) {
		return nil, errs.BadInput(err, "change the gpu: values to fit the ranges llem eval --dry-run shows")
	}
	return c, err
}

// RecoverGPUs puts back GPU settings that a killed llem left changed (its
// restore journal), and says what it did; cheap when there is nothing to
// do. llem eval calls it first.
func RecoverGPUs() ([]string, error) { return gpuctl.Recover(nil, "") }

// DescribeGPUs writes what the dry run shows of a study's GPU settings:
// each selected GPU's allowed ranges (read only), the settings in schedule
// order, how many changes, and any value out of range.
func DescribeGPUs(w io.Writer, p *study.Plan) {
	if !p.HasGPU() {
		return
	}
	rs, err := gpuctl.ReadRanges(nil, energy.NVMLOptionsFromEnv())
	if err != nil {
		fmt.Fprintf(w, "GPU settings: cannot read the GPUs' ranges: %v\n", err)
	}
	gpuctl.Describe(w, p, rs)
}

// RunOptions say where an execution goes and who watches it.
type RunOptions struct {
	// Out is the results root; "" means the user config's results_dir. A
	// study directory here (it has a manifest) is resumed.
	Out string
	// Resume is a study directory to continue; "" starts a new execution
	// (or resumes Out, see above).
	Resume string
	// Skip and OnEvent are execute.Options' (gap skipping, progress).
	Skip    <-chan struct{}
	OnEvent func(execute.Event)
}

// Execute runs the prepared study, or resumes it, and returns the report
// (failed and interrupted runs are in it, not errors). A results directory
// that the plan cannot resume is bad input wrapping *execute.ResumeError;
// any other error is the results directory's.
func (p *Prepared) Execute(ctx context.Context, o RunOptions) (*execute.Report, error) {
	opt, err := p.Options(o)
	if err != nil {
		return nil, err
	}
	gpu, err := openGPUControl(p.Plan)
	if err != nil {
		return nil, err
	}
	if gpu != nil {
		defer gpu.Restore() // also when the study fails before its loop runs
		opt.GPU = gpu
	}
	if o.Resume != "" && o.Out != "" && filepath.Clean(o.Resume) != filepath.Clean(o.Out) {
		return nil, errs.BadInput(fmt.Errorf("both --resume %s and --out %s given", o.Resume, o.Out),
			"--resume continues that study directory in place; drop --out")
	}
	if opt.OutRoot == "" {
		opt.OutRoot = p.User.ResultsDir
	}
	dir := ResumeDir(o.Resume, opt.OutRoot)
	var rep *execute.Report
	if dir != "" {
		rep, err = execute.Resume(ctx, dir, opt)
	} else {
		rep, err = execute.Run(ctx, opt)
	}
	if err != nil {
		return nil, explainExecuteError(err, dir)
	}
	return rep, nil
}

// Options are the execute.Options of the prepared study: its resolved
// plan, routes, sensors and environment snapshot. Execute runs them here;
// a Slurm array task (pkg/slurm) runs them on its node.
func (p *Prepared) Options(o RunOptions) (execute.Options, error) {
	if p.routes == nil {
		return execute.Options{}, errors.New("pipeline: Execute of a dry-run or unprepared study")
	}
	snap := p.Environment
	snap.Runners = p.Resolution.Environment()
	envJSON, err := json.Marshal(snap)
	if err != nil {
		return execute.Options{}, fmt.Errorf("encode environment: %w", err)
	}
	// The study's carbon block wins over the user config's, as in llem
	// results; an invalid one leaves records without CO2 (reported there).
	var cc carbon.Config
	if p.Plan.Carbon != nil {
		cc = *p.Plan.Carbon
	}
	if p.User != nil {
		cc = cc.Merge(p.User.Carbon)
	}
	router := serving.NewRouter(p.routes, "")
	router.Docker = p.Resolution.ServerPlacements()
	return execute.Options{
		Carbon:      cc,
		Plan:        p.Resolution.ResolvedPlan(),
		OutRoot:     o.Out,
		Routes:      router,
		Sensor:      SensorFor(p.User.Energy),
		Environment: envJSON,
		Fingerprint: snap.Fingerprint,
		Grace:       5 * time.Second,
		Skip:        o.Skip,
		OnEvent:     o.OnEvent,
	}, nil
}

// ExplainExecuteError is explainExecuteError for callers outside the
// package (pkg/slurm's submit and merge open study directories too).
func ExplainExecuteError(err error, dir string) error { return explainExecuteError(err, dir) }

// explainExecuteError gives each way an execution can fail to start or go
// on its own exit code and fix, from the error's type — never from its
// message.
func explainExecuteError(err error, dir string) error {
	var (
		re *execute.ResumeError
		me *result.ManifestError
		le *result.LockedError
	)
	switch {
	case errors.As(err, &re):
		return errs.BadInput(err, "resume with the same study file and --cycles, or start a new execution without --resume")
	case errors.As(err, &me):
		return errs.BadInput(err, me.Hint())
	case errors.As(err, &le):
		return err // names the holder; its Hint says to wait
	case errors.Is(err, syscall.ENOSPC):
		hint := "free space on that disk; llem results ls shows the study directory, and llem eval --resume DIR continues it"
		if dir != "" {
			hint = "free space on that disk, then llem eval --resume " + dir + " continues"
		}
		return errs.WithHint(err, hint)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return errs.WithHint(err, "check that the results directory (--out, results_dir of the user config) is writable")
	}
	return err
}

// ResumeDir is the study directory an execution continues: resume when
// given, else out when it already is a study directory (re-running with
// --out at one resumes it), else "" (a new execution under out).
func ResumeDir(resume, out string) string {
	if resume != "" {
		return resume
	}
	if _, err := os.Stat(filepath.Join(out, result.ManifestFile)); err == nil {
		return out
	}
	return ""
}

// SensorDefault opens sensors with the user config's energy.sensor standing
// in for a study that leaves energy.sensor at auto (study > user config >
// auto); the record's config keeps what the study said, its energy.sensor
// field says what measured.
func SensorDefault(user string) execute.SensorFunc {
	return SensorFor(userconfig.Energy{Sensor: user})
}

// SensorFor is SensorDefault with the user config's CPU TDP override for
// the estimate sensor.
func SensorFor(u userconfig.Energy) execute.SensorFunc {
	user := u.Sensor
	return func(e study.Energy) (energy.Sensor, energy.Selection, error) {
		if (e.Sensor == "" || e.Sensor == "auto") && user != "" {
			e.Sensor = user
		}
		return energy.Open(energy.Config{Sensor: e.Sensor, NVML: energy.NVMLOptionsFromEnv(), Estimate: energy.EstimateOptions{TDPWatts: u.CPUTDPWatts}})
	}
}
