// Package pipeline is the wiring root of llem eval: the one package that
// knows every backend, runner and sensor. It decides where each backend of a
// study runs its workers and builds what pkg/execute needs for that: one
// route (runner and job builder) per backend.
//
// For every backend the plan uses, Resolve picks a runner.Choice with
// runner.Select (--runner flag > LLEM_RUNNER_<BACKEND> > study > user config
// > auto) and, for that choice, what the worker runs with:
//
//   - local Python backends: the interpreter from pyenv.Find (--python >
//     user config python / LLEM_PYTHON > the first python that imports the
//     backend);
//   - local native: llem itself (`llem worker`);
//   - Docker: the image pinned in the study (runners: <b>: image:) > the
//     user config (images.<b>, LLEM_IMAGE_<B>) > the release image for the
//     host's CUDA major (docker.ResolveImage). Python backends run
//     `python3 <harness>` with the harness written into the bind-mounted
//     exchange directory; native runs `llem worker` from the image's PATH
//     (there is no release image for native, so one must be pinned).
//
// Auto probes only what it needs: whether the backend's Python package
// imports locally, and only then whether a Docker daemon answers.
//
// Resolution.Prepare runs the Docker pre-flight once (all problems,
// numbered) and resolves every image to the ID its containers are created
// from, so the digest recorded in the environment snapshot is the one that
// ran.
//
// `llem eval` is, in order (eval.go): Prepare (load the study, plan it,
// resolve runners; then, unless dry-run, fetch the Hub datasets, Docker
// pre-flight and Build the routes) and Prepared.Execute (environment
// snapshot, sensor default, new execution or resume through pkg/execute).
// cmd/llem only parses flags, calls these, and prints.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/hfcache"
	"github.com/llenergymeasure/llem/pkg/backend"
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/envinfo"
	"github.com/llenergymeasure/llem/pkg/execute"
	"github.com/llenergymeasure/llem/pkg/pyenv"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/runner/docker"
	"github.com/llenergymeasure/llem/pkg/serving"
	"github.com/llenergymeasure/llem/pkg/study"
)

// Image sources, shown by --dry-run and recorded in the environment.
const (
	ImageFromStudy      = "study"
	ImageFromUserConfig = "user config"
	ImageFromRelease    = "release image"
)

// DefaultShmSize is /dev/shm for the Python backends' containers when the
// study sets no shm_size: PyTorch data loaders, vLLM and NCCL need far more
// than Docker's 64 MiB. tmpfs, so only what is used takes memory.
const DefaultShmSize = 8 << 30

// Input is everything the resolution depends on.
type Input struct {
	Plan *study.Plan
	// RunnerFlag is --runner ("" or "auto" defers).
	RunnerFlag string
	// UserRunners and UserImages are the user config's runners and images
	// (environment overrides LLEM_RUNNER_/LLEM_IMAGE_ already applied).
	UserRunners map[string]string
	UserImages  map[string]string
	// PythonFlag is --python; UserPython the user config's python (or
	// LLEM_PYTHON).
	PythonFlag string
	UserPython string
	// LlemVersion names the release images (llenergymeasure/<b>:<v>-cuda<N>).
	LlemVersion string
	// HostCUDAMajor is the CUDA major the host driver supports; 0 unknown.
	HostCUDAMajor int
	// GPUs are the UUIDs of the GPUs being measured, exposed to containers.
	GPUs []string
	// DockerHost is the daemon address; "" means DOCKER_HOST or the default.
	DockerHost string
	// Network is the containers' network mode; "" is the daemon default.
	Network string
	// NativeExecutable is the llem binary for local native workers; "" is
	// this executable.
	NativeExecutable string
	// Probes; nil means the real ones.
	DaemonUp   func(ctx context.Context) error
	FindPython func(ctx context.Context, backend string) (pyenv.Python, error)
}

// Backend is the resolved runner of one backend.
type Backend struct {
	runner.Choice
	// ImageSource says where Image came from (docker only).
	ImageSource string `json:"image_source,omitempty"`
	// ShmSize of the containers in bytes (docker only; 0 daemon default).
	ShmSize int64 `json:"shm_size,omitempty"`
	// Python is the local interpreter of a Python backend (local only).
	Python       string `json:"python,omitempty"`
	PythonSource string `json:"python_source,omitempty"`
	// Server says where the server of this backend's serving runs runs
	// (serving studies only): what --dry-run shows.
	Server string `json:"server,omitempty"`
	// Problem is what will stop this backend from running, with Hint.
	Problem string `json:"problem,omitempty"`
	Hint    string `json:"hint,omitempty"`
	// Set by Prepare: the image ID containers are created from, and the
	// registry digest of the image when it has one.
	ImageID     string `json:"image_id,omitempty"`
	ImageDigest string `json:"image_digest,omitempty"`
}

