// Package exporters turns a study directory (read by result.LoadStudy) into
// shareable files. Each format is its own package (json, parquet, hf)
// behind the small Exporter interface below (k6's output pattern) and
// registers itself with one Register call in its init; llem results export
// picks one by name.
package exporters

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/result"
)

// Exporter writes one study in one format.
type Exporter interface {
	// Description says what will be written, for the command's message.
	Description() string
	Export(ctx context.Context, s *result.Study) error
}

// Params configures an exporter.
type Params struct {
	// Dest is the output path (file or directory, per format); "" or "-"
	// means stdout for formats that can stream.
	Dest string
	// Stdout receives output when Dest is "" or "-".
	Stdout io.Writer
	// JSONL asks the json exporter for one record per line.
	JSONL bool
	// License is the licence identifier a dataset card states (hf); ""
	// means the format's default.
	License string
	// Carbon, when it resolves to an intensity, adds CO2 columns.
	Carbon carbon.Config
}

// Constructor builds an exporter from params.
type Constructor func(Params) (Exporter, error)

// Format is one export format as llem results export offers it.
type Format struct {
	// Name is the --format value.
	Name string
	New  Constructor
	// DefaultDest is where the export goes without --out, given the study's
	// slug (result.Slug of its name); "" means stdout.
	DefaultDest func(slug string) string
}

var (
	formatsMu sync.Mutex
	formats   = map[string]Format{}
)

// Register adds a format; each format package calls it once from init.
// A second registration of a name panics: it is a programming error.
func Register(f Format) {
	formatsMu.Lock()
	defer formatsMu.Unlock()
	if _, dup := formats[f.Name]; dup {
		panic("exporters: format " + f.Name + " registered twice")
	}
	formats[f.Name] = f
}

// Names lists the registered formats, sorted.
func Names() []string {
	formatsMu.Lock()
	defer formatsMu.Unlock()
	names := make([]string, 0, len(formats))
	for n := range formats {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// UnknownFormatError is returned by Lookup for a name no package registered.
type UnknownFormatError struct{ Name string }

func (e *UnknownFormatError) Error() string { return fmt.Sprintf("unknown export format %q", e.Name) }

// Lookup returns the registered format name; an unknown name is a
// *UnknownFormatError marked as bad input with the known names as hint.
func Lookup(name string) (Format, error) {
	formatsMu.Lock()
	f, ok := formats[name]
	formatsMu.Unlock()
	if !ok {
		return Format{}, errs.BadInput(&UnknownFormatError{Name: name}, "use one of "+strings.Join(Names(), ", "))
	}
	return f, nil
}

// Output opens p.Dest for writing (stdout for "" or "-"); close the returned
// closer when done. The file is written in place: exports are derived data
// that can be regenerated, unlike records.
func Output(p Params) (io.Writer, func() error, error) {
	if p.Dest == "" || p.Dest == "-" {
		if p.Stdout == nil {
			return os.Stdout, func() error { return nil }, nil
		}
		return p.Stdout, func() error { return nil }, nil
	}
	f, err := os.Create(p.Dest)
	if err != nil {
		return nil, nil, errs.BadInput(fmt.Errorf("create %s: %w", p.Dest, err), "check that the directory exists and is writable")
	}
	return f, f.Close, nil
}
