package pipeline

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/parser"

	"github.com/llenergymeasure/llem/pkg/backend"
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/params"
	"github.com/llenergymeasure/llem/pkg/pyenv"
	"github.com/llenergymeasure/llem/pkg/runner/docker"
	"github.com/llenergymeasure/llem/pkg/userconfig"
)

// repoSchema evaluates the files of schema/ (the ones the cue CLI vets).
func repoSchema(t *testing.T) cue.Value {
	t.Helper()
	paths, err := filepath.Glob("../../schema/*.cue")
	if err != nil || len(paths) == 0 {
		t.Fatalf("schema files: %v", err)
	}
	inst := build.NewContext().NewInstance("schema", nil)
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(p, src)
		if err != nil {
			t.Fatal(err)
		}
		if err := inst.AddSyntax(f); err != nil {
			t.Fatal(err)
		}
	}
	v := cuecontext.New().BuildInstance(inst)
	if v.Err() != nil {
		t.Fatal(v.Err())
	}
	return v
}

func globNames(t *testing.T, pattern, suffix string) []string {
	t.Helper()
	paths, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range paths {
		out = append(out, strings.TrimSuffix(filepath.Base(p), suffix))
	}
	sort.Strings(out)
	return out
}

func sorted(xs []string) []string {
	xs = slices.Clone(xs)
	sort.Strings(xs)
	return xs
}

// TestBackendRegistryAgrees fails when the backend registry, the schema's
// #Backends (its backend list, section definitions and random presets),
// pkg/params, pkg/pyenv, the release images (docker.ImageBackends and
// docker/*.Dockerfile), the user config's backend list, docs/backends/*.md
// and docs/params.md disagree: a backend added in one place and forgotten
// in another fails here, not at run time.
func TestBackendRegistryAgrees(t *testing.T) {
	sch := repoSchema(t)
	var schemaNames []string
	if err := sch.LookupPath(cue.ParsePath("#BackendNames")).Decode(&schemaNames); err != nil {
		t.Fatal(err)
	}
	registered := backend.Names()
	if !slices.Equal(sorted(schemaNames), registered) {
		t.Fatalf("schema #BackendNames %v, registry %v", schemaNames, registered)
	}
	if !slices.Equal(params.BackendNames(), schemaNames) {
		t.Errorf("params.BackendNames() %v, schema order %v", params.BackendNames(), schemaNames)
	}
	if !slices.Equal(sorted(userconfig.Backends), registered) {
		t.Errorf("userconfig.Backends %v, registry %v", userconfig.Backends, registered)
	}
	var presets map[string][]string
	if err := sch.LookupPath(cue.ParsePath("#RandomPresets")).Decode(&presets); err != nil {
		t.Fatal(err)
	}

	var images, docs, pythons []string
	for _, b := range backend.All() {
		sec := sch.LookupPath(cue.MakePath(cue.Def("#Backends"), cue.Str(b.Name), cue.Str("section")))
		def := sch.LookupPath(cue.ParsePath(b.Section))
		if !def.Exists() || def.Subsume(sec) != nil || sec.Subsume(def) != nil {
			t.Errorf("%s: registered section %s is not the schema's #Backends.%s.section", b.Name, b.Section, b.Name)
		}
		if b.RandomPresets != (len(presets[b.Name]) > 0) {
			t.Errorf("%s: registered RandomPresets %v, schema presets %v", b.Name, b.RandomPresets, presets[b.Name])
		}
		if b.PhaseSplit == "" {
			t.Errorf("%s: no PhaseSplit", b.Name)
		}
		if b.ReleaseImage {
			images = append(images, b.Name)
		}
		if b.Doc != "docs/backends/"+b.Name+".md" {
			t.Errorf("%s: Doc %q, want docs/backends/%s.md", b.Name, b.Doc, b.Name)
		}
		docs = append(docs, b.Name)
		if b.Worker == backend.WorkerPython {
			pythons = append(pythons, b.Name)
			py, err := pyenv.Lookup(b.Name)
			if err != nil || !slices.Contains(py.Modules, b.PythonPackage) {
				t.Errorf("%s: pyenv entry %+v (%v) does not probe its Python package %s", b.Name, py, err, b.PythonPackage)
			}
		} else if b.Builtin == "" {
			t.Errorf("%s: an engine backend without Builtin (llem env)", b.Name)
		}
	}
	var pyenvNames []string
	for _, b := range pyenv.Backends {
		pyenvNames = append(pyenvNames, b.Name)
	}
	if !slices.Equal(sorted(pyenvNames), pythons) {
		t.Errorf("pyenv.Backends %v, registered Python backends %v", pyenvNames, pythons)
	}
	if got := globNames(t, "../../docker/*.Dockerfile", ".Dockerfile"); !slices.Equal(got, images) {
		t.Errorf("docker/*.Dockerfile %v, backends with a release image %v", got, images)
	}
	if !slices.Equal(sorted(docker.ImageBackends), images) {
		t.Errorf("docker.ImageBackends %v, backends with a release image %v", docker.ImageBackends, images)
	}
	if got := globNames(t, "../../docs/backends/*.md", ".md"); !slices.Equal(got, docs) {
		t.Errorf("docs/backends/*.md %v, registered %v", got, docs)
	}
	md, err := os.ReadFile("../../docs/params.md")
	if err != nil {
		t.Fatal(err)
	}
	var sections []string
	for _, m := range regexp.MustCompile(`(?m)^## (\S+)$`).FindAllStringSubmatch(string(md), -1) {
		sections = append(sections, m[1])
	}
	if !slices.Equal(sections, schemaNames) {
		t.Errorf("docs/params.md backend sections %v, schema %v (regenerate it)", sections, schemaNames)
	}
}

// TestSensorRegistryAgrees fails when the sensor registry, the schema's
// energy.sensor enum and the user config's sensor list disagree.
func TestSensorRegistryAgrees(t *testing.T) {
	sch := repoSchema(t)
	_, args := sch.LookupPath(cue.ParsePath("#Energy.sensor")).Expr()
	var enum []string
	for _, a := range args {
		s, err := a.String()
		if err != nil {
			t.Fatalf("#Energy.sensor: %v is not a string literal", a)
		}
		enum = append(enum, s)
	}
	want := energy.SensorNames()
	if !slices.Equal(enum, want) {
		t.Errorf("schema #Energy.sensor %v, sensor registry %v", enum, want)
	}
	if !slices.Equal(userconfig.Sensors, want) {
		t.Errorf("userconfig.Sensors %v, sensor registry %v", userconfig.Sensors, want)
	}
	for _, a := range energy.SensorAliases() {
		if _, ok := energy.LookupSensor(a.Target); !ok && a.Target != energy.SensorAuto {
			t.Errorf("alias %s targets %s, which is not a sensor", a.Name, a.Target)
		}
	}
	if h := energy.SensorsHint(); h != "auto, nvml, amdsmi, rapl, hwmon, powermetrics, estimate, composite, none (aliases: zeus, codecarbon)" {
		t.Errorf("SensorsHint() = %q", h)
	}
}
