// Package schema embeds llem's CUE schema (the *.cue files of this
// directory, CUE package "schema"), so the llem binary validates studies
// anywhere, without the repository or a CUE module cache.
package schema

import (
	"embed"
	"io/fs"
	"sort"
)

// ImportPath is the CUE import path of this package; study files may
// `import "github.com/llenergymeasure/llem/schema"`.
const ImportPath = "github.com/llenergymeasure/llem/schema"

// Module is the CUE module path declared in cue.mod/module.cue.
const Module = "github.com/llenergymeasure/llem@v0"

// LanguageVersion is the CUE language version the schema is written for.
const LanguageVersion = "v0.17.0"

//go:embed *.cue
var files embed.FS

// FS returns the embedded CUE files (flat, names like "experiment.cue").
func FS() fs.FS { return files }

// Files returns the embedded CUE files by name, sorted by name for a stable
// load order.
func Files() map[string][]byte {
	out := make(map[string][]byte)
	names := Names()
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			panic("schema: read embedded " + n + ": " + err.Error()) // embedded: cannot fail
		}
		out[n] = b
	}
	return out
}

// Names returns the embedded file names, sorted.
func Names() []string {
	ents, err := files.ReadDir(".")
	if err != nil {
		panic("schema: read embedded dir: " + err.Error())
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}
