package exporters_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/llenergymeasure/llem/exporters"
	_ "github.com/llenergymeasure/llem/exporters/hf"
	_ "github.com/llenergymeasure/llem/exporters/json"
	_ "github.com/llenergymeasure/llem/exporters/parquet"
	"github.com/llenergymeasure/llem/internal/errs"
)

func TestRegistry(t *testing.T) {
	if got, want := exporters.Names(), []string{"hf-datasets", "json", "parquet"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	for name, dest := range map[string]string{"json": "", "parquet": "s.parquet", "hf-datasets": "s-hf"} {
		f, err := exporters.Lookup(name)
		if err != nil || f.Name != name || f.DefaultDest("s") != dest {
			t.Errorf("Lookup(%q) = %q, default dest %q, %v; want dest %q", name, f.Name, f.DefaultDest("s"), err, dest)
		}
	}
	_, err := exporters.Lookup("xml")
	var unknown *exporters.UnknownFormatError
	if !errors.As(err, &unknown) || unknown.Name != "xml" || errs.ExitCode(err) != errs.ExitBadInput || errs.Hint(err) != "use one of hf-datasets, json, parquet" {
		t.Errorf("Lookup(xml): %v (exit %d, hint %q)", err, errs.ExitCode(err), errs.Hint(err))
	}
	defer func() {
		if recover() == nil {
			t.Error("registering json twice did not panic")
		}
	}()
	exporters.Register(exporters.Format{Name: "json"})
}
