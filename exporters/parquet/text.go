package parquet

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/result"
)

// TextTable is a table as text cells, for text formats (csv): the same
// columns and the same nulls as the Parquet export.
type TextTable struct {
	Cols []Column
	rows []row
}

// RecordText is the per-cycle table of recs (ColumnsFor) as text.
func RecordText(recs []*result.Record, cc carbon.Config) *TextTable {
	cols := ColumnsFor(recs)
	unit := carbon.Compute(1, cc)
	return &TextTable{Cols: cols, rows: recordRows(recs, cols, &unit)}
}

// RunText is the per-run statistics table (RunColumnsFor) as text.
func RunText(runs []exporters.RunRow) *TextTable {
	cols := RunColumnsFor(runs)
	t := &TextTable{Cols: cols, rows: make([]row, len(runs))}
	withCoords := hasCoords(cols)
	for i := range runs {
		t.rows[i] = row{run: &runs[i]}
		if withCoords {
			t.rows[i].coords = parseCoords(runs[i].Coordinates)
		}
	}
	return t
}

// Len is the number of rows.
func (t *TextTable) Len() int { return len(t.rows) }

// Header is the column names.
func (t *TextTable) Header() []string {
	h := make([]string, len(t.Cols))
	for i, c := range t.Cols {
		h[i] = c.Name
	}
	return h
}

// Row fills cells with row k: "" for a null; floats in the shortest form
// that reads back to the same float64; timestamps RFC 3339 UTC with
// microseconds (the Parquet precision); lists as JSON arrays.
func (t *TextTable) Row(k int, cells []string) {
	x := &t.rows[k]
	for i := range t.Cols {
		c := &t.Cols[i]
		var v string
		switch c.Kind {
		case Float64:
			if f, ok := c.f(x); ok {
				v = strconv.FormatFloat(f, 'g', -1, 64)
			}
		case Int64:
			if n, ok := c.i(x); ok {
				v = strconv.FormatInt(n, 10)
			}
		case Bool:
			if b, ok := c.b(x); ok {
				v = strconv.FormatBool(b)
			}
		case Timestamp:
			if ts, ok := c.t(x); ok {
				v = ts.UTC().Truncate(time.Microsecond).Format("2006-01-02T15:04:05.000000Z")
			}
		case String:
			v, _ = c.s(x)
		case StringList:
			l := c.l(x)
			if l == nil {
				l = []string{}
			}
			b, _ := json.Marshal(l)
			v = string(b)
		}
		cells[i] = v
	}
}
