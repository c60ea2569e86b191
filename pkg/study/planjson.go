package study

import (
	"bufio"
	"encoding/json"
	"io"
)

// WriteJSON writes p exactly as json.Marshal(p) would, but encodes its long
// lists (runs, skipped, order, schedule) one element at a time into a
// buffered stream: a 100,000-run plan (~70 MB) goes to its file without one
// ever-growing buffer, whose reallocation was most of a large study's start.
func (p *Plan) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	first := true
	var err error
	field := func(key string, v any) {
		if err != nil {
			return
		}
		sep := ","
		if first {
			sep, first = "{", false
		}
		bw.WriteString(sep + `"` + key + `":`)
		var b []byte
		if b, err = json.Marshal(v); err == nil {
			bw.Write(b)
		}
	}
	list := func(key string, n int, elem func(i int) any) {
		if err != nil {
			return
		}
		if n == 0 {
			field(key, elem(-1)) // nil or empty, as json.Marshal writes it
			return
		}
		bw.WriteString(`,"` + key + `":[`)
		for i := range n {
			if i > 0 {
				bw.WriteByte(',')
			}
			var b []byte
			if b, err = json.Marshal(elem(i)); err != nil {
				return
			}
			bw.Write(b)
		}
		bw.WriteByte(']')
	}
	field("name", p.Name)
	field("source", p.Source)
	field("kind", p.Kind)
	list("runs", len(p.Runs), func(i int) any {
		if i < 0 {
			return p.Runs
		}
		return &p.Runs[i]
	})
	list("skipped", len(p.Skipped), func(i int) any {
		if i < 0 {
			return p.Skipped
		}
		return &p.Skipped[i]
	})
	field("dims", p.Dims)
	field("execution", p.Execution)
	if p.Carbon != nil {
		field("carbon", p.Carbon)
	}
	field("runners", p.Runners)
	list("order", len(p.Order), func(i int) any {
		if i < 0 {
			return p.Order
		}
		return p.Order[i]
	})
	list("schedule", len(p.Schedule), func(i int) any {
		if i < 0 {
			return p.Schedule
		}
		return p.Schedule[i]
	})
	field("design_hash", p.DesignHash)
	field("seed", p.Seed)
	if len(p.Warnings) > 0 {
		field("warnings", p.Warnings)
	}
	if err != nil {
		return err
	}
	bw.WriteByte('}')
	return bw.Flush()
}

// JSONSizeHint is roughly how many bytes p's JSON takes: enough to choose
// between an indented plan.json and a streamed compact one.
func (p *Plan) JSONSizeHint() int {
	n := 1024 + 24*len(p.Schedule)
	for i := range p.Runs {
		n += len(p.Runs[i].ConfigJSON) + 256
	}
	return n
}