// Resolution is the runner of every backend of a plan.
type Resolution struct {
	// Backends, sorted by name.
	Backends []*Backend
	// Warnings found by Prepare that do not stop the study.
	Warnings []string
	in       Input
	prepared bool
	// lmevalPython is, per locally run backend with scored runs, the Python
	// that has lm-eval (prepareQuality).
	lmevalPython map[string]string
	closers      []func() error
	// hubCache is the host's Hugging Face hub cache that Docker runs mount
	// (prepareHubCache); "" when none could be had.
	hubCache string
}

// Backend returns the resolution of backend b, or nil.
func (r *Resolution) Backend(b string) *Backend {
	for _, x := range r.Backends {
		if x.Backend == b {
			return x
		}
	}
	return nil
}

// Resolve picks the runner of every backend in in.Plan. It runs probes but
// changes nothing: --dry-run shows its result. An invalid runner value is a
// bad-input error; a backend that cannot run is reported in its Problem.
func Resolve(ctx context.Context, in Input) (*Resolution, error) {
	if in.DaemonUp == nil {
		host := in.DockerHost
		in.DaemonUp = func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			cli, err := docker.Connect(ctx, host)
			if err != nil {
				return err
			}
			return cli.Close()
		}
	}
	if in.FindPython == nil {
		o := pyenv.Options{Flag: in.PythonFlag, Config: in.UserPython, Timeout: 20 * time.Second}
		in.FindPython = func(ctx context.Context, backend string) (pyenv.Python, error) {
			return pyenv.Find(ctx, backend, o)
		}
	}
	switch in.RunnerFlag {
	case "", runner.KindAuto, runner.KindLocal, runner.KindDocker:
	default:
		return nil, errs.BadInput(fmt.Errorf("--runner %q: unknown runner", in.RunnerFlag), "use --runner local, docker or auto")
	}
	res := &Resolution{in: in}
	var daemonErr error
	daemonProbed := false
	daemonUp := func() bool {
		if !daemonProbed {
			daemonErr, daemonProbed = in.DaemonUp(ctx), true
		}
		return daemonErr == nil
	}
	for _, name := range slices.Sorted(maps.Keys(in.Plan.Runners)) {
		sr := in.Plan.Runners[name]
		b := &Backend{}
		sel := runner.SelectInput{Backend: name, Flag: in.RunnerFlag, Study: sr.Kind, UserConfig: in.UserRunners[name]}
		// Auto needs the probes; an explicit local Python backend needs
		// the interpreter anyway.
		var py pyenv.Python
		var pyErr error
		reg, ok := backend.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("backend %s: not compiled into this llem (registered: %s)", name, strings.Join(backend.Names(), ", "))
		}
		isPython := reg.Worker == backend.WorkerPython
		sel.LocalReason = reg.LocalReason
		pre, err := runner.Select(sel)
		if err != nil {
			return nil, errs.BadInput(err, "runners are auto, local or docker")
		}
		if isPython && (pre.Source == runner.SourceAuto || pre.Kind == runner.KindLocal) {
			py, pyErr = in.FindPython(ctx, name)
		}
		if pre.Source == runner.SourceAuto {
			sel.Importable = isPython && pyErr == nil
			if isPython && !sel.Importable {
				sel.DaemonUp = daemonUp()
			}
			pre, err = runner.Select(sel)
			if err != nil {
				return nil, err
			}
		}
		b.Choice = pre
		switch b.Kind {
		case runner.KindLocal:
			if isPython {
				if pyErr != nil {
					b.Problem, b.Hint = pyErr.Error(), errs.Hint(pyErr)
					if pre.Source == runner.SourceAuto && daemonErr != nil {
						why := daemonErr.Error()
						var de *docker.DaemonError
						if errors.As(daemonErr, &de) {
							why = de.Reason + "; " + de.Fix
						}
						b.Hint += "; or run it in Docker (--runner docker) once the daemon answers (" + why + ")"
					}
				} else {
					b.Python, b.PythonSource = py.Path, py.Source
				}
			}
		case runner.KindDocker:
			if err := res.resolveImage(b, sr); err != nil {
				b.Problem, b.Hint = err.Error(), errs.Hint(err)
			}
			if sr.ShmSize != "" {
				n, err := ParseSize(sr.ShmSize)
				if err != nil {
					return nil, errs.BadInput(fmt.Errorf("runners: %s: shm_size: %w", name, err), `write e.g. shm_size: "8g"`)
				}
				b.ShmSize = n
			} else if isPython {
				b.ShmSize = DefaultShmSize
			}
			if m := relativeLocalModel(in.Plan, name); b.Problem == "" && m != "" {
				abs, _ := filepath.Abs(m)
				b.Problem = fmt.Sprintf("model %q is a directory on this machine given as a relative path: the %s container would look for it in its own working directory", m, name)
				b.Hint = fmt.Sprintf("give it as an absolute path (model: %q): llem mounts an absolute local model directory read-only at the same path (docs/docker.md)", abs)
			}
		}
		b.Server = serverPlace(in.Plan, b)
		res.Backends = append(res.Backends, b)
	}
	return res, nil
}

