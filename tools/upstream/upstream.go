// Package upstream holds the pinned upstream library versions of llem's
// Python backends (targets.json: the one place the Docker images, the schema
// checks, the harness tests and the docs read them from) and the argument
// surfaces extracted from those libraries' sources by extract.py
// (snapshots/<lib>-<version>.json), with the relevance verdicts that turn a
// snapshot into the denominator of the measured coverage
// (relevance/<lib>.json).
package upstream

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
)

//go:embed targets.json snapshots/*.json relevance/*.json
var files embed.FS

// Files returns the embedded files by path (targets.json,
// snapshots/…, relevance/…): what MeasuredCoverage reads, for checksums of
// data derived from them.
func Files() map[string][]byte {
	out := map[string][]byte{}
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[p], _ = files.ReadFile(p)
		}
		return err
	})
	return out
}

// Target is the pinned upstream library of one backend.
type Target struct {
	Library   string            `json:"library"`
	Version   string            `json:"version"`
	BaseImage string            `json:"base_image"`
	Pip       map[string]string `json:"pip,omitempty"`
	// Snapshot is the file under snapshots/, empty when none was taken yet.
	Snapshot string `json:"snapshot"`
}

// Field is one upstream argument.
type Field struct {
	Name      string  `json:"name"`
	Type      *string `json:"type"`
	Default   *string `json:"default"`
	Required  bool    `json:"required,omitempty"`
	Discarded bool    `json:"discarded,omitempty"`
	// Values is the closed set of a Literal[...]-typed field.
	Values []string `json:"values,omitempty"`
}

// Source names where a surface was read.
type Source struct {
	Repo   string `json:"repo"`
	Path   string `json:"path"`
	Commit string `json:"commit"`
	Symbol string `json:"symbol"`
}

// Surface is one extracted class, function or constant.
type Surface struct {
	Kind   string   `json:"kind"`
	Bases  []string `json:"bases,omitempty"`
	Fields []Field  `json:"fields,omitempty"`
	Values []string `json:"values,omitempty"`
	Source Source   `json:"source"`
}

// Field returns the named field of the surface.
func (s *Surface) Field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Snapshot is one library version's argument surface.
type Snapshot struct {
	Library  string              `json:"library"`
	Version  string              `json:"version"`
	Note     string              `json:"note"`
	Surfaces map[string]*Surface `json:"surfaces"`
}

// Verdict is the reviewed relevance of one upstream knob ("surface.name").
type Verdict struct {
	Relevant bool   `json:"relevant"`
	Reason   string `json:"reason,omitempty"`
}

// Targets returns the pinned targets by backend.
func Targets() (map[string]Target, error) {
	b, err := files.ReadFile("targets.json")
	if err != nil {
		return nil, err
	}
	var t map[string]Target
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("targets.json: %w", err)
	}
	return t, nil
}

// Load returns the snapshot of a backend's pinned version, nil when the
// target has none yet.
func Load(backend string) (*Snapshot, error) {
	ts, err := Targets()
	if err != nil {
		return nil, err
	}
	t, ok := ts[backend]
	if !ok {
		return nil, fmt.Errorf("no upstream target for backend %q", backend)
	}
	if t.Snapshot == "" {
		return nil, nil
	}
	b, err := files.ReadFile("snapshots/" + t.Snapshot)
	if err != nil {
		return nil, err
	}
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", t.Snapshot, err)
	}
	if s.Version != t.Version {
		return nil, fmt.Errorf("snapshot %s is of version %s, target pins %s", t.Snapshot, s.Version, t.Version)
	}
	return &s, nil
}

// Relevance returns the reviewed verdicts of a backend's knobs, keyed
// "surface.name"; nil when the backend has no list yet.
func Relevance(backend string) (map[string]Verdict, error) {
	b, err := files.ReadFile("relevance/" + backend + ".json")
	if err != nil {
		return nil, nil //nolint:nilerr // no list yet
	}
	var v map[string]Verdict
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("relevance/%s.json: %w", backend, err)
	}
	return v, nil
}

// Knobs lists every knob of a snapshot as "surface.name", sorted; constants
// and discarded arguments are not knobs.
func (s *Snapshot) Knobs() []string {
	var out []string
	for name, sf := range s.Surfaces {
		for _, f := range sf.Fields {
			if !f.Discarded {
				out = append(out, name+"."+f.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}
