// Package userconfig reads the per-user llem settings file,
// ~/.config/llenergymeasure/config.yaml (XDG-aware), and applies the
// environment variables that override it.
//
// Precedence, lowest to highest: built-in defaults, the file, environment
// variables, then (in the callers) the study and command-line flags. A
// missing file is not an error. Decoding is strict: an unknown key is an
// error that names file:line and suggests the closest known key, so a typo
// never silently falls back to a default.
//
// Environment variables:
//
//	LLEM_CONFIG            path of the config file (instead of the XDG location)
//	LLEM_RESULTS_DIR       results_dir
//	LLEM_ENERGY_SENSOR     energy.sensor
//	LLEM_CPU_TDP_WATTS     energy.cpu_tdp_watts
//	LLEM_CARBON_REGION     carbon.region
//	LLEM_CARBON_INTENSITY  carbon.intensity_g_per_kwh (gCO2e/kWh)
//	LLEM_PUE               carbon.pue (LLEM_DATACENTER_PUE is accepted too)
//	LLEM_PYTHON            python
//	LLEM_RUNNER_<BACKEND>  runners.<backend>   (e.g. LLEM_RUNNER_VLLM=docker)
//	LLEM_IMAGE_<BACKEND>   images.<backend>
//	LLEM_API_KEY           sharing.api_key (never printed)
package userconfig

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/redact"
	"github.com/llenergymeasure/llem/pkg/carbon"
)

// Backends that runners and images may name.
var Backends = []string{"native", "pytorch", "vllm", "tensorrt"}

// Sensors accepted by energy.sensor (the experiment schema's energy.sensor).
var Sensors = []string{"auto", "nvml", "amdsmi", "rapl", "hwmon", "powermetrics", "estimate", "composite", "none", "zeus", "codecarbon"}

// Config is the content of config.yaml.
type Config struct {
	// ResultsDir is where llem eval writes study directories and where
	// llem results ls looks. Relative paths are relative to the working
	// directory.
	ResultsDir string `yaml:"results_dir" json:"results_dir"`
	// Energy holds measurement defaults a study may override.
	Energy Energy `yaml:"energy" json:"energy"`
	// Carbon is the default carbon block (a study's own block wins).
	Carbon carbon.Config `yaml:"carbon" json:"carbon"`
	// Python is the interpreter for the Python backends run locally.
	Python string `yaml:"python" json:"python,omitempty"`
	// Runners says where each backend's worker runs: local or docker.
	Runners map[string]string `yaml:"runners" json:"runners,omitempty"`
	// Images overrides the Docker image per backend.
	Images map[string]string `yaml:"images" json:"images,omitempty"`
	// Slurm holds the per-task sbatch resources of llem eval --on slurm
	// (docs/slurm.md); flags override them.
	Slurm Slurm `yaml:"slurm" json:"slurm,omitempty"`
	// Sharing is where llem results push sends results (docs/sharing.md).
	Sharing Sharing `yaml:"sharing" json:"sharing,omitempty"`
}

// Sharing is the sharing section. The secrets in it are never printed:
// json "-" keeps them out of llem env --json, and Settings masks them.
type Sharing struct {
	// URL is the default archive of llem results push (--to overrides).
	URL string `yaml:"url" json:"url,omitempty"`
	// APIKey is the archive token (LLEM_API_KEY overrides).
	APIKey string `yaml:"api_key" json:"-"`
	// HFToken is the Hugging Face token for push --to hf://... (HF_TOKEN
	// overrides).
	HFToken string `yaml:"hf_token" json:"-"`
}

// Slurm is the slurm section: sbatch options of each array task.
type Slurm struct {
	Partition   string   `yaml:"partition" json:"partition,omitempty"`
	Account     string   `yaml:"account" json:"account,omitempty"`
	QOS         string   `yaml:"qos" json:"qos,omitempty"`
	GPUs        string   `yaml:"gpus" json:"gpus,omitempty"`
	CPUs        int      `yaml:"cpus" json:"cpus,omitempty"`
	Mem         string   `yaml:"mem" json:"mem,omitempty"`
	Time        string   `yaml:"time" json:"time,omitempty"`
	Constraint  string   `yaml:"constraint" json:"constraint,omitempty"`
	Extra       []string `yaml:"extra" json:"extra,omitempty"`
	MaxParallel int      `yaml:"max_parallel" json:"max_parallel,omitempty"`
}

// Energy is the energy section.
type Energy struct {
	Sensor string `yaml:"sensor" json:"sensor"`
	// CPUTDPWatts overrides the CPU TDP table of the estimate sensor: the
	// whole machine's CPU watts at full load (0: use the table). Set it
	// when llem env says the CPU is not in the table.
	CPUTDPWatts float64 `yaml:"cpu_tdp_watts" json:"cpu_tdp_watts,omitempty"`
}

// Defaults are the values with no file and no environment.
func Defaults() Config {
	return Config{ResultsDir: "results", Energy: Energy{Sensor: "auto"}}
}