// relativeLocalModel is the first model of backend's runs that names a
// directory on this machine by a relative path ("" if none).
func relativeLocalModel(plan *study.Plan, backend string) string {
	for _, r := range plan.Runs {
		m := r.Config.Model
		if r.Backend != backend || m == "" || filepath.IsAbs(m) || strings.HasPrefix(m, "random:") {
			continue
		}
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			return m
		}
	}
	return ""
}

// serverPlace says where the server of b's serving runs will run ("" when
// b has none): the serving worker runs on this machine whatever the
// runner (it measures this machine and sends the load); it starts the
// server as a local process, or, for a backend in Docker, as a container
// of the backend's image on the host's network; or the study gives a url.
func serverPlace(plan *study.Plan, b *Backend) string {
	starts, urls := false, false
	for _, r := range plan.Runs {
		if r.Backend != b.Backend || r.Config.Serving == nil {
			continue
		}
		if r.Config.Serving.Server.URL == "" {
			starts = true
		} else {
			urls = true
		}
	}
	if !starts {
		if urls {
			return "the existing server at serving.server.url"
		}
		return ""
	}
	prog := serving.ServerProgram(b.Backend)
	if prog == "" {
		return "none: the " + b.Backend + " backend has no server llem starts; give serving.server.url"
	}
	var where string
	switch {
	case b.Kind == runner.KindDocker && b.Image != "":
		where = prog + " in image " + b.Image + " (a container on the host network, the measured GPUs; started by the serving worker on this machine)"
	case b.Kind == runner.KindDocker:
		where = prog + " in the backend's image"
	case b.Backend == "native":
		where = prog + " on this machine (this llem)"
	default:
		where = prog + " on this machine (on PATH)"
	}
	if urls {
		where += "; runs with serving.server.url use that server"
	}
	return where
}

// prepareHubCache finds the host's hub cache for Docker runs to mount
// (where huggingface_hub looks: HF_HUB_CACHE, HF_HOME/hub, ...) and
// creates it if missing, so the daemon does not create it owned by root.
// Without one, containers download into their own cache (a warning).
func (r *Resolution) prepareHubCache() {
	dir, err := filepath.Abs(hfcache.HubDir())
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the Hugging Face hub cache cannot be mounted into the Docker runs (%v): each container downloads its model again; set HF_HUB_CACHE to a writable directory", err))
		return
	}
	r.hubCache = dir
}

// ServerPlacements are the Docker placements of the serving servers: for
// every backend resolved to Docker, its image ID, GPUs and shm size (for
// serving.Router.Docker). Only after Prepare (the image IDs).
func (r *Resolution) ServerPlacements() map[string]serving.DockerServer {
	out := map[string]serving.DockerServer{}
	for _, b := range r.Docker() {
		img := b.ImageID
		if img == "" {
			img = b.Image
		}
		out[b.Backend] = serving.DockerServer{Host: r.in.DockerHost, Image: img, GPUs: r.in.GPUs, ShmSize: b.ShmSize, HubCache: r.hubCache}
	}
	return out
}

