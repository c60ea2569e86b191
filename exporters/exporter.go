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
	"path/filepath"
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
	Export(ctx context.Context, s *Set) error
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
	// Beside lists the other files an export to dest writes next to it
	// (the parquet and csv per-run tables); nil when there are none. The
	// command checks them like dest: never replaced without --force.
	Beside func(dest string) []string
}

// BesideFile is dest with its extension ext replaced by suffix+ext:
// BesideFile("x.parquet", ".parquet", ".runs") is "x.runs.parquet".
func BesideFile(dest, ext, suffix string) string {
	return strings.TrimSuffix(dest, ext) + suffix + ext
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

// Output is an export's destination: stdout, or a file that appears only
// complete. A file is written to a temp file beside it and renamed over the
// destination by Commit, so a failure (a full disk, Ctrl-C) leaves the
// previous export at that path intact and no torn file.
type Output struct {
	io.Writer
	f    *os.File
	dest string
	done bool
}

// Open opens p.Dest for writing (stdout for "" or "-"). Call Commit when
// the export is complete and Abort (deferred) in every case.
func Open(p Params) (*Output, error) {
	if p.Dest == "" || p.Dest == "-" {
		if p.Stdout == nil {
			return &Output{Writer: os.Stdout}, nil
		}
		return &Output{Writer: p.Stdout}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(p.Dest), "."+filepath.Base(p.Dest)+".tmp-*")
	if err != nil {
		return nil, errs.BadInput(fmt.Errorf("create %s: %w", p.Dest, err), "check that the directory exists and is writable")
	}
	return &Output{Writer: f, f: f, dest: p.Dest}, nil
}

// Commit makes the written file the destination (fsync, rename).
func (o *Output) Commit() error {
	if o.f == nil || o.done {
		return nil
	}
	o.done = true
	tmp := o.f.Name()
	err := o.f.Chmod(0o644)
	if err == nil {
		err = o.f.Sync()
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, o.dest)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", o.dest, err)
	}
	return nil
}

// Abort drops an uncommitted file; after Commit it does nothing.
func (o *Output) Abort() {
	if o.f == nil || o.done {
		return
	}
	o.done = true
	o.f.Close()
	os.Remove(o.f.Name())
}

// CheckDest refuses destinations that would destroy data: a path inside a
// study directory (an export there could replace a measured record or the
// manifest), and an existing file or directory unless force is set.
func CheckDest(dest string, force bool) error {
	if dest == "" || dest == "-" {
		return nil
	}
	abs, err := filepath.Abs(dest)
	if err != nil {
		return errs.BadInput(fmt.Errorf("export to %s: %w", dest, err), "pass --out PATH")
	}
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, result.ManifestFile)); err == nil {
			return errs.BadInput(fmt.Errorf("export to %s: that is inside the study directory %s, whose files llem results export never writes", dest, d),
				"write the export outside the study directory, e.g. --out "+filepath.Join(filepath.Dir(d), filepath.Base(abs)))
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if _, err := os.Stat(dest); err == nil && !force {
		return errs.BadInput(fmt.Errorf("export to %s: it already exists", dest), "pass --force to replace it, or choose another --out")
	}
	return nil
}