// Loaded is a resolved config and where each setting came from.
type Loaded struct {
	Config
	// Path is the file consulted; Found says whether it existed.
	Path  string `json:"path"`
	Found bool   `json:"found"`
	// Set maps each setting that is not a default (dotted key) to its
	// origin: "file" or "env LLEM_...".
	Set map[string]string `json:"set"`
}

// Path returns the config file location: $LLEM_CONFIG, else
// $XDG_CONFIG_HOME/llenergymeasure/config.yaml, else
// ~/.config/llenergymeasure/config.yaml (os.UserConfigDir on other systems).
func Path(getenv func(string) string) string {
	if p := getenv("LLEM_CONFIG"); p != "" {
		return p
	}
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "llenergymeasure", "config.yaml")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "llenergymeasure", "config.yaml")
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "llenergymeasure", "config.yaml")
	}
	return filepath.Join(".config", "llenergymeasure", "config.yaml")
}

// Load reads the config from its default path and the process environment.
func Load() (*Loaded, error) { return LoadEnv(os.Getenv) }

// LoadEnv is Load with an injectable environment (for tests).
func LoadEnv(getenv func(string) string) (*Loaded, error) {
	return LoadFile(Path(getenv), getenv)
}

// LoadFile reads path (missing is fine) and applies getenv's overrides.
func LoadFile(path string, getenv func(string) string) (*Loaded, error) {
	l := &Loaded{Config: Defaults(), Path: path, Set: map[string]string{}}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, errs.WithHint(fmt.Errorf("read user config %s: %w", path, err), "fix its permissions or point LLEM_CONFIG elsewhere")
	default:
		l.Found = true
		if err := decode(path, data, &l.Config, l.Set); err != nil {
			return nil, err
		}
	}
	if err := applyEnv(l, getenv); err != nil {
		return nil, err
	}
	if err := l.Config.Validate(); err != nil {
		return nil, errs.BadInput(fmt.Errorf("user config %s: %w", path, err), errs.Hint(err))
	}
	return l, nil
}

// Validate checks values (keys were checked while decoding).
func (c *Config) Validate() error {
	if !slices.Contains(Sensors, c.Energy.Sensor) {
		return errs.WithHint(fmt.Errorf("energy.sensor %q is not one of %s", c.Energy.Sensor, strings.Join(Sensors, ", ")), "use auto to let llem pick")
	}
	if w := c.Energy.CPUTDPWatts; w < 0 || w > 100000 {
		return errs.WithHint(fmt.Errorf("energy.cpu_tdp_watts %g is out of range", w), "give the CPUs' total TDP in watts (e.g. 65 for one desktop CPU), or 0 to use the TDP table")
	}
	for b, r := range c.Runners {
		if !slices.Contains(Backends, b) {
			return errs.WithHint(fmt.Errorf("runners.%s: unknown backend", b), "backends: "+strings.Join(Backends, ", "))
		}
		if r != "local" && r != "docker" {
			return errs.WithHint(fmt.Errorf("runners.%s = %q must be local or docker", b, r), "set the image with images."+b)
		}
	}
	for b := range c.Images {
		if !slices.Contains(Backends, b) {
			return errs.WithHint(fmt.Errorf("images.%s: unknown backend", b), "backends: "+strings.Join(Backends, ", "))
		}
	}
	if err := c.Carbon.Validate(); err != nil {
		return err
	}
	return nil
}

// decode parses data strictly into c, recording file-set keys in set.
func decode(path string, data []byte, c *Config, set map[string]string) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return errs.BadInput(fmt.Errorf("parse user config %s: %w", path, err), "check the YAML syntax (indentation, colons)")
	}
	if len(doc.Content) == 0 { // empty file
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return errs.BadInput(fmt.Errorf("%s:%d: user config must be a mapping of keys to values", path, root.Line), "see docs/results.md for an example")
	}
	if err := checkKeys(path, root, reflect.TypeOf(Config{}), "", set); err != nil {
		return err
	}
	if err := root.Decode(c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return errs.BadInput(fmt.Errorf("%s: %s", path, strings.Join(te.Errors, "; ")), "check the value types (numbers unquoted, strings for names)")
		}
		return errs.BadInput(fmt.Errorf("decode user config %s: %w", path, err), "")
	}
	return nil
}

// checkKeys walks a mapping node against the yaml tags of t.
func checkKeys(path string, n *yaml.Node, t reflect.Type, prefix string, set map[string]string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind != yaml.MappingNode {
		if t.Kind() == reflect.Struct || t.Kind() == reflect.Map {
			return errs.BadInput(fmt.Errorf("%s:%d: %s must be a mapping", path, n.Line, strings.TrimSuffix(prefix, ".")), "")
		}
		set[strings.TrimSuffix(prefix, ".")] = "file"
		return nil
	}
	if t.Kind() == reflect.Map {
		for i := 0; i+1 < len(n.Content); i += 2 {
			set[prefix+n.Content[i].Value] = "file"
		}
		return nil
	}
	fields := map[string]reflect.Type{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = f.Type
		names = append(names, name)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok {
			hint := "known keys here: " + strings.Join(names, ", ")
			msg := fmt.Sprintf("%s:%d: unknown key %q", path, k.Line, prefix+k.Value)
			if s := closest(k.Value, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", prefix+s)
			}
			return errs.BadInput(errors.New(msg), hint)
		}
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			continue
		}
		if ft.Kind() == reflect.Struct || ft.Kind() == reflect.Map {
			if err := checkKeys(path, v, ft, prefix+k.Value+".", set); err != nil {
				return err
			}
			continue
		}
		set[prefix+k.Value] = "file"
	}
	return nil
}