// resolveImage sets b.Image and b.ImageSource: study pin > user config >
// release image for the host's CUDA.
func (r *Resolution) resolveImage(b *Backend, sr study.Runner) error {
	switch {
	case sr.Image != "":
		b.Image, b.ImageSource = sr.Image, ImageFromStudy
		return nil
	case r.in.UserImages[b.Backend] != "":
		b.Image, b.ImageSource = r.in.UserImages[b.Backend], ImageFromUserConfig
		return nil
	}
	if reg, _ := backend.Lookup(b.Backend); !reg.ReleaseImage {
		n := b.Backend
		return errs.WithHint(fmt.Errorf("the %s backend has no release image to run in Docker", n),
			`pin an image that has a llem binary on its PATH (runners: `+n+`: image: "..." in the study, or images.`+n+` in the user config), or run `+n+` locally`)
	}
	ref, err := docker.ResolveImage(b.Backend, r.in.LlemVersion, "", r.in.HostCUDAMajor)
	if err != nil {
		var me *docker.CUDAMismatchError
		if errors.As(err, &me) {
			return errs.WithHint(err, me.Fix())
		}
		return err
	}
	b.Image = ref
	if r.in.HostCUDAMajor > 0 {
		b.ImageSource = fmt.Sprintf("%s for the host's CUDA %d", ImageFromRelease, r.in.HostCUDAMajor)
	} else {
		b.ImageSource = ImageFromRelease + ", newest CUDA tag (host CUDA unknown)"
	}
	return nil
}

// Docker lists the backends that run in Docker.
func (r *Resolution) Docker() []*Backend {
	var out []*Backend
	for _, b := range r.Backends {
		if b.Kind == runner.KindDocker {
			out = append(out, b)
		}
	}
	return out
}

// Problems is every backend problem found by Resolve, numbered, or nil.
func (r *Resolution) Problems() error {
	ps := r.problems()
	if len(ps) == 0 {
		return nil
	}
	return ps
}

func (r *Resolution) problems() Problems {
	var ps Problems
	for _, b := range r.Backends {
		if b.Problem != "" {
			ps = append(ps, docker.Problem{What: "backend " + b.Backend + " (" + b.Kind + " runner): " + b.Problem, Fix: b.Hint})
		}
	}
	return ps
}

// Problems stop a study from starting; Error numbers them with their fixes.
type Problems []docker.Problem

func (ps Problems) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the study cannot start, %d problem(s):", len(ps))
	for i, p := range ps {
		fmt.Fprintf(&b, "\n  %d. %s", i+1, p.What)
		if p.Fix != "" {
			fmt.Fprintf(&b, "\n     fix: %s", p.Fix)
		}
	}
	return b.String()
}

// Prepare makes the resolution ready to run. It collects every problem
// before failing: backends that cannot run as resolved, and the Docker
// pre-flight of the others (missing images are pulled, with progress on
// progress). Any problem is a bad-input error (exit 2) listing them all,
// numbered. Then every image is resolved to its ID and registry digest.
func (r *Resolution) Prepare(ctx context.Context, progress io.Writer) error {
	ps := r.problems()
	var dk []*Backend
	images := map[string]string{}
	for _, b := range r.Docker() {
		if b.Problem == "" {
			dk = append(dk, b)
			images[b.Backend] = b.Image
		}
	}
	if len(dk) > 0 {
		err := docker.Preflight(ctx, docker.PreflightInput{
			Host: r.in.DockerHost, Images: images, GPUs: r.in.GPUs, HostCUDAMajor: r.in.HostCUDAMajor,
			Pull: true, Progress: progress,
		})
		var dps docker.Problems
		switch {
		case errors.As(err, &dps):
			ps = append(ps, dps...)
		case err != nil:
			ps = append(ps, docker.Problem{What: "docker pre-flight: " + err.Error(), Fix: "see docs/docker.md"})
		}
	}
	if len(ps) > 0 {
		return errs.BadInput(ps, "see docs/docker.md for Docker set-up; --runner local|docker chooses where every backend runs")
	}
	for _, b := range dk {
		id, err := docker.InspectImage(ctx, r.in.DockerHost, b.Image)
		if err != nil {
			return fmt.Errorf("backend %s: %w", b.Backend, err)
		}
		b.ImageID, b.ImageDigest = id.ID, id.Digest()
	}
	if len(dk) > 0 {
		r.prepareHubCache()
		if left, err := docker.RunningWorkers(ctx, r.in.DockerHost); err == nil && len(left) > 0 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%d llem worker container(s) already running (%s): left by a killed llem or another study, they load the GPUs this study measures; remove stale ones with docker rm -f $(docker ps -q --filter label=%s=worker)",
				len(left), strings.Join(left, ", "), docker.Label))
		}
	}
	if err := r.prepareQuality(ctx); err != nil {
		return err
	}
	r.prepared = true
	return nil
}

