package execute

import (
	"fmt"

	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/result"

	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
)

// Route is where a run's slots go: the runner that starts its worker (a
// local subprocess, a Docker container with the backend's image) and the
// backend's builder of that worker's job.
type Route struct {
	Runner runner.Runner
	Job    JobFunc
	// Quality builds the run's quality scoring job (lm-eval) for the same
	// runner; nil where the backend cannot be scored.
	Quality QualityFunc
	// Finish, when set, completes the record of every slot whose worker
	// ran (ok or failed), after the window's energy is in it: a mode's own
	// fields (serving mode: pkg/serving fills the serving section from the
	// report its worker left in the work directory).
	Finish func(FinishRequest)
}

// FinishRequest is what a Route's Finish gets: the slot's record, the
// sampled timeline (nil when measurement is off) and the work directory.
type FinishRequest struct {
	Record   *result.Record
	Timeline *energy.Timeline
	Dir      string
}

// Router gives every run its route. The wiring root (pkg/pipeline) decides
// routes once, before the study starts; the loop only asks.
type Router interface {
	Route(run study.Run) (Route, error)
}

// Routes is a Router with one route per backend name.
type Routes map[string]Route

// Route returns the route of run's backend; a *RouteError when there is
// none or it lacks a runner.
func (rs Routes) Route(run study.Run) (Route, error) {
	r, ok := rs[run.Backend]
	if !ok || r.Job == nil {
		return Route{}, &RouteError{Kind: "unsupported", Backend: run.Backend,
			Message: fmt.Sprintf("no worker for backend %s in this llem", run.Backend),
			Hint:    "pass --python for Python backends, or use backend native"}
	}
	if r.Runner == nil {
		return Route{}, &RouteError{Kind: "runner", Backend: run.Backend,
			Message: fmt.Sprintf("no runner is available for backend %s", run.Backend),
			Hint:    "use --runner local"}
	}
	return r, nil
}

// LocalRoutes routes every backend in jobs to one local-subprocess runner.
func LocalRoutes(jobs map[string]JobFunc) Routes {
	local := runner.NewLocal()
	rs := Routes{}
	for b, jf := range jobs {
		rs[b] = Route{Runner: local, Job: jf}
	}
	return rs
}

// RouteError is why a run has no route; it becomes the failed record's
// error (Kind is the record's error kind).
type RouteError struct {
	Kind    string // "unsupported": no job builder; "runner": no runner
	Backend string
	Message string
	Hint    string
}

func (e *RouteError) Error() string { return e.Message }
