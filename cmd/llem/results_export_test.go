package main

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/exporters"
)

// TestExportFormatsMatchRegistry: --format offers exactly the registered
// exporters (kong's enum tag is static, the registry fills at init).
func TestExportFormatsMatchRegistry(t *testing.T) {
	field, _ := reflect.TypeFor[resultsExportCmd]().FieldByName("Format")
	enum := strings.Split(field.Tag.Get("enum"), ",")
	slices.Sort(enum)
	if !slices.Equal(enum, exporters.Names()) {
		t.Errorf("--format enum %v, registered exporters %v: add the new format to the enum tag and help of resultsExportCmd", enum, exporters.Names())
	}
}
