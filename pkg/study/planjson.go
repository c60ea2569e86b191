package study

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// WriteJSON writes p exactly as json.Marshal(p) would, but encodes its long
// lists (runs, skipped, order, schedule) one element at a time into a
// buffered stream: a 100,000-run plan (~70 MB) goes to its file without one
// ever-growing buffer, whose reallocation was most of a large study's start.
// The rest of the plan is marshalled by encoding/json itself (with the long
// lists left out), so new fields need nothing here.
func (p *Plan) WriteJSON(w io.Writer) error {
	head := *p
	head.Runs, head.Skipped, head.Order, head.Schedule = nil, nil, nil, nil
	hb, err := json.Marshal(&head)
	if err != nil {
		return err
	}
	lists := []struct {
		key  string
		n    int
		elem func(i int) any
	}{
		{"runs", len(p.Runs), func(i int) any { return &p.Runs[i] }},
		{"skipped", len(p.Skipped), func(i int) any { return &p.Skipped[i] }},
		{"order", len(p.Order), func(i int) any { return p.Order[i] }},
		{"schedule", len(p.Schedule), func(i int) any { return p.Schedule[i] }},
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	for _, l := range lists {
		// With the list nil, encoding/json wrote `"key":null` at the list's
		// place; no string can hold it (its quotes would be escaped).
		marker := []byte(`"` + l.key + `":null`)
		at := bytes.Index(hb, marker)
		if at < 0 {
			return fmt.Errorf("plan JSON: no %s field", l.key)
		}
		bw.Write(hb[:at+len(marker)-len("null")])
		hb = hb[at+len(marker):]
		if err := writeList(bw, l.n, l.elem, listNil(p, l.key)); err != nil {
			return err
		}
	}
	bw.Write(hb)
	return bw.Flush()
}

// listNil says whether the plan's list key is nil (json: null) rather than
// empty (json: []).
func listNil(p *Plan, key string) bool {
	switch key {
	case "runs":
		return p.Runs == nil
	case "skipped":
		return p.Skipped == nil
	case "order":
		return p.Order == nil
	}
	return p.Schedule == nil
}

func writeList(bw *bufio.Writer, n int, elem func(int) any, isNil bool) error {
	if isNil {
		_, err := bw.WriteString("null")
		return err
	}
	bw.WriteByte('[')
	for i := range n {
		if i > 0 {
			bw.WriteByte(',')
		}
		b, err := json.Marshal(elem(i))
		if err != nil {
			return err
		}
		bw.Write(b)
	}
	return bw.WriteByte(']')
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