// closest returns the candidate within edit distance 2 of s (or sharing a
// prefix of 4+ characters), else "".
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		d := levenshtein(strings.ToLower(s), c)
		if d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		for _, c := range candidates {
			if len(s) >= 4 && (strings.HasPrefix(c, s[:4]) || strings.Contains(c, s)) {
				return c
			}
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// applyEnv overrides the file with environment variables.
func applyEnv(l *Loaded, getenv func(string) string) error {
	str := func(name, key string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
			l.Set[key] = "env " + name
		}
	}
	num := func(name, key string, dst **float64) error {
		v := getenv(name)
		if v == "" {
			return nil
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return errs.BadInput(fmt.Errorf("environment %s=%q is not a number", name, v), "unset it or give a plain number, e.g. "+name+"=350")
		}
		*dst = &f
		l.Set[key] = "env " + name
		return nil
	}
	str("LLEM_RESULTS_DIR", "results_dir", &l.ResultsDir)
	str("LLEM_ENERGY_SENSOR", "energy.sensor", &l.Energy.Sensor)
	str("LLEM_PYTHON", "python", &l.Python)
	str("LLEM_API_KEY", "sharing.api_key", &l.Sharing.APIKey)
	if v := getenv("LLEM_CPU_TDP_WATTS"); v != "" {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return errs.BadInput(fmt.Errorf("environment LLEM_CPU_TDP_WATTS=%q is not a number", v), "unset it or give the CPUs' TDP in watts, e.g. LLEM_CPU_TDP_WATTS=65")
		}
		l.Energy.CPUTDPWatts = f
		l.Set["energy.cpu_tdp_watts"] = "env LLEM_CPU_TDP_WATTS"
	}
	if v := getenv("LLEM_CARBON_REGION"); v != "" {
		l.Carbon.Region = v
		l.Set["carbon.region"] = "env LLEM_CARBON_REGION"
	}
	if err := num("LLEM_CARBON_INTENSITY", "carbon.intensity_g_per_kwh", &l.Carbon.IntensityGPerKWh); err != nil {
		return err
	}
	for _, name := range []string{"LLEM_DATACENTER_PUE", "LLEM_PUE"} { // LLEM_PUE wins
		if err := num(name, "carbon.pue", &l.Carbon.PUE); err != nil {
			return err
		}
	}
	for _, b := range Backends {
		up := strings.ToUpper(b)
		if v := getenv("LLEM_RUNNER_" + up); v != "" {
			if l.Runners == nil {
				l.Runners = map[string]string{}
			}
			l.Runners[b] = v
			l.Set["runners."+b] = "env LLEM_RUNNER_" + up
		}
		if v := getenv("LLEM_IMAGE_" + up); v != "" {
			if l.Images == nil {
				l.Images = map[string]string{}
			}
			l.Images[b] = v
			l.Set["images."+b] = "env LLEM_IMAGE_" + up
		}
	}
	return nil
}

// Settings returns the non-default settings as sorted "key = value (origin)"
// lines, for llem env.
func (l *Loaded) Settings() []string {
	var out []string
	for k, origin := range l.Set {
		out = append(out, fmt.Sprintf("%s = %s (%s)", k, l.value(k), origin))
	}
	sort.Strings(out)
	return out
}

func (l *Loaded) value(key string) string {
	switch key {
	case "results_dir":
		return l.ResultsDir
	case "energy.sensor":
		return l.Energy.Sensor
	case "python":
		return l.Python
	case "sharing.url":
		return redact.URL(l.Sharing.URL)
	case "sharing.api_key", "sharing.hf_token":
		return redact.Mask
	case "carbon.region":
		return l.Carbon.Region
	case "carbon.source":
		return l.Carbon.Source
	case "carbon.intensity_g_per_kwh":
		if l.Carbon.IntensityGPerKWh != nil {
			return strconv.FormatFloat(*l.Carbon.IntensityGPerKWh, 'g', -1, 64)
		}
	case "carbon.pue":
		if l.Carbon.PUE != nil {
			return strconv.FormatFloat(*l.Carbon.PUE, 'g', -1, 64)
		}
	}
	if b, ok := strings.CutPrefix(key, "runners."); ok {
		return l.Runners[b]
	}
	if b, ok := strings.CutPrefix(key, "images."); ok {
		return l.Images[b]
	}
	return ""
}
