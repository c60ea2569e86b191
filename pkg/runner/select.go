package runner

import (
	"fmt"
	"os"
	"strings"
)

// Kinds of runner a backend can use.
const (
	KindAuto   = "auto"
	KindLocal  = "local"
	KindDocker = "docker"
)

// Where a runner choice came from, highest precedence first.
const (
	SourceFlag       = "--runner flag"
	SourceEnv        = "environment"
	SourceStudy      = "study"
	SourceUserConfig = "user config"
	SourceAuto       = "auto"
)

// Choice is the runner picked for one backend, and why.
type Choice struct {
	Backend string `json:"backend"`
	Kind    string `json:"kind"`   // "local" | "docker"
	Source  string `json:"source"` // one of the Source* constants
	Reason  string `json:"reason"`
	Image   string `json:"image,omitempty"` // pinned image (study or user config), docker only
}

// SelectInput is everything the choice depends on. Empty strings and "auto"
// defer to the next level.
type SelectInput struct {
	Backend    string
	Flag       string // --runner
	Study      string // runners: <backend>: kind:
	UserConfig string // user config runners.<backend>
	// Probes, used only when every level says auto.
	DaemonUp   bool // a Docker daemon answered
	Importable bool // the backend's Python package imports locally
	// LocalReason, when set, makes auto always pick local and is its
	// reason: the backend's registered LocalReason (native: its worker is
	// llem itself).
	LocalReason string
}

// Select applies the precedence --runner flag > LLEM_RUNNER_<BACKEND> >
// study > user config > auto. Auto keeps a backend with a LocalReason
// local (native: the worker is llem itself); other backends run locally when their package imports, and in
// Docker when it does not and a daemon is up — the isolation vLLM and
// TensorRT-LLM need, as they cannot share one Python environment.
func Select(in SelectInput) (Choice, error) {
	c := Choice{Backend: in.Backend}
	levels := []struct{ value, source string }{
		{in.Flag, SourceFlag},
		{os.Getenv("LLEM_RUNNER_" + strings.ToUpper(in.Backend)), SourceEnv},
		{in.Study, SourceStudy},
		{in.UserConfig, SourceUserConfig},
	}
	for _, l := range levels {
		switch l.value {
		case "", KindAuto:
			continue
		case KindLocal, KindDocker:
			c.Kind, c.Source, c.Reason = l.value, l.source, "set by the "+l.source
			return c, nil
		default:
			return c, fmt.Errorf("runner %q for backend %s (from the %s): must be auto, local or docker", l.value, in.Backend, l.source)
		}
	}
	c.Source = SourceAuto
	switch {
	case in.LocalReason != "":
		c.Kind, c.Reason = KindLocal, in.LocalReason
	case in.Importable:
		c.Kind, c.Reason = KindLocal, in.Backend+" imports in the local Python"
	case in.DaemonUp:
		c.Kind, c.Reason = KindDocker, in.Backend+" is not importable locally and a Docker daemon is up"
	default:
		c.Kind, c.Reason = KindLocal, in.Backend+" is not importable locally and no Docker daemon answered (the run will fail pre-flight)"
	}
	return c, nil
}