// Build returns the route of every backend of a prepared resolution (its
// runner: one local runner shared by the local backends, one Docker runner
// per Docker backend with its resolved image; and its job builder), for
// execute.Options.Routes. Close releases the Docker clients.
func (r *Resolution) Build(ctx context.Context) (execute.Routes, error) {
	if !r.prepared {
		return nil, errors.New("pipeline: Build before Prepare")
	}
	local := runner.NewLocal()
	routes := execute.Routes{}
	for _, b := range r.Backends {
		rt := execute.Route{Runner: local}
		if b.Kind == runner.KindDocker {
			dr, err := docker.New(ctx, docker.Options{
				Host: r.in.DockerHost, Image: b.ImageID, GPUs: r.in.GPUs, ShmSize: b.ShmSize, Network: r.in.Network,
				HubCache: r.hubCache,
			})
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("backend %s: docker runner: %w", b.Backend, err)
			}
			r.closers = append(r.closers, dr.Close)
			rt.Runner = dr
		}
		jf, err := r.jobFunc(b)
		if err != nil {
			r.Close()
			return nil, err
		}
		rt.Job = jf
		if r.scoredBackends()[b.Backend] {
			rt.Quality = r.qualityFunc(b)
		}
		routes[b.Backend] = rt
	}
	return routes, nil
}

// ResolvedPlan returns a copy of the plan whose runners say where each
// backend ran (kind, and the image for Docker): the plan.json a study
// directory keeps. The plan Resolve was given is left as it was.
func (r *Resolution) ResolvedPlan() *study.Plan {
	p := *r.in.Plan
	p.Runners = make(map[string]study.Runner, len(r.in.Plan.Runners))
	for name, sr := range r.in.Plan.Runners {
		if b := r.Backend(name); b != nil {
			sr.Kind = b.Kind
			if b.Kind == runner.KindDocker {
				sr.Image = b.Image
			}
		}
		p.Runners[name] = sr
	}
	return &p
}

// Close releases what Build opened.
func (r *Resolution) Close() error {
	var errsList []error
	for _, c := range r.closers {
		errsList = append(errsList, c())
	}
	r.closers = nil
	return errors.Join(errsList...)
}

// jobFunc is the job builder of b's registered backend, placed where b
// was resolved to run.
func (r *Resolution) jobFunc(b *Backend) (backend.JobFunc, error) {
	reg, ok := backend.Lookup(b.Backend)
	if !ok {
		return nil, fmt.Errorf("backend %s: no worker in this llem", b.Backend)
	}
	return reg.Jobs(backend.Placement{Runner: b.Kind, Executable: r.in.NativeExecutable, Python: b.Python})
}

// Environment is what goes into the environment snapshot: per backend, the
// runner and, for Docker, the image reference, ID and digest used.
func (r *Resolution) Environment() map[string]envinfo.Runner {
	out := map[string]envinfo.Runner{}
	for _, b := range r.Backends {
		out[b.Backend] = envinfo.Runner{
			Kind: b.Kind, Source: b.Source, Image: b.Image, ImageSource: b.ImageSource,
			ImageID: b.ImageID, ImageDigest: b.ImageDigest, Python: b.Python,
		}
	}
	return out
}

// HostFacts returns the host CUDA major (0 when unknown) and the UUIDs of
// the GPUs llem measures (CUDA_VISIBLE_DEVICES applied) from an NVML probe.
func HostFacts(info energy.NVMLInfo) (cudaMajor int, gpus []string) {
	if v, _, ok := strings.Cut(info.CUDADriverVersion, "."); ok || v != "" {
		cudaMajor, _ = strconv.Atoi(v)
	}
	for _, g := range info.GPUs {
		if g.Selected && g.UUID != "" {
			gpus = append(gpus, g.UUID)
		}
	}
	return cudaMajor, gpus
}

// ParseSize reads a Docker-style size: a number with an optional unit b, k,
// m or g (powers of 1024), e.g. "8g".
func ParseSize(s string) (int64, error) {
	orig := s
	s = strings.TrimSpace(strings.ToLower(s))
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'b':
			s = s[:len(s)-1]
		case 'k':
			mult, s = 1<<10, s[:len(s)-1]
		case 'm':
			mult, s = 1<<20, s[:len(s)-1]
		case 'g':
			mult, s = 1<<30, s[:len(s)-1]
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit b, k, m or g", orig)
	}
	return n * mult, nil
}
