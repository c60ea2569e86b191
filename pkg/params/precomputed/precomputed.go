// Package precomputed holds what pkg/params derives from the schema files
// (the backends, their coverage targets, their reports) and the rendered
// output of `llem params [BACKEND] [--json]`, written by
// `go generate ./pkg/params` (TestPrecomputedIsCurrent fails while stale).
//
// It imports no CUE: the start-up front (cmd/llem-front) prints `llem
// params` from here without linking the schema compiler, and pkg/params
// reads its reports from here instead of compiling the schema. Both use the
// files only while the schema files this binary embeds (and registers)
// match the checksum index.json records, so a stale copy is never served.
package precomputed

import (
	"embed"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io/fs"
	"slices"
	"sort"
	"sync"

	"github.com/llenergymeasure/llem/schema"
	"github.com/llenergymeasure/llem/tools/upstream"
)

//go:embed *.json rendered
var files embed.FS

// Index is index.json; each backend's report is <backend>.json.
type Index struct {
	SchemaChecksum string             `json:"schema_checksum"`
	Backends       []string           `json:"backends"`
	Targets        map[string]float64 `json:"targets"`
}

// SourceFiles are the files precomputed data is derived from: the schema's
// (embedded and registered) and, under upstream/, the upstream snapshots
// and relevance verdicts of the measured coverage.
func SourceFiles() map[string][]byte {
	files := schema.Files()
	for p, b := range upstream.Files() {
		files["upstream/"+p] = b
	}
	return files
}

// Checksum identifies a set of source files: CRC-32C (hardware
// accelerated: start-up pays microseconds) over names, lengths and
// contents in name order. It detects a stale copy, not tampering.
func Checksum(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	total := 0
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
		total += len(files[n])
	}
	return fmt.Sprintf("crc32c:%08x:%d:%d", h.Sum32(), len(names), total)
}

// FS is the precomputed directory as embedded (index.json, <backend>.json,
// rendered/).
func FS() fs.FS { return files }

// Open reads the index of dir if it was written for the source files with
// checksum want.
func Open(dir fs.FS, want string) (*Index, error) {
	b, err := fs.ReadFile(dir, "index.json")
	if err != nil {
		return nil, err
	}
	var idx Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, err
	}
	if idx.SchemaChecksum != want {
		return nil, fmt.Errorf("precomputed data is for schema %s, this binary's is %s", idx.SchemaChecksum, want)
	}
	return &idx, nil
}

// Current is the embedded index when it matches this binary's source
// files, else nil.
var Current = sync.OnceValue(func() *Index {
	idx, err := Open(files, Checksum(SourceFiles()))
	if err != nil {
		return nil
	}
	return idx
})

// RenderedName is the file under rendered/ that holds the output of
// `llem params [backend]` (all backends when backend is ""), as text or
// with --json.
func RenderedName(backend string, asJSON bool) string {
	name := "params"
	if backend != "" {
		name += "-" + backend
	}
	if asJSON {
		return name + ".json"
	}
	return name + ".txt"
}

// Rendered is the output of `llem params [backend] [--json]`, false when
// the embedded files are not for this binary's schema or backend is not
// one of its backends (the caller then computes it, or reports the error).
func Rendered(backend string, asJSON bool) ([]byte, bool) {
	idx := Current()
	if idx == nil || (backend != "" && !slices.Contains(idx.Backends, backend)) {
		return nil, false
	}
	b, err := fs.ReadFile(files, "rendered/"+RenderedName(backend, asJSON))
	return b, err == nil
}
