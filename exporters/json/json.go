// Package json exports a study's records as one JSON array, or as JSON
// lines (one record per line, for streaming tools such as jq -c or
// pandas.read_json(lines=True)). Records are written exactly as stored:
// same field names as docs/schema/record.schema.json.
package json

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"

	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/pkg/result"
)

// Exporter is the json exporter.
type Exporter struct{ p exporters.Params }

// New returns a json exporter.
func New(p exporters.Params) (exporters.Exporter, error) { return &Exporter{p: p}, nil }

func init() {
	exporters.Register(exporters.Format{Name: "json", New: New, DefaultDest: func(string) string { return "" }})
}

var _ exporters.Exporter = (*Exporter)(nil)

// Description says what will be written.
func (e *Exporter) Description() string {
	kind := "JSON array of records"
	if e.p.JSONL {
		kind = "JSON lines (one record per line)"
	}
	dest := e.p.Dest
	if dest == "" || dest == "-" {
		dest = "stdout"
	}
	return kind + " to " + dest
}

// Export writes every record of s.
func (e *Exporter) Export(ctx context.Context, s *result.Study) (err error) {
	w, err := exporters.Open(e.p)
	if err != nil {
		return err
	}
	defer w.Abort()
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	if !e.p.JSONL {
		if _, err := bw.WriteString("[\n"); err != nil {
			return fmt.Errorf("write json: %w", err)
		}
		enc.SetIndent("  ", "  ")
	}
	for i, r := range s.Records {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.p.JSONL {
			if i > 0 {
				bw.WriteString(",\n")
			}
			bw.WriteString("  ")
			b, err := json.MarshalIndent(r, "  ", "  ")
			if err != nil {
				return fmt.Errorf("encode record %s cycle %d: %w", r.RunID, r.Cycle, err)
			}
			bw.Write(b)
			continue
		}
		if err := enc.Encode(r); err != nil { // Encode appends the newline
			return fmt.Errorf("encode record %s cycle %d: %w", r.RunID, r.Cycle, err)
		}
	}
	if !e.p.JSONL {
		bw.WriteString("\n]\n")
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return w.Commit()
}
