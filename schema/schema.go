// Package schema embeds llem's CUE schema (the *.cue files of this
// directory, CUE package "schema"), so the llem binary validates studies
// anywhere, without the repository or a CUE module cache.
package schema

import (
	"embed"
	"io/fs"
	"sort"
	"sync"
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

// extra holds the files added by Register.
var (
	extraMu sync.RWMutex
	extra   = map[string][]byte{}
)

// Register adds a CUE file (package schema) to the schema llem loads, for a
// backend whose package lives outside this directory: its section and its
// #Backends entry, as schema/<backend>.cue would hold them. Call it from the
// backend package's init, next to backend.Register, so it is in place
// before any study loads. Registered files are seen by llem (Files, Names)
// but not by the official cue CLI, which reads this directory: a backend
// shipped with llem puts its file here instead. It panics on a name that is
// already taken.
func Register(name string, src []byte) {
	extraMu.Lock()
	defer extraMu.Unlock()
	if _, err := fs.Stat(files, name); err == nil {
		panic("schema.Register: " + name + " is an embedded file")
	}
	if _, dup := extra[name]; dup {
		panic("schema.Register: " + name + " registered twice")
	}
	extra[name] = src
}

// FS returns the embedded CUE files (flat, names like "experiment.cue").
func FS() fs.FS { return files }

// Files returns the embedded and registered CUE files by name.
func Files() map[string][]byte {
	out := make(map[string][]byte)
	for _, n := range Names() {
		if b, ok := registered(n); ok {
			out[n] = b
			continue
		}
		b, err := files.ReadFile(n)
		if err != nil {
			panic("schema: read embedded " + n + ": " + err.Error()) // embedded: cannot fail
		}
		out[n] = b
	}
	return out
}

func registered(name string) ([]byte, bool) {
	extraMu.RLock()
	defer extraMu.RUnlock()
	b, ok := extra[name]
	return b, ok
}

// Names returns the embedded and registered file names, sorted: the load
// order.
func Names() []string {
	ents, err := files.ReadDir(".")
	if err != nil {
		panic("schema: read embedded dir: " + err.Error())
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	extraMu.RLock()
	for n := range extra {
		names = append(names, n)
	}
	extraMu.RUnlock()
	sort.Strings(names)
	return names
}
